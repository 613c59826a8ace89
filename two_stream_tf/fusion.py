"""Late fusion of the two streams' softmax scores: (weighted) averaging and a linear SVM.

The SVM is the paper's: a multi-class linear SVM (Crammer & Singer) on the stacked, L2-normalised
softmax scores of both streams, fitted on the train split's scores, with C chosen by
cross-validation on those scores only. Every score file says what it holds
(`score_files.source`): fusion refuses files of the wrong stream or subset (an SVM fitted on
test scores would publish a leaked accuracy) and files of different splits. A fitted fusion is saved
as plain arrays (weights, bias, class names, C): no pickle, nothing executed when it is loaded.
"""

import dataclasses
import fnmatch
import os
import warnings

import numpy as np
from sklearn import exceptions
from sklearn import model_selection
from sklearn import svm

from flow_tools.common import storage
from flow_tools.pictures import figures as flow_figures
from two_stream_tf import evaluation
from two_stream_tf import figures
from two_stream_tf import score_files
from two_stream_tf import summaries

DEFAULT_C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)
REPORT_FILE = "fusion_report.json"
ACCURACY_FIGURE = "fusion_report.png"
# Every name `fuse` writes into its output directory.
_OUTPUTS = (REPORT_FILE, ACCURACY_FIGURE, "svm_*.npz", "per_class_accuracy_*.png",
            "events.out.tfevents.*")


class FusionError(ValueError):
  """Score files that cannot be fused (different videos, classes or heads), or a bad file."""


def svm_path(output_dir, head):
  """Where `fuse` saves the SVM of `head` (and `export` finds it)."""
  return os.path.join(output_dir, f"svm_{head}.npz")


def report_path(output_dir):
  return os.path.join(output_dir, REPORT_FILE)


def per_class_figure_path(output_dir, head):
  return os.path.join(output_dir, f"per_class_accuracy_{head}.png")


def check_sources(files):
  """Raises FusionError, naming the file, unless each of `files` ({(stream, subset):
  ScoreFile}) holds that stream's scores of that subset, all of one split."""
  for (stream, subset), file in files.items():
    source = file.source
    if source["stream"] != stream:
      raise FusionError(f"{file.path} holds {source['stream']} scores, given as the {stream} "
                        "stream's")
    if source["subset"] != subset:
      leak = (" (an SVM fitted on test scores would report a leaked accuracy)"
              if subset == "train" else "")
      raise FusionError(f"{file.path} holds {source['subset']} scores, given as {subset} "
                        f"scores{leak}")
    trained = source["trained_extraction"]  # None: a model_dir that does not record it
    scored = [r["extraction"] for r in source["records"]]
    if trained and scored != trained and not source["accepted_other_records"]:
      raise FusionError(f"{file.path} holds scores of records extracted with other settings "
                        "than the model was trained on, and does not say they were accepted: "
                        "evaluate again on the training records")
  for stream in {stream for stream, _ in files}:
    test, train = files.get((stream, "test")), files.get((stream, "train"))
    if test and train and ([r["extraction"] for r in test.source["records"]] !=
                           [r["extraction"] for r in train.source["records"]]):
      raise FusionError(f"{test.path} and {train.path} score records extracted with different "
                        "settings: an SVM fitted on the one would be tested on other input")
  splits = {file.path: file.source["split"] for file in files.values()}
  if len(set(splits.values())) > 1:
    raise FusionError("score files of different splits: " +
                      ", ".join(f"{path} split {split}" for path, split in splits.items()))


def aligned(first, second, first_name="spatial", second_name="temporal"):
  """The two streams' {head: HeadScores}, second reordered to the first's video order.

  Raises FusionError naming the difference when heads, class lists, videos or labels differ.
  """
  if list(first) != list(second):
    raise FusionError(f"heads differ: {first_name} has {list(first)}, {second_name} "
                      f"{list(second)}")
  out = {}
  for head, a in first.items():
    b = second[head]
    if a.class_names != b.class_names:
      where = next((i for i, (x, y) in enumerate(zip(a.class_names, b.class_names)) if x != y),
                   min(len(a.class_names), len(b.class_names)))
      raise FusionError(f"{head}: class lists differ ({first_name} {len(a.class_names)} "
                        f"classes, {second_name} {len(b.class_names)}; first difference at "
                        f"index {where})")
    only_a = sorted(set(a.video_ids) - set(b.video_ids))
    only_b = sorted(set(b.video_ids) - set(a.video_ids))
    if only_a or only_b:
      raise FusionError(f"{head}: videos differ: {len(only_a)} only in {first_name} "
                        f"{only_a[:3]}, {len(only_b)} only in {second_name} {only_b[:3]}")
    order = {v: i for i, v in enumerate(b.video_ids)}
    index = np.array([order[v] for v in a.video_ids], dtype=np.int64)
    if not np.array_equal(a.labels, b.labels[index]):
      bad = a.video_ids[np.argmax(a.labels != b.labels[index])]
      raise FusionError(f"{head}: labels differ between the files (e.g. {bad})")
    out[head] = (a, dataclasses.replace(b, video_ids=b.video_ids[index], labels=b.labels[index],
                                        scores=b.scores[index]))
  return out


def average(first, second, second_weight=0.5):
  """(1 - w) * first + w * second: the paper's averaging at w = 0.5."""
  if not 0.0 <= second_weight <= 1.0:
    raise ValueError(f"fusion weight must be in [0, 1], got {second_weight}")
  return (1.0 - second_weight) * first + second_weight * second


def svm_features(first, second):
  """Both streams' softmax scores, each L2-normalised, side by side (videos x 2 classes)."""
  def normalised(scores):
    norms = np.linalg.norm(scores, axis=1, keepdims=True)
    return scores / np.maximum(norms, 1e-12)
  return np.concatenate([normalised(first), normalised(second)], axis=1).astype(np.float64)


@dataclasses.dataclass
class SvmFusion:
  """A fitted linear SVM fusion: class scores = features @ weights.T + bias."""
  weights: np.ndarray   # classes x (2 * classes)
  bias: np.ndarray      # classes
  class_names: tuple
  c: float
  cv_accuracy: float

  def decision(self, first, second):
    return svm_features(first, second) @ self.weights.T + self.bias

  def predict(self, first, second):
    return np.argmax(self.decision(first, second), axis=1)

  def save(self, path):
    """Plain arrays in an .npz (written atomically)."""
    arrays = {"weights": self.weights, "bias": self.bias,
              "class_names": np.array(self.class_names, dtype=str), "c": np.float64(self.c),
              "cv_accuracy": np.float64(self.cv_accuracy),
              "normalisation": np.array("l2 per stream, spatial then temporal")}
    storage.write_npz(path, arrays)

  @classmethod
  def load(cls, path):
    """The fusion `save` wrote at `path`; FusionError naming the file if it is not one."""
    try:
      with np.load(path, allow_pickle=False) as f:
        model = cls(f["weights"], f["bias"], tuple(str(c) for c in f["class_names"]),
                    float(f["c"]), float(f["cv_accuracy"]))
    except (KeyError, ValueError, OSError) as e:
      raise FusionError(f"{path}: not an SVM file of two_stream_tf.fuse ({e})") from e
    classes = len(model.class_names)
    if model.weights.shape != (classes, 2 * classes) or model.bias.shape != (classes,):
      raise FusionError(f"{path}: {classes} classes but weights of shape "
                        f"{model.weights.shape} and bias of shape {model.bias.shape}: the "
                        "file was altered; run two_stream_tf.fuse again")
    return model


def _folds(labels):
  smallest = np.bincount(labels)[np.bincount(labels) > 0].min()
  if smallest < 2:
    return None
  return model_selection.StratifiedKFold(min(5, smallest), shuffle=True, random_state=0)


def fit_svm(first, second, labels, class_names, c_grid=DEFAULT_C_GRID, max_iter=20000):
  """Crammer & Singer linear SVM on the train scores; C by stratified cross-validation."""
  features = svm_features(first, second)
  labels = np.asarray(labels)
  if len(np.unique(labels)) < 2:
    raise FusionError("SVM fusion needs training videos of at least two classes")
  def make(c):
    return svm.LinearSVC(C=c, multi_class="crammer_singer", max_iter=max_iter,
                         random_state=0)
  folds = _folds(labels)
  if folds is None or len(c_grid) == 1:
    best_c, best_accuracy = c_grid[0], float("nan")
  else:
    with warnings.catch_warnings():
      # Extreme C values of the grid often stop at max_iter; cross-validation judges them.
      warnings.simplefilter("ignore", exceptions.ConvergenceWarning)
      accuracies = [model_selection.cross_val_score(make(c), features, labels, cv=folds).mean()
                    for c in c_grid]
    best = int(np.argmax(accuracies))
    best_c, best_accuracy = c_grid[best], float(accuracies[best])
  model = make(best_c).fit(features, labels)
  coef, intercept = model.coef_, model.intercept_
  if coef.shape[0] == 1:  # two classes: one hyperplane, positive side = the second class
    coef, intercept = np.concatenate([np.zeros_like(coef), coef]), np.r_[0.0, intercept]
  # sklearn keeps only the classes it saw; give every class a row (unseen: never chosen).
  weights = np.zeros((len(class_names), features.shape[1]))
  bias = np.full(len(class_names), -1e9)
  weights[model.classes_] = coef
  bias[model.classes_] = intercept
  return SvmFusion(weights, bias, tuple(class_names), float(best_c), best_accuracy)


def fusion_report(test_pairs, second_weight=0.5, svms=None):
  """Per head, like the paper's Table 3: each stream alone, averaging and (if fitted) SVM.

  Args:
    test_pairs: {head: (first HeadScores, second HeadScores)} from `aligned`.
    second_weight: the averaging weight of the second (temporal) stream.
    svms: {head: SvmFusion} or None.
  """
  report = {}
  for head, (a, b) in test_pairs.items():
    names = a.class_names
    rows = {"spatial": evaluation.accuracies(a.labels, a.predictions, names),
            "temporal": evaluation.accuracies(a.labels, b.predictions, names),
            "averaging": evaluation.accuracies(
                a.labels, np.argmax(average(a.scores, b.scores, second_weight), axis=1), names)}
    if svms:
      rows["svm"] = evaluation.accuracies(a.labels, svms[head].predict(a.scores, b.scores),
                                          names)
    report[head] = {"videos": int(len(a.labels)), **rows}
  return report


def report_table(report):
  lines = ["| head | videos | method | accuracy | mean class accuracy |", "|---|---|---|---|---|"]
  for head, rows in report.items():
    for method, values in rows.items():
      if method != "videos":
        lines.append(f"| {head} | {rows['videos']} | {method} | {100 * values['accuracy']:.1f}% "
                     f"| {100 * values['mean_class_accuracy']:.1f}% |")
  return "\n".join(lines)


def fuse(spatial_scores, temporal_scores, output_dir, spatial_train_scores=None,
         temporal_train_scores=None, temporal_weight=0.5, c_grid=DEFAULT_C_GRID):
  """Fuses two streams' score files; with train score files, fits and saves an SVM per head.

  Writes `report_path(output_dir)` (the report, as returned), `svm_path(output_dir, head)`
  and the figures, all at once: `output_dir` is replaced whole, never a mix of two runs.
  It must be new, empty or an earlier fusion output (`is_fusion_output`).
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
  check_sources(files)
  test = aligned(files["spatial", "test"].heads, files["temporal", "test"].heads,
                 spatial_scores, temporal_scores)
  svms = None
  if spatial_train_scores:
    train = aligned(files["spatial", "train"].heads, files["temporal", "train"].heads,
                    spatial_train_scores, temporal_train_scores)
    if list(train) != list(test):
      raise FusionError(f"heads differ: train scores have {list(train)}, test scores "
                        f"{list(test)}")
    svms = {}
    for head, (a, b) in train.items():
      if a.class_names != test[head][0].class_names:
        raise FusionError(f"{head}: class lists differ between train and test scores")
      svms[head] = fit_svm(a.scores, b.scores, a.labels, a.class_names, c_grid)
  heads = fusion_report(test, temporal_weight, svms)
  for head, model in (svms or {}).items():
    heads[head]["svm"].update({"c": model.c, "cv_accuracy": model.cv_accuracy,
                               "file": svm_path(output_dir, head)})
  report = {"spatial_scores": spatial_scores, "temporal_scores": temporal_scores,
            "temporal_weight": temporal_weight, "heads": heads,
            "sources": {f"{stream}_{subset}": file.source
                        for (stream, subset), file in files.items()}}

  def write(staging):
    storage.makedirs(staging)
    for head, model in (svms or {}).items():
      model.save(svm_path(staging, head))
    storage.write_json(report_path(staging), report)
    write_figures(staging, heads, {head: a.class_names for head, (a, _) in test.items()})
  storage.write_directory(output_dir, write, is_fusion_output)
  return report


def is_fusion_output(directory):
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
  summaries.write_fusion(output_dir, heads, report_table(heads), accuracy, per_class)
