"""What `fuse` writes into its output directory, and how it is read back: the report
(`fusion_report.json`), one SVM per head (plain arrays: no pickle, nothing executed when
loaded), the figures; one version check per file."""

import fnmatch
import os

import numpy as np

from flow_tools.common import storage
from flow_tools.pictures import figures as flow_figures
from two_stream_tf.fusion import methods
from two_stream_tf.fusion import report as report_lib
from two_stream_tf.fusion.checks import FusionError
from two_stream_tf.reporting import figures
from two_stream_tf.reporting import summaries

REPORT_FORMAT = "two_stream_tf.fusion_report/1"
SVM_FORMAT = "two_stream_tf.svm/1"
REPORT_FILE = "fusion_report.json"
ACCURACY_FIGURE = "fusion_report.png"
# Every name `fuse` writes into its output directory.
_OUTPUTS = (REPORT_FILE, ACCURACY_FIGURE, "svm_*.npz", "per_class_accuracy_*.png",
            "events.out.tfevents.*")
_NOT_OURS = "run two_stream_tf.fuse again"


def svm_path(output_dir: str, head: str) -> str:
  """Where `fuse` saves the SVM of `head` (and `export` finds it)."""
  return os.path.join(output_dir, f"svm_{head}.npz")


def report_path(output_dir: str) -> str:
  return os.path.join(output_dir, REPORT_FILE)


def per_class_figure_path(output_dir, head):
  return os.path.join(output_dir, f"per_class_accuracy_{head}.png")


def save_svm(path: str, model: methods.SvmFusion) -> None:
  """Writes a `methods.SvmFusion` as plain arrays in an .npz (atomically)."""
  storage.write_npz(path, {
      "format": np.array(SVM_FORMAT), "weights": model.weights, "bias": model.bias,
      "class_names": np.array(model.class_names, dtype=str), "c": np.float64(model.c),
      "cv_accuracy": np.float64(model.cv_accuracy),
      "normalisation": np.array("l2 per stream, spatial then temporal")})


def load_svm(path: str) -> methods.SvmFusion:
  """The `methods.SvmFusion` `save_svm` wrote at `path`; FusionError naming the file if it
  is not one (a file without a format entry is one from before it, checked by its arrays)."""
  try:
    with np.load(path, allow_pickle=False) as f:
      made = str(f["format"]) if "format" in f.files else SVM_FORMAT
      if made != SVM_FORMAT:
        raise FusionError(f"{path}: an SVM file of format {made}, this version reads "
                          f"{SVM_FORMAT}: {_NOT_OURS}")
      model = methods.SvmFusion(f["weights"], f["bias"], tuple(str(c) for c in f["class_names"]),
                                float(f["c"]), float(f["cv_accuracy"]))
  except (KeyError, ValueError, OSError) as e:
    if isinstance(e, FusionError):
      raise
    raise FusionError(f"{path}: not an SVM file of two_stream_tf.fuse ({e})") from e
  classes = len(model.class_names)
  if model.weights.shape != (classes, 2 * classes) or model.bias.shape != (classes,):
    raise FusionError(f"{path}: {classes} classes but weights of shape "
                      f"{model.weights.shape} and bias of shape {model.bias.shape}: the "
                      f"file was altered; {_NOT_OURS}")
  return model


def read_report(output_dir: str) -> dict:
  """The report `fuse` wrote into `output_dir`; FusionError naming the file if it is none (a
  report without a format entry is one from before it, checked by its heads)."""
  path = report_path(output_dir)
  try:
    report = storage.read_json(path)
  except (OSError, ValueError) as e:
    raise FusionError(f"{path}: no fusion report ({e}): {_NOT_OURS}") from e
  made = report.get("format", REPORT_FORMAT) if isinstance(report, dict) else None
  if made != REPORT_FORMAT or "heads" not in report:
    raise FusionError(f"{path}: not a fusion report of this version (format {made}, this "
                      f"version reads {REPORT_FORMAT}): {_NOT_OURS}")
  return report


def write(output_dir, report, svms, class_names):
  """Writes a run's report (`REPORT_FORMAT` its "format"), SVMs ({head: SvmFusion}, or None)
  and figures ({head: class names}) into a new `output_dir`."""
  storage.makedirs(output_dir)
  for head, model in (svms or {}).items():
    save_svm(svm_path(output_dir, head), model)
  storage.write_json(report_path(output_dir), report)
  write_figures(output_dir, report["heads"], class_names)


def is_fusion_output(directory: str) -> bool:
  """Whether `directory` holds only what `fuse` writes, its report among them (an earlier
  fusion that a new one may replace)."""
  names = storage.listdir(directory)
  return REPORT_FILE in names and all(
      any(fnmatch.fnmatch(name, pattern) for pattern in _OUTPUTS) for name in names)


def write_figures(output_dir, heads, class_names):
  """The report's figures as PNGs beside it (`ACCURACY_FIGURE`, `per_class_figure_path`)
  and, with its table, as TensorBoard summaries in `output_dir`.

  Args:
    heads: the report's heads (`fusion_report`).
    class_names: {head: class names}.
  """
  accuracy = figures.method_accuracies(heads, "Two-stream fusion: test accuracy")
  per_class = {head: figures.per_class_accuracies(
      class_names[head], {m: v["per_class_accuracy"] for m, v in rows.items() if m != "videos"},
      f"{head}: test accuracy per class") for head, rows in heads.items()}
  storage.write_bytes(os.path.join(output_dir, ACCURACY_FIGURE), flow_figures.to_png(accuracy))
  for head, fig in per_class.items():
    storage.write_bytes(per_class_figure_path(output_dir, head), flow_figures.to_png(fig))
  summaries.write_fusion(output_dir, heads, report_lib.report_table(heads), accuracy,
                         per_class)
