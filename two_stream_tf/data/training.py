"""Training input: random frames (spatial) or flow stacks (temporal), augmented, in batches.

Per sample, as in the paper: a video (class-balanced, or plain shuffling), a random
frame or stack start, a random crop anywhere in the frame, a random horizontal flip
(x-flow negated) and, for RGB, colour jitter. Only the crop window of each needed
JPEG is decoded. The sample's choice is made right after parsing, so the shuffle
buffer holds a few JPEGs per sample, not whole videos or decoded stacks.
"""

import numpy as np
import tensorflow as tf

from two_stream_tf.data import decoding
from two_stream_tf.data import quantized
from two_stream_tf.data import reading
from two_stream_tf.data import selection
from two_stream_tf.data import stacking

# AlexNet's PCA colour augmentation: eigenvalues and eigenvectors (columns) of the
# ImageNet RGB covariance on a [0, 1] scale; alpha ~ N(0, 0.1).
_PCA_EIGENVALUES = np.float32([0.2175, 0.0188, 0.0045])
_PCA_EIGENVECTORS = np.float32([[-0.5675, 0.7192, 0.4009],
                                [-0.5808, -0.0045, -0.8140],
                                [-0.5836, -0.6948, 0.4203]])
_JITTER_STDDEV = 0.1

# Element seeds: one stream per purpose.
_VISITS, _CHOICE = 1, 2


def _element_seed(seed, purpose, index):
  return tf.random.experimental.stateless_fold_in(
      tf.stack([tf.cast(seed, tf.int64), tf.constant(purpose, tf.int64)]),
      tf.cast(index, tf.int64))


def _uniform_int(seed, low, high):
  """Uniform integer in [low, high] (tensors)."""
  return tf.random.stateless_uniform([], seed, low, high + 1, dtype=tf.int32)


def rgb_jitter_offset(alpha):
  """The RGB offset (0..255 scale) that PCA jitter with coefficients `alpha` [3] adds."""
  return tf.linalg.matvec(tf.constant(_PCA_EIGENVECTORS), alpha * _PCA_EIGENVALUES) * 255.0


def _visits(sources, selections, config, seed):
  """Per video visit, how many samples it gives: on average `samples_per_visit`, times the
  video's class-balanced weight with balanced sampling."""
  weights = selection.balanced_weights(sources, selections)
  if config.sampling == "shuffle":
    weights = [np.ones_like(w) for w in weights]
  weights = [w * config.samples_per_visit for w in weights]
  offsets = np.cumsum([0] + [len(w) for w in weights[:-1]])
  table = tf.constant(np.concatenate(weights))
  offsets = tf.constant(offsets, tf.int32)

  def count(index, video):
    label = tf.cast(video["context"]["clip/label/index"], tf.int32)
    weight = table[offsets[video["head"]] + label]
    extra = tf.random.stateless_uniform([], _element_seed(seed, _VISITS, index)) < weight % 1.0
    return tf.cast(tf.floor(weight), tf.int64) + tf.cast(extra, tf.int64)
  return count


def _choose(config, seed):
  """Index, video -> what one sample needs: its JPEGs, crop window, flip and jitter."""
  size = config.crop_size

  def choose(index, video):
    seeds = tf.random.experimental.stateless_split(_element_seed(seed, _CHOICE, index), 5)
    height, width = decoding.frame_size(video)
    with tf.control_dependencies([reading.check_crop(video, size)]):
      window = tf.stack([_uniform_int(seeds[0], 0, height - size),
                         _uniform_int(seeds[1], 0, width - size), size, size])
    sample = {
        "window": window,
        "flip": tf.logical_and(config.flip, tf.random.stateless_uniform([], seeds[2]) < 0.5),
        "head": video["head"],
        "label": video["context"]["clip/label/index"],
    }
    if config.stream == "spatial":
      frames = tf.shape(video["sequences"][decoding.RGB_KEY])[0]
      frame = _uniform_int(seeds[3], 0, frames - 1)
      sample["jpegs"] = video["sequences"][decoding.RGB_KEY][frame][None]
      sample["jitter"] = tf.random.stateless_normal([3], seeds[4], stddev=_JITTER_STDDEV)
    else:
      fields = video["context"]["clip/flow_count"]
      first, last = stacking.start_range(config.stacking, config.stack_length, fields)
      start = _uniform_int(seeds[3], first, last)
      sources = stacking.field_sources(config.stacking, config.stack_length, start, fields)
      sample["jpegs"], sample["lo"], sample["hi"] = decoding.gather_flow(video, sources)
    return sample
  return choose


def _decode(config, head_names):
  """A chosen sample -> (network input, labels per head, sample weights per head)."""
  size = config.crop_size

  def decode(sample):
    window = sample["window"]
    shape = [size, size, config.channels]
    if config.stream == "spatial":
      x = decoding.decode_rgb(sample["jpegs"][0], window)
      x = tf.cond(sample["flip"], lambda: tf.reverse(x, axis=[1]), lambda: x)
      if config.rgb_jitter:
        x = tf.clip_by_value(x + rgb_jitter_offset(sample["jitter"]), 0.0, 255.0)
      x = tf.ensure_shape(x, shape)
    elif config.stacking == "trajectory":  # bilinear samples: off the quantisation grid
      full = decoding.decode_flow(sample["jpegs"], sample["lo"], sample["hi"])
      x = stacking.trajectory_stack(decoding.as_fields(full), window)
      x = tf.cond(sample["flip"], lambda: stacking.flip_flow(x), lambda: x)
      if config.mean_subtraction:
        x = stacking.subtract_mean_flow(x)
      x = tf.ensure_shape(x, shape)
    else:
      q, step, centre = decoding.decode_quantized_flow(
          sample["jpegs"], sample["lo"], sample["hi"], window, sample["flip"])
      x = quantized.pack(tf.ensure_shape(q, shape), step, centre, config.mean_subtraction)
    labels, weights = reading.head_targets(sample["head"], sample["label"], head_names)
    return x, labels, weights
  return decode


def training_dataset(records_dirs, split, config, batch_size, seed=0, subset="train",
                     shuffle_buffer=1024, deterministic=False):
  """Endless batches for `model.fit`: (inputs, {head: label}, {head: 0/1 weight}).

  Args:
    records_dirs: one records directory per dataset (head order), or one path.
    split: 1-based split number.
    config: an `InputConfig`.
    batch_size: samples per batch.
    seed: seeds video order and every random choice; None draws a seed from the clock
      of the machine that iterates the dataset (each tf.data service worker its own).
    subset: which videos of the split to sample: 'train' (or 'test', for diagnostics).
    shuffle_buffer: samples mixed after their choice (small: a few JPEGs each).
    deterministic: the same batches every run with the same seed (slower).
  Returns:
    A `tf.data.Dataset`. Inputs are float32 B x crop x crop x 3 (RGB, 0..255), float32
    B x crop x crop x 2L (trajectory stacks, flow in pixels), or for flow and bidirectional
    stacks the quantised uint8 stacks with their per-channel maps (`quantized.pack`), which
    `to_network_input` expands to flow in pixels on the accelerator; for `model.fit`,
    map it over the dataset.
  """
  if seed is None and deterministic:
    raise ValueError("deterministic input needs a seed")
  sources = selection.open_sources(records_dirs)
  selections = selection.check_selection(sources, split, subset)

  def batches(seed):
    return _batches(sources, selections, split, subset, config, batch_size, seed,
                    shuffle_buffer, deterministic)
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


def _batches(sources, selections, split, subset, config, batch_size, seed, shuffle_buffer,
             deterministic):
  head_names = [s.dataset for s in sources]
  # Shuffles take a Python seed only; a clock seed (a tensor) seeds the per-sample choices.
  order_seed = seed if isinstance(seed, int) else None
  videos = reading.selected_videos(sources, split, subset, config, deterministic, True,
                                   order_seed)
  if config.sampling == "balanced" or config.samples_per_visit > 1:
    count = _visits(sources, selections, config, seed)
    videos = videos.enumerate().flat_map(
        lambda index, video: tf.data.Dataset.from_tensors(video).repeat(count(index, video)))
  return (videos.enumerate()
          .map(_choose(config, seed), num_parallel_calls=tf.data.AUTOTUNE,
               deterministic=deterministic)
          .shuffle(shuffle_buffer, seed=order_seed)
          .map(_decode(config, head_names), num_parallel_calls=tf.data.AUTOTUNE,
               deterministic=deterministic)
          .batch(batch_size, drop_remainder=True))
