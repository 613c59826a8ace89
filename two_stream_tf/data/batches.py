"""Training input: random frames (spatial) or flow stacks (temporal), augmented, in batches.

Per sample, as in the paper: a video (class-balanced, or plain shuffling), a random
frame or stack start, a random crop anywhere in the frame, a random horizontal flip
(x-flow negated) and, for RGB, colour jitter. Every choice is made from the manifest's
facts before anything is read, and mixed in a shuffle buffer of these small choices;
then a sample reads only the steps it uses and decodes only their crop window. With TSN's
temporal segments a sample is K such frames or stacks of one video, one per segment,
sharing the crop, flip and jitter (each read on its own: still only the steps used).
"""

import numpy as np
import tensorflow as tf

from two_stream_tf.data import config as data_config
from two_stream_tf.data import decoding
from two_stream_tf.data import packed
from two_stream_tf.data import reading
from two_stream_tf.data import sampling
from two_stream_tf.data import selection
from two_stream_tf.data import stacking

# Video visits planned at once: the choices are vectorised over them.
_PLAN_BATCH = 256
_PARALLEL_DECODES = 8  # a batch's RGB crops decoded at once


def _visit_counts(sources, selections, augmentation, seed):
  """Index, videos -> how many samples each visit gives: on average `samples_per_visit`,
  times the video's class-balanced weight with balanced sampling; None if always 1."""
  if augmentation.sampling != "balanced" and augmentation.samples_per_visit == 1:
    return None
  weights = selection.balanced_weights(sources, selections)
  if augmentation.sampling == "shuffle":
    weights = [np.ones_like(w) for w in weights]
  weights = [w * augmentation.samples_per_visit for w in weights]
  offsets = tf.constant(np.cumsum([0] + [len(w) for w in weights[:-1]]), tf.int32)
  table = tf.constant(np.concatenate(weights))

  def count(index, videos):
    weight = tf.gather(table, tf.gather(offsets, videos["head"]) + videos["label"])
    u = tf.random.stateless_uniform(tf.shape(weight),
                                    sampling.batch_seed(seed, sampling.VISITS, index))
    return tf.cast(tf.floor(weight), tf.int32) + tf.cast(u < weight % 1.0, tf.int32)
  return count


def _plan(config, augmentation, count, seed):
  """Index, a batch of video visits -> one sample's choices per sample they give: the
  video, a position (frame or stack start), crop window, flip and jitter."""
  size = config.crop_size

  def plan(index, videos):
    if count is not None:
      repeats = count(index, videos)
      videos = {k: tf.repeat(v, repeats, axis=0) for k, v in videos.items()}
    y = sampling.uniform_ints(seed, sampling.CROP_Y, index, 0, videos["height"] - size)
    x = sampling.uniform_ints(seed, sampling.CROP_X, index, 0, videos["width"] - size)
    flip = tf.random.stateless_uniform(
        tf.shape(y), sampling.batch_seed(seed, sampling.FLIP, index)) < 0.5
    samples = {
        "video": videos,
        "position": sampling.positions(videos, config, seed=seed, index=index,
                                       segments=augmentation.num_segments),
        "window": tf.stack([y, x, tf.fill(tf.shape(y), size), tf.fill(tf.shape(y), size)], 1),
        "flip": tf.logical_and(augmentation.flip, flip),
    }
    if config.stream == "spatial":
      samples["jitter"] = tf.random.stateless_normal(
          tf.concat([tf.shape(y), [3]], 0), sampling.batch_seed(seed, sampling.JITTER, index),
          stddev=packed.JITTER_STDDEV) * float(augmentation.rgb_jitter)
    return samples
  return plan


def _decode_flow(config, head_names, segments, reader):
  """A chosen flow sample -> (network input, labels per head, sample weights per head);
  with K > 1 segments the input is its K snippets, stacked on a second axis. `reader`:
  where the sample's steps come from (`reading.with_reader`)."""
  size = config.crop_size

  def snippet(sample, position):
    window, video = sample["window"], sample["video"]
    read = reader.stack_jpegs(video, config, position)
    if config.stacking == "trajectory":  # bilinear samples: off the quantisation grid
      full = decoding.decode_flow(read["jpegs"], read["lo"], read["hi"])
      x = stacking.trajectory_stack(decoding.as_fields(full), window)
      x = tf.cond(sample["flip"], lambda: stacking.flip_flow(x), lambda: x)
      if config.mean_subtraction:
        x = stacking.subtract_mean_flow(x)
      return tf.ensure_shape(x, [size, size, config.channels])
    planes = decoding.decode_planes(read["jpegs"], window)
    step, centre = decoding.quantization_maps(read["lo"], read["hi"], sample["flip"])
    return packed.pack_flow(tf.ensure_shape(planes, [config.channels, size, size]), step,
                            centre, config.mean_subtraction, sample["flip"])

  def decode(sample):
    if segments == 1:
      x = snippet(sample, sample["position"])
    else:
      x = tf.nest.map_structure(lambda *parts: tf.stack(parts), *[
          snippet(sample, sample["position"][k]) for k in range(segments)])
    video = sample["video"]
    labels, weights = reading.head_targets(video["head"], video["label"], head_names)
    return x, labels, weights
  return decode


def _decode_rgb_batch(config, head_names, segments, reader):
  """A batch of chosen RGB samples -> (network input, labels, weights) as `_decode_flow`
  gives a flow sample's, batched: the batch's frames read and parsed at once (a gather, or one pass
  of short readers), then each crop decoded. RGB's decode is short (~0.3 ms), so tf.data's
  per-sample cost of reading one by one was a fifth of it on two cores."""
  size = config.crop_size

  def decode(samples):
    videos, positions, window = samples["video"], samples["position"], samples["window"]
    if segments > 1:  # the K snippets of each video, one after the other
      videos = {k: tf.repeat(v, segments, axis=0) for k, v in videos.items()}
      window = tf.repeat(window, segments, axis=0)
      positions = tf.reshape(positions, [-1])
    jpegs = reader.rgb_jpegs_of_each(videos, positions)
    crops = tf.map_fn(
        lambda args: tf.image.decode_and_crop_jpeg(args[0], args[1], channels=3),
        (jpegs, window), fn_output_signature=tf.TensorSpec([size, size, 3], tf.uint8),
        parallel_iterations=_PARALLEL_DECODES)
    flip, jitter = samples["flip"], samples["jitter"]
    if segments > 1:
      crops = tf.reshape(crops, [-1, segments, size, size, 3])
      flip = tf.repeat(flip[:, None], segments, axis=1)
      jitter = tf.repeat(jitter[:, None], segments, axis=1)
    labels, weights = reading.head_targets(samples["video"]["head"], samples["video"]["label"],
                                           head_names)
    return packed.pack_rgb(crops, flip, jitter), labels, weights
  return decode


def training_dataset(records_dirs, split, config, batch_size, seed=0, *, augmentation=None,
                     subset="train", shuffle_buffer=1024, deterministic=False, added=(),
                     input_cache="auto"):
  """Endless batches for `model.fit`: (inputs, {head: label}, {head: 0/1 weight}).

  Args:
    records_dirs: one records directory per dataset (head order), or one path.
    split: 1-based split number.
    config: an `InputConfig`: what the network sees.
    batch_size: samples per batch: videos (each K snippets with K segments).
    seed: seeds video order and every random choice; None draws a seed from the clock
      of the machine that iterates the dataset (each tf.data service worker its own).
    augmentation: an `Augmentation` (None: the paper's).
    subset: which videos of the split to sample: 'train' (or 'test', for diagnostics).
    shuffle_buffer: samples mixed after their choice, before reading (small: a few numbers
      and paths each).
    deterministic: the same batches every run with the same seed (slower).
    added: `added_classes.AddedClasses`: other datasets' videos trained as extra classes
      of a head (sampled class-balanced with its own classes).
    input_cache: where samples read their steps: 'memory', 'disk' or 'auto'
      (`reading.with_reader`); the batches are the same.
  Returns:
    A `tf.data.Dataset`. Inputs are the decoded uint8 RGB crops or flow planes with what
    makes network input of them (`packed.pack_rgb`, `packed.pack_flow`), which
    `to_network_input` expands on the accelerator (for `model.fit`, map it over the
    dataset), or float32 B x crop x crop x 2L for trajectory stacks (bilinear samples are
    off the quantisation grid: flow in pixels). With `augmentation.num_segments` K > 1,
    every input tensor has a second axis of K snippets (`packed.merge_segments`).
  """
  if seed is None and deterministic:
    raise ValueError("deterministic input needs a seed")
  augmentation = augmentation or data_config.Augmentation()
  sources = selection.open_sources(records_dirs, added)
  selections = selection.check_selection(sources, split, subset)

  table = reading.video_table(sources, selections, config)

  def batches(seed):
    return reading.with_reader(table, input_cache, lambda reader: _batches(
        sources, selections, table, reader, config, augmentation, batch_size, seed,
        shuffle_buffer, deterministic))
  if seed is None:
    # Evaluated where the dataset runs, not where it is built: the graph's own random ops
    # are seeded alike on every worker, which would make their streams identical.
    clock = tf.data.Dataset.range(1).map(lambda _: tf.bitcast(tf.timestamp(), tf.int64))
    dataset = clock.flat_map(batches)
  else:
    dataset = batches(seed)
  options = tf.data.Options()
  options.deterministic = deterministic
  return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)


def _batches(sources, selections, table, reader, config, augmentation, batch_size, seed,
             shuffle_buffer, deterministic):
  head_names = selection.head_names(sources)
  # Shuffles take a Python seed only; a clock seed (a tensor) seeds the per-sample choices.
  order_seed = seed if isinstance(seed, int) else None
  count = _visit_counts(sources, selections, augmentation, seed)
  samples = (reading.selected_videos(table, endless=True, seed=order_seed)
             .batch(_PLAN_BATCH).enumerate()
             .map(_plan(config, augmentation, count, seed)).unbatch()
             .shuffle(shuffle_buffer, seed=order_seed))
  segments = augmentation.num_segments
  if config.stream == "spatial":
    return (samples.batch(batch_size, drop_remainder=True)
            .map(_decode_rgb_batch(config, head_names, segments, reader),
                 num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic))
  return (samples.map(_decode_flow(config, head_names, segments, reader),
                      num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
          .batch(batch_size, drop_remainder=True))
