"""THE record schema shared by flow_tools (writer) and two_stream_tf (reader), version 2.

The unit of reading is a time step: every video has one TFRecord file per modality,
and in it one small `tf.train.Example` per time step; beside them, the video's index holds
every record's byte offset, so a reader fetches the steps a sample uses with one ranged
read and never the rest of the video, the other modality or other videos.

Pure Python (no TensorFlow: extraction workers write the files,
`flow_tools.records.tfrecord_format`); TensorFlow's side of the schema, the parsing specs and
step readers, is `flow_tools.records.record_parsing`.

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
                                      if extracted, 'flow_backward'; at most 4000 files a folder
  videos/<n // 1000>/<n>.index        the video's index, written after its files (so a
                                      video whose index exists is whole): INDEX_MAGIC, a
                                      little-endian uint32 byte count and that many bytes
                                      of JSON {'records': [[modality, records], ...],
                                      'source': the source's fingerprint
                                      (flow_tools.extraction.sources) or null}, then per modality in
                                      that order little-endian uint64 byte offsets of each
                                      record's start and, last, the file's size (for
                                      records made before, python -m
                                      flow_tools.index_records --records_dir=DIR)

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
in float32 (flow_tools.extraction.quantization.dequantize); a horizontal flip of a stored field is
q -> 255 - q with (lo, hi) -> (-hi, -lo), for either scheme.
"""

import concurrent.futures
import json
import os
import struct

import numpy as np

from flow_tools.common import storage
from flow_tools.records import tfrecord_format

MANIFEST = "manifest.json"
FORMAT = "two_stream_tf.records/2"
RGB, FLOW, FLOW_BACKWARD = "rgb", "flow", "flow_backward"
FLOW_KINDS = (FLOW, FLOW_BACKWARD)
HEADER_RECORDS = 1  # records before a file's first step
_STATS = 16  # threads asking a filesystem for file sizes: an object store takes tens of ms each
VIDEOS_DIR = "videos"
VIDEOS_PER_FOLDER = 1000
INDEX_MAGIC = b"tsindex2"  # an index file's first 8 bytes: its format version
_INDEX_HEAD = struct.Struct("<8sI")  # the magic and the byte count of the JSON after it

# Features: name -> (kind, shape): 'bytes', 'int64' or 'float'; () one value, (n,) n
# values, None any number (flow_tools.records.record_parsing turns these into parsing specs).
HEADER_FEATURES = {
    "record/format": ("bytes", ()),
    "record/modality": ("bytes", ()),
    "clip/media_id": ("bytes", ()),
    "clip/label/index": ("int64", ()),
    "clip/label/string": ("bytes", ()),
    "clip/dataset": ("bytes", ()),
    "clip/split_membership": ("int64", None),
    "clip/frame_count": ("int64", ()),
    "clip/flow_count": ("int64", ()),
    "image/height": ("int64", ()),
    "image/width": ("int64", ()),
    "image/jpeg_quality": ("int64", ()),
    "video/short_side": ("int64", ()),
    "flow/algorithm": ("bytes", ()),
    "flow/quantization": ("bytes", ()),
    "flow/bound": ("float", ()),
    "flow/jpeg_quality": ("int64", ()),
    "flow/has_backward": ("int64", ()),
}
RGB_STEP_FEATURES = {"image/encoded": ("bytes", ())}
FLOW_STEP_FEATURES = {
    "flow/x/encoded": ("bytes", ()),
    "flow/y/encoded": ("bytes", ()),
    "flow/range": ("float", (4,)),
}


class RecordsError(ValueError):
  """A records directory, manifest or video id is missing or inconsistent."""


def modalities(has_backward):
  """The modalities a video's files hold, in the order they are written."""
  return (RGB, FLOW) + ((FLOW_BACKWARD,) if has_backward else ())


def video_folder(number):
  """The folder, relative to the records directory, of video number `number`."""
  return f"{VIDEOS_DIR}/{number // VIDEOS_PER_FOLDER:05d}"


def video_file(number, modality):
  """The file, relative to the records directory, of one modality of video `number`."""
  return f"{video_folder(number)}/{number:07d}.{modality}.tfrecord"


def video_path(records_dir, info, modality):
  """The path of one modality's file of the video whose manifest entry is `info`."""
  return os.path.join(records_dir, video_file(info["number"], modality))


def index_file(number):
  """The index file, relative to the records directory, of video `number`."""
  return f"{video_folder(number)}/{number:07d}.index"


def index_path(records_dir, info):
  """The path of the index of the video whose manifest entry is `info`."""
  return os.path.join(records_dir, index_file(info["number"]))


def video_paths(records_dir, info, video_modalities):
  """{modality: path} of the files of `video_modalities` of a video's manifest entry."""
  return {m: video_path(records_dir, info, m) for m in video_modalities}


_bytes = tfrecord_format.bytes_feature
_ints = tfrecord_format.int64_feature


def _floats(values):
  return tfrecord_format.float_feature(np.ravel(values).astype(np.float32).tolist())


_example = tfrecord_format.encode_example


def video_records(entry, dataset, encoded, config):
  """The serialized records of one video's files.

  Args:
    entry: its `flow_tools.datasets.VideoEntry`.
    dataset: dataset name stored in `clip/dataset`.
    encoded: its `flow_tools.extraction.encoding.EncodedVideo`.
    config: the `flow_tools.extraction.encoding.ExtractionConfig` it was made with.
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


def encode_index(offsets, source):
  """An index's bytes, of {modality: its file's offsets} (in file order) and the video's
  source fingerprint."""
  meta = json.dumps({"records": [[m, len(o) - 1] for m, o in offsets.items()],
                     "source": source}, sort_keys=True).encode("utf-8")
  return (_INDEX_HEAD.pack(INDEX_MAGIC, len(meta)) + meta
          + b"".join(np.asarray(o, "<u8").tobytes() for o in offsets.values()))


def _decode_index(data):
  """({modality: int64 offsets}, source) of an index's bytes; ValueError if malformed."""
  magic, size = _INDEX_HEAD.unpack_from(data)
  if magic != INDEX_MAGIC:
    raise ValueError(f"starts with {magic!r}, not {INDEX_MAGIC!r}")
  meta = json.loads(data[_INDEX_HEAD.size:_INDEX_HEAD.size + size].decode("utf-8"))
  position, offsets = _INDEX_HEAD.size + size, {}
  for modality, count in meta["records"]:
    end = position + 8 * (count + 1)
    if end > len(data):
      raise ValueError("cut short")
    offsets[modality] = np.frombuffer(data[position:end], "<u8").astype(np.int64)
    position = end
  if position != len(data):
    raise ValueError("holds bytes after its offsets")
  return offsets, meta["source"]


def write_video_files(paths, index, serialized, source, tmp_dir=None):
  """Writes a video's TFRecord files ({modality: path} of {modality: records}), then its
  index at `index`, each atomically (`storage.write_atomically`; `tmp_dir`: where each is
  written aside); returns {modality: file size}."""
  offsets = {}
  for modality, path in paths.items():
    def write(tmp, modality=modality):
      with storage.open_file(tmp, "wb") as f:
        offsets[modality] = tfrecord_format.write_records(f, serialized[modality])
    storage.write_atomically(path, write, tmp_dir)
  storage.write_bytes(index, encode_index(offsets, source), tmp_dir)
  return {m: o[-1] for m, o in offsets.items()}


def scan_offsets(path):
  """The index of the TFRecord file `path` (its records' start offsets and its size),
  found by walking its length fields.

  Raises:
    RecordsError: a length field fails its checksum, or a record runs past the end.
  """
  size = storage.stat(path)[0]
  offsets = [0]
  with storage.open_file(path) as f:
    while offsets[-1] < size:
      f.seek(offsets[-1])
      head = f.read(tfrecord_format.LENGTH_BYTES)
      length = (tfrecord_format.read_length(head)
                if len(head) == tfrecord_format.LENGTH_BYTES else None)
      end = None if length is None else offsets[-1] + length + tfrecord_format.FRAMING
      if end is None or end > size:
        raise RecordsError(f"{path}: the record at byte {offsets[-1]} is damaged or cut "
                           "short: copy the records again, or extract into a new --output_dir")
      offsets.append(end)
  return offsets


def write_missing_index(paths, index, source):
  """Writes the index at `index` of the video whose files are `paths` ({modality: path})
  and whose source's fingerprint is `source`, if it has none; returns whether it did."""
  if storage.exists(index):
    return False
  storage.write_bytes(index, encode_index({m: scan_offsets(p) for m, p in paths.items()},
                                          source))
  return True


def index_directory(records_dir, num_threads=_STATS):
  """Writes the missing indexes of a finished records directory's videos (idempotent: the
  ones there are kept); returns (indexes written, indexes kept).

  Raises:
    RecordsError: a file is missing, of another size than the manifest says, or damaged
      (named; the indexes written before it are kept).
    storage.OutputError: the directory cannot be written.
  """
  manifest = read_manifest(records_dir)
  damaged = size_damage(records_dir, manifest)
  if damaged:
    raise damage_error(records_dir, damaged, "found before indexing")
  videos = [(video_paths(records_dir, info, manifest["modalities"]),
             index_path(records_dir, info), info.get("source"))
            for info in manifest["videos"].values()]
  records_count = sum(info["frames"] + info["flow_pairs"] * (len(manifest["modalities"]) - 1)
                      for info in manifest["videos"].values())
  storage.check_writable(os.path.join(records_dir, VIDEOS_DIR),
                         needed_bytes=8 * records_count + 1024 * len(videos))
  with concurrent.futures.ThreadPoolExecutor(num_threads) as pool:
    written = sum(pool.map(lambda video: write_missing_index(*video), videos))
  return written, len(videos) - written


def _read_index_file(path):
  """(offsets, source) of the index at `path`, or a RecordsError naming the fix."""
  if not storage.exists(path):
    raise RecordsError(f"{path} is missing: these records were made before indexes; run "
                       "python -m flow_tools.index_records "
                       f"--records_dir={_records_dir_of(path)}")
  with storage.open_file(path) as f:
    data = f.read()
  try:
    return _decode_index(data)
  except (ValueError, KeyError, TypeError, struct.error) as error:
    raise RecordsError(f"{path} is not an index of these records ({error}): remove it and "
                       "run python -m flow_tools.index_records "
                       f"--records_dir={_records_dir_of(path)}") from error


def read_index(path, files):
  """The offsets, {modality: int64 [records + 1]}, of the index at `path` (`index_path`).

  Args:
    path: the index's path.
    files: {modality: (records, file size)} it must describe (a size of None: not checked).
  Raises:
    RecordsError: the index is missing (with the command that makes it), or is not that
      of files of these records and sizes.
  """
  offsets, _ = _read_index_file(path)
  for modality, (count, file_size) in files.items():
    found = offsets.get(modality)
    if (found is None or len(found) != count + 1 or found[0] != 0
        or (file_size is not None and found[-1] != file_size)
        or np.any(np.diff(found) < tfrecord_format.FRAMING)):
      raise RecordsError(f"{path} is not the index of the {modality} file ({count} records, "
                         f"{file_size} bytes): remove it and run python -m "
                         f"flow_tools.index_records --records_dir={_records_dir_of(path)}")
  return {m: offsets[m] for m in files}


def read_indexes(paths_files, num_threads=_STATS):
  """`read_index` of many (path, files), on `num_threads` threads."""
  with concurrent.futures.ThreadPoolExecutor(num_threads) as pool:
    return list(pool.map(lambda args: read_index(*args), paths_files))


def read_source(path):
  """The source fingerprint the index at `path` records (None: none was taken)."""
  return _read_index_file(path)[1]


def _records_dir_of(path):
  """The records directory of a video's file or index path (videos/<folder>/<file>)."""
  return os.path.dirname(os.path.dirname(os.path.dirname(path))) or "."


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


def _corrupted_at(path, offset):
  """Whether the TFRecord file `path` fails a checksum in the record holding byte `offset`
  or in a length field before it (found by walking the length fields from the start)."""
  with storage.open_file(path) as f:
    position = 0
    while position <= offset:
      f.seek(position)
      head = f.read(tfrecord_format.LENGTH_BYTES)
      if len(head) < tfrecord_format.LENGTH_BYTES:
        return False
      length = tfrecord_format.read_length(head)
      if length is None:
        return True
      end = position + tfrecord_format.FRAMING + length
      if offset < end:  # TensorFlow points at the record's start or at its data
        data, data_crc = f.read(length), f.read(4)
        return (len(data_crc) < 4
                or tfrecord_format.masked_crc(data) != struct.unpack("<I", data_crc)[0])
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


def parse_header(serialized):
  """A file's header record -> {feature: Python value} (a str for bytes, a list for
  features of any length).

  Raises:
    RecordsError: a feature of the schema is missing or of another kind or length.
  """
  features = tfrecord_format.decode_example(serialized)
  header = {}
  for name, (kind, shape) in HEADER_FEATURES.items():
    found_kind, values = features.get(name, (None, []))
    if found_kind != kind or (shape is not None and len(values) != 1):
      raise RecordsError(f"header feature {name!r}: expected {kind} {shape}, found "
                         f"{found_kind} of {len(values)} values")
    if kind == "bytes":
      values = [v.decode("utf-8") for v in values]
    header[name] = values if shape is None else values[0]
  return header


def read_header(path):
  """The header of one video file, read as its first record's bytes only."""
  with storage.open_file(path) as f:
    head = f.read(tfrecord_format.LENGTH_BYTES)
    if len(head) < tfrecord_format.LENGTH_BYTES:
      raise RecordsError(f"{path}: empty or truncated record file")
    length = tfrecord_format.read_length(head)
    if length is None:
      raise RecordsError(f"{path}: the header record's length fails its checksum")
    serialized = f.read(length)
  if len(serialized) < length:
    raise RecordsError(f"{path}: truncated header record")
  return parse_header(serialized)
