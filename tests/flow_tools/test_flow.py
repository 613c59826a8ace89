"""Flow accuracy against known ground truth: a real photo warped by a known smooth field."""

import cv2
import numpy as np
import pytest
from sklearn.datasets import load_sample_image

from flow_tools.extraction import flow

# Mean endpoint error bounds in pixels (measured: tvl1 0.11, dis 0.15, farneback 0.51
# with outliers in the untextured sky; median 0.07).
EPE_BOUNDS = {"tvl1": (0.2, 0.1), "dis": (0.25, 0.2), "farneback": (0.8, 0.15)}


def _field(x, y, w, h):
  """A smooth non-affine field, up to ~4 px."""
  dx = 1.5 + 0.01 * (x - w / 2) - 0.006 * (y - h / 2) + np.sin(2 * np.pi * y / h)
  dy = -1.0 + 0.004 * (x - w / 2) + 0.008 * (y - h / 2) + 0.8 * np.cos(2 * np.pi * x / w)
  return np.stack([dx, dy], axis=-1)


@pytest.fixture(scope="module")
def warped_pair():
  """(frame0, frame1, true forward flow d, true backward flow b).

  frame1(p + d(p)) = frame0(p), and b maps frame1 back: frame0(q + b(q)) = frame1(q).
  """
  gray = cv2.cvtColor(load_sample_image("china.jpg"), cv2.COLOR_RGB2GRAY)
  frame0 = gray[100:356, 100:420].astype(np.float32)
  h, w = frame0.shape
  ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
  # frame1(y) = frame0(x) where x + d(x) = y: solve x = y - d(x) by fixed-point iteration.
  px, py = xs.copy(), ys.copy()
  for _ in range(60):
    d = _field(px, py, w, h)
    px, py = xs - d[..., 0], ys - d[..., 1]
  frame1 = cv2.remap(frame0, px.astype(np.float32), py.astype(np.float32), cv2.INTER_CUBIC,
                     borderMode=cv2.BORDER_REFLECT)
  def as_uint8(f):
    return np.clip(np.rint(f), 0, 255).astype(np.uint8)
  return (as_uint8(frame0), as_uint8(frame1), _field(xs, ys, w, h),
          np.stack([px - xs, py - ys], axis=-1))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EPE_BOUNDS))
def test_endpoint_error_against_ground_truth(warped_pair, name):
  frame0, frame1, forward, backward = warped_pair
  compute = flow.create(name)
  for first, second, truth in ((frame0, frame1, forward), (frame1, frame0, backward)):
    estimate = compute(first, second)
    assert estimate.shape == truth.shape and estimate.dtype == np.float32
    epe = np.linalg.norm(estimate - truth, axis=-1)[16:-16, 16:-16]
    mean_bound, median_bound = EPE_BOUNDS[name]
    assert epe.mean() < mean_bound and np.median(epe) < median_bound


def test_cuda_algorithms_fail_clearly_without_cuda():
  if flow.cuda_available():
    pytest.skip("this OpenCV has CUDA")
  for name in ("brox_cuda", "tvl1_cuda"):
    with pytest.raises(flow.FlowAlgorithmError, match=f"{name}.*CUDA"):
      flow.create(name)


def test_unknown_algorithm():
  with pytest.raises(flow.FlowAlgorithmError, match="unknown flow algorithm 'lk'"):
    flow.create("lk")
