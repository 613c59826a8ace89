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

flags.DEFINE_string("model_dir", None, "A model_dir written by two_stream_tf.train.")
flags.DEFINE_enum("subset", "test", sorted(datasets.SUBSETS),
                  "The split's test videos (the paper's numbers) or its train videos "
                  "(scores to fit the fusion SVM on).")
flags.DEFINE_string("checkpoint", None, "Checkpoint prefix (default: the latest in model_dir).")
flags.DEFINE_list("records_dirs", None, "Records to read instead of the ones trained on.")
flags.DEFINE_integer("num_positions", 25, "Frames or stacks per video.", lower_bound=1)
flags.DEFINE_integer("batch_size", 50, "Views per forward pass.", lower_bound=1)
flags.DEFINE_string("output", None, "Score file (default: <model_dir>/scores_<subset>_split<N>.npz).")
flags.DEFINE_bool("jit_compile", False, "XLA-compile the forward pass.")
flags.mark_flags_as_required(["model_dir"])

FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  # pylint: disable=import-outside-toplevel
  from flow_tools import records
  from two_stream_tf import data
  from two_stream_tf import evaluation
  from two_stream_tf import trained
  data.configure_input_process()
  try:
    model, spec, step = trained.load(FLAGS.model_dir, FLAGS.checkpoint)
    head_scores, sample_views = evaluation.score_videos(model, spec, FLAGS.subset, FLAGS.batch_size,
                                          FLAGS.num_positions, FLAGS.records_dirs,
                                          FLAGS.jit_compile)
  except (ValueError, FileNotFoundError) as e:
    sys.exit(f"error: {e}")
  output = FLAGS.output or os.path.join(FLAGS.model_dir,
                                        f"scores_{FLAGS.subset}_split{spec.split}.npz")
  report = evaluation.accuracy_report(head_scores)
  evaluation.save_scores(output, head_scores)
  report_path = os.path.splitext(output)[0] + ".json"
  records.write_json(report_path, {"model_dir": FLAGS.model_dir, "step": step,
                                   "stream": spec.stream, "split": spec.split,
                                   "subset": FLAGS.subset, "views_per_video":
                                   FLAGS.num_positions * 10, "heads": report})
  evaluation.write_summaries(os.path.join(FLAGS.model_dir, f"eval_{FLAGS.subset}"), head_scores,
                             report, step, spec.stream, sample_views)
  print(evaluation.report_table(report, f"{spec.stream} stream, step {step}, split "
                                        f"{spec.split} {FLAGS.subset} videos, "
                                        f"{FLAGS.num_positions} x 10 views:"))
  print(f"scores: {output}\nreport: {report_path}")


if __name__ == "__main__":
  app.run(main)
