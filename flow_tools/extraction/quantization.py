"""Flow quantisation to uint8 and JPEG coding.

Both schemes map each flow component linearly from a range [lo, hi] to 0..255
and store that range per field, so one formula inverts either:

    flow = (q - 127.5) * (hi - lo) / 255 + (hi + lo) / 2

(the same line as q * (hi - lo) / 255 + lo, written about the centre so that a flip,
q -> 255 - q with (lo, hi) -> (-hi, -lo), negates the float32 result exactly).

* 'minmax' (the paper): lo, hi are the field component's own min and max.
* 'bound' (TSN/I3D): values are clipped to [-bound, bound] and lo, hi = -bound, bound.
  Zero sits at 127.5, so a horizontal flip negates x exactly as q -> 255 - q.

"""

import cv2
import numpy as np

SCHEMES = ("minmax", "bound")


def field_range(component, scheme, bound):
  """(lo, hi) as float32 for one flow component (H x W) under `scheme`."""
  if scheme == "minmax":
    lo, hi, _, _ = cv2.minMaxLoc(np.ascontiguousarray(component, np.float32))  # one pass
    return np.float32(lo), np.float32(hi)
  if scheme == "bound":
    return np.float32(-bound), np.float32(bound)
  raise ValueError(f"unknown quantisation scheme {scheme!r}; choose from {SCHEMES}")


def quantize(component, lo, hi):
  """Flow component (float, H x W) -> uint8: the linear map [lo, hi] -> [0, 255], rounded,
  values outside [lo, hi] saturated."""
  lo, hi = float(np.float32(lo)), float(np.float32(hi))
  if hi <= lo:
    return np.zeros(component.shape, np.uint8)
  scale = 255.0 / (hi - lo)
  component = np.ascontiguousarray(component, np.float32)
  # One saturating, rounding pass (numpy needs five: subtract, scale, clip, round, cast);
  # the second input has weight 0.
  return cv2.addWeighted(component, scale, component, 0.0, -lo * scale, dtype=cv2.CV_8U)


def dequantize(q, lo, hi):
  """uint8 (any shape) -> float32 flow; lo and hi broadcast against q's leading axes."""
  lo = np.asarray(lo, np.float32)
  hi = np.asarray(hi, np.float32)
  extra = (1,) * (np.ndim(q) - lo.ndim)
  lo, hi = lo.reshape(lo.shape + extra), hi.reshape(hi.shape + extra)
  step = (hi - lo) / np.float32(255.0)
  centre = (hi + lo) / np.float32(2.0)
  return (np.asarray(q, np.float32) - np.float32(127.5)) * step + centre


def encode_jpeg(image, quality):
  """uint8 image, H x W gray or H x W x 3 in OpenCV's BGR order -> JPEG bytes."""
  ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
  if not ok:
    raise ValueError("JPEG encoding failed")
  return data.tobytes()


def decode_gray_jpeg(data):
  """JPEG bytes -> uint8 H x W."""
  image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
  if image is None:
    raise ValueError("JPEG decoding failed")
  return image
