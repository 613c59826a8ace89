"""Numpy re-implementations of the paper's input definitions, for the pipeline tests."""

import numpy as np
from scipy import ndimage


def field_order(stacking, stack_length, start, num_fields):
  """[(direction, field index)] in channel order, straight from the paper's definitions."""
  if stacking == "bidirectional":
    half = stack_length // 2
    order = [("forward", start + k) for k in range(half)]
    order += [("backward", start - k) for k in range(1, half + 1)]
  else:
    order = [("forward", start + k) for k in range(stack_length)]
  return [(d, min(max(i, 0), num_fields - 1)) for d, i in order]


def flow_stack(video, stacking, stack_length, start):
  """H x W x 2L: d_x then d_y of each field of the stack, field after field."""
  fields = {"forward": video.flow, "backward": video.backward_flow}
  order = field_order(stacking, stack_length, start, len(video.flow))
  if stacking == "trajectory":
    return trajectory_stack(video.flow[[i for _, i in order]])
  channels = []
  for direction, index in order:
    channels += [fields[direction][index][..., 0], fields[direction][index][..., 1]]
  return np.stack(channels, axis=-1)


def trajectory_stack(fields):
  """p_1 = pixel, p_k = p_{k-1} + d_{k-1}(p_{k-1}); channels = d_k(p_k), bilinear via scipy."""
  height, width = fields.shape[1:3]
  ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
  channels = []
  for field in fields:
    sampled = [ndimage.map_coordinates(field[..., c].astype(np.float64), [ys, xs], order=1,
                                       mode="nearest") for c in range(2)]
    channels += sampled
    xs, ys = xs + sampled[0], ys + sampled[1]
  return np.stack(channels, axis=-1).astype(np.float32)


def flip(stack, is_flow):
  flipped = stack[:, ::-1].copy()
  if is_flow:
    flipped[..., 0::2] *= -1
  return flipped


def mean_subtracted(stack):
  return stack - stack.mean(axis=(0, 1), keepdims=True)


def ten_views(image, size, is_flow):
  """4 corners + centre, then their flips."""
  height, width = image.shape[:2]
  corners = [(0, 0), (0, width - size), (height - size, 0), (height - size, width - size),
             ((height - size) // 2, (width - size) // 2)]
  crops = [image[y:y + size, x:x + size] for y, x in corners]
  return np.stack(crops + [flip(c, is_flow) for c in crops])


def stack_starts(stacking, stack_length, num_fields, count=25):
  """The paper's equally spaced test positions over the valid stack starts."""
  if stacking == "bidirectional":
    half = stack_length // 2
    first = min(half, num_fields // 2)
    last = max(num_fields - half, first)
  else:
    first, last = 0, max(num_fields - stack_length, 0)
  return np.round(np.linspace(first, last, count)).astype(int)


def views(video, config, num_positions=25):
  """The 250 (num_positions x 10) test views of a loaded video, in the pipeline's order."""
  if config.stream == "spatial":
    frames = np.round(np.linspace(0, len(video.frames) - 1, num_positions)).astype(int)
    return np.concatenate([ten_views(video.frames[t].astype(np.float32), config.crop_size, False)
                           for t in frames])
  starts = stack_starts(config.stacking, config.stack_length, len(video.flow), num_positions)
  out = []
  for start in starts:
    stacks = ten_views(flow_stack(video, config.stacking, config.stack_length, start),
                       config.crop_size, True)
    if config.mean_subtraction:
      stacks = np.stack([mean_subtracted(v) for v in stacks])
    out.append(stacks)
  return np.concatenate(out)


def softmax(logits):
  """Softmax over the last axis."""
  e = np.exp(logits - logits.max(axis=-1, keepdims=True))
  return e / e.sum(axis=-1, keepdims=True)
