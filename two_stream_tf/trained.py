"""Trained streams in a model_dir: rebuild the network from its run spec and restore weights."""

import tensorflow as tf

from two_stream_tf import models
from two_stream_tf import run_spec


def build(spec, weights=None, train_last_layer_only=False):
  """The network `spec` describes (untrained unless `weights`)."""
  return models.build_model(spec.stream, spec.class_counts, spec.trunk, spec.crop_size,
                            spec.stack_length, spec.dropout, weights, train_last_layer_only)


def checkpoint_path(model_dir, checkpoint=None):
  """`checkpoint` (a path prefix such as model_dir/ckpt-2000) or the latest in `model_dir`."""
  path = checkpoint or tf.train.latest_checkpoint(model_dir)
  if path is None:
    raise FileNotFoundError(f"no checkpoint in {model_dir}: train it first")
  if not tf.io.gfile.exists(path + ".index"):
    raise FileNotFoundError(f"no checkpoint {path} (expected {path}.index)")
  return path


def checkpoint_step(path):
  """The training step a checkpoint was written at."""
  return int(tf.train.load_variable(path, "step/.ATTRIBUTES/VARIABLE_VALUE"))


def load(model_dir, checkpoint=None):
  """(model, spec, step) of the run in `model_dir`, weights from its latest (or given) checkpoint."""
  spec = run_spec.load(model_dir)
  path = checkpoint_path(model_dir, checkpoint)
  model = build(spec)
  try:
    tf.train.Checkpoint(model=model).restore(path).expect_partial().assert_existing_objects_matched()
  except (AssertionError, ValueError) as e:
    raise ValueError(f"{path} does not match the network of {run_spec.FILENAME}: "
                     f"{str(e).splitlines()[0]}") from e
  return model, spec, checkpoint_step(path)


def init_trunk_from(model, source_dir):
  """Copies the trunk of the run in `source_dir` into `model` (heads stay new): fine-tuning a
  network trained on another dataset (the paper's HMDB-51 from UCF-101)."""
  source, spec, _ = load(source_dir)
  try:
    model.get_layer("trunk").set_weights(source.get_layer("trunk").get_weights())
  except ValueError as e:
    raise ValueError(f"the trunk in {source_dir} ({spec.stream}, {spec.trunk}, crop "
                     f"{spec.crop_size}, L={spec.stack_length}) does not fit this network: "
                     f"{e}") from e
  return model
