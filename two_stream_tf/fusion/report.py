"""The fusion report, like the paper's Table 3: per head, each stream alone, averaging and the
SVM, as numbers and as a table."""

import numpy as np

from two_stream_tf import evaluation
from two_stream_tf.fusion import methods


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
            "averaging": evaluation.accuracies(a.labels, np.argmax(
                methods.average(a.scores, b.scores, second_weight), axis=1), names)}
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
