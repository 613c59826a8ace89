"""Middlebury flow colour coding, checked against values computed by hand from its definition."""

import numpy as np

from flow_tools.pictures import flow_colors


def _colour(dx, dy, max_magnitude=1.0):
  colour = flow_colors.flow_to_colour(np.array([[[dx, dy]]], np.float32), max_magnitude)
  return colour[0, 0].tolist()


def test_wheel_has_55_hues_starting_at_red():
  wheel = flow_colors.colour_wheel()
  assert wheel.shape == (55, 3)
  assert wheel[0].tolist() == [255, 0, 0] and wheel[15].tolist() == [255, 255, 0]
  assert wheel[21].tolist() == [0, 255, 0] and wheel[25].tolist() == [0, 255, 255]
  assert wheel[36].tolist() == [0, 0, 255] and wheel[49].tolist() == [255, 0, 255]


def test_hand_computed_colours():
  assert _colour(0, 0) == [255, 255, 255]        # no motion: white
  # +x: atan2(-0.0, -1) = -pi, the start of the wheel (as in the reference C code).
  assert _colour(1, 0) == [255, 0, 0]
  assert _colour(-1, 0) == [0, 209, 255]         # -x: wheel[27], cyan-blue
  assert _colour(0, 1) == [255, 229, 0]          # +y (down): between wheel[13] and wheel[14]
  assert _colour(0.5, 0) == [255, 127, 127]      # half magnitude: half saturation
  assert _colour(2, 0) == [191, 0, 0]            # beyond the maximum: darkened (x0.75)
  # -y (up): (wheel[40] + wheel[41]) / 2, R = (78 + 98) / 2
  assert _colour(0, -1) == [88, 0, 255]


def test_default_scale_is_the_largest_magnitude():
  field = np.zeros((2, 2, 2), np.float32)
  field[0, 0] = (4, 0)
  image = flow_colors.flow_to_colour(field)
  assert image.dtype == np.uint8 and image.shape == (2, 2, 3)
  assert image[0, 0].tolist() == [255, 0, 0] and image[1, 1].tolist() == [255, 255, 255]
