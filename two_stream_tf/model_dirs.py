"""What a model_dir holds: the run spec that rebuilds the network and its input, and checkpoints.

`train` writes `run_spec.json` (`save_spec`) and checkpoints; `evaluate` and `export` read
them back (`load`), so they need no flags repeating the stream, heads, trunk or input
settings of the training run.
"""

import dataclasses
import json
import os

import tensorflow as tf

from flow_tools import storage
from two_stream_tf import data
from two_stream_tf import models
from two_stream_tf.data import selection

SPEC_FILE = "run_spec.json"


class RunSpecError(ValueError):
  """A model_dir's spec is missing, unreadable, or differs from the one asked for."""


@dataclasses.dataclass(frozen=True)
class RunSpec:
  """Settings of one trained stream (model and input; not optimisation).

  Attributes:
    heads: ((dataset name, (class names...)), ...) in output order.
    records_dirs: the records directories trained on, one per head.
    split: 1-based split number trained on.
    other fields: as `two_stream_tf.models.build_model` and `two_stream_tf.data.InputConfig`.
  """
  stream: str
  heads: tuple
  records_dirs: tuple
  split: int
  trunk: str = "cnn_m_2048"
  crop_size: int = 224
  stack_length: int = 10
  stacking: str = "flow"
  mean_subtraction: bool = True
  dropout: float = 0.5

  @property
  def head_names(self):
    return [name for name, _ in self.heads]

  @property
  def class_counts(self):
    """{head: number of classes}, as `build_model` takes them."""
    return {name: len(classes) for name, classes in self.heads}

  def input_config(self, **training_options):
    """The `InputConfig` of this stream; `training_options` add augmentation/sampling."""
    return data.InputConfig(stream=self.stream, crop_size=self.crop_size,
                            stack_length=self.stack_length, stacking=self.stacking,
                            mean_subtraction=self.mean_subtraction, **training_options)

  def to_json(self):
    value = dataclasses.asdict(self)
    value["heads"] = [[name, list(classes)] for name, classes in self.heads]  # ordered
    value["records_dirs"] = list(self.records_dirs)
    return value

  @classmethod
  def from_json(cls, value):
    value = dict(value)
    value["heads"] = tuple((name, tuple(c)) for name, c in value["heads"])
    value["records_dirs"] = tuple(value["records_dirs"])
    return cls(**value)


def heads_of(records_dirs):
  """The heads ((dataset, class names), ...) of records directories, one per dataset."""
  return tuple((s.dataset, s.class_names) for s in selection.open_sources(list(records_dirs)))


def save_spec(model_dir, spec):
  """Writes `spec` into `model_dir` (atomically)."""
  os.makedirs(model_dir, exist_ok=True)
  storage.write_json(os.path.join(model_dir, SPEC_FILE), spec.to_json())


def load_spec(model_dir):
  """The `RunSpec` a training run left in `model_dir`."""
  path = os.path.join(model_dir, SPEC_FILE)
  if not os.path.isfile(path):
    raise RunSpecError(f"no {SPEC_FILE} in {model_dir}: not a model_dir written by "
                       "python -m two_stream_tf.train")
  try:
    with open(path, encoding="utf-8") as f:
      return RunSpec.from_json(json.load(f))
  except (ValueError, TypeError, KeyError) as e:
    raise RunSpecError(f"{path}: unreadable run spec ({e})") from e


def check_resumable(model_dir, spec):
  """Raises if `model_dir` holds a run whose model or input differs from `spec`.

  Records directories may move between runs; everything else must match, or the
  checkpoint would be resumed into a different network or trained on different input.
  """
  if not os.path.isfile(os.path.join(model_dir, SPEC_FILE)):
    return
  saved = load_spec(model_dir)
  differences = [f"--{f.name}={getattr(saved, f.name)!r} there, {getattr(spec, f.name)!r} now"
                 for f in dataclasses.fields(RunSpec)
                 if f.name not in ("records_dirs", "heads")
                 and getattr(saved, f.name) != getattr(spec, f.name)]
  if saved.heads != spec.heads:
    differences.append(f"heads {saved.head_names} there, {spec.head_names} now (or their "
                       "class lists differ)")
  if differences:
    raise RunSpecError(f"{model_dir} holds a different run ({'; '.join(differences)}): use "
                       "another --model_dir or the same flags")


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
  spec = load_spec(model_dir)
  path = checkpoint_path(model_dir, checkpoint)
  model = build(spec)
  try:
    tf.train.Checkpoint(model=model).restore(path).expect_partial().assert_existing_objects_matched()
  except (AssertionError, ValueError) as e:
    raise ValueError(f"{path} does not match the network of {SPEC_FILE}: "
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
