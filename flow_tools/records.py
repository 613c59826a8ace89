"""THE record schema shared by flow_tools (writer) and two_stream_tf (reader), version 2.

The unit of reading is a time step: every video has one TFRecord file per modality,
and in it one small `tf.train.Example` per time step, so a reader fetches the steps a
sample uses with `TFRecordDataset(file).skip(HEADER_RECORDS + first).take(n)` (skipping
reads only each record's 12-byte length header) and never the rest of the video, the
other modality or other videos.

A records directory (local or remote, e.g. gs://...):
  manifest.json                       what the readers load once: the dataset, its class
                                      names and splits, the extraction settings, and per
                                      video its file number, label, class name, split
                                      membership, frame and field counts, frame size, the
                                      size of each of its files (`bytes`, so that a file
                                      cut short is found by a stat) and its source file's
                                      size, time and SHA-256
  videos/<n // 1000>/<n>.<modality>.tfrecord
                                      video number n (its position among the sorted video
                                      ids; ids hold '/', '[', '&', spaces...: never a file
                                      name), 5 and 7 digits; modalities 'rgb', 'flow' and,
                                      if extracted, 'flow_backward'; at most 3000 files a folder

Each file is record 0, the header (the video's facts, so that a file describes itself),
then one record per step:
  header   record/format bytes 'two_stream_tf.records/2'   record/modality bytes
           clip/media_id bytes (video id)   clip/label/index int64   clip/label/string bytes
           clip/dataset bytes   clip/split_membership int64[S] (per split 0 unused, 1 train,
           2 test)   clip/frame_count int64 T   clip/flow_count int64 T - 1
           image/height, image/width int64 (flow has the same size)   image/jpeg_quality,
           video/short_side, flow/jpeg_quality, flow/has_backward int64
           flow/algorithm, flow/quantization bytes   flow/bound float
  rgb      T steps:     image/encoded bytes (JPEG RGB frame t)
  flow, flow_backward   T - 1 steps:  flow/x/encoded, flow/y/encoded bytes (JPEG uint8
           components of field t), flow/range float[4] (x_lo, x_hi, y_lo, y_hi)

Forward field t maps frame t to frame t + 1; backward field t maps frame t + 1 to
frame t. Dequantise with `flow = (q - 127.5) * (hi - lo) / 255 + (hi + lo) / 2`
in float32 (flow_tools.quantization.dequantize); a horizontal flip of a stored field is
q -> 255 - q with (lo, hi) -> (-hi, -lo), for either scheme.
"""

import concurrent.futures
import contextlib
import dataclasses
import os
import re
import struct

import google_crc32c
import numpy as np
import tensorflow as tf

from flow_tools import quantization
from flow_tools import storage

MANIFEST = "manifest.json"
FORMAT = "two_stream_tf.records/2"
RGB, FLOW, FLOW_BACKWARD = "rgb", "flow", "flow_backward"
FLOW_KINDS = (FLOW, FLOW_BACKWARD)
HEADER_RECORDS = 1  # records before a file's first step
_RECORD_FRAMING = 16  # a TFRecord's length (8 bytes), the length's CRC and the data's CRC (4 each)
_STATS = 16  # threads asking a filesystem for file sizes: an object store takes tens of ms each
VIDEOS_DIR = "videos"
VIDEOS_PER_FOLDER = 1000

HEADER_FEATURES = {
    "record/format": tf.io.FixedLenFeature([], tf.string),
    "record/modality": tf.io.FixedLenFeature([], tf.string),
    "clip/media_id": tf.io.FixedLenFeature([], tf.string),
    "clip/label/index": tf.io.FixedLenFeature([], tf.int64),
    "clip/label/string": tf.io.FixedLenFeature([], tf.string),
    "clip/dataset": tf.io.FixedLenFeature([], tf.string),
    "clip/split_membership": tf.io.VarLenFeature(tf.int64),
    "clip/frame_count": tf.io.FixedLenFeature([], tf.int64),
    "clip/flow_count": tf.io.FixedLenFeature([], tf.int64),
    "image/height": tf.io.FixedLenFeature([], tf.int64),
    "image/width": tf.io.FixedLenFeature([], tf.int64),
    "image/jpeg_quality": tf.io.FixedLenFeature([], tf.int64),
    "video/short_side": tf.io.FixedLenFeature([], tf.int64),
    "flow/algorithm": tf.io.FixedLenFeature([], tf.string),
    "flow/quantization": tf.io.FixedLenFeature([], tf.string),
    "flow/bound": tf.io.FixedLenFeature([], tf.float32),
    "flow/jpeg_quality": tf.io.FixedLenFeature([], tf.int64),
    "flow/has_backward": tf.io.FixedLenFeature([], tf.int64),
}
RGB_STEP_FEATURES = {"image/encoded": tf.io.FixedLenFeature([], tf.string)}
FLOW_STEP_FEATURES = {
    "flow/x/encoded": tf.io.FixedLenFeature([], tf.string),
    "flow/y/encoded": tf.io.FixedLenFeature([], tf.string),
    "flow/range": tf.io.FixedLenFeature([4], tf.float32),
}


class RecordsError(ValueError):
  """A records directory, manifest or video id is missing or inconsistent."""


def modalities(has_backward):
  """The modalities a video's files hold, in the order they are written."""
  return (RGB, FLOW) + ((FLOW_BACKWARD,) if has_backward else ())


def step_features(modality):
  """The parsing spec of one step record of `modality`."""
  return RGB_STEP_FEATURES if modality == RGB else FLOW_STEP_FEATURES


def video_folder(number):
  """The folder, relative to the records directory, of video number `number`."""
  return f"{VIDEOS_DIR}/{number // VIDEOS_PER_FOLDER:05d}"


def video_file(number, modality):
  """The file, relative to the records directory, of one modality of video `number`."""
  return f"{video_folder(number)}/{number:07d}.{modality}.tfrecord"


def video_path(records_dir, info, modality):
  """The path of one modality's file of the video whose manifest entry is `info`."""
  return os.path.join(records_dir, video_file(info["number"], modality))


def _bytes(*values):
  return tf.train.Feature(bytes_list=tf.train.BytesList(
      value=[v.encode("utf-8") if isinstance(v, str) else v for v in values]))


def _ints(*values):
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def _floats(values):
  return tf.train.Feature(float_list=tf.train.FloatList(value=np.ravel(values).tolist()))


def _example(features):
  return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString(
      deterministic=True)


def video_records(entry, dataset, encoded, config):
  """The serialized records of one video's files.

  Args:
    entry: its `flow_tools.datasets.VideoEntry`.
    dataset: dataset name stored in `clip/dataset`.
    encoded: its `flow_tools.encoding.EncodedVideo`.
    config: the `flow_tools.encoding.ExtractionConfig` it was made with.
  Returns:
    {modality: [header, step 0, step 1, ...]} as bytes (the same bytes on every run).
  """
  header = {
      "record/format": _bytes(FORMAT),
      "clip/media_id": _bytes(entry.video_id),
      "clip/label/index": _ints(entry.label),
      "clip/label/string": _bytes(entry.class_name),
      "clip/dataset": _bytes(dataset),
      "clip/split_membership": _ints(*entry.splits),
      "clip/frame_count": _ints(encoded.num_frames),
      "clip/flow_count": _ints(encoded.num_frames - 1),
      "image/height": _ints(encoded.height),
      "image/width": _ints(encoded.width),
      "image/jpeg_quality": _ints(config.rgb_jpeg_quality),
      "video/short_side": _ints(config.short_side),
      "flow/algorithm": _bytes(config.algorithm),
      "flow/quantization": _bytes(config.quantization),
      "flow/bound": _floats([config.bound]),
      "flow/jpeg_quality": _ints(config.jpeg_quality),
      "flow/has_backward": _ints(encoded.backward is not None),
  }
  files = {RGB: [_example({"image/encoded": _bytes(jpeg)}) for jpeg in encoded.frames]}
  for kind, flow in zip(FLOW_KINDS, (encoded.forward, encoded.backward)):
    if flow is not None:
      files[kind] = [_example({"flow/x/encoded": _bytes(x), "flow/y/encoded": _bytes(y),
                               "flow/range": _floats(r)})
                     for x, y, r in zip(flow.x, flow.y, flow.ranges)]
  return {modality: [_example({**header, "record/modality": _bytes(modality)}), *steps]
          for modality, steps in files.items()}


def file_bytes(serialized):
  """The size of the TFRecord file of `serialized` records."""
  return sum(len(record) + _RECORD_FRAMING for record in serialized)


def write_tfrecords(path, serialized, tmp_dir=None):
  """Writes a TFRecord file of `serialized` records, atomically."""
  def write(tmp):
    try:
      with tf.io.TFRecordWriter(tmp) as writer:
        for record in serialized:
          writer.write(record)
    except tf.errors.OpError as error:  # "<tmp path>; File too large": the cause, as an OSError
      raise OSError(error.message.rsplit(";", 1)[-1].strip()) from error
  storage.write_atomically(path, write, tmp_dir)


def read_manifest(records_dir):
  """The manifest of a finished records directory, as a dict.

  Raises:
    RecordsError: no manifest, an unreadable one, records of another format version
      (named, with how to make these), or a video whose label is not one of its classes.
  """
  path = os.path.join(records_dir, MANIFEST)
  if not storage.isfile(path):
    raise RecordsError(f"no {MANIFEST} in {records_dir}: not a finished records directory "
                       "(run python -m flow_tools.extract)")
  try:
    manifest = storage.read_json(path)
  except ValueError as e:  # cut short or edited: not JSON any more
    raise RecordsError(f"{path} is not readable JSON ({e}): extract the videos again with "
                       "python -m flow_tools.extract into a new --output_dir") from e
  if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
    found = manifest.get("format") if isinstance(manifest, dict) else None
    raise RecordsError(
        f"{records_dir} holds records of format {found!r}; this version "
        f"reads {FORMAT!r}: extract the videos again with python -m flow_tools.extract "
        "into a new --output_dir")
  _check_labels(records_dir, manifest)
  return manifest


def _check_labels(records_dir, manifest):
  """Refuses, naming the video, a label that is not one of the manifest's classes: readers
  would drop such a video from every selection without a word."""
  classes = len(manifest["class_names"])
  for video_id, info in manifest["videos"].items():
    label = info.get("label")
    if not isinstance(label, int) or isinstance(label, bool) or not 0 <= label < classes:
      raise RecordsError(
          f"{records_dir}/{MANIFEST}: video {video_id!r} has label {label!r}, but "
          f"{manifest['dataset']} has {classes} classes (labels 0..{classes - 1}): the "
          "manifest was edited or damaged; extract the videos again into a new --output_dir")


def _expected_files(records_dir, manifest):
  """[(video id, path, bytes the manifest gives)] of every file of the manifest's videos."""
  return [(video_id, video_path(records_dir, info, modality), size)
          for video_id, info in manifest["videos"].items()
          for modality, size in info.get("bytes", {}).items()]


def damaged_files(records_dir, manifest):
  """Video files whose size is not the manifest's (cut short by a full disk or a copy that
  stopped, or missing), as [(video id, path, bytes found or None, bytes expected)]."""
  expected = _expected_files(records_dir, manifest)

  def found(path):
    return storage.stat(path)[0] if storage.exists(path) else None
  with concurrent.futures.ThreadPoolExecutor(_STATS) as pool:
    sizes = list(pool.map(found, [path for _, path, _ in expected]))
  return [(video, path, size, want) for (video, path, want), size in zip(expected, sizes)
          if size != want]


def _masked_crc(data):
  """TFRecord's checksum of `data`: CRC-32C, rotated right by 15 bits plus a constant."""
  crc = google_crc32c.value(data)
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _corrupted_at(path, offset):
  """Whether the TFRecord file `path` fails a checksum in the record holding byte `offset`
  or in a length field before it (found by walking the length fields from the start)."""
  with storage.open_file(path) as f:
    position = 0
    while position <= offset:
      f.seek(position)
      head = f.read(12)
      if len(head) < 12:
        return False
      length, length_crc = struct.unpack("<QI", head)
      if _masked_crc(head[:8]) != length_crc:
        return True
      end = position + _RECORD_FRAMING + length
      if offset < end:  # TensorFlow points at the record's start or at its data
        data, data_crc = f.read(length), f.read(4)
        return len(data_crc) < 4 or _masked_crc(data) != struct.unpack("<I", data_crc)[0]
      position = end
  return False


def corrupted_files(records_dir, manifest, offset):
  """[(video id, path)] of the files whose record at byte `offset` (where TensorFlow's
  'corrupted record at <offset>' points, naming no file) or one before it fails its
  checksum: damage that leaves a file's size as it was (bit flips on a disk or in a copy)."""
  candidates = [(video, path) for video, path, size in _expected_files(records_dir, manifest)
                if size is None or size > offset]
  with concurrent.futures.ThreadPoolExecutor(_STATS) as pool:
    hits = list(pool.map(lambda c: storage.exists(c[1]) and _corrupted_at(c[1], offset),
                         candidates))
  return [c for c, hit in zip(candidates, hits) if hit]


def damage_error(records_dir, damaged, cause):
  """The one-line RecordsError for `damaged` files ([(video id, path, state)]) of
  `records_dir`, with the error that revealed them (`cause`)."""
  video, path, state = damaged[0]
  others = f" (and {len(damaged) - 1} more files)" if len(damaged) > 1 else ""
  return RecordsError(
      f"{path} {state} (video {video!r}){others}: the records in {records_dir} are damaged "
      "(a full disk, a copy cut short or changed on the way); copy them again, or extract "
      f"into a new --output_dir ({cause})")


def size_damage(records_dir, manifest, videos=None):
  """[(video id, path, state)] of the files of `videos` (default: all) that are missing or
  of another size than the manifest's."""
  if videos is not None:
    manifest = dict(manifest, videos={v: manifest["videos"][v] for v in videos})
  return [(video, path, "is missing" if size is None else f"holds {size} of its {want} bytes")
          for video, path, size, want in damaged_files(records_dir, manifest)]


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
      manifest = read_manifest(records_dir)
      damaged = size_damage(records_dir, manifest)
      if not damaged and corrupted_at:
        damaged = [(video, path, "fails its checksum")
                   for video, path in corrupted_files(records_dir, manifest,
                                                      int(corrupted_at.group(1)))]
      if damaged:
        raise damage_error(records_dir, damaged, cause) from error
    raise


def _parsed_value(value):
  """A parsed feature tensor as a Python value."""
  if isinstance(value, tf.SparseTensor):
    value = tf.sparse.to_dense(value)
  value = value.numpy()
  if isinstance(value, bytes):
    return value.decode("utf-8")
  return value.tolist() if isinstance(value, np.ndarray) else value.item()


def parse_header(serialized):
  """A file's header record -> {feature: Python value}."""
  parsed = tf.io.parse_single_example(serialized, HEADER_FEATURES)
  return {k: _parsed_value(v) for k, v in parsed.items()}


def read_header(path):
  """The header of one video file, read as its first record's bytes only."""
  with storage.open_file(path) as f:
    length_bytes = f.read(8)
    if len(length_bytes) < 8:
      raise RecordsError(f"{path}: empty or truncated record file")
    (length,) = struct.unpack("<Q", length_bytes)
    f.read(4)  # the length's CRC
    serialized = f.read(length)
  if len(serialized) < length:
    raise RecordsError(f"{path}: truncated header record")
  return parse_header(serialized)


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
  serialized = list(tf.data.TFRecordDataset(path).skip(HEADER_RECORDS))
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
  manifest = read_manifest(records_dir)
  info = manifest["videos"].get(video_id)
  if info is None:
    reason = manifest["failures"].get(video_id, {}).get("reason")
    raise RecordsError(f"video {video_id!r} is not in {records_dir}"
                       + (f" (extraction failed: {reason})" if reason else ""))
  header = read_header(video_path(records_dir, info, RGB))
  if header["clip/media_id"] != video_id:
    raise RecordsError(f"{video_path(records_dir, info, RGB)} holds video "
                       f"{header['clip/media_id']!r}, not {video_id!r} as {MANIFEST} says")
  rgb = read_steps(video_path(records_dir, info, RGB), RGB)
  frames = np.stack([tf.io.decode_jpeg(b, channels=3).numpy()
                     for b in rgb["image/encoded"].numpy()])
  flows = {}
  metadata = {k: v for k, v in header.items() if k != "record/modality"}
  for kind in modalities(header["flow/has_backward"])[1:]:
    flows[kind], ranges = _decode_flow(read_steps(video_path(records_dir, info, kind), kind))
    metadata[f"{kind}/range"] = ranges.ravel().tolist()
  return LoadedVideo(
      video_id=video_id, label=header["clip/label/index"],
      class_name=header["clip/label/string"], dataset=header["clip/dataset"], frames=frames,
      flow=flows[FLOW], backward_flow=flows.get(FLOW_BACKWARD), metadata=metadata)
