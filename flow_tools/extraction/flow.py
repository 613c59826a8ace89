"""Optical flow algorithms behind one registry.

Every algorithm maps two grayscale uint8 frames to an H x W x 2 float32 field in
pixels, (dx, dy), such that the pixel at p in the first frame moves to p + d(p)
in the second. A video of T frames gives T - 1 forward fields, and optionally
T - 1 backward fields (field t maps frame t + 1 back to frame t).
"""

import dataclasses

import cv2
import numpy as np


class FlowAlgorithmError(RuntimeError):
  """The requested algorithm is unknown or not available in this OpenCV."""


@dataclasses.dataclass(frozen=True)
class FlowAlgorithm:
  name: str
  description: str
  make: object  # () -> callable(prev_gray, next_gray) -> H x W x 2 float32
  needs_cuda: bool = False


def _tvl1():
  algorithm = cv2.optflow.DualTVL1OpticalFlow_create()
  return lambda prev, nxt: algorithm.calc(prev, nxt, None)


def _dis():
  algorithm = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
  return lambda prev, nxt: algorithm.calc(prev, nxt, None)


def _farneback():
  return lambda prev, nxt: cv2.calcOpticalFlowFarneback(
      prev, nxt, None, pyr_scale=0.5, levels=3, winsize=15, iterations=3,
      poly_n=5, poly_sigma=1.2, flags=0)


def _cuda(create, as_float):
  algorithm = create()
  prev_gpu, next_gpu = cv2.cuda_GpuMat(), cv2.cuda_GpuMat()

  def compute(prev, nxt):
    if as_float:  # Brox works on [0, 1] float32 images.
      prev, nxt = (np.float32(prev) / 255.0, np.float32(nxt) / 255.0)
    prev_gpu.upload(prev)
    next_gpu.upload(nxt)
    return algorithm.calc(prev_gpu, next_gpu, None).download()
  return compute


def _brox_cuda():
  # Parameters of the OpenCV GPU Brox sample that the paper's flow came from.
  return _cuda(lambda: cv2.cuda.BroxOpticalFlow_create(0.197, 50.0, 0.8, 10, 77, 10), True)


def _tvl1_cuda():
  return _cuda(cv2.cuda.OpticalFlowDual_TVL1_create, False)


ALGORITHMS = {a.name: a for a in (
    FlowAlgorithm("tvl1", "TV-L1 (cv2.optflow), the TSN/I3D standard", _tvl1),
    FlowAlgorithm("dis", "DIS, medium preset: fast, slightly less accurate", _dis),
    FlowAlgorithm("farneback", "Farneback polynomial expansion", _farneback),
    FlowAlgorithm("brox_cuda", "Brox et al. 2004 on CUDA, as in the paper", _brox_cuda, True),
    FlowAlgorithm("tvl1_cuda", "TV-L1 on CUDA", _tvl1_cuda, True),
)}


def cuda_available():
  """Whether this OpenCV was built with CUDA and sees a device."""
  try:
    return cv2.cuda.getCudaEnabledDeviceCount() > 0
  except (AttributeError, cv2.error):
    return False


def create(name):
  """A flow function `(prev_gray, next_gray) -> H x W x 2 float32` for algorithm `name`."""
  if name not in ALGORITHMS:
    raise FlowAlgorithmError(f"unknown flow algorithm {name!r}; choose from {sorted(ALGORITHMS)}")
  algorithm = ALGORITHMS[name]
  if algorithm.needs_cuda and not cuda_available():
    raise FlowAlgorithmError(
        f"flow algorithm {name!r} needs OpenCV built with CUDA and a GPU; the installed "
        f"OpenCV {cv2.__version__} has none (PyPI wheels never do): use tvl1, dis or farneback")
  compute = algorithm.make()
  return lambda prev, nxt: np.asarray(compute(prev, nxt), dtype=np.float32)

