"""Video decoding with OpenCV (FFmpeg): RGB frames rescaled to a given smaller side.

A video is a file path (local, or remote such as gs://...: see `flow_tools.common.storage`),
or `EncodedFrames` (a sequence of JPEG/PNG images, as
TensorFlow Datasets stores videos).
"""

import dataclasses

import cv2
import numpy as np

from flow_tools.common import storage

# Containers may declare a frame or two more than they hold (an estimate from the
# duration); missing more than this means the file was cut short.
_MISSING_FRAMES_TOLERATED = 2


class VideoError(Exception):
  """A video cannot be used: missing, unreadable, empty, truncated or too short."""


@dataclasses.dataclass(frozen=True)
class EncodedFrames:
  """A video held as its frames' encoded images (JPEG or PNG bytes), in order."""
  images: tuple


def scaled_size(width, height, short_side):
  """(width, height) with the smaller side scaled to `short_side` (0 keeps the size)."""
  if short_side <= 0:
    return width, height
  scale = short_side / min(width, height)
  return max(1, round(width * scale)), max(1, round(height * scale))


def _decoded_images(images):
  """Yields BGR frames of `EncodedFrames.images`."""
  for number, image in enumerate(images):
    frame = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
    if frame is None:
      raise VideoError(f"frame {number} is not a decodable image")
    yield frame


def _captured_frames(path):
  """Yields BGR frames of a video file (local or remote); checks the count against the
  container's."""
  if not storage.isfile(path):
    raise VideoError("no such file")
  with storage.local_copy(path) as local_path:
    # One decoder thread: extraction parallelises over videos, and FFmpeg's own
    # threads would compete with the other workers (and cost twice the CPU per frame).
    capture = cv2.VideoCapture(local_path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
    try:
      if not capture.isOpened():
        raise VideoError("cannot be opened as a video")
      declared = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
      decoded = 0
      while True:
        ok, frame = capture.read()
        if not ok:
          break
        decoded += 1
        yield frame
    finally:
      capture.release()
  if decoded and declared > 0 and decoded < declared - max(_MISSING_FRAMES_TOLERATED,
                                                           0.02 * declared):
    raise VideoError(f"truncated: decoded {decoded} of {declared} declared frames")


def iter_frames(source, short_side=256, rgb=True):
  """Yields a video's frames as uint8 arrays, smaller side `short_side`.

  Args:
    source: a video file path, or `EncodedFrames`.
    short_side: the smaller side of the yielded frames (0 keeps the size).
    rgb: RGB frames, or with False BGR as decoded (for handing straight back to OpenCV).
  Raises:
    VideoError: the file is missing, cannot be opened, holds no frame, or
      decodes to clearly fewer frames than its container declares; an image
      of `EncodedFrames` cannot be decoded.
  """
  frames = (_decoded_images(source.images) if isinstance(source, EncodedFrames)
            else _captured_frames(source))
  size = None
  for frame in frames:
    if size is None:
      size = scaled_size(frame.shape[1], frame.shape[0], short_side)
      shrink = size[0] * size[1] < frame.shape[0] * frame.shape[1]
      interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    if size != (frame.shape[1], frame.shape[0]):
      frame = cv2.resize(frame, size, interpolation=interpolation)
    yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if rgb else frame
  if size is None:
    raise VideoError("no decodable frame (empty or corrupt)")


def read_frames(source, short_side=256):
  """All frames of a video (path or `EncodedFrames`) as one uint8 array, T x H x W x 3 (RGB)."""
  return np.stack(list(iter_frames(source, short_side)))


def to_gray(rgb):
  """Grayscale uint8 frame for optical flow."""
  return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
