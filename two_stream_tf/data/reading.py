"""Which steps of which video files a sample reads, and reading only those.

The selected videos come from the manifests (loaded once), as a dataset of small
dicts: id, head, label, frame and field counts, frame size, and per file its path, size
and where its steps sit. A sample's steps come from one of two readers, which give the
same bytes (`with_reader` chooses):
  * memory: every step record of the selected files, read whole once where the dataset
    runs (a few files at once, sequentially: local disks and object stores alike), held
    as one string tensor per modality; a sample's read is a gather;
  * disk: per file the sample uses, one byte range (its first step to its last, found in
    the video's index, `flow_tools.records.read_index`) read by a TFRecord reader started
    there and buffered to the range.
Both check the records' checksums; the other steps, the other modality and the other
videos are never read by a sample.
"""

import os

from absl import logging
import numpy as np
import tensorflow as tf

from flow_tools import records
from flow_tools.common import process_memory
from flow_tools.common import storage
from flow_tools.records import record_parsing
from two_stream_tf import streams
from two_stream_tf.data import stacking

_MEMORY_READS = 4  # files read at once into memory: sequential reads, local or remote
_FILE_BUFFER = 1 << 20  # bytes a whole-file read asks for at a time
# With 'auto', the share of the available memory the records may take: the rest is for the
# batches in flight, the model and the other processes.
MEMORY_SHARE = 0.5


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


def video_table(sources, selections, config):
  """The selected videos as columns, source by source in file-number order.

  Args:
    sources: `selection.RecordsSource`s (`selection.open_sources`).
    selections: per source, {video id: head label} of the videos to read.
    config: the `InputConfig`: which files are read, and the crop every frame must hold.
  Returns:
    {column: numpy array, one row per video}: 'video_id', 'index' (its index file's path),
    'head', 'label', 'frames',
    'fields', 'height', 'width', and per file read ('rgb', 'flow', 'flow_backward') its
    path, '<modality>_bytes' (its size), '<modality>_step' (how many steps the files before
    it hold: where its steps start in `memory_steps`) and '<modality>_base' (where its
    index starts in `DiskReader`'s offsets: each index holds its records' starts and the
    file's size).
  Raises:
    ValueError: naming a video whose frames are smaller than the crop, or records
      without the backward flow that bidirectional stacking needs.
  """
  files = _modality_files(config)
  rows = []
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
      rows.append({"video_id": video_id, "index": records.index_path(source.records_dir, info),
                   "head": source.head, "label": selected[video_id],
                   "frames": info["frames"], "fields": info["flow_pairs"],
                   "height": info["height"], "width": info["width"], **paths,
                   **{f"{m}_bytes": info["bytes"][m] if "bytes" in info
                      else storage.stat(paths[m])[0] for m in files}})
  integers = ("head", "label", "frames", "fields", "height", "width")
  table = {k: np.array([r[k] for r in rows], np.int32 if k in integers else object)
           for k in rows[0]}
  for m in files:
    table[f"{m}_bytes"] = table[f"{m}_bytes"].astype(np.int64)
    steps = step_counts(table, m)
    table[f"{m}_step"] = np.cumsum(np.append(0, steps[:-1]))
    table[f"{m}_base"] = np.cumsum(np.append(0, steps[:-1] + records.HEADER_RECORDS + 1))
  return table


def step_counts(table, modality):
  """Steps of each row's `modality` file, int64."""
  return table["frames" if modality == records.RGB else "fields"].astype(np.int64)


def table_files(table):
  """The modalities whose files the rows of a `video_table` read."""
  return [m for m in (records.RGB, *records.FLOW_KINDS) if m in table]


def selected_videos(table, endless=False, seed=None):
  """The videos of a `video_table` as a dataset of dicts (its columns).

  Args:
    table: `video_table(...)`.
    endless: shuffle (anew each pass) and repeat forever (training); otherwise every
      video once, in table order (evaluation).
    seed: the shuffle's seed (None: from TensorFlow's global seed).
  """
  videos = tf.data.Dataset.from_tensor_slices(
      {k: tf.constant(v.tolist() if v.dtype == object else v) for k, v in table.items()})
  if endless:
    videos = videos.shuffle(len(table["video_id"]), seed=seed,
                            reshuffle_each_iteration=True).repeat()
  return videos


class _Reader:
  """What a sample decodes, from the serialized step records `steps` gives."""

  def steps(self, video, modality, indices):
    """[n] serialized step records of `video`'s `modality` file, steps `indices` ([n])."""
    raise NotImplementedError

  def step_of_each(self, videos, modality, indices):
    """[B] serialized step records: step `indices[b]` of video b of a batch of
    `selected_videos` rows, from each one's `modality` file."""
    raise NotImplementedError

  def rgb_jpegs_of_each(self, videos, frames):
    """The JPEGs [B] of frame `frames[b]` of video b of a batch of videos."""
    serialized = self.step_of_each(videos, records.RGB, frames)
    return tf.io.parse_example(serialized, record_parsing.RGB_STEP_FEATURES)["image/encoded"]

  def rgb_jpeg(self, video, frame):
    """The JPEG of frame `frame` ([], or [P] frames) of `video`: a [1] (or [P, 1]) string
    tensor."""
    serialized = self.steps(video, records.RGB, tf.reshape(frame, [-1]))
    jpegs = tf.io.parse_example(serialized, record_parsing.RGB_STEP_FEATURES)["image/encoded"]
    return tf.reshape(jpegs, _static(frame.shape) + [1])

  def flow_jpegs(self, video, sources):
    """JPEGs and quantisation ranges of a stack's fields, in channel order (x, y per field).

    Args:
      video: an element of `selected_videos`.
      sources: `stacking.field_sources(...)`: L (file, field index) in channel order, the
        indices [] (one stack) or [P] (P stacks).
    Returns:
      (jpegs [2L] string, lo [2L] float32, hi [2L] float32), each [P, 2L] for P stacks.
    """
    jpegs, lo, hi = [], [], []
    for kind in dict.fromkeys(kind for kind, _ in sources):
      positions = [p for p, (k, _) in enumerate(sources) if k == kind]
      indices = tf.stack([sources[p][1] for p in positions], axis=-1)
      steps = tf.io.parse_example(self.steps(video, kind, tf.reshape(indices, [-1])),
                                  record_parsing.FLOW_STEP_FEATURES)
      shape = _static(indices.shape)
      jpegs.append((positions, tf.reshape(steps["flow/x/encoded"], shape),
                    tf.reshape(steps["flow/y/encoded"], shape)))
      ranges = tf.reshape(steps["flow/range"], shape + [4])
      lo.append((positions, ranges[..., 0], ranges[..., 2]))
      hi.append((positions, ranges[..., 1], ranges[..., 3]))
    return tuple(_interleaved(parts, len(sources)) for parts in (jpegs, lo, hi))

  def stack_jpegs(self, video, config, position):
    """What one sample decodes: {'jpegs'} of frame `position` (spatial), or {'jpegs',
    'lo', 'hi'} of the stack starting at field `position` (temporal); for [P] positions,
    each with a leading P axis."""
    if config.stream == "spatial":
      return {"jpegs": self.rgb_jpeg(video, position)}
    sources = stacking.field_sources(config.stacking, config.stack_length, position,
                                     video["fields"])
    jpegs, lo, hi = self.flow_jpegs(video, sources)
    return {"jpegs": jpegs, "lo": lo, "hi": hi}


def _static(shape):
  return [-1 if n is None else n for n in shape.as_list()]


class DiskReader(_Reader):
  """Reads a sample's steps from a `video_table`'s files through their indexes: per file the
  one byte range from its first step to its last, by a TFRecord reader started there and
  buffered to the range (checksums checked)."""

  def __init__(self, table):
    """Loads the indexes of the table's videos (`flow_tools.records.read_index`; a missing
    one is a RecordsError naming the app that makes it)."""
    files = table_files(table)
    counts = {m: step_counts(table, m) + records.HEADER_RECORDS for m in files}
    found = records.read_indexes(
        (index, {m: (int(counts[m][row]), int(table[f"{m}_bytes"][row])) for m in files})
        for row, index in enumerate(table["index"]))
    self._offsets = {m: tf.constant(np.concatenate([offsets[m] for offsets in found]))
                     for m in files}

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
    serialized = run.take(count).batch(count).get_single_element()
    return tf.gather(serialized, tf.cast(indices, tf.int64) - first)

  def step_of_each(self, videos, modality, indices):
    at = videos[f"{modality}_base"] + records.HEADER_RECORDS + tf.cast(indices, tf.int64)
    start = tf.gather(self._offsets[modality], at)
    length = tf.gather(self._offsets[modality], at + 1) - start

    def one(path, start, length):
      return tf.data.experimental.from_variant(
          tf.raw_ops.TFRecordDatasetV2(filenames=tf.reshape(path, [1]), compression_type="",
                                       buffer_size=length, byte_offsets=tf.reshape(start, [1])),
          tf.TensorSpec([], tf.string)).take(1)
    # One pass over the batch's records, each read by its own short reader: measured ~20%
    # more spatial samples/s on two cores than a reader run to completion per sample.
    return (tf.data.Dataset.from_tensor_slices((videos[modality], start, length))
            .interleave(one, cycle_length=1)
            .batch(tf.size(indices, out_type=tf.int64)).get_single_element())


class MemoryReader(_Reader):
  """A `video_table`'s step records held in memory: `steps` is a gather."""

  def __init__(self, steps):
    """`steps`: {modality: [N] string tensor}, `memory_steps` of each file read."""
    self._steps = steps

  def steps(self, video, modality, indices):
    return tf.gather(self._steps[modality],
                     video[f"{modality}_step"] + tf.cast(indices, tf.int64))

  def step_of_each(self, videos, modality, indices):
    return self.steps(videos, modality, indices)


def memory_steps(table, modality):
  """Every step record of the table's `modality` files as one [N] string tensor, in row
  order (column '<modality>_step'): each file read whole by a TFRecord reader
  (sequentially, local or remote; checksums checked), a few files at once, its records
  copied into the result as they come (memory stays near the records' bytes)."""
  counts = step_counts(table, modality)

  def read(path, count):
    whole = tf.data.TFRecordDataset(path, buffer_size=_FILE_BUFFER).batch(
        count + records.HEADER_RECORDS).get_single_element()
    return whole[records.HEADER_RECORDS:]
  files = tf.data.Dataset.from_tensor_slices((table[modality].tolist(), counts))
  return (files.map(read, num_parallel_calls=_MEMORY_READS, deterministic=True)
          .unbatch().batch(int(counts.sum())).get_single_element())


def records_bytes(table):
  """Bytes of the table's files: what `memory_steps` holds, to within their headers."""
  return int(sum(table[f"{m}_bytes"].sum() for m in table_files(table)))


def available_memory():
  """Bytes this machine can still allocate without swapping (Linux's MemAvailable; else
  its free physical pages)."""
  try:
    with open("/proc/meminfo", encoding="ascii") as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def with_reader(table, input_cache, pipeline):
  """`pipeline(reader)` (a dataset) on the reader `input_cache` chooses.

  Args:
    table: the `video_table` the pipeline reads.
    input_cache: 'memory' (every step record of the table read into memory once, where the
      dataset runs: each process, each tf.data service worker its own copy; then a sample's
      read is a gather), 'disk' (`DiskReader`), or 'auto': memory if the records take at most
      MEMORY_SHARE of the memory available, else disk (logged).
  """
  if input_cache not in streams.INPUT_CACHES:
    raise ValueError(f"unknown input cache {input_cache!r}; choose from {streams.INPUT_CACHES}")
  if input_cache == "auto":
    needed, available = records_bytes(table), available_memory()
    input_cache = "memory" if needed <= MEMORY_SHARE * available else "disk"
    logging.info("input: records read from %s (%.1f MB of records, %.1f MB of memory "
                 "available; --input_cache=memory|disk chooses)", input_cache, needed / 1e6,
                 available / 1e6)
  if input_cache == "disk":
    return pipeline(DiskReader(table))
  # Built when the dataset is iterated, where it runs, not where it is defined.
  return tf.data.Dataset.range(1).flat_map(lambda _: pipeline(MemoryReader(
      {m: memory_steps(table, m) for m in table_files(table)})))


def _interleaved(parts, fields):
  """[..., 2 * fields] in channel order (x, y of each field) of per-file (field positions,
  x values [..., n], y values [..., n])."""
  if len(parts) == 1:
    _, x, y = parts[0]
  else:
    order = np.argsort(np.concatenate([positions for positions, _, _ in parts]))
    x = tf.gather(tf.concat([p[1] for p in parts], -1), order, axis=-1)
    y = tf.gather(tf.concat([p[2] for p in parts], -1), order, axis=-1)
  return tf.reshape(tf.stack([x, y], axis=-1), _static(x.shape)[:-1] + [2 * fields])


def head_targets(head, label, head_names):
  """Per head: the label (0 for other datasets' samples) and a 0/1 sample weight."""
  label = tf.cast(label, tf.int32)
  labels, weights = {}, {}
  for index, name in enumerate(head_names):
    mine = tf.equal(head, index)
    labels[name] = tf.where(mine, label, 0)
    weights[name] = tf.cast(mine, tf.float32)
  return labels, weights
