"""Training examples/s of each stream with the real input pipeline vs the same model fed
from memory: is input the bottleneck?

  python experiments/benchmarks/train_step.py [--batch_size=16] [--mixed_precision] [--jit_compile]

Records: copies of a real clip at 340x256 with DIS flow (clip_records.py). Per stream, at
the paper's input (224 crops, CNN-M-2048, temporal L = 10), measured in this one run with
`two_stream_tf.training.train`: (a) fed by `two_stream_tf.data.training_dataset` (read,
decode, augment), (b) fed one real batch held in memory, repeated. The rate is that of
the second logging interval (the first holds tracing and warm-up). Target: a / b >= 0.9.
"""

import os
import tempfile

from absl import app
from absl import flags
from absl import logging
import clip_records

flags.DEFINE_integer("videos", 8, "Copies of the clip in the records.")
flags.DEFINE_integer("frames", 181, "Frames per video.")
flags.DEFINE_integer("batch_size", 16, "Training batch size.")
flags.DEFINE_integer("steps", 6, "Timed steps (after as many warm-up steps).")
flags.DEFINE_bool("mixed_precision", False, "mixed_float16 (GPUs).")
flags.DEFINE_bool("jit_compile", False, "XLA-compile the training step.")
FLAGS = flags.FLAGS

CROP, STACK = 224, 10


def _rate(stream, records_dir, model_dir, in_memory):
  # pylint: disable=import-outside-toplevel
  import tensorflow as tf

  from two_stream_tf import data
  from two_stream_tf import model_dirs
  from two_stream_tf import models
  from two_stream_tf import training
  config = data.InputConfig(stream=stream, crop_size=CROP, stack_length=STACK)

  def make_dataset(batch_size, seed):
    dataset = data.training_dataset(records_dir, 1, config, batch_size, seed)
    if in_memory:
      return tf.data.Dataset.from_tensors(next(iter(dataset))).repeat()
    return dataset

  train_config = training.TrainConfig(
      schedule=training.Schedule(1e-3, (), 0.1, 2 * FLAGS.steps), batch_size=FLAGS.batch_size,
      log_every=FLAGS.steps, checkpoint_every=10**9, mixed_precision=FLAGS.mixed_precision,
      jit_compile=FLAGS.jit_compile)
  heads = {name: len(classes)
           for name, classes in model_dirs.records_facts([records_dir])["heads"]}
  result = training.train(
      lambda: models.build_model(stream, heads, crop_size=CROP, stack_length=STACK),
      make_dataset, model_dir, train_config, stream, log=lambda line: None)
  return result.metrics["examples_per_second"]


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  from two_stream_tf import data  # pylint: disable=import-outside-toplevel
  data.configure_input_process()  # as the train app
  device = "GPU" if tf.config.list_physical_devices("GPU") else f"{os.cpu_count()} CPU cores"
  with tempfile.TemporaryDirectory() as root:
    records_dir = clip_records.make_records(root, FLAGS.frames, FLAGS.videos)
    print(f"CNN-M-2048, {CROP} crops, temporal L={STACK}, batch {FLAGS.batch_size}, "
          f"mixed precision {FLAGS.mixed_precision}, XLA {FLAGS.jit_compile}; {device}\n")
    print("| stream | pipeline examples/s | in-memory examples/s | pipeline / in-memory |")
    print("|---|---|---|---|")
    for stream in ("spatial", "temporal"):
      fed = _rate(stream, records_dir, os.path.join(root, f"{stream}_fed"), False)
      memory = _rate(stream, records_dir, os.path.join(root, f"{stream}_memory"), True)
      print(f"| {stream} | {fed:.1f} | {memory:.1f} | {fed / memory:.2f} |", flush=True)


if __name__ == "__main__":
  app.run(main)
