"""TensorFlow's side of the record schema (`flow_tools.records`): parsing specs, reading a
video's steps, and naming the damaged file behind a TensorFlow read error."""

import contextlib
import dataclasses
import re

import numpy as np
import tensorflow as tf

from flow_tools import records
from flow_tools.extraction import quantization


def parsing_spec(features):
  """The `tf.io.parse_example` spec of a schema's {name: (kind, shape)}
  (`records.HEADER_FEATURES`, `RGB_STEP_FEATURES`, `FLOW_STEP_FEATURES`)."""
  dtypes = {"bytes": tf.string, "int64": tf.int64, "float": tf.float32}
  return {name: tf.io.VarLenFeature(dtypes[kind]) if shape is None
          else tf.io.FixedLenFeature(list(shape), dtypes[kind])
          for name, (kind, shape) in features.items()}


HEADER_FEATURES = parsing_spec(records.HEADER_FEATURES)
RGB_STEP_FEATURES = parsing_spec(records.RGB_STEP_FEATURES)
FLOW_STEP_FEATURES = parsing_spec(records.FLOW_STEP_FEATURES)


def step_features(modality):
  """The parsing spec of one step record of `modality`."""
  return RGB_STEP_FEATURES if modality == records.RGB else FLOW_STEP_FEATURES


@contextlib.contextmanager
def naming_damaged_files(records_dirs):
  """Turns a TensorFlow error met while reading `records_dirs` into a one-line RecordsError
  naming the file and video that are damaged (TensorFlow's own names none: 'truncated
  record at 15382', 'corrupted record at 12018'); an error with no damaged file behind it
  is raised as it is."""
  try:
    yield
  except tf.errors.OpError as error:
    # TensorFlow's line, without the op names around it.
    said = re.sub(r"\{\{[^}]*\}\}|\[Op:[^]]*\].*", "", error.message).strip().splitlines()
    cause = f"TensorFlow: {said[0] if said else type(error).__name__}"
    corrupted_at = re.search(r"corrupted record at (\d+)", error.message)
    for records_dir in records_dirs:
      manifest = records.read_manifest(records_dir)
      damaged = records.size_damage(records_dir, manifest)
      if not damaged and corrupted_at:
        damaged = [(video, path, "fails its checksum")
                   for video, path in records.corrupted_files(
                       records_dir, manifest, int(corrupted_at.group(1)))]
      if damaged:
        raise records.damage_error(records_dir, damaged, cause) from error
    raise


@dataclasses.dataclass
class LoadedVideo:
  """A decoded video: what the networks see, in numpy."""
  video_id: str
  label: int
  class_name: str
  dataset: str
  frames: np.ndarray          # T x H x W x 3 uint8 RGB
  flow: np.ndarray            # (T - 1) x H x W x 2 float32, pixels, (dx, dy)
  backward_flow: np.ndarray   # (T - 1) x H x W x 2 float32, or None
  metadata: dict              # the header's other fields, and flow/range (flattened per field)


def read_steps(path, modality):
  """Every step of one video file, parsed: {feature: tensor with a leading step axis}."""
  serialized = list(tf.data.TFRecordDataset(path).skip(records.HEADER_RECORDS))
  return tf.io.parse_example(tf.stack(serialized), step_features(modality))


def _decode_flow(steps):
  ranges = steps["flow/range"].numpy()
  components = []
  for axis, (lo, hi) in zip("xy", ((0, 1), (2, 3))):
    q = np.stack([tf.io.decode_jpeg(b, channels=1).numpy()[..., 0]
                  for b in steps[f"flow/{axis}/encoded"].numpy()])
    components.append(quantization.dequantize(q, ranges[:, lo], ranges[:, hi]))
  return np.stack(components, axis=-1), ranges


def load_video(records_dir, video_id):
  """Finds `video_id` through the manifest and returns its `LoadedVideo`."""
  manifest = records.read_manifest(records_dir)
  info = manifest["videos"].get(video_id)
  if info is None:
    reason = manifest["failures"].get(video_id, {}).get("reason")
    raise records.RecordsError(f"video {video_id!r} is not in {records_dir}"
                               + (f" (extraction failed: {reason})" if reason else ""))
  rgb_path = records.video_path(records_dir, info, records.RGB)
  header = records.read_header(rgb_path)
  if header["clip/media_id"] != video_id:
    raise records.RecordsError(f"{rgb_path} holds video {header['clip/media_id']!r}, not "
                               f"{video_id!r} as {records.MANIFEST} says")
  rgb = read_steps(rgb_path, records.RGB)
  frames = np.stack([tf.io.decode_jpeg(b, channels=3).numpy()
                     for b in rgb["image/encoded"].numpy()])
  flows = {}
  metadata = {k: v for k, v in header.items() if k != "record/modality"}
  for kind in records.modalities(header["flow/has_backward"])[1:]:
    flows[kind], ranges = _decode_flow(
        read_steps(records.video_path(records_dir, info, kind), kind))
    metadata[f"{kind}/range"] = ranges.ravel().tolist()
  return LoadedVideo(
      video_id=video_id, label=header["clip/label/index"],
      class_name=header["clip/label/string"], dataset=header["clip/dataset"], frames=frames,
      flow=flows[records.FLOW], backward_flow=flows.get(records.FLOW_BACKWARD),
      metadata=metadata)
