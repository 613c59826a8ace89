"""TensorBoard content beyond scalars: hyper-parameters, input pictures, confusion matrices."""

import cv2
import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api

from flow_tools import visualization

MAX_IMAGES = 4
_CONFUSION_CELL = 8  # pixels per confusion-matrix cell


def write_hparams(hparams):
  """Records a run's hyper-parameters (plain values) for TensorBoard's HParams tab."""
  plain = {k: (v if isinstance(v, (bool, int, float, str)) else str(v))
           for k, v in hparams.items()}
  hparams_api.hparams(plain)


def input_pictures(stream, inputs):
  """Up to 4 network inputs as uint8 pictures: RGB as is, a flow stack's first field in
  the Middlebury colour coding (at the input's own largest magnitude)."""
  inputs = np.asarray(inputs, np.float32)[:MAX_IMAGES]
  if stream == "spatial":
    return np.clip(inputs, 0, 255).astype(np.uint8)
  fields = inputs[..., :2]
  largest = max(float(np.hypot(fields[..., 0], fields[..., 1]).max()), 1e-6)
  return np.stack([visualization.flow_to_colour(f, largest) for f in fields])


def write_inputs(name, stream, inputs, step):
  tf.summary.image(name, input_pictures(stream, inputs), step=step, max_outputs=MAX_IMAGES)


def confusion_matrix(labels, predictions, num_classes):
  """num_classes x num_classes counts: row true class, column predicted."""
  matrix = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
  return matrix


def confusion_picture(matrix):
  """Row-normalised confusion matrix as an RGB heat map (dark: 0, bright: all of the row)."""
  rows = matrix.sum(axis=1, keepdims=True)
  share = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
  grey = np.round(255 * share).astype(np.uint8)
  grey = np.kron(grey, np.ones((_CONFUSION_CELL, _CONFUSION_CELL), np.uint8))
  return cv2.cvtColor(cv2.applyColorMap(grey, cv2.COLORMAP_VIRIDIS), cv2.COLOR_BGR2RGB)


def write_confusion(name, matrix, step):
  tf.summary.image(name, confusion_picture(matrix)[None], step=step)
