"""THE record schema shared by flow_tools (writer) and two_stream_tf (reader).

One `tf.train.SequenceExample` per video. RGB uses TF Model Garden / MediaSequence
names, so their video loaders read our frames.

Context:
  clip/media_id            bytes    video id (same in every split)
  clip/label/index         int64    0-based label
  clip/label/string        bytes    class name
  clip/dataset             bytes    'ucf101', 'hmdb51', ...
  clip/split_membership    int64[S] per split: 0 unused, 1 train, 2 test
  clip/frame_count         int64    T, the number of RGB frames
  clip/flow_count          int64    T - 1, the number of flow fields (always)
  image/height, image/width int64   stored frame size (flow has the same size)
  image/format             bytes    'jpeg'
  flow/algorithm           bytes    registry name in flow_tools.flow
  flow/quantization        bytes    'minmax' or 'bound'
  flow/bound               float    clipping bound of the 'bound' scheme
  flow/jpeg_quality, image/jpeg_quality, video/short_side   int64
  flow/has_backward        int64    1 if backward flow is stored
  flow/range               float[4(T-1)]  per field: x_lo, x_hi, y_lo, y_hi
  flow_backward/range      float[4(T-1)]  the same for backward flow (if stored)
Feature lists:
  image/encoded            T      JPEG RGB frames
  flow/x/encoded, flow/y/encoded                   T - 1  JPEG uint8 flow components
  flow_backward/x/encoded, flow_backward/y/encoded T - 1  (if stored)

Forward field t maps frame t to frame t + 1; backward field t maps frame t + 1 to
frame t. Dequantise with `flow = (q - 127.5) * (hi - lo) / 255 + (hi + lo) / 2`
in float32 (flow_tools.quantize.dequantize); a horizontal flip of a stored field is
q -> 255 - q with (lo, hi) -> (-hi, -lo), for either scheme.

A records directory holds sharded TFRecord files and `manifest.json`; it may be
local or on a remote filesystem (gs://...).
"""

import dataclasses
import json
import os
import uuid

import numpy as np
import tensorflow as tf

from flow_tools import quantize
from flow_tools import storage

MANIFEST = "manifest.json"
FORMAT = "two_stream_tf.records/1"
FLOW_KINDS = ("flow", "flow_backward")

CONTEXT_FEATURES = {
    "clip/media_id": tf.io.FixedLenFeature([], tf.string),
    "clip/label/index": tf.io.FixedLenFeature([], tf.int64),
    "clip/label/string": tf.io.FixedLenFeature([], tf.string),
    "clip/dataset": tf.io.FixedLenFeature([], tf.string),
    "clip/split_membership": tf.io.VarLenFeature(tf.int64),
    "clip/frame_count": tf.io.FixedLenFeature([], tf.int64),
    "clip/flow_count": tf.io.FixedLenFeature([], tf.int64),
    "image/height": tf.io.FixedLenFeature([], tf.int64),
    "image/width": tf.io.FixedLenFeature([], tf.int64),
    "image/format": tf.io.FixedLenFeature([], tf.string),
    "image/jpeg_quality": tf.io.FixedLenFeature([], tf.int64),
    "video/short_side": tf.io.FixedLenFeature([], tf.int64),
    "flow/algorithm": tf.io.FixedLenFeature([], tf.string),
    "flow/quantization": tf.io.FixedLenFeature([], tf.string),
    "flow/bound": tf.io.FixedLenFeature([], tf.float32),
    "flow/jpeg_quality": tf.io.FixedLenFeature([], tf.int64),
    "flow/has_backward": tf.io.FixedLenFeature([], tf.int64),
    "flow/range": tf.io.VarLenFeature(tf.float32),
    "flow_backward/range": tf.io.VarLenFeature(tf.float32),
}
SEQUENCE_FEATURES = {
    "image/encoded": tf.io.FixedLenSequenceFeature([], tf.string),
    "flow/x/encoded": tf.io.FixedLenSequenceFeature([], tf.string),
    "flow/y/encoded": tf.io.FixedLenSequenceFeature([], tf.string),
    "flow_backward/x/encoded": tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True),
    "flow_backward/y/encoded": tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True),
}


class RecordsError(ValueError):
  """A records directory, manifest or video id is missing or inconsistent."""


def _bytes(*values):
  return tf.train.Feature(bytes_list=tf.train.BytesList(
      value=[v.encode("utf-8") if isinstance(v, str) else v for v in values]))


def _ints(*values):
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def _floats(values):
  return tf.train.Feature(float_list=tf.train.FloatList(value=np.ravel(values).tolist()))


def _feature_list(values):
  return tf.train.FeatureList(feature=[_bytes(v) for v in values])


def to_sequence_example(entry, dataset, encoded, config):
  """Builds the record of one video.

  Args:
    entry: its `flow_tools.datasets.VideoEntry`.
    dataset: dataset name stored in `clip/dataset`.
    encoded: its `flow_tools.encode.EncodedVideo`.
    config: the `flow_tools.encode.ExtractionConfig` it was made with.
  Returns:
    A `tf.train.SequenceExample`.
  """
  context = {
      "clip/media_id": _bytes(entry.video_id),
      "clip/label/index": _ints(entry.label),
      "clip/label/string": _bytes(entry.class_name),
      "clip/dataset": _bytes(dataset),
      "clip/split_membership": _ints(*entry.splits),
      "clip/frame_count": _ints(encoded.num_frames),
      "clip/flow_count": _ints(encoded.num_frames - 1),
      "image/height": _ints(encoded.height),
      "image/width": _ints(encoded.width),
      "image/format": _bytes("jpeg"),
      "image/jpeg_quality": _ints(config.rgb_jpeg_quality),
      "video/short_side": _ints(config.short_side),
      "flow/algorithm": _bytes(config.algorithm),
      "flow/quantization": _bytes(config.quantization),
      "flow/bound": _floats([config.bound]),
      "flow/jpeg_quality": _ints(config.jpeg_quality),
      "flow/has_backward": _ints(encoded.backward is not None),
  }
  lists = {"image/encoded": _feature_list(encoded.frames)}
  for kind, flow in zip(FLOW_KINDS, (encoded.forward, encoded.backward)):
    if flow is not None:
      context[f"{kind}/range"] = _floats(flow.ranges)
      lists[f"{kind}/x/encoded"] = _feature_list(flow.x)
      lists[f"{kind}/y/encoded"] = _feature_list(flow.y)
  return tf.train.SequenceExample(
      context=tf.train.Features(feature=context),
      feature_lists=tf.train.FeatureLists(feature_list=lists))


def parse(serialized, sequence_keys=None):
  """Parses one serialized record into (context, sequences) dicts of tensors.

  `sequence_keys` limits the feature lists parsed (default: all), so a reader that
  needs only flow does not copy the RGB frames.
  """
  features = SEQUENCE_FEATURES if sequence_keys is None else {
      k: SEQUENCE_FEATURES[k] for k in sequence_keys}
  context, sequences = tf.io.parse_single_sequence_example(serialized, CONTEXT_FEATURES, features)
  for key in ("clip/split_membership", "flow/range", "flow_backward/range"):
    context[key] = tf.sparse.to_dense(context[key])
  return context, sequences


def write_atomically(path, write):
  """Calls `write(tmp_path)`, then renames tmp to `path`: readers never see a partial file."""
  # Unique per writer: retried or speculative Beam workers may write the same path at once.
  tmp = f"{path}.tmp-{uuid.uuid4().hex}"
  try:
    write(tmp)
    storage.replace(tmp, path)
  finally:
    if storage.exists(tmp):
      storage.remove(tmp)


def write_json(path, value):
  """Writes `value` as JSON (keys sorted: the same bytes on every run), atomically."""
  text = json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False) + "\n"

  def write(tmp):
    with storage.open_file(tmp, "wb") as f:
      f.write(text.encode("utf-8"))
  write_atomically(path, write)


def read_json(path):
  with storage.open_file(path) as f:
    return json.loads(f.read().decode("utf-8"))


def read_manifest(records_dir):
  """The manifest of a finished records directory, as a dict."""
  path = os.path.join(records_dir, MANIFEST)
  if not storage.isfile(path):
    raise RecordsError(f"no {MANIFEST} in {records_dir}: not a finished records directory "
                       "(run python -m flow_tools.extract)")
  manifest = read_json(path)
  if manifest.get("format") != FORMAT:
    raise RecordsError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT!r}")
  return manifest


@dataclasses.dataclass
class LoadedVideo:
  """A decoded record: what the networks see, in numpy."""
  video_id: str
  label: int
  class_name: str
  dataset: str
  frames: np.ndarray          # T x H x W x 3 uint8 RGB
  flow: np.ndarray            # (T - 1) x H x W x 2 float32, pixels, (dx, dy)
  backward_flow: np.ndarray   # (T - 1) x H x W x 2 float32, or None
  metadata: dict              # every other context field, as Python values


def _decode_flow(sequences, context, kind):
  ranges = context[f"{kind}/range"].numpy().reshape(-1, 4)
  components = []
  for axis, (lo, hi) in zip("xy", ((0, 1), (2, 3))):
    q = np.stack([tf.io.decode_jpeg(b, channels=1).numpy()[..., 0]
                  for b in sequences[f"{kind}/{axis}/encoded"].numpy()])
    components.append(quantize.dequantize(q, ranges[:, lo], ranges[:, hi]))
  return np.stack(components, axis=-1)


def _python(value):
  value = value.numpy()
  if isinstance(value, bytes):
    return value.decode("utf-8")
  return value.tolist() if isinstance(value, np.ndarray) else value.item()


def decode(serialized):
  """A serialized record -> `LoadedVideo`, decoded as the input pipelines decode it."""
  context, sequences = parse(serialized)
  frames = np.stack([tf.io.decode_jpeg(b, channels=3).numpy()
                     for b in sequences["image/encoded"].numpy()])
  has_backward = bool(context["flow/has_backward"].numpy())
  return LoadedVideo(
      video_id=_python(context["clip/media_id"]),
      label=int(context["clip/label/index"].numpy()),
      class_name=_python(context["clip/label/string"]),
      dataset=_python(context["clip/dataset"]),
      frames=frames,
      flow=_decode_flow(sequences, context, "flow"),
      backward_flow=_decode_flow(sequences, context, "flow_backward") if has_backward else None,
      metadata={k: _python(v) for k, v in context.items()})


def load_video(records_dir, video_id):
  """Finds `video_id` through the manifest and returns its `LoadedVideo`."""
  manifest = read_manifest(records_dir)
  info = manifest["videos"].get(video_id)
  if info is None:
    reason = manifest["failures"].get(video_id, {}).get("reason")
    raise RecordsError(f"video {video_id!r} is not in {records_dir}"
                       + (f" (extraction failed: {reason})" if reason else ""))
  shard = os.path.join(records_dir, info["shard"])
  for serialized in tf.data.TFRecordDataset(shard):
    context, _ = tf.io.parse_single_sequence_example(
        serialized, {"clip/media_id": CONTEXT_FEATURES["clip/media_id"]})
    if context["clip/media_id"].numpy().decode("utf-8") == video_id:
      return decode(serialized)
  raise RecordsError(f"{shard} does not hold video {video_id!r} that {MANIFEST} places there")
