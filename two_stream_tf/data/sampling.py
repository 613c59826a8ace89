"""Where a sample sits in its video: the frame (spatial) or stack start (temporal) it reads.

One function for both protocols, as the paper has them: training picks a position at
random, uniformly over the video's valid range; the test views take positions equally
spaced from the first valid one to the last. Random draws are stateless: the same
(seed, purpose, batch index) gives the same numbers on every run and machine.
"""

import tensorflow as tf

from two_stream_tf.data import stacking

# Random streams, one per purpose (and batch of video visits).
VISITS, POSITION, CROP_Y, CROP_X, FLIP, JITTER = range(1, 7)


def position_range(videos, config):
  """(first, last) valid frame (spatial) or stack start (temporal) of `videos`."""
  if config.stream == "spatial":
    return tf.constant(0), videos["frames"] - 1
  return stacking.start_range(config.stacking, config.stack_length, videos["fields"])


def batch_seed(seed, purpose, index):
  """The stateless seed of one purpose's draws for batch `index`."""
  return tf.random.experimental.stateless_fold_in(
      tf.stack([tf.cast(seed, tf.int64), tf.constant(purpose, tf.int64)]),
      tf.cast(index, tf.int64))


def uniform_ints(seed, purpose, index, low, high):
  """Uniform integers in [low, high] (int32 tensors of one shape), one per element."""
  span = tf.cast(high - low + 1, tf.float64)
  u = tf.random.stateless_uniform(tf.shape(span), batch_seed(seed, purpose, index),
                                  dtype=tf.float64)
  return low + tf.cast(tf.floor(u * span), tf.int32)


def positions(videos, config, *, count=None, seed=None, index=None, segments=1):
  """The positions samples of `videos` read.

  Args:
    videos: columns of `reading.selected_videos` (one video, or a batch of them).
    config: the `InputConfig`.
    count: test: `count` positions equally spaced from first to last, rounded (a
      [count] tensor for one video).
    seed, index: training (no `count`): positions drawn from the random stream of
      (seed, batch `index`).
    segments: training: K. 1: one position per video, uniform over its range ([videos]).
      K > 1: the range's n positions split into K segments, segment k holding positions
      first + floor(k n / K) .. first + floor((k + 1) n / K) - 1, and one position
      uniform in each ([videos, K]); a video with fewer positions than segments has
      empty segments, which take their start.
  """
  first, last = position_range(videos, config)
  if count is None:
    if segments == 1:
      return uniform_ints(seed, POSITION, index, first, last)
    first, last = tf.broadcast_to(first, tf.shape(last))[..., None], last[..., None]
    n, k = last - first + 1, tf.range(segments)
    low = first + k * n // segments
    high = tf.maximum(first + (k + 1) * n // segments - 1, low)
    return uniform_ints(seed, POSITION, index, low, high)
  steps = tf.cast(tf.range(count), tf.float64) / max(count - 1, 1)
  span = tf.cast(last - first, tf.float64)
  return first + tf.cast(tf.round(steps * span), tf.int32)
