"""The first steps of the paper's from-scratch recipes, per start: loss curves and per-layer
gradient and update norms, to see whether (and where) training blows up at lr 1e-2.

    python experiments/checks/first_steps.py --stream=spatial --output=/tmp/spatial.json
    python experiments/checks/first_steps.py --stream=temporal --output=/tmp/temporal.json

Makes (or reuses) synthetic UCF-101-style records at the paper's input size under
--work_dir (340 x 256 frames, the 256 short side; DIS flow), then trains CNN-M-2048 from
scratch on them with the recipe of experiments/table1a_spatial_scratch_dropout0.5.flags or
table1b_temporal_flow_L10.flags (224 crops, L = 10, momentum 0.9, weight decay 5e-4,
dropout 0.5 / 0.9, the paper's sampling and augmentation) for --steps steps, once per start
in --starts: 'caffe' or 'keras' (`--initialization`), each with biases at 1x or 2x the rate
('caffe2': Caffe's `blobs_lr: 1 2`), and Caffe's start with full6/full7 biases 0
('caffe_fc0') or every bias-1 layer's biases 0.1 ('caffe_b01'). The batch is --batch_size
with the learning rate scaled from the paper's 1e-2 at 256 (linear scaling), unless
--learning_rate is given. Every run
starts from the same seed and sees the same batches. Prints a table of head losses by step
and, for the first --norm_steps steps, the layers whose gradient and update norms are largest.
"""

import json
import os

from absl import app
from absl import flags
import keras
import numpy as np
import tensorflow as tf

from flow_tools import datasets
from flow_tools.datasets import synthetic
from flow_tools.extraction import encoding
from flow_tools.extraction import local_runner
from two_stream_tf import data
from two_stream_tf import model_dirs
from two_stream_tf import models
from two_stream_tf import training
from two_stream_tf.data import packed
from two_stream_tf.training import loop
from two_stream_tf.training import losses
from two_stream_tf.training import schedule

# start name -> (--initialization, --bias_lr_multiplier, {trunk layer: its biases' start}):
# the last two are Caffe's start with its bias-1 layers changed, to see which of them blows up.
_BIAS_ONE = ("conv2", "conv4", "conv5", "full6", "full7")
STARTS = {"caffe": ("caffe", 1.0, {}), "caffe2": ("caffe", 2.0, {}),
          "keras": ("keras", 1.0, {}), "keras2": ("keras", 2.0, {}),
          "caffe_fc0": ("caffe", 1.0, {"full6": 0.0, "full7": 0.0}),
          "caffe_b01": ("caffe", 1.0, dict.fromkeys(_BIAS_ONE, 0.1))}

flags.DEFINE_enum("stream", "spatial", ["spatial", "temporal"], "Which recipe.")
flags.DEFINE_list("starts", list(STARTS), f"Starts to compare, of {sorted(STARTS)}.")
flags.DEFINE_integer("steps", 40, "Steps per start.")
flags.DEFINE_integer("norm_steps", 3, "First steps whose per-layer norms are kept.")
flags.DEFINE_integer("batch_size", 32, "Batch size.")
flags.DEFINE_float("learning_rate", None, "Default: 1e-2 * batch_size / 256.")
flags.DEFINE_integer("crop_size", 224, "Input crop.")
flags.DEFINE_string("work_dir", "/tmp/two_stream_tf_first_steps", "Records are made here once.")
flags.DEFINE_string("output", None, "JSON of every step's values.")
FLAGS = flags.FLAGS


def _records(work_dir):
  """A UCF-101-style records directory at 340 x 256 (12 classes), made once."""
  out = os.path.join(work_dir, "records_ucf101")
  if os.path.isfile(os.path.join(out, "manifest.json")):
    return out
  root = os.path.join(work_dir, "synthetic")
  synthetic.generate_ucf101(os.path.join(root, "ucf101"), seed=3, groups=6, clips_per_group=3,
                            width=340, height=256, frames_range=(16, 24))
  index = datasets.load_dataset("ucf101", os.path.join(root, "ucf101"))
  summary = local_runner.extract(index, out, encoding.ExtractionConfig(algorithm="dis",
                                                                       short_side=0),
                               num_workers=2, progress=False)
  assert not summary.failures, summary.failures
  return out


def _layer_norms(variables, values):
  """{layer/variable: norm} of one tensor per variable."""
  return {v.path: float(tf.norm(x)) for v, x in zip(variables, values)}


def run_start(start, records_dir, stream, steps, batch_size, learning_rate, crop_size,
              norm_steps):
  """One start's first steps: [{step, loss, head_loss, (gradient, update norms)}]."""
  initialization, multiplier, biases = STARTS[start]
  paper = stream == "spatial"
  spec = model_dirs.RunSpec.of_records(
      [records_dir], 1, data.InputConfig(stream=stream, crop_size=crop_size,
                                         stack_length=1 if paper else 10),
      dropout=0.5 if paper else 0.9)
  config = training.TrainConfig(schedule=training.Schedule(learning_rate, (), 0.1, steps),
                                batch_size=batch_size, bias_lr_multiplier=multiplier)
  keras.utils.set_random_seed(0)
  model = model_dirs.build(spec, models.ModelConfig(initialization=initialization))
  for layer, value in biases.items():
    bias = model.get_layer("trunk").get_layer(layer).bias
    bias.assign(tf.fill(bias.shape, value))
  optimizer = schedule.make_optimizer(config.schedule, config.momentum)
  batches = iter(data.training_dataset([records_dir], 1, spec.input, batch_size, seed=1,
                                       deterministic=True))
  head = spec.head_names[0]
  context = tf.distribute.get_replica_context()

  @tf.function
  def step(x, labels, weights):
    with tf.GradientTape() as tape:
      outputs = model(packed.to_network_input(x), training=True)
      stats = losses.head_statistics(labels, weights, outputs)
      head_loss = losses.head_losses(stats, {head: stats[head][1]})[head]
      total = head_loss + losses.weight_decay(model.trainable_variables, config.weight_decay)
    grads = tape.gradient(total, model.trainable_variables)
    grads = loop.adjusted_gradients(grads, model.trainable_variables, config, optimizer,
                                    context)
    before = [tf.identity(v) for v in model.trainable_variables]
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    updates = [v - b for v, b in zip(model.trainable_variables, before)]
    return total, head_loss, grads, updates, before

  rows = []
  for number in range(1, steps + 1):
    total, head_loss, grads, updates, before = step(*next(batches))
    row = {"step": number, "loss": float(total), "head_loss": float(head_loss)}
    if number <= norm_steps:
      row["gradient_norms"] = _layer_norms(model.trainable_variables, grads)
      row["update_norms"] = _layer_norms(model.trainable_variables, updates)
      row["weight_norms"] = _layer_norms(model.trainable_variables, before)
    rows.append(row)
    print(f"{start} step {number}: loss {row['loss']:.3f}, {head} loss {row['head_loss']:.3f}",
          flush=True)
    if not np.isfinite(row["loss"]):
      break
  return rows


def _table(results, classes):
  marks = sorted({1, 2, 3, 5, 10, 20, 40, 80} | {len(r) for r in results.values()})
  lines = [f"chance: ln {classes} = {np.log(classes):.3f}",
           "| start | " + " | ".join(f"step {m}" for m in marks) + " | max |",
           "|---" * (len(marks) + 2) + "|"]
  for start, rows in results.items():
    losses_by_step = {r["step"]: r["head_loss"] for r in rows}
    lines.append(f"| {start} | " + " | ".join(
        f"{losses_by_step[m]:.2f}" if m in losses_by_step else "-" for m in marks) +
                 f" | {max(losses_by_step.values()):.2f} |")
  for start, rows in results.items():
    for row in rows:
      if "update_norms" in row:
        # Relative to the weights before the step (zero biases of the Keras start: left out).
        relative = {k: row["update_norms"][k] / row["weight_norms"][k]
                    for k in row["update_norms"] if row["weight_norms"][k] > 0}
        top = sorted(relative, key=relative.get, reverse=True)[:4]
        steepest = sorted(row["gradient_norms"], key=row["gradient_norms"].get, reverse=True)[:3]
        lines.append(f"{start} step {row['step']}: largest |update| / |weight|: " + ", ".join(
            f"{k} {relative[k]:.3g}" for k in top) + "; largest |gradient|: " + ", ".join(
                f"{k} {row['gradient_norms'][k]:.3g}" for k in steepest))
  return "\n".join(lines)


def main(argv):
  del argv
  records_dir = _records(FLAGS.work_dir)
  learning_rate = FLAGS.learning_rate or 1e-2 * FLAGS.batch_size / 256
  print(f"{FLAGS.stream}: batch {FLAGS.batch_size}, lr {learning_rate:g}, crop "
        f"{FLAGS.crop_size}, {FLAGS.steps} steps")
  results = {start: run_start(start, records_dir, FLAGS.stream, FLAGS.steps, FLAGS.batch_size,
                              learning_rate, FLAGS.crop_size, FLAGS.norm_steps)
             for start in FLAGS.starts}
  classes = len(json.load(open(os.path.join(records_dir, "manifest.json"),
                               encoding="utf-8"))["class_names"])
  print(_table(results, classes))
  if FLAGS.output:
    with open(FLAGS.output, "w", encoding="utf-8") as f:
      json.dump({"stream": FLAGS.stream, "batch_size": FLAGS.batch_size,
                 "learning_rate": learning_rate, "crop_size": FLAGS.crop_size,
                 "results": results}, f, indent=1)


if __name__ == "__main__":
  app.run(main)
