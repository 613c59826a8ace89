"""TensorBoard content beyond scalars: hyper-parameters, input pictures that say what they
show, and figures (confusion matrices, fusion results) with class names and colour bars.

Every picture has a summary description (TensorBoard shows it beside the picture).
"""

import numpy as np
from tensorboard.plugins.hparams import api as hparams_api
import tensorflow as tf

from flow_tools.pictures import figures as flow_figures
from flow_tools.pictures import flow_colors

MAX_IMAGES = 4
# Tags below a group (training_inputs, evaluation_views) for each stream's pictures.
INPUT_TAGS = {"spatial": ("rgb",), "temporal": ("flow_colour", "flow_colour_key")}


def write_hparams(hparams):
  """Records a run's hyper-parameters (plain values) for TensorBoard's HParams tab."""
  plain = {k: (v if isinstance(v, (bool, int, float, str)) else str(v))
           for k, v in hparams.items()}
  hparams_api.hparams(plain)


def flow_pictures(inputs):
  """Up to 4 flow stacks' first displacement fields in the Middlebury colour coding, at the
  largest magnitude among them: (uint8 pictures, that magnitude in pixels)."""
  fields = np.asarray(inputs, np.float32)[:MAX_IMAGES, ..., :2]
  largest = max(float(np.hypot(fields[..., 0], fields[..., 1]).max()), 1e-6)
  return np.stack([flow_colors.flow_to_colour(f, largest) for f in fields]), largest


def write_inputs(group, stream, inputs, step):
  """Up to 4 network inputs under `group`/rgb, or `group`/flow_colour beside
  `group`/flow_colour_key (the key to its colours)."""
  if stream == "spatial":
    pictures = np.clip(np.asarray(inputs, np.float32)[:MAX_IMAGES], 0, 255).astype(np.uint8)
    tf.summary.image(f"{group}/rgb", pictures, step=step, max_outputs=MAX_IMAGES,
                     description="RGB crops as the spatial network gets them (0..255, before "
                                 "its mean subtraction).")
    return
  pictures, largest = flow_pictures(inputs)
  tf.summary.image(
      f"{group}/flow_colour", pictures, step=step, max_outputs=MAX_IMAGES,
      description=f"The first displacement field (d_x, d_y) of each flow stack the temporal "
                  f"network gets, in the Middlebury colour coding: the hue is the direction "
                  f"(see {group}/flow_colour_key), the saturation the magnitude (white: no "
                  f"motion; full at {largest:.3g} px, the largest in these pictures).")
  tf.summary.image(
      f"{group}/flow_colour_key", flow_figures.to_rgb(
          flow_figures.colour_key_figure(largest))[None], step=step,
      description="Key to the flow colours beside it: the colour of each displacement "
                  "(d_x right, d_y down), fully saturated at the rim.")


def confusion_matrix(labels, predictions, num_classes):
  """num_classes x num_classes counts: row true class, column predicted."""
  matrix = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
  return matrix


def write_figure(tag, fig, step, description):
  """A matplotlib figure as a TensorBoard image."""
  tf.summary.image(tag, flow_figures.to_rgb(fig)[None], step=step, description=description)


def write_fusion(log_dir, heads, table, accuracy_figure, per_class_figures):
  """The fusion report (`two_stream_tf.fusion.fusion_report`) in TensorBoard: its table as
  text, each method's accuracy as scalars (fusion/<head>/<method>) and the figures.

  Event files of an earlier fusion in `log_dir` are replaced: they held an older report.
  """
  for name in tf.io.gfile.listdir(log_dir) if tf.io.gfile.isdir(log_dir) else ():
    if name.startswith("events.out.tfevents."):
      tf.io.gfile.remove(f"{log_dir.rstrip('/')}/{name}")
  with tf.summary.create_file_writer(log_dir).as_default():
    tf.summary.text("fusion/report", table, step=0,
                    description="Test accuracy of each stream and of their fusion, per head "
                                "(the paper's Table 3).")
    for head, rows in heads.items():
      for method, values in rows.items():
        if method != "videos":
          tf.summary.scalar(f"fusion/{head}/{method}", values["accuracy"], step=0)
    write_figure("fusion/accuracy", accuracy_figure, 0,
                 "Test accuracy per head: each stream alone, averaging and the SVM.")
    for head, fig in per_class_figures.items():
      write_figure(f"fusion/per_class_accuracy/{head}", fig, 0,
                   "Per class: the share of its test videos each stream and each fusion gets "
                   "right.")
