"""Digests of training batches and of a few training steps' losses, to check that a change
leaves them bitwise as they were.

    python experiments/checks/batch_digests.py --output=/tmp/after.json
    git stash; python experiments/checks/batch_digests.py --output=/tmp/before.json; git stash pop
    diff /tmp/before.json /tmp/after.json   # no output: the same batches and losses

Both runs make (or reuse) the same synthetic records under --work_dir: 72 UCF-101- and 120
HMDB-51-style clips at 64x48, DIS flow forward and backward. Then, with seed 5 and
deterministic input: SHA-256 of the first 3 batches of 8 for the spatial stream and for
flow, bidirectional and trajectory stacking, each with the paper's sampling and with 2
samples per visit; of the 25 x 10 test views (3 positions per video) of split 1's test
videos, all of them in order, for the same four inputs and flow without mean subtraction;
and the losses (repr, all digits) of 3 steps of a multi-task temporal
CNN-M-2048. Compare runs on one machine and library versions: other OpenCV or TensorFlow
builds may give other records or other float rounding.
"""

import hashlib
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
from two_stream_tf import training

flags.DEFINE_string("work_dir", "/tmp/two_stream_tf_batch_digests", "Records and runs.")
flags.DEFINE_string("output", None, "Where the digests go (JSON).")
flags.mark_flag_as_required("output")
FLAGS = flags.FLAGS

_INPUTS = {
    "spatial": data.InputConfig(stream="spatial", crop_size=48),
    "flow": data.InputConfig(stream="temporal", crop_size=48, stack_length=3),
    "bidirectional": data.InputConfig(stream="temporal", crop_size=48, stack_length=4,
                                      stacking="bidirectional"),
    "trajectory": data.InputConfig(stream="temporal", crop_size=48, stack_length=2,
                                   stacking="trajectory"),
}
_VIEWS = {**_INPUTS, "flow_no_mean_subtraction": data.InputConfig(
    stream="temporal", crop_size=48, stack_length=3, mean_subtraction=False)}
_AUGMENTATIONS = {"paper": data.Augmentation(),
                  "two_per_visit": data.Augmentation(samples_per_visit=2, sampling="shuffle")}


def _records(work_dir):
  """[ucf101, hmdb51] records directories, made once."""
  root = os.path.join(work_dir, "synthetic")
  dirs = [os.path.join(work_dir, "records", name) for name in ("ucf101", "hmdb51")]
  if all(os.path.isdir(d) for d in dirs):
    return dirs
  synthetic.generate(root, seed=7, width=64, height=48, frames_range=(8, 11), ucf_groups=6,
                     ucf_clips_per_group=1, hmdb_videos_per_class=10)
  config = encoding.ExtractionConfig(algorithm="dis", short_side=0, backward=True)
  for name, video_dir, records_dir in (("ucf101", "ucf101", dirs[0]),
                                       ("hmdb51", "hmdb51/hmdb51_org", dirs[1])):
    index = datasets.load_dataset(name, os.path.join(root, video_dir))
    summary = local_runner.extract(index, records_dir, config, num_workers=2, progress=False)
    if summary.failures:
      raise RuntimeError(f"extraction failed: {summary.failures}")
  return dirs


def _digest(batch):
  sha = hashlib.sha256()
  for tensor in tf.nest.flatten(batch):
    array = np.asarray(tensor)
    # An object array's bytes are its pointers: strings go in by value.
    sha.update(b"\0".join(array.ravel()) if array.dtype == object else array.tobytes())
  return sha.hexdigest()


def _training_losses(dirs, model_dir):
  spec = model_dirs.RunSpec.of_records(dirs, 1, data.InputConfig(
      stream="temporal", crop_size=48, stack_length=2), dropout=0.0)

  def build():
    keras.utils.set_random_seed(1)
    return model_dirs.build(spec)

  def make_dataset(batch_size, seed):
    return data.training_dataset(dirs, 1, spec.input, batch_size, seed=seed, deterministic=True)
  config = training.TrainConfig(schedule=training.Schedule(0.01, (), 0.1, 3), batch_size=8,
                                log_every=1, checkpoint_every=3)
  lines = []
  result = training.train(build, make_dataset, model_dir, config, "temporal", log=lines.append)
  return {"log": [line.split("  lr ")[0] for line in lines if line.startswith("step ")],
          "last_step": {k: repr(v) for k, v in result.metrics.items()
                        if k != "examples_per_second"}}


def main(argv):
  del argv
  dirs = _records(FLAGS.work_dir)
  digests = {}
  for name, config in _INPUTS.items():
    for sampling, augmentation in _AUGMENTATIONS.items():
      dataset = data.training_dataset(dirs, 1, config, 8, seed=5, deterministic=True,
                                      augmentation=augmentation)
      digests[f"{name}/{sampling}"] = [_digest(b) for b, _ in zip(dataset, range(3))]
  for name, config in _VIEWS.items():
    sha = hashlib.sha256()
    for batch in data.evaluation_views(dirs, 1, config, batch_size=50, num_positions=3):
      sha.update(_digest(batch).encode())
    digests[f"views/{name}"] = sha.hexdigest()
  model_dir = os.path.join(FLAGS.work_dir, "run")
  if tf.io.gfile.exists(model_dir):  # a fresh run: a checkpoint there would be resumed
    tf.io.gfile.rmtree(model_dir)
  digests["training"] = _training_losses(dirs, model_dir)
  with open(FLAGS.output, "w", encoding="utf-8") as f:
    json.dump(digests, f, indent=1)
  print(f"{len(digests) - 1} batch and view digests and 3 training steps' losses: {FLAGS.output}")


if __name__ == "__main__":
  app.run(main)
