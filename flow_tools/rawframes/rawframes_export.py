"""Records to frame folders that other tools read (`flow_tools.rawframes.layouts`), with MMAction2's
annotation lists, so that a user of those tools can train on our frames and flow.

Frames are written as the JPEG bytes they are. Flow stored with the 'bound' scheme at the
bound asked for is written byte for byte too; flow stored otherwise ('minmax', the
paper's, or another bound) is re-quantised to the bound, and the error that adds is
measured and returned.
"""

import concurrent.futures
import dataclasses
import os
import threading
import time

import cv2
import numpy as np

from flow_tools import records
from flow_tools.common import storage
from flow_tools.extraction import quantization
from flow_tools.rawframes import annotation_lists
from flow_tools.rawframes import layouts
from flow_tools.records import record_parsing

_STAGING = ".incomplete"


@dataclasses.dataclass
class RequantisationError:
  """What re-quantising flow to [-bound, bound] added, over every value of every field
  (decoded flow before vs after, in pixels); `clipped` is the share of values beyond the
  bound, set to it."""
  mean_abs: float
  max_abs_within_bound: float
  clipped: float


@dataclasses.dataclass
class ExportSummary:
  num_videos: int
  num_written: int
  num_kept: int  # written by an earlier run
  lists: list
  seconds: float
  byte_for_byte: bool  # flow written as stored; else `error` says what re-quantising added
  error: RequantisationError = None  # over the videos this run wrote


def _decode_gray(data):
  return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)


def _requantise(x, y, ranges, bound, jpeg_quality, totals):
  """One field's x and y JPEGs re-quantised to [-bound, bound]; adds its error to `totals`
  (sum of |error|, values, max |error| within the bound, clipped values)."""
  out = []
  for data, lo, hi in ((x, ranges[0], ranges[1]), (y, ranges[2], ranges[3])):
    before = quantization.dequantize(_decode_gray(data), lo, hi)
    encoded = quantization.encode_jpeg(quantization.quantize(before, -bound, bound),
                                       jpeg_quality)
    after = quantization.dequantize(_decode_gray(encoded), -bound, bound)
    error = np.abs(after - before)
    within = np.abs(before) <= bound
    totals[0] += float(error.sum())
    totals[1] += error.size
    totals[2] = max(totals[2], float(error[within].max(initial=0.0)))
    totals[3] += int(error.size - within.sum())
    out.append(encoded)
  return out


def export_records(records_dir, output_dir, layout=layouts.LAYOUTS["mmaction2"], bound=None,
                   lists_dir=None, num_threads=8):
  """Writes every video of `records_dir` in `layout` under `output_dir`, then the
  annotation lists of every split into `lists_dir`.

  Resumable: a video whose folders exist is kept (each folder appears whole); the lists
  are written last.
  Args:
    layout: a `layouts.FolderLayout` whose flow counts T - 1 fields ('mmaction2', the
      default, 'denseflow' or 'feichtenhofer').
    bound: the flow bound in pixels; default: the records' own ('bound' records), else
      the layout's.
    lists_dir: default: `output_dir`'s parent (MMAction2's data/<dataset>/ holds its lists
      beside rawframes/).
  Returns:
    An `ExportSummary`.
  """
  start = time.time()
  manifest = records.read_manifest(records_dir)
  config = manifest["config"]
  stored_bound = config["bound"] if config["quantization"] == "bound" else None
  bound = float(bound or stored_bound or layout.bound)
  byte_for_byte = stored_bound == bound
  lists_dir = lists_dir or os.path.dirname(os.path.abspath(output_dir))
  staging = os.path.join(output_dir, _STAGING)
  totals = [0.0, 0, 0.0, 0]
  lock = threading.Lock()

  def export(item):
    video_id, info = item
    if all(storage.isdir(f) for f in layout.folders(output_dir, video_id)):
      return False
    frames = record_parsing.read_steps(records.video_path(records_dir, info, records.RGB),
                                records.RGB)["image/encoded"].numpy().tolist()
    flow = record_parsing.read_steps(records.video_path(records_dir, info, records.FLOW),
                              records.FLOW)
    xs = flow["flow/x/encoded"].numpy().tolist()
    ys = flow["flow/y/encoded"].numpy().tolist()
    if not byte_for_byte:
      own = [0.0, 0, 0.0, 0]
      pairs = [_requantise(x, y, r, bound, config["jpeg_quality"], own)
               for x, y, r in zip(xs, ys, flow["flow/range"].numpy())]
      xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
      with lock:
        totals[0] += own[0]
        totals[1] += own[1]
        totals[2] = max(totals[2], own[2])
        totals[3] += own[3]
    layouts.write_video(layout, output_dir, video_id, frames, xs, ys,
                        os.path.join(staging, f"{info['number']:07d}"))
    return True

  videos = sorted(manifest["videos"].items())
  with concurrent.futures.ThreadPoolExecutor(num_threads) as pool:
    written = sum(pool.map(export, videos))
  if storage.exists(staging):
    storage.rmtree(staging)
  lists = annotation_lists.write_lists(
      lists_dir, manifest["dataset"], manifest["class_names"],
      {v: (info["frames"], info["label"], info["splits"]) for v, info in videos},
      manifest["num_splits"])
  error = None
  if not byte_for_byte and totals[1]:
    error = RequantisationError(totals[0] / totals[1], totals[2], totals[3] / totals[1])
  return ExportSummary(len(videos), written, len(videos) - written, lists,
                       time.time() - start, byte_for_byte, error)
