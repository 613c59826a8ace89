"""Figures a reader can read: confusion matrices, accuracy bar charts (matplotlib, no screen).

Each function returns a `matplotlib.figure.Figure`; `flow_tools.pictures.figures.to_rgb` and
`to_png` render it.
"""

import numpy as np

from flow_tools.pictures import figures as flow_figures

_METHOD_COLOURS = {"spatial": "tab:blue", "temporal": "tab:orange", "averaging": "tab:green",
                   "svm": "tab:red"}


def _font_size(count):
  """Tick labels that stay legible, and do not overlap, from 2 to 101 classes."""
  return max(5.0, min(9.0, 450.0 / max(count, 1)))


def confusion(matrix, class_names, title):
  """A confusion matrix: true classes as rows, predicted as columns, coloured by the share
  of the row (row-normalised), each non-zero cell with its video count."""
  matrix = np.asarray(matrix)
  n = len(class_names)
  rows = matrix.sum(axis=1, keepdims=True)
  share = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
  side = max(5.0, 0.17 * n + 3.0)
  fig = flow_figures.new_figure(side + 1.2, side)
  ax = fig.add_subplot()
  image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
  size = _font_size(n)
  ax.set_xticks(range(n), class_names, rotation=90, fontsize=size)
  ax.set_yticks(range(n), [f"{name} ({int(r)})" for name, r in zip(class_names, rows[:, 0])],
                fontsize=size)
  ax.set_xlabel("predicted class")
  ax.set_ylabel("true class (videos)")
  ax.set_title(title)
  for (i, j), count in np.ndenumerate(matrix):
    if count:
      ax.text(j, i, str(count), ha="center", va="center", fontsize=size * 0.8,
              color="white" if share[i, j] > 0.5 else "black")
  fig.colorbar(image, ax=ax, shrink=0.6, label="share of the true class's videos")
  return fig


def method_accuracies(report, title):
  """Grouped bars: per head, the accuracy of each method of a fusion report
  (`two_stream_tf.fusion.fusion_report`), with the value on each bar."""
  heads = list(report)
  methods = [m for m in _METHOD_COLOURS if any(m in report[h] for h in heads)]
  fig = flow_figures.new_figure(max(5.0, 1.6 * len(heads) * len(methods) / 2 + 2), 4.0)
  ax = fig.add_subplot()
  width = 0.8 / len(methods)
  for k, method in enumerate(methods):
    x = np.arange(len(heads)) + (k - (len(methods) - 1) / 2) * width
    values = [100 * report[h][method]["accuracy"] if method in report[h] else np.nan
              for h in heads]
    bars = ax.bar(x, values, width, label=method, color=_METHOD_COLOURS[method])
    ax.bar_label(bars, fmt="%.1f", fontsize=8)
  ax.set_xticks(range(len(heads)), [f"{h} ({report[h]['videos']} videos)" for h in heads])
  ax.set_ylabel("test accuracy (%)")
  ax.set_ylim(0, 105)
  ax.set_title(title)
  fig.legend(loc="outside right upper")  # beside the bars, never over them
  return fig


def per_class_accuracies(class_names, accuracies, title):
  """Horizontal grouped bars, a row per class: each method's accuracy on that class.

  Args:
    accuracies: {method: {class name: accuracy}} (a class missing: no test video).
  """
  n = len(class_names)
  methods = list(accuracies)
  fig = flow_figures.new_figure(8.0, max(3.0, 0.06 * n * len(methods) + 1.5))
  ax = fig.add_subplot()
  height = 0.8 / len(methods)
  for k, method in enumerate(methods):
    y = np.arange(n) + (k - (len(methods) - 1) / 2) * height
    values = [100 * accuracies[method].get(name, np.nan) for name in class_names]
    ax.barh(y, values, height, label=method, color=_METHOD_COLOURS.get(method))
  ax.set_yticks(range(n), class_names, fontsize=_font_size(n))
  ax.invert_yaxis()  # first class on top
  ax.set_xlim(0, 100)
  ax.set_xlabel("test accuracy of the class's videos (%)")
  ax.set_title(title)
  fig.legend(loc="outside right upper", fontsize=8)
  return fig
