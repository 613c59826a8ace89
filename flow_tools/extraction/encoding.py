"""One video to JPEG frames and quantised JPEG flow: the per-video work of extraction.

Frames are streamed (decode, flow in small batches, encode, drop), so memory does
not grow with video length. Pure OpenCV/numpy: worker processes never
import TensorFlow.
"""

import dataclasses
import os
import signal
import time

import cv2
import numpy as np

from flow_tools.common import process_memory
from flow_tools.extraction import flow as flow_lib
from flow_tools.extraction import quantization
from flow_tools.extraction import sources
from flow_tools.extraction import video


@dataclasses.dataclass(frozen=True)
class ExtractionConfig:
  """Everything that decides the bytes of a record; stored with the data."""
  algorithm: str = "tvl1"
  short_side: int = 256
  quantization: str = "minmax"
  bound: float = 20.0
  jpeg_quality: int = 85
  rgb_jpeg_quality: int = 90
  backward: bool = False

  def __post_init__(self):
    if self.algorithm not in flow_lib.ALGORITHMS:
      raise ValueError(f"unknown flow algorithm {self.algorithm!r}; "
                       f"choose from {sorted(flow_lib.ALGORITHMS)}")
    if self.quantization not in quantization.SCHEMES:
      raise ValueError(f"unknown quantisation {self.quantization!r}; choose from "
                       f"{quantization.SCHEMES}")
    if self.bound <= 0:
      raise ValueError(f"flow bound must be positive, got {self.bound}")
    for name in ("jpeg_quality", "rgb_jpeg_quality"):
      if not 1 <= getattr(self, name) <= 100:
        raise ValueError(f"{name} must be in 1..100, got {getattr(self, name)}")


@dataclasses.dataclass
class EncodedFlow:
  """T - 1 quantised fields: JPEG bytes per component and the (lo, hi) of each."""
  x: list
  y: list
  ranges: np.ndarray  # (T - 1) x 4 float32: x_lo, x_hi, y_lo, y_hi


@dataclasses.dataclass
class EncodedVideo:
  frames: list  # T JPEG-encoded RGB frames
  height: int
  width: int
  forward: EncodedFlow
  backward: EncodedFlow  # None unless the config asks for backward flow
  flow_seconds: float = 0.0  # spent inside the flow algorithm, of the whole encoding

  @property
  def num_frames(self):
    return len(self.frames)


def encode_flow_field(field, config):
  """H x W x 2 float flow -> (x JPEG, y JPEG, (x_lo, x_hi, y_lo, y_hi))."""
  jpegs, ranges = [], []
  # One contiguous copy per component: scanning strided views twice costs more.
  for component in np.ascontiguousarray(np.moveaxis(field, -1, 0)):
    lo, hi = quantization.field_range(component, config.quantization, config.bound)
    jpegs.append(quantization.encode_jpeg(quantization.quantize(component, lo, hi),
                                          config.jpeg_quality))
    ranges += [lo, hi]
  return jpegs[0], jpegs[1], ranges


# Flow fields computed back to back before they are encoded: keeps the algorithm's
# working set in cache (measured ~3% faster for DIS and Farneback than one at a time)
# while memory stays bounded whatever the video's length.
_FLOW_BATCH = 8


class _FlowEncoder:
  """Accumulates the encoded fields of one direction."""

  def __init__(self, config):
    self._config = config
    self.encoded = EncodedFlow([], [], [])

  def add(self, field):
    x, y, ranges = encode_flow_field(field, self._config)
    self.encoded.x.append(x)
    self.encoded.y.append(y)
    self.encoded.ranges.append(ranges)

  def finish(self):
    self.encoded.ranges = np.asarray(self.encoded.ranges, np.float32).reshape(-1, 4)
    return self.encoded


def _flow_batch(grays, compute_flow, forward, backward):
  """Flow between consecutive frames of `grays`, forward (and backward)."""
  pairs = list(zip(grays[:-1], grays[1:]))
  for encoder, order in ((forward, 1), (backward, -1)):
    if encoder is not None:
      for field in [compute_flow(*pair[::order]) for pair in pairs]:
        encoder.add(field)


def encode_video(source, config, compute_flow):
  """Decodes a video and encodes its frames and flow.

  Args:
    source: a video file path or `flow_tools.extraction.video.EncodedFrames`.
    config: an `ExtractionConfig`.
    compute_flow: a function from `flow_tools.extraction.flow.create(config.algorithm)`.
  Returns:
    An `EncodedVideo` with T frames and T - 1 flow fields.
  Raises:
    flow_tools.extraction.video.VideoError: unreadable, empty, truncated or one-frame video.
  """
  flow_seconds = 0.0

  def timed_flow(prev, nxt):
    nonlocal flow_seconds
    start = time.perf_counter()
    field = compute_flow(prev, nxt)
    flow_seconds += time.perf_counter() - start
    return field

  frames = []
  forward = _FlowEncoder(config)
  backward = _FlowEncoder(config) if config.backward else None
  grays = []  # frames awaiting flow; the first one ends the previous batch
  for bgr in video.iter_frames(source, config.short_side, rgb=False):
    frames.append(quantization.encode_jpeg(bgr, config.rgb_jpeg_quality))
    grays.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    if len(grays) > _FLOW_BATCH:
      _flow_batch(grays, timed_flow, forward, backward)
      grays = grays[-1:]
  if len(frames) < 2:
    raise video.VideoError("only one frame: no flow")
  _flow_batch(grays, timed_flow, forward, backward)
  height, width = grays[-1].shape
  return EncodedVideo(frames, height, width, forward.finish(),
                      backward.finish() if backward is not None else None, flow_seconds)


def encode_or_explain(source, config, compute_flow):
  """(`flow_tools.extraction.sources` fingerprint, `EncodedVideo` or None, None or why the video
  cannot be used) of one source: never raises for a bad video. The fingerprint is taken first, so
  a file replaced while it is encoded counts as changed on the next run."""
  fingerprint = None
  try:
    fingerprint = sources.fingerprint(source)
    return fingerprint, encode_video(source, config, compute_flow), None
  except video.VideoError as error:
    return fingerprint, None, str(error)
  except Exception as error:  # pylint: disable=broad-except
    # A codec crash on one clip must not stop a run over thousands.
    return fingerprint, None, f"{type(error).__name__}: {error}"


def configure_worker_process():
  """Settings of a process (or Beam worker) that encodes videos.

  OpenCV runs single-threaded: runners parallelise over videos, and OpenCV's own
  thread pool would oversubscribe the cores. Memory freed by the flow algorithms
  stays in the process (`process_memory`): measured at 340x256, glibc's defaults cost
  ~900 page faults and 3 ms of system time per pair for Farneback (11% of its time),
  ~200 for DIS; keeping up to 256 MB for reuse removes that.
  """
  cv2.setNumThreads(1)
  process_memory.keep_freed_memory(*process_memory.EXTRACTION_WORKER)


# Worker processes of flow_tools.extraction: one flow function per process, what writes
# each video's outcome, and the file where each notes the video it is on (so that a worker
# that dies can be named).
_worker_flow = None
_worker_save = None
_worker_note = None


@dataclasses.dataclass(frozen=True)
class Outcome:
  """What a worker tells the main process of one video it wrote (or found unusable)."""
  key: str
  facts: dict  # the manifest's facts of the video written, or None if it failed
  reason: str  # why it failed, or None
  seconds: float  # the task's time in the worker
  flow_pairs: int = 0
  flow_seconds: float = 0.0


def init_worker(algorithm, save, notes_dir=None):
  """Pool initializer: `configure_worker_process`, the flow function of `algorithm` (None:
  a worker that computes no flow), `save(key, fingerprint, EncodedVideo or None, reason)`
  -> the video's facts (None for a failure), which writes what the worker made (e.g.
  `flow_tools.extraction.output_directory.OutputDirectory.save`), and (with `notes_dir`) a file
  `notes_dir/<pid>` that holds the key of the task under way."""
  global _worker_flow, _worker_save, _worker_note
  # Ctrl-C reaches every process of the terminal's group: the main process alone handles
  # it (stops the run, says what is kept), the workers end with its pool.
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  configure_worker_process()
  _worker_flow = flow_lib.create(algorithm) if algorithm else None
  _worker_save = save
  _worker_note = os.path.join(notes_dir, str(os.getpid())) if notes_dir else None


def run_task(task, explain):
  """(key, source, config) -> the `Outcome` of `explain(source, config)` -> (fingerprint,
  EncodedVideo or None, reason or None), saved by the worker's `save` (`init_worker`)."""
  key, source, config = task
  if _worker_note:
    with open(_worker_note, "w", encoding="utf-8") as f:
      f.write(key)
  start = time.perf_counter()
  fingerprint, encoded, reason = explain(source, config)
  facts = _worker_save(key, fingerprint, encoded, reason)
  if encoded is None:
    return Outcome(key, None, reason, time.perf_counter() - start)
  return Outcome(key, facts, None, time.perf_counter() - start, encoded.num_frames - 1,
                 encoded.flow_seconds)


def encode_task(task):
  """`run_task` of `encode_or_explain`: decodes a video and computes its flow."""
  return run_task(task, lambda source, config: encode_or_explain(source, config, _worker_flow))
