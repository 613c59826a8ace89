"""From a parsed record to network input: pick JPEGs, decode (only the crop), dequantise."""

import tensorflow as tf

from flow_tools import records
from two_stream_tf.data import stacking

RGB_KEY = "image/encoded"


def sequence_keys(stream, stacking_kind):
  """The feature lists a stream reads; the others are never parsed."""
  if stream == "spatial":
    return [RGB_KEY]
  kinds = [stacking.FORWARD] + ([stacking.BACKWARD] if stacking_kind == "bidirectional" else [])
  return [f"{kind}/{axis}/encoded" for kind in kinds for axis in "xy"]


def parse(serialized, stream, stacking_kind):
  """A serialized record -> {'context': ..., 'sequences': ...} with only what `stream` needs."""
  context, sequences = records.parse(serialized, sequence_keys(stream, stacking_kind))
  return {"context": context, "sequences": sequences}


def gather_flow(video, sources):
  """JPEGs and quantisation ranges of a stack's fields, in channel order (x, y per field).

  Args:
    video: a parsed record.
    sources: `stacking.field_sources(...)`.
  Returns:
    (jpegs [2L] string, lo [2L] float32, hi [2L] float32).
  """
  jpegs, lo, hi = [], [], []
  for kind, index in sources:
    ranges = tf.reshape(video["context"][f"{kind}/range"], [-1, 4])[index]
    jpegs += [video["sequences"][f"{kind}/x/encoded"][index],
              video["sequences"][f"{kind}/y/encoded"][index]]
    lo += [ranges[0], ranges[2]]
    hi += [ranges[1], ranges[3]]
  return tf.stack(jpegs), tf.stack(lo), tf.stack(hi)


def _decode(jpeg, channels, window):
  if window is None:
    return tf.io.decode_jpeg(jpeg, channels=channels)
  return tf.image.decode_and_crop_jpeg(jpeg, window, channels=channels)


def decode_quantized_flow(jpegs, lo, hi, window=None, flip=False):
  """Quantised flow JPEGs -> (uint8 h x w x 2L, step [2L], centre [2L]), only `window` decoded.

  Args:
    jpegs: [2L] JPEG strings in channel order (static length).
    lo, hi: [2L] quantisation ranges.
    window: (y, x, h, w) to decode, or None for the full frame.
    flip: (tensor) mirror horizontally and negate every d_x.
  Returns:
    The stack's bytes and each channel's map back to pixels, for `dequantize`.
  """
  # Planes stacked first and transposed once: concatenating h x w x 1 planes along the
  # channel axis is an interleaving copy, measured twice as slow as decoding them.
  planes = tf.stack([_decode(jpegs[i], 1, window)[..., 0] for i in range(jpegs.shape[0])])
  q = tf.transpose(planes, [1, 2, 0])
  step = (hi - lo) / 255.0
  centre = (hi + lo) / 2.0
  if flip is not False:  # mirrored bytes and a negated map for x: no float pass
    q = tf.cond(flip, lambda: tf.reverse(q, axis=[1]), lambda: q)
    sign = tf.where(flip, tf.tile([-1.0, 1.0], [jpegs.shape[0] // 2]), 1.0)
    step, centre = step * sign, centre * sign
  return q, step, centre


def dequantize(q, step, centre, subtract_mean=False):
  """uint8 [...] x h x w x C -> float32 flow in pixels, per channel (q - 127.5) * step + centre.

  Args:
    q, step, centre: as `decode_quantized_flow` gives them, with any leading (batch) axes.
    subtract_mean: False, or a bool tensor over the leading axes: where true, remove each
      channel's mean over h x w, as (q - mean q) * step (the centre cancels).
  Returns:
    Without mean subtraction, flow_tools.quantize.dequantize's values, op for op.
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
  return dequantize(*decode_quantized_flow(jpegs, lo, hi))


def decode_rgb(jpeg, window=None):
  """An RGB frame JPEG -> float32 h x w x 3 in [0, 255]."""
  return tf.cast(_decode(jpeg, 3, window), tf.float32)


def as_fields(stack):
  """h x w x 2L stack -> L x h x w x 2 fields."""
  shape = tf.shape(stack)
  fields = tf.reshape(stack, [shape[0], shape[1], stack.shape[-1] // 2, 2])
  return tf.transpose(fields, [2, 0, 1, 3])


def frame_size(video):
  return (tf.cast(video["context"]["image/height"], tf.int32),
          tf.cast(video["context"]["image/width"], tf.int32))
