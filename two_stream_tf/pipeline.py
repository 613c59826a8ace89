"""The main job on the embedded data, end to end, with the library the apps use.

  python -m two_stream_tf.pipeline --flagfile=experiments/quickstart.flags

Stages so far: generate the synthetic UCF-101 and HMDB-51 layouts, then extract
their frames and optical flow into records (resumable). Prints a results table.
"""

import os
import sys
import time

from absl import app
from absl import flags

from flow_tools import datasets
from flow_tools import encode
from flow_tools import flow
from flow_tools import synthetic

flags.DEFINE_string("work_dir", "runs/quickstart", "Where data, records and results go.")
flags.DEFINE_integer("seed", 0, "Seed of the synthetic data.")
flags.DEFINE_integer("width", 160, "Synthetic frame width.")
flags.DEFINE_integer("height", 120, "Synthetic frame height.")
flags.DEFINE_integer("min_frames", 20, "Fewest frames of a synthetic clip.")
flags.DEFINE_integer("max_frames", 32, "Most frames of a synthetic clip.")
flags.DEFINE_integer("ucf_clips_per_group", 2, "Synthetic UCF-101 clips per group (6 groups).")
flags.DEFINE_integer("hmdb_videos_per_class", 10, "Synthetic HMDB-51 videos per class.")
flags.DEFINE_enum("algorithm", "dis", sorted(flow.ALGORITHMS), "Optical flow algorithm.")
flags.DEFINE_integer("short_side", 0, "Rescale frames to this smaller side (0: keep).")
flags.DEFINE_integer("num_workers", 2, "Extraction processes.", lower_bound=1)
flags.DEFINE_integer("videos_per_shard", 32, "Videos per TFRecord shard.", lower_bound=1)

FLAGS = flags.FLAGS

# Where each synthetic layout puts its videos, relative to its dataset folder.
_VIDEO_DIRS = {"ucf101": "", "hmdb51": "hmdb51_org"}


def _directory_megabytes(path):
  return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path)) / 1e6


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from flow_tools import extraction  # pylint: disable=import-outside-toplevel
  data_dir = os.path.join(FLAGS.work_dir, "data")
  start = time.time()
  synthetic.generate(data_dir, FLAGS.seed, FLAGS.width, FLAGS.height,
                     (FLAGS.min_frames, FLAGS.max_frames), 6, FLAGS.ucf_clips_per_group,
                     FLAGS.hmdb_videos_per_class)
  print(f"[data] synthetic UCF-101 and HMDB-51 layouts in {data_dir} ({time.time() - start:.0f} s)")
  config = encode.ExtractionConfig(algorithm=FLAGS.algorithm, short_side=FLAGS.short_side)
  rows = []
  for name, video_dir in _VIDEO_DIRS.items():
    index = datasets.load_dataset(name, os.path.join(data_dir, name, video_dir))
    out = os.path.join(FLAGS.work_dir, "records", name)
    summary = extraction.extract(index, out, config, FLAGS.num_workers, FLAGS.videos_per_shard,
                                 progress=sys.stdout.isatty())
    print(f"[flow] {name}: records in {out} ({summary.seconds:.0f} s)")
    rows.append((name, len(index.class_names), summary.num_videos, summary.num_extracted,
                 len(summary.failures), summary.flow_pairs, _directory_megabytes(out)))
  print("\n| dataset | classes | videos | extracted | failed | flow pairs | records MB |")
  print("|---|---|---|---|---|---|---|")
  for row in rows:
    print("| {} | {} | {} | {} | {} | {} | {:.1f} |".format(*row))
  print(f"\ndone in {time.time() - start:.0f} s; outputs under {FLAGS.work_dir}")
  if any(row[4] for row in rows):
    sys.exit(3)


if __name__ == "__main__":
  app.run(main)
