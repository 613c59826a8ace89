"""Which steps of which video files a sample reads, and reading only those.

The selected videos come from the manifests (loaded once), as a dataset of small
dicts: id, head, label, frame and field counts, frame size and the paths of the
video's files. A sample reads its steps with `TFRecordDataset(file).skip(n).take(k)`:
the other steps, the other modality and the other videos are never read.
"""

import numpy as np
import tensorflow as tf

from flow_tools import process_memory
from flow_tools import records
from two_stream_tf.data import stacking


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
    {column: numpy array}: 'video_id', 'head', 'label', 'frames', 'fields', 'height',
    'width' and one path column per file read ('rgb', 'flow', 'flow_backward').
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
      rows.append({"video_id": video_id, "head": source.head, "label": selected[video_id],
                   "frames": info["frames"], "fields": info["flow_pairs"],
                   "height": info["height"], "width": info["width"],
                   **{m: records.video_path(source.records_dir, info, m) for m in files}})
  integers = ("head", "label", "frames", "fields", "height", "width")
  return {k: np.array([r[k] for r in rows], np.int32 if k in integers else object)
          for k in rows[0]}


def selected_videos(table, endless=False, seed=None):
  """The videos of a `video_table` as a dataset of dicts.

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


def read_steps(path, first, count, max_count):
  """Steps `first` .. `first + count - 1` of a video file as [count] serialized records.

  Only those records are parsed: skipping reads each earlier record's length header
  (through TensorFlow's 256 KB read buffer, which an object store needs: there an
  unbuffered reader would send a request per header). `max_count` is a static upper
  bound of `count`.
  """
  steps = tf.data.TFRecordDataset(path).skip(records.HEADER_RECORDS + tf.cast(first, tf.int64))
  return steps.take(tf.cast(count, tf.int64)).batch(max_count).get_single_element()


def rgb_jpeg(video, frame):
  """The JPEG of one frame of `video`, as a [1] string tensor."""
  serialized = read_steps(video[records.RGB], frame, 1, 1)
  return tf.io.parse_example(serialized, records.RGB_STEP_FEATURES)["image/encoded"]


def flow_jpegs(video, sources):
  """JPEGs and quantisation ranges of a stack's fields, in channel order (x, y per field).

  Each flow file is read once, over the span of the fields the stack takes from it.

  Args:
    video: an element of `selected_videos`.
    sources: `stacking.field_sources(...)`: L (file, field index) in channel order.
  Returns:
    (jpegs [2L] string, lo [2L] float32, hi [2L] float32).
  """
  steps, first = {}, {}
  for kind in dict.fromkeys(kind for kind, _ in sources):
    indices = tf.stack([index for k, index in sources if k == kind])
    first[kind] = tf.reduce_min(indices)
    serialized = read_steps(video[kind], first[kind], tf.reduce_max(indices) - first[kind] + 1,
                            int(indices.shape[0]))
    steps[kind] = tf.io.parse_example(serialized, records.FLOW_STEP_FEATURES)
  jpegs, lo, hi = [], [], []
  for kind, index in sources:
    step = index - first[kind]
    ranges = steps[kind]["flow/range"][step]
    jpegs += [steps[kind]["flow/x/encoded"][step], steps[kind]["flow/y/encoded"][step]]
    lo += [ranges[0], ranges[2]]
    hi += [ranges[1], ranges[3]]
  return tf.stack(jpegs), tf.stack(lo), tf.stack(hi)


def stack_jpegs(video, config, position):
  """What one sample decodes: {'jpegs'} of frame `position` (spatial), or {'jpegs', 'lo',
  'hi'} of the stack starting at field `position` (temporal)."""
  if config.stream == "spatial":
    return {"jpegs": rgb_jpeg(video, position)}
  sources = stacking.field_sources(config.stacking, config.stack_length, position,
                                   video["fields"])
  jpegs, lo, hi = flow_jpegs(video, sources)
  return {"jpegs": jpegs, "lo": lo, "hi": hi}


def head_targets(head, label, head_names):
  """Per head: the label (0 for other datasets' samples) and a 0/1 sample weight."""
  label = tf.cast(label, tf.int32)
  labels, weights = {}, {}
  for index, name in enumerate(head_names):
    mine = tf.equal(head, index)
    labels[name] = tf.where(mine, label, 0)
    weights[name] = tf.cast(mine, tf.float32)
  return labels, weights
