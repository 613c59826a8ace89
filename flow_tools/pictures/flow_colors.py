"""Optical flow as a colour image, in the Middlebury colour coding (Baker et al. 2011).

Hue gives the direction and saturation the magnitude: zero flow is white, flow of
`max_magnitude` is a fully saturated colour (+x red, +y (down) orange, -x
cyan-blue, -y violet), and beyond it the colour darkens.
"""

import numpy as np

# Segment lengths of the wheel: red-yellow, yellow-green, green-cyan, cyan-blue,
# blue-magenta, magenta-red.
_SEGMENTS = (15, 6, 4, 11, 13, 6)


def colour_wheel():
  """The 55 x 3 Middlebury wheel, float in [0, 255], starting at red."""
  # (channel held at 255, channel that ramps, whether it ramps up) per segment.
  plan = [(0, 1, True), (1, 0, False), (1, 2, True), (2, 1, False), (2, 0, True), (0, 2, False)]
  rows = []
  for length, (full, ramp, rising) in zip(_SEGMENTS, plan):
    t = np.floor(255 * np.arange(length) / length)
    segment = np.zeros((length, 3))
    segment[:, full] = 255
    segment[:, ramp] = t if rising else 255 - t
    rows.append(segment)
  return np.concatenate(rows)


def flow_to_colour(flow, max_magnitude=None):
  """H x W x 2 flow (dx, dy) -> H x W x 3 uint8 RGB.

  Args:
    flow: float array, pixels.
    max_magnitude: magnitude mapped to full saturation; default the field's largest.
  """
  flow = np.nan_to_num(np.asarray(flow, np.float64))
  u, v = flow[..., 0], flow[..., 1]
  magnitude = np.hypot(u, v)
  if max_magnitude is None:
    max_magnitude = magnitude.max()
  radius = magnitude / max(float(max_magnitude), 1e-9)
  wheel = colour_wheel()
  n = len(wheel)
  position = (np.arctan2(-v, -u) / np.pi + 1) / 2 * (n - 1)  # 0..n-1 around the wheel
  k0 = np.floor(position).astype(int)
  k1 = (k0 + 1) % n
  fraction = (position - k0)[..., None]
  colour = ((1 - fraction) * wheel[k0] + fraction * wheel[k1]) / 255
  inside = (radius <= 1)[..., None]
  saturated = 1 - np.minimum(radius, 1)[..., None] * (1 - colour)
  colour = np.where(inside, saturated, colour * 0.75)  # beyond the max: darker
  return np.floor(255 * colour).astype(np.uint8)


def colour_key(size=65):
  """The key to `flow_to_colour`: a size x size uint8 RGB disc whose pixel at offset
  (dx, dy) from the centre has the colour of flow (dx, dy), full saturation at the rim;
  white outside."""
  centre = (size - 1) / 2
  dy, dx = np.mgrid[0:size, 0:size] - centre
  key = flow_to_colour(np.stack([dx, dy], axis=-1), max_magnitude=centre)
  key[np.hypot(dx, dy) > centre] = 255
  return key
