"""Per-video encoding: the time spent inside the flow algorithm is accounted for."""

import time

import numpy as np

from flow_tools.extraction import encoding
from flow_tools.extraction import quantization
from flow_tools.extraction import video

_SLEEP = 0.02  # seconds per flow call, far above timer resolution and encoding cost


def test_flow_seconds_is_the_time_inside_the_flow_algorithm():
  frames = np.random.default_rng(0).integers(0, 256, (6, 24, 32, 3), np.uint8)
  source = video.EncodedFrames(tuple(quantization.encode_jpeg(f, 95) for f in frames))

  def slow_flow(prev, nxt):
    time.sleep(_SLEEP)
    return np.zeros(prev.shape + (2,), np.float32)

  config = encoding.ExtractionConfig(algorithm="dis", short_side=0, backward=True)
  start = time.perf_counter()
  encoded = encoding.encode_video(source, config, slow_flow)
  elapsed = time.perf_counter() - start
  calls = 2 * (len(frames) - 1)  # forward and backward fields
  assert calls * _SLEEP <= encoded.flow_seconds <= elapsed
  # The rest (decoding and encoding 6 tiny frames) is a small part of the whole.
  assert encoded.flow_seconds > 0.5 * elapsed
