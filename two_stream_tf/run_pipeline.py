"""Runs the main job on the embedded data end to end (two_stream_tf.pipeline).

  python -m two_stream_tf.run_pipeline --flagfile=experiments/quickstart.flags

Synthetic UCF-101 and HMDB-51 -> records -> train both streams -> evaluate -> fuse ->
export -> predict, each stage the app a user would run; prints a results table.
"""

import dataclasses
import os
import sys
import time

from absl import app
from absl import flags

from flow_tools import datasets
from flow_tools.common import interrupts
from flow_tools.extraction import flow
from two_stream_tf import pipeline

_JOB = pipeline.JobSettings()
_REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(pipeline.__file__)))

flags.DEFINE_string("work_dir", "runs/quickstart", "Where data, records, models and results go.")
flags.DEFINE_integer("seed", _JOB.seed, "Seed of the synthetic data and of training.")
flags.DEFINE_integer("width", _JOB.width, "Synthetic frame width.")
flags.DEFINE_integer("height", _JOB.height, "Synthetic frame height.")
flags.DEFINE_integer("min_frames", _JOB.min_frames, "Fewest frames of a synthetic clip.")
flags.DEFINE_integer("max_frames", _JOB.max_frames, "Most frames of a synthetic clip.")
flags.DEFINE_integer("ucf_clips_per_group", _JOB.ucf_clips_per_group,
                     "Synthetic UCF-101 clips per group (6 groups).")
flags.DEFINE_integer("hmdb_videos_per_class", _JOB.hmdb_videos_per_class,
                     "Synthetic HMDB-51 videos per class.")
flags.DEFINE_enum("algorithm", _JOB.algorithm, sorted(flow.ALGORITHMS), "Optical flow algorithm.")
flags.DEFINE_integer("short_side", _JOB.short_side,
                     "Rescale frames to this smaller side (0: keep).")
flags.DEFINE_integer("num_workers", _JOB.num_workers, "Extraction processes.", lower_bound=1)
flags.DEFINE_string("spatial_flagfile", _JOB.spatial_flagfile,
                    "two_stream_tf.train flagfile of the spatial stream.")
flags.DEFINE_string("temporal_flagfile", _JOB.temporal_flagfile,
                    "two_stream_tf.train flagfile of the temporal stream.")
flags.DEFINE_integer("train_steps", _JOB.train_steps,
                     "Overrides the flagfiles' --train_steps (a quick run).", lower_bound=1)
flags.DEFINE_integer("num_positions", _JOB.num_positions,
                     "Frames or stacks per test video (x 10 crops).", lower_bound=1)

FLAGS = flags.FLAGS


def _found_flagfile(name, path):
  """`path` of the flag `name`, found from the working directory, else beside the flagfiles
  of the command line, else in the repository (the shipped ones are relative to it): the
  job runs from any directory."""
  if os.path.isabs(path) or os.path.isfile(path):
    return path
  given = [arg.split("=", 1)[1] for arg in sys.argv[1:] if arg.startswith("--flagfile=")]
  places = [os.path.dirname(os.path.abspath(f)) for f in given] + [_REPOSITORY]
  for place in places:
    if os.path.isfile(os.path.join(place, path)):
      return os.path.join(place, path)
  raise FileNotFoundError(f"--{name}={path}: no such file here, beside "
                          f"{', '.join(given) or 'the command line flagfiles'} or in {_REPOSITORY}")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  settings = pipeline.JobSettings(**{f: FLAGS[f].value
                                     for f in pipeline.JobSettings.__dataclass_fields__})
  try:
    settings = dataclasses.replace(settings, **{
        name: _found_flagfile(name, getattr(settings, name))
        for name in ("spatial_flagfile", "temporal_flagfile")})
  except FileNotFoundError as e:
    sys.exit(f"error: {e}")
  start = time.time()
  def kept():
    return (f"what is done is kept in {FLAGS.work_dir}; run the same command again: "
            "the records and checkpoints are reused, training resumes, the later stages "
            "are redone")
  try:
    with interrupts.one_line_on_interrupt(kept):
      table = pipeline.run(FLAGS.work_dir, settings)
  except (pipeline.StageError, datasets.DatasetError) as e:
    sys.exit(f"error: {e}")
  print("\n" + table)
  print(f"\ndone in {time.time() - start:.0f} s. Outputs under {FLAGS.work_dir}: records/, "
        "spatial/ and temporal/ (checkpoints, scores), fusion/, export/ (SavedModels), logs/, "
        f"predictions.json. TensorBoard: tensorboard --logdir {FLAGS.work_dir}")


if __name__ == "__main__":
  app.run(main)
