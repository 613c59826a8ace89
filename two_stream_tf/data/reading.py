"""Reading the selected videos of several records directories as one stream of parsed records."""

import tensorflow as tf

from flow_tools import process_memory
from two_stream_tf.data import decoding
from two_stream_tf.data import selection

# Shards read at once: enough to mix classes and keep the decoders busy.
_MAX_CYCLE = 16


def configure_input_process():
  """Settings of a process that runs these pipelines: freed record and batch buffers
  (a UCF-101 record is ~5 MB, a batch of 256 flow stacks 257 MB) stay in the process for
  reuse rather than being returned to the system and faulted back in page by page;
  measured +20-35% temporal samples/s on one core. Up to 1 GB of freed memory is kept."""
  process_memory.keep_freed_memory(*process_memory.INPUT_PIPELINE)


def selected_videos(sources, split, subset, config, deterministic, endless=False, seed=None):
  """Parsed records of the split's `subset` videos, each tagged with its head index.

  Args:
    sources: `selection.RecordsSource`s, in head order.
    split, subset: which videos ('train' or 'test' of split N, 1-based).
    config: the `InputConfig`, for the feature lists to parse.
    deterministic: keep a fixed element order.
    endless: shuffle the shard order and repeat forever (training); otherwise every
      video once, in shard order (evaluation).
    seed: the shard shuffle's seed (None: from TensorFlow's global seed).
  Returns:
    A `tf.data.Dataset` of {'context', 'sequences', 'head'}.
  """
  if config.stream == "temporal" and config.stacking == "bidirectional":
    for source in sources:
      if not source.manifest["config"].get("backward"):
        raise ValueError(f"{source.records_dir}: bidirectional stacking needs backward flow; "
                         "extract with --backward")
  paths = [p for s in sources for p in s.shards]
  heads = [h for h, s in enumerate(sources) for _ in s.shards]
  files = tf.data.Dataset.from_tensor_slices((paths, tf.constant(heads, tf.int32)))
  if endless:
    files = files.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True).repeat()
  records = files.interleave(
      lambda path, head: tf.data.TFRecordDataset(path).map(lambda r: (r, head)),
      cycle_length=min(len(paths), _MAX_CYCLE), num_parallel_calls=tf.data.AUTOTUNE,
      deterministic=deterministic)

  def parse(serialized, head):
    return {**decoding.parse(serialized, config.stream, config.stacking), "head": head}
  selected = selection.membership_filter(split, subset)
  return (records.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
          .filter(lambda video: selected(video["context"])))


def check_crop(video, crop_size):
  """An op that fails, naming the video, if its frames are smaller than the crop."""
  height, width = decoding.frame_size(video)
  return tf.debugging.Assert(
      tf.logical_and(height >= crop_size, width >= crop_size),
      [f"frames smaller than the {crop_size} crop in video", video["context"]["clip/media_id"],
       "height", height, "width", width])


def head_targets(head, label, head_names):
  """Per head: the label (0 for other datasets' samples) and a 0/1 sample weight."""
  label = tf.cast(label, tf.int32)
  labels, weights = {}, {}
  for index, name in enumerate(head_names):
    mine = tf.equal(head, index)
    labels[name] = tf.where(mine, label, 0)
    weights[name] = tf.cast(mine, tf.float32)
  return labels, weights
