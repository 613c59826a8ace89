"""The fuse run: score files in, checked and aligned, SVMs fitted on the train scores, the
report and SVMs out (`outputs`), all at once."""

from flow_tools.common import storage
from two_stream_tf.evaluation import score_files
from two_stream_tf.fusion import checks
from two_stream_tf.fusion import methods
from two_stream_tf.fusion import outputs
from two_stream_tf.fusion import report as report_lib
from two_stream_tf.fusion.checks import FusionError


def fuse(spatial_scores: str, temporal_scores: str, output_dir: str,
         spatial_train_scores: str | None = None, temporal_train_scores: str | None = None,
         temporal_weight: float = 0.5, c_grid: tuple[float, ...] = methods.DEFAULT_C_GRID
         ) -> dict:
  """Fuses two streams' score files; with train score files, fits and saves an SVM per head.

  Writes `outputs.report_path(output_dir)` (the report, as returned),
  `outputs.svm_path(output_dir, head)` and the figures, all at once: `output_dir` is replaced
  whole, never a mix of two runs. It must be new, empty or an earlier fusion output
  (`outputs.is_fusion_output`).
  Raises FusionError naming the file or head at fault, storage.OutputError naming an
  output directory that cannot be written (checked before the SVMs are fitted).
  """
  if (spatial_train_scores is None) != (temporal_train_scores is None):
    raise FusionError("give both streams' train scores, or neither")
  paths = {("spatial", "test"): spatial_scores, ("temporal", "test"): temporal_scores,
           ("spatial", "train"): spatial_train_scores,
           ("temporal", "train"): temporal_train_scores}
  storage.check_writable(output_dir)
  try:
    files = {key: score_files.load(path) for key, path in paths.items() if path is not None}
  except score_files.ScoreFileError as e:  # the fuse job's input: reported as its error
    raise FusionError(str(e)) from e
  checks.check_sources(files)
  test = checks.aligned(files["spatial", "test"].heads, files["temporal", "test"].heads,
                 spatial_scores, temporal_scores)
  svms = None
  if spatial_train_scores:
    train = checks.aligned(files["spatial", "train"].heads, files["temporal", "train"].heads,
                    spatial_train_scores, temporal_train_scores)
    if list(train) != list(test):
      raise FusionError(f"heads differ: train scores have {list(train)}, test scores "
                        f"{list(test)}")
    svms = {}
    for head, (a, b) in train.items():
      if a.class_names != test[head][0].class_names:
        raise FusionError(f"{head}: class lists differ between train and test scores")
      svms[head] = methods.fit_svm(a.scores, b.scores, a.labels, a.class_names, c_grid)
  heads = report_lib.fusion_report(test, temporal_weight, svms)
  for head, model in (svms or {}).items():
    heads[head]["svm"].update({"c": model.c, "cv_accuracy": model.cv_accuracy,
                               "file": outputs.svm_path(output_dir, head)})
  report = {"format": outputs.REPORT_FORMAT, "spatial_scores": spatial_scores,
            "temporal_scores": temporal_scores, "temporal_weight": temporal_weight, "heads": heads,
            "sources": {f"{stream}_{subset}": file.source
                        for (stream, subset), file in files.items()}}

  class_names = {head: a.class_names for head, (a, _) in test.items()}
  storage.write_directory(output_dir, lambda staging: outputs.write(staging, report, svms,
                                                                     class_names),
                          outputs.is_fusion_output)
  return report
