"""From JPEG bytes to network input: decode (only the crop window), dequantise, flip."""

import tensorflow as tf


def _decode(jpeg, channels, window):
  if window is None:
    return tf.io.decode_jpeg(jpeg, channels=channels)
  return tf.image.decode_and_crop_jpeg(jpeg, window, channels=channels)


def decode_planes(jpegs, window=None):
  """Quantised flow JPEGs -> uint8 2L x h x w planes, only `window` decoded.

  Args:
    jpegs: [2L] JPEG strings in channel order (static length).
    window: (y, x, h, w) to decode, or None for the full frame.
  """
  # Stacked on a leading axis (a reshape drops the decoder's channel axis for free):
  # moving them to the channel axis on the host, a uint8 transpose, measured as costly as
  # decoding a third of them; `channels_last` does it where the planes are used.
  planes = tf.stack([_decode(jpegs[i], 1, window) for i in range(jpegs.shape[0])])
  return tf.reshape(planes, tf.shape(planes)[:3])


def channels_last(planes):
  """[...] x C x h x w -> [...] x h x w x C."""
  rank = len(planes.shape)
  return tf.transpose(planes, list(range(rank - 3)) + [rank - 2, rank - 1, rank - 3])


def quantization_maps(lo, hi, flip=False):
  """Per channel the step and centre of `dequantize`, from the [2L] ranges; with `flip`
  (a bool tensor) the maps of the x-negated flow, so that mirroring the planes flips it."""
  step = (hi - lo) / 255.0
  centre = (hi + lo) / 2.0
  if flip is not False:
    sign = tf.where(flip, tf.tile([-1.0, 1.0], [lo.shape[0] // 2]), 1.0)
    step, centre = step * sign, centre * sign
  return step, centre


def dequantize(q, step, centre, subtract_mean=False):
  """uint8 [...] x h x w x C -> float32 flow in pixels, per channel (q - 127.5) * step + centre.

  Args:
    q: uint8 planes in channels-last order, with any leading (batch) axes.
    step, centre: from `quantization_maps`, with the same leading axes.
    subtract_mean: False, or a bool tensor over the leading axes: where true, remove each
      channel's mean over h x w, as (q - mean q) * step (the centre cancels).
  Returns:
    Without mean subtraction, flow_tools.extraction.quantization.dequantize's values, op for op.
  """
  q = tf.cast(q, tf.float32)
  step, centre = step[..., None, None, :], centre[..., None, None, :]
  if subtract_mean is False:
    return (q - 127.5) * step + centre
  centred = (q - tf.reduce_mean(q, axis=[-3, -2], keepdims=True)) * step
  flags = tf.reshape(subtract_mean, tf.concat([tf.shape(subtract_mean), [1, 1, 1]], axis=0))
  return tf.where(flags, centred, (q - 127.5) * step + centre)


def decode_flow(jpegs, lo, hi):
  """Quantised flow JPEGs -> float32 H x W x 2L in pixels, the full frames."""
  return dequantize(channels_last(decode_planes(jpegs)), *quantization_maps(lo, hi))


def decode_rgb(jpeg, window=None):
  """An RGB frame JPEG -> float32 h x w x 3 in [0, 255]."""
  return tf.cast(_decode(jpeg, 3, window), tf.float32)


def as_fields(stack):
  """h x w x 2L stack -> L x h x w x 2 fields."""
  shape = tf.shape(stack)
  fields = tf.reshape(stack, [shape[0], shape[1], stack.shape[-1] // 2, 2])
  return tf.transpose(fields, [2, 0, 1, 3])
