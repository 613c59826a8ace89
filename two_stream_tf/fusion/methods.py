"""The fusion methods on two streams' softmax scores, on arrays: (weighted) averaging and the
paper's linear SVM (Crammer & Singer) on the stacked, L2-normalised scores, with C chosen by
cross-validation on the train scores only."""

import dataclasses
import warnings

import numpy as np
from sklearn import exceptions
from sklearn import model_selection
from sklearn import svm

from two_stream_tf.fusion.checks import FusionError

DEFAULT_C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)


def average(first: np.ndarray, second: np.ndarray, second_weight: float = 0.5) -> np.ndarray:
  """(1 - w) * first + w * second: the paper's averaging at w = 0.5."""
  if not 0.0 <= second_weight <= 1.0:
    raise ValueError(f"fusion weight must be in [0, 1], got {second_weight}")
  return (1.0 - second_weight) * first + second_weight * second


def svm_features(first: np.ndarray, second: np.ndarray) -> np.ndarray:
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


def _folds(labels):
  smallest = np.bincount(labels)[np.bincount(labels) > 0].min()
  if smallest < 2:
    return None
  return model_selection.StratifiedKFold(min(5, smallest), shuffle=True, random_state=0)


def fit_svm(first: np.ndarray, second: np.ndarray, labels: np.ndarray, class_names: tuple,
            c_grid: tuple[float, ...] = DEFAULT_C_GRID, max_iter: int = 20000) -> SvmFusion:
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
