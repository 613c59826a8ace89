"""Fuses the spatial and temporal streams' test scores: averaging and a linear SVM.

  python -m two_stream_tf.fuse --spatial_scores=S/scores_test_split1.npz \
      --temporal_scores=T/scores_test_split1.npz \
      [--spatial_train_scores=S/scores_train_split1.npz --temporal_train_scores=...] \
      --output_dir=DIR

Score files come from two_stream_tf.evaluate. With train-split scores, a Crammer & Singer
linear SVM per head is fitted on them (C by cross-validation on them only) and saved as
plain arrays (`DIR/svm_<head>.npz`). Writes `DIR/fusion_report.json` and prints a table
like the paper's Table 3, per head.
"""

import os
import sys

from absl import app
from absl import flags

flags.DEFINE_string("spatial_scores", None, "Spatial stream's test scores (.npz).")
flags.DEFINE_string("temporal_scores", None, "Temporal stream's test scores (.npz).")
flags.DEFINE_string("spatial_train_scores", None, "Spatial train-split scores (for the SVM).")
flags.DEFINE_string("temporal_train_scores", None, "Temporal train-split scores (for the SVM).")
flags.DEFINE_float("temporal_weight", 0.5, "Averaging weight of the temporal stream "
                   "(0.5: the paper's plain average).", lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_list("svm_c", ["0.01", "0.1", "1", "10", "100"],
                  "SVM C values tried by cross-validation on the train scores.")
flags.DEFINE_string("output_dir", None, "Where the report and fitted SVMs go.")
flags.mark_flags_as_required(["spatial_scores", "temporal_scores", "output_dir"])
flags.register_multi_flags_validator(
    ["spatial_train_scores", "temporal_train_scores"],
    lambda v: (v["spatial_train_scores"] is None) == (v["temporal_train_scores"] is None),
    "give both --spatial_train_scores and --temporal_train_scores, or neither")


def _c_grid(values):
  try:
    grid = tuple(float(c) for c in values)
  except ValueError:
    return None
  return grid if grid and all(c > 0 for c in grid) else None


flags.register_validator("svm_c", lambda v: _c_grid(v) is not None,
                         "--svm_c must be positive numbers")

FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  # pylint: disable=import-outside-toplevel
  from flow_tools import records
  from two_stream_tf import fusion
  try:
    test = fusion.aligned(fusion.load_scores(FLAGS.spatial_scores),
                          fusion.load_scores(FLAGS.temporal_scores),
                          FLAGS.spatial_scores, FLAGS.temporal_scores)
    svms = None
    if FLAGS.spatial_train_scores:
      train = fusion.aligned(fusion.load_scores(FLAGS.spatial_train_scores),
                             fusion.load_scores(FLAGS.temporal_train_scores),
                             FLAGS.spatial_train_scores, FLAGS.temporal_train_scores)
      if list(train) != list(test):
        raise fusion.FusionError(f"heads differ: train scores have {list(train)}, test "
                                 f"scores {list(test)}")
      svms = {}
      for head, (a, b) in train.items():
        if a.class_names != test[head][0].class_names:
          raise fusion.FusionError(f"{head}: class lists differ between train and test scores")
        svms[head] = fusion.fit_svm(a.scores, b.scores, a.labels, a.class_names,
                                    _c_grid(FLAGS.svm_c))
  except fusion.FusionError as e:
    sys.exit(f"error: {e}")
  os.makedirs(FLAGS.output_dir, exist_ok=True)
  report = fusion.fusion_report(test, FLAGS.temporal_weight, svms)
  for head, model in (svms or {}).items():
    path = os.path.join(FLAGS.output_dir, f"svm_{head}.npz")
    model.save(path)
    report[head]["svm"].update({"c": model.c, "cv_accuracy": model.cv_accuracy, "file": path})
  report_path = os.path.join(FLAGS.output_dir, "fusion_report.json")
  records.write_json(report_path, {"spatial_scores": FLAGS.spatial_scores,
                                   "temporal_scores": FLAGS.temporal_scores,
                                   "temporal_weight": FLAGS.temporal_weight, "heads": report})
  print(fusion.report_table(report))
  print(f"report: {report_path}")


if __name__ == "__main__":
  app.run(main)
