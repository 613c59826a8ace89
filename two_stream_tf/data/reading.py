"""Which steps of which video files a sample reads, and reading only those.

The selected videos come from the manifests (loaded once), as a dataset of small
dicts: id, head, label, frame and field counts, frame size, the paths of the video's
files and where each file's record offsets start in the table's offsets (the files'
indexes, `flow_tools.records.read_index`, loaded once). A sample reads its steps as one
byte range of each file it uses, through a TFRecord reader started at the range's first
byte and buffered to its length (records keep their checksums): the other steps, the other
modality and the other videos are never read.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from flow_tools import process_memory
from flow_tools import record_parsing
from flow_tools import records
from flow_tools import tfrecord_format
from two_stream_tf.data import stacking


_MEMORY_READS = 4  # files read at once into memory: sequential reads, local or remote


def configure_input_process():
  """Settings of a process that runs these pipelines: freed batch buffers (a batch of
  256 flow stacks is 257 MB) stay in the process for reuse rather than being returned to
  the system and faulted back in page by page. Up to 1 GB of freed memory is kept."""
  process_memory.keep_freed_memory(*process_memory.INPUT_PIPELINE)


def _modality_files(config):
  if config.stream == "spatial":
    return (records.RGB,)
  return (stacking.FORWARD,) + ((stacking.BACKWARD,) if config.stacking == "bidirectional"
                                else ())


def holds_crop(info, crop_size):
  """Whether the frames of a manifest entry `info` are large enough for a `crop_size` crop."""
  return min(info["height"], info["width"]) >= crop_size


@dataclasses.dataclass(frozen=True)
class VideoTable:
  """The selected videos as columns, and their files' record offsets.

  Attributes:
    columns: {column: numpy array, one row per video}: 'video_id', 'head', 'label',
      'frames', 'fields', 'height', 'width', one path column per file read ('rgb', 'flow',
      'flow_backward') and per file '<modality>_base', where its offsets start in
      `offsets[modality]`.
    offsets: {modality: int64 numpy array}: every file's index (the byte offsets of its
      records, then its size), file after file in row order.
  """
  columns: dict
  offsets: dict


def video_table(sources, selections, config):
  """The selected videos, source by source in file-number order, as a `VideoTable`.

  Args:
    sources: `selection.RecordsSource`s (`selection.open_sources`).
    selections: per source, {video id: head label} of the videos to read.
    config: the `InputConfig`: which files are read, and the crop every frame must hold.
  Raises:
    ValueError: naming a video whose frames are smaller than the crop, or records
      without the backward flow that bidirectional stacking needs.
    flow_tools.records.RecordsError: a file's index is missing or not that file's.
  """
  files = _modality_files(config)
  rows, indexes = [], {m: [] for m in files}
  for source, selected in zip(sources, selections):
    missing = [m for m in files if m not in source.manifest["modalities"]]
    if missing:
      raise ValueError(f"{source.records_dir}: {config.stacking} stacking needs backward flow; "
                       "extract with --backward")
    videos = source.manifest["videos"]
    for video_id in sorted(selected, key=lambda v: videos[v]["number"]):
      info = videos[video_id]
      if not holds_crop(info, config.crop_size):
        raise ValueError(f"{source.records_dir}: video {video_id!r} has {info['height']}x"
                         f"{info['width']} frames, smaller than the {config.crop_size} crop")
      paths = {m: records.video_path(source.records_dir, info, m) for m in files}
      for m in files:
        steps = info["frames"] if m == records.RGB else info["flow_pairs"]
        indexes[m].append((paths[m], records.HEADER_RECORDS + steps,
                           info.get("bytes", {}).get(m)))
      rows.append({"video_id": video_id, "head": source.head, "label": selected[video_id],
                   "frames": info["frames"], "fields": info["flow_pairs"],
                   "height": info["height"], "width": info["width"], **paths})
  integers = ("head", "label", "frames", "fields", "height", "width")
  columns = {k: np.array([r[k] for r in rows], np.int32 if k in integers else object)
             for k in rows[0]}
  offsets = {}
  for m in files:
    found = records.read_indexes(indexes[m])
    columns[f"{m}_base"] = np.cumsum([0] + [len(o) for o in found[:-1]]).astype(np.int64)
    columns[f"{m}_step"] = np.cumsum(
        [0] + [len(o) - 1 - records.HEADER_RECORDS for o in found[:-1]]).astype(np.int64)
    offsets[m] = np.concatenate(found)
  return VideoTable(columns, offsets)


def selected_videos(table, endless=False, seed=None):
  """The videos of a `video_table` as a dataset of dicts (its columns).

  Args:
    table: `video_table(...)`.
    endless: shuffle (anew each pass) and repeat forever (training); otherwise every
      video once, in table order (evaluation).
    seed: the shuffle's seed (None: from TensorFlow's global seed).
  """
  videos = tf.data.Dataset.from_tensor_slices(
      {k: tf.constant(v.tolist() if v.dtype == object else v)
       for k, v in table.columns.items()})
  if endless:
    videos = videos.shuffle(len(table.columns["video_id"]), seed=seed,
                            reshuffle_each_iteration=True).repeat()
  return videos


class _Reader:
  """What a sample decodes, from the serialized step records `steps` gives."""

  def steps(self, video, modality, indices):
    """[n] serialized step records of `video`'s `modality` file, steps `indices` ([n])."""
    raise NotImplementedError

  def rgb_jpeg(self, video, frame):
    """The JPEG of one frame of `video`, as a [1] string tensor."""
    serialized = self.steps(video, records.RGB, tf.reshape(frame, [1]))
    return tf.io.parse_example(serialized, record_parsing.RGB_STEP_FEATURES)["image/encoded"]

  def flow_jpegs(self, video, sources):
    """JPEGs and quantisation ranges of a stack's fields, in channel order (x, y per field).

    Args:
      video: an element of `selected_videos`.
      sources: `stacking.field_sources(...)`: L (file, field index) in channel order.
    Returns:
      (jpegs [2L] string, lo [2L] float32, hi [2L] float32).
    """
    jpegs, lo, hi = [], [], []
    for kind in dict.fromkeys(kind for kind, _ in sources):
      positions = [p for p, (k, _) in enumerate(sources) if k == kind]
      steps = tf.io.parse_example(
          self.steps(video, kind, tf.stack([sources[p][1] for p in positions])),
          record_parsing.FLOW_STEP_FEATURES)
      jpegs.append((positions, steps["flow/x/encoded"], steps["flow/y/encoded"]))
      ranges = steps["flow/range"]
      lo.append((positions, ranges[:, 0], ranges[:, 2]))
      hi.append((positions, ranges[:, 1], ranges[:, 3]))
    return tuple(_interleaved(parts, len(sources)) for parts in (jpegs, lo, hi))

  def stack_jpegs(self, video, config, position):
    """What one sample decodes: {'jpegs'} of frame `position` (spatial), or {'jpegs',
    'lo', 'hi'} of the stack starting at field `position` (temporal)."""
    if config.stream == "spatial":
      return {"jpegs": self.rgb_jpeg(video, position)}
    sources = stacking.field_sources(config.stacking, config.stack_length, position,
                                     video["fields"])
    jpegs, lo, hi = self.flow_jpegs(video, sources)
    return {"jpegs": jpegs, "lo": lo, "hi": hi}


class DiskReader(_Reader):
  """Reads a sample's steps from a `VideoTable`'s files through their indexes: per file the
  one byte range from its first step to its last, by a TFRecord reader started there and
  buffered to the range (checksums checked)."""

  def __init__(self, table):
    self._offsets = {m: tf.constant(o) for m, o in table.offsets.items()}

  def steps(self, video, modality, indices):
    first = tf.cast(tf.reduce_min(indices), tf.int64)
    count = tf.cast(tf.reduce_max(indices), tf.int64) - first + 1
    at = video[f"{modality}_base"] + records.HEADER_RECORDS + first
    start = tf.gather(self._offsets[modality], at)
    end = tf.gather(self._offsets[modality], at + count)
    run = tf.data.experimental.from_variant(
        tf.raw_ops.TFRecordDatasetV2(filenames=tf.reshape(video[modality], [1]),
                                     compression_type="", buffer_size=end - start,
                                     byte_offsets=tf.reshape(start, [1])),
        tf.TensorSpec([], tf.string))
    # At most as many records as indices: a short video's stack repeats its fields.
    serialized = run.take(count).batch(int(indices.shape[0])).get_single_element()
    return tf.gather(serialized, tf.cast(indices, tf.int64) - first)


class MemoryReader(_Reader):
  """A `VideoTable`'s step records held in memory: `steps` is a gather."""

  def __init__(self, steps):
    """`steps`: {modality: [N] string tensor}, `memory_steps` of each file read."""
    self._steps = steps

  def steps(self, video, modality, indices):
    return tf.gather(self._steps[modality],
                     video[f"{modality}_step"] + tf.cast(indices, tf.int64))


def memory_steps(table, modality):
  """Every step record of the table's `modality` files as one [N] string tensor, in row
  order: each file read whole (sequentially, local or remote), split at its index, its
  records copied into the result as it goes (memory stays near the records' bytes).

  Raises (when run):
    tf.errors.InvalidArgumentError: a file is not as long as its index says, or a record's
      length field is not the index's (`record_parsing.naming_damaged_files` names it).
  """
  offsets = table.offsets[modality]
  ends = table.columns[f"{modality}_base"][1:].tolist() + [len(offsets)]
  starts, lengths, limits = [], [], []
  for base, end in zip(table.columns[f"{modality}_base"], ends):
    at = offsets[base + records.HEADER_RECORDS:end]  # each step's start, then the size
    starts.append(at[:-1])
    lengths.append(np.diff(at) - tfrecord_format.FRAMING)
    limits.append(len(starts[-1]))
  rows = np.cumsum([0] + limits)
  starts = tf.constant(np.concatenate(starts))
  lengths = tf.constant(np.concatenate(lengths))

  def split(path, first, last, size):
    content = tf.io.read_file(path)
    at, length = starts[first:last], lengths[first:last]
    eight = tf.fill(tf.shape(at), tf.constant(8, tf.int64))
    length_fields = tf.io.decode_raw(tf.strings.substr(content, at, eight), tf.int64,
                                     little_endian=True)[:, 0]
    checks = [tf.debugging.assert_equal(tf.cast(tf.strings.length(content), tf.int64), size,
                                        message="a records file is not the size its index says"),
              tf.debugging.assert_equal(length_fields, length,
                                        message="a record's length is not its index's")]
    with tf.control_dependencies(checks):
      return tf.strings.substr(content, at + tfrecord_format.LENGTH_BYTES, length)
  sizes = [offsets[end - 1] for end in ends]
  files = tf.data.Dataset.from_tensor_slices(
      (table.columns[modality].tolist(), rows[:-1], rows[1:], np.array(sizes, np.int64)))
  return (files.map(split, num_parallel_calls=_MEMORY_READS, deterministic=True)
          .unbatch().batch(int(rows[-1])).get_single_element())


def _interleaved(parts, fields):
  """[2 * fields] in channel order (x, y of each field) of per-file (field positions,
  x values, y values)."""
  if len(parts) == 1:
    _, x, y = parts[0]
    return tf.reshape(tf.stack([x, y], axis=1), [2 * fields])
  order = np.argsort(np.concatenate([positions for positions, _, _ in parts]))
  x = tf.gather(tf.concat([p[1] for p in parts], 0), order)
  y = tf.gather(tf.concat([p[2] for p in parts], 0), order)
  return tf.reshape(tf.stack([x, y], axis=1), [2 * fields])


def head_targets(head, label, head_names):
  """Per head: the label (0 for other datasets' samples) and a 0/1 sample weight."""
  label = tf.cast(label, tf.int32)
  labels, weights = {}, {}
  for index, name in enumerate(head_names):
    mine = tf.equal(head, index)
    labels[name] = tf.where(mine, label, 0)
    weights[name] = tf.cast(mine, tf.float32)
  return labels, weights
