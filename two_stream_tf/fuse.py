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
  from flow_tools.common import storage
  from two_stream_tf import fusion
  try:
    report = fusion.fuse(FLAGS.spatial_scores, FLAGS.temporal_scores, FLAGS.output_dir,
                         FLAGS.spatial_train_scores, FLAGS.temporal_train_scores,
                         FLAGS.temporal_weight, _c_grid(FLAGS.svm_c))
  except (fusion.FusionError, storage.OutputError) as e:
    sys.exit(f"error: {e}")
  print(fusion.report_table(report["heads"]))
  print(f"report: {fusion.report_path(FLAGS.output_dir)}")


if __name__ == "__main__":
  app.run(main)
