"""The temporal stream's input: which flow fields make a stack, in which channel order.

A video of T frames has F = T - 1 forward fields (field t: frame t -> t + 1) and, when
extracted with --backward, F backward fields (field t: frame t + 1 -> t). A stack at
start tau has 2L channels, (d_x, d_y) of one field after the other:

* 'flow' (optical-flow stacking): forward fields tau, ..., tau + L - 1;
  channel 2k = d_x(tau + k), channel 2k + 1 = d_y(tau + k) (0-based k).
* 'trajectory': the same fields, each sampled along the trajectory from the pixel:
  p_0 = (u, v), p_k = p_{k-1} + d_{tau+k-1}(p_{k-1}); channels 2k, 2k + 1 = d_{tau+k}(p_k),
  bilinear, with positions outside the frame sampled at the nearest border pixel.
* 'bidirectional': L/2 forward fields tau, ..., tau + L/2 - 1, then L/2 backward fields
  going back from frame tau: tau - 1, tau - 2, ..., tau - L/2 (L even).

Clips shorter than the stack (F < L) still give one: the start is the only sensible one
(0, or the middle for bidirectional) and indices past either end repeat the nearest
field (edge padding), so a 6-frame clip with L = 10 repeats its last field 6 times.
"""

import tensorflow as tf

STACKINGS = ("flow", "trajectory", "bidirectional")
FORWARD, BACKWARD = "flow", "flow_backward"  # record key prefixes


def check_stacking(stacking, stack_length):
  if stacking not in STACKINGS:
    raise ValueError(f"unknown stacking {stacking!r}; choose from {STACKINGS}")
  if stack_length < 1:
    raise ValueError(f"stack_length must be at least 1, got {stack_length}")
  if stacking == "bidirectional" and stack_length % 2:
    raise ValueError(f"bidirectional stacking needs an even stack_length, got {stack_length}")


def start_range(stacking, stack_length, num_fields):
  """(first, last) valid stack start tau for a clip of `num_fields` fields (int32 tensors)."""
  num_fields = tf.cast(num_fields, tf.int32)
  if stacking == "bidirectional":
    half = stack_length // 2
    first = tf.minimum(half, num_fields // 2)
    return first, tf.maximum(num_fields - half, first)
  return tf.constant(0), tf.maximum(num_fields - stack_length, 0)


def field_sources(stacking, stack_length, start, num_fields):
  """The stack's fields in channel order: a list of L (record prefix, index tensor)."""
  last = tf.cast(num_fields, tf.int32) - 1
  if stacking == "bidirectional":
    half = stack_length // 2
    sources = ([(FORWARD, start + k) for k in range(half)]
               + [(BACKWARD, start - 1 - k) for k in range(half)])
  else:
    sources = [(FORWARD, start + k) for k in range(stack_length)]
  return [(kind, tf.clip_by_value(index, 0, last)) for kind, index in sources]


def bilinear_sample(field, x, y):
  """`field` (H x W x C) at float positions x, y (any equal shapes), border-clamped."""
  height, width = tf.shape(field)[0], tf.shape(field)[1]
  x = tf.clip_by_value(x, 0.0, tf.cast(width - 1, tf.float32))
  y = tf.clip_by_value(y, 0.0, tf.cast(height - 1, tf.float32))
  x0, y0 = tf.floor(x), tf.floor(y)
  wx, wy = (x - x0)[..., None], (y - y0)[..., None]
  x0, y0 = tf.cast(x0, tf.int32), tf.cast(y0, tf.int32)
  x1, y1 = tf.minimum(x0 + 1, width - 1), tf.minimum(y0 + 1, height - 1)

  def at(yy, xx):
    return tf.gather_nd(field, tf.stack([yy, xx], axis=-1))
  top = at(y0, x0) * (1 - wx) + at(y0, x1) * wx
  bottom = at(y1, x0) * (1 - wx) + at(y1, x1) * wx
  return top * (1 - wy) + bottom * wy


def trajectory_stack(fields, window):
  """Trajectory stacking of consecutive fields (L x H x W x 2) for the pixels of `window`.

  Args:
    fields: float32 L x H x W x 2, full frames (trajectories leave any crop).
    window: (y, x, h, w) int32 tensor or tuple; the output covers these pixels.
  Returns:
    float32 h x w x 2L, channels in stacking order.
  """
  y, x, h, w = (window[i] for i in range(4))
  ys, xs = tf.meshgrid(tf.cast(tf.range(h) + y, tf.float32),
                       tf.cast(tf.range(w) + x, tf.float32), indexing="ij")
  channels = []
  for k in range(fields.shape[0]):
    displacement = bilinear_sample(fields[k], xs, ys)
    channels.append(displacement)
    xs, ys = xs + displacement[..., 0], ys + displacement[..., 1]
  return tf.concat(channels, axis=-1)


def flip_flow(stack):
  """Horizontal flip of a flow stack (... x W x 2L): mirror the width and negate every d_x."""
  sign = tf.tile(tf.constant([-1.0, 1.0], stack.dtype), [stack.shape[-1] // 2])
  return tf.reverse(stack, axis=[-2]) * sign


def subtract_mean_flow(stack):
  """Subtracts from every displacement field its own mean vector (per channel, over the crop)."""
  return stack - tf.reduce_mean(stack, axis=[-3, -2], keepdims=True)
