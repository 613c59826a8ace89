"""Quantise -> JPEG -> dequantise error bounds, and flip symmetry."""

import cv2
import numpy as np
import pytest

from flow_tools.extraction import quantization


def _smooth_flow(seed, scale, shape=(128, 160)):
  rng = np.random.default_rng(seed)
  field = cv2.GaussianBlur(rng.normal(size=shape + (2,)).astype(np.float32), (0, 0), 6)
  return scale * field / np.abs(field).max()


def _round_trip(component, scheme, quality=None, bound=20.0):
  lo, hi = quantization.field_range(component, scheme, bound)
  q = quantization.quantize(component, lo, hi)
  if quality is not None:
    q = quantization.decode_gray_jpeg(quantization.encode_jpeg(q, quality))
  return quantization.dequantize(q, lo, hi), lo, hi


@pytest.mark.parametrize("scheme", quantization.SCHEMES)
def test_quantisation_alone_is_within_half_a_step(scheme):
  component = _smooth_flow(0, 15.0)[..., 0]
  restored, lo, hi = _round_trip(component, scheme)
  step = (hi - lo) / 255
  assert np.abs(restored - component).max() <= step / 2 + 1e-5
  if scheme == "minmax":  # the extremes are exact
    assert restored.min() == pytest.approx(component.min()) and restored.max() == pytest.approx(
        component.max())


def test_quantize_is_the_rounded_saturated_linear_map():
  # numpy reference on a strided view with values beyond the range on both sides.
  field = np.random.default_rng(4).uniform(-30, 30, size=(48, 64, 2)).astype(np.float32)
  component, lo, hi = field[..., 1], -20.0, 25.0
  expected = np.rint(np.clip((component.astype(np.float64) - lo) * 255 / (hi - lo), 0, 255))
  not_tie = np.abs((component.astype(np.float64) - lo) * 255 / (hi - lo) % 1 - 0.5) > 1e-3
  q = quantization.quantize(component, lo, hi)
  assert q.dtype == np.uint8 and q.shape == component.shape
  np.testing.assert_array_equal(q[not_tie], expected[not_tie])
  assert np.abs(q.astype(int) - expected).max() <= 1


@pytest.mark.parametrize("scheme, rms_bound", [("minmax", 0.06), ("bound", 0.12)])
def test_jpeg_round_trip_error(scheme, rms_bound):
  field = _smooth_flow(1, 12.0)
  for c in range(2):
    restored, lo, hi = _round_trip(field[..., c], scheme, quality=90)
    error = restored - np.clip(field[..., c], lo, hi)
    assert np.sqrt(np.mean(error ** 2)) < rms_bound
    assert np.abs(error).max() < 6 * (hi - lo) / 255


def test_bound_scheme_clips():
  component = np.array([[-35.0, -20.0, 0.5, 20.0, 50.0]], np.float32)
  restored, _, _ = _round_trip(component, "bound")
  np.testing.assert_allclose(restored[0, [0, 1, 3, 4]], [-20, -20, 20, 20])
  assert abs(restored[0, 2] - 0.5) <= 20 / 255


def test_bound_scheme_flip_symmetry():
  # Away from exact rounding ties, quantising -x gives 255 - q(x) ...
  x = np.random.default_rng(2).uniform(-25, 25, size=(64, 64)).astype(np.float32)
  lo, hi = quantization.field_range(x, "bound", 20.0)
  q, q_neg = quantization.quantize(x, lo, hi), quantization.quantize(-x, lo, hi)
  frac = (np.clip(x, -20, 20) + 20) * 255 / 40 % 1
  not_tie = np.abs(frac - 0.5) > 1e-3
  np.testing.assert_array_equal(q_neg[not_tie], 255 - q[not_tie])
  # ... and every stored value flips exactly: dequant(255 - q) == -dequant(q).
  all_q = np.arange(256, dtype=np.uint8)
  np.testing.assert_array_equal(quantization.dequantize(255 - all_q, lo, hi),
                                -quantization.dequantize(all_q, lo, hi))


def test_minmax_flip_by_swapping_range():
  x = _smooth_flow(3, 7.0)[..., 0] + 2.0
  lo, hi = quantization.field_range(x, "minmax", 20.0)
  q = quantization.quantize(x, lo, hi)
  np.testing.assert_array_equal(quantization.dequantize(255 - q, -hi, -lo),
                                -quantization.dequantize(q, lo, hi))


def test_constant_field_and_per_field_ranges():
  zero = np.zeros((8, 8), np.float32)
  restored, lo, hi = _round_trip(zero + 1.25, "minmax")
  np.testing.assert_array_equal(restored, 1.25)
  # dequantize broadcasts one (lo, hi) per field over a stack of fields.
  q = np.full((3, 2, 2), 255, np.uint8)
  out = quantization.dequantize(q, [0.0, -1.0, 2.0], [1.0, 1.0, 4.0])
  np.testing.assert_allclose(out[:, 0, 0], [1.0, 1.0, 4.0])
