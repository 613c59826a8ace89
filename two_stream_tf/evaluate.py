"""Evaluates a trained stream with the paper's protocol (25 frames/stacks x 10 crops per video).

  python -m two_stream_tf.evaluate --model_dir=DIR [--subset=test|train] [--checkpoint=PATH]

Writes per-video softmax scores of each head (`<model_dir>/scores_<subset>_split<N>.npz`,
the input of two_stream_tf.fuse), a JSON report (accuracy, mean class accuracy,
per-class accuracy) beside it and TensorBoard summaries in `<model_dir>/eval_<subset>`
(accuracies, confusion matrices, sample views); prints a short table.
"""

import os
import sys

from absl import app
from absl import flags

from flow_tools import datasets
from two_stream_tf import streams

flags.DEFINE_string("model_dir", None, "A model_dir written by two_stream_tf.train.")
flags.DEFINE_enum("subset", "test", sorted(datasets.SUBSETS),
                  "The split's test videos (the paper's numbers) or its train videos "
                  "(scores to fit the fusion SVM on).")
flags.DEFINE_string("checkpoint", None, "Checkpoint prefix, e.g. MODEL_DIR/checkpoints/ckpt-2000 "
                    "(default: the newest readable one).")
flags.DEFINE_list("records_dirs", None, "Records to read instead of the ones trained on.")
flags.DEFINE_integer("num_positions", streams.NUM_POSITIONS, "Frames or stacks per video.",
                     lower_bound=1)
flags.DEFINE_integer("batch_size", 50, "Views per forward pass: a multiple of 10, the views "
                     "of a position (5 positions by default).", lower_bound=10)
flags.register_validator("batch_size", lambda n: n % streams.VIEWS_PER_POSITION == 0,
                         f"must be a multiple of {streams.VIEWS_PER_POSITION}, the views of "
                         "a position")
flags.DEFINE_string("output", None,
                    "Score file (default: <model_dir>/scores_<subset>_split<N>.npz).")
flags.DEFINE_bool("jit_compile", False, "XLA-compile the forward pass.")
flags.DEFINE_enum("input_cache", "auto", list(streams.INPUT_CACHES),
                  "Where the views' steps are read from: memory (the selected records read "
                  "into memory once), disk (through each file's index), or auto: memory when "
                  "they take at most half the available memory.")
flags.DEFINE_bool("accept_other_records", False,
                  "Score --records_dirs extracted with other settings than the training "
                  "records (another flow algorithm, size, quantisation); the score file says "
                  "so. Off: refused, naming the difference.")
flags.mark_flags_as_required(["model_dir"])

FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  # pylint: disable=import-outside-toplevel
  from two_stream_tf import data
  from two_stream_tf import evaluation
  data.configure_input_process()
  try:
    report = evaluation.evaluate(
        FLAGS.model_dir, subset=FLAGS.subset, checkpoint=FLAGS.checkpoint,
        records_dirs=FLAGS.records_dirs, num_positions=FLAGS.num_positions,
        batch_size=FLAGS.batch_size, output=FLAGS.output, jit_compile=FLAGS.jit_compile,
        accept_other_records=FLAGS.accept_other_records, input_cache=FLAGS.input_cache)
  except (ValueError, FileNotFoundError) as e:
    sys.exit(f"error: {e}")
  print(evaluation.report_table(report["heads"], (
      f"{report['stream']} stream, step {report['step']}, split {report['split']} "
      f"{report['subset']} videos, {FLAGS.num_positions} x {streams.VIEWS_PER_POSITION} views:")))
  print(f"scores: {report['scores']}\nreport: {os.path.splitext(report['scores'])[0]}.json")


if __name__ == "__main__":
  app.run(main)
