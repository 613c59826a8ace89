"""What a trained model is: the settings that rebuild it and its inputs, kept in its model_dir.

`train` writes `run_spec.json`; `evaluate` and `export` read it, so they need no flags
repeating the stream, heads, trunk or input settings of the training run.
"""

import dataclasses
import json
import os

from flow_tools import records
from two_stream_tf import data
from two_stream_tf.data import selection

FILENAME = "run_spec.json"


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


def save(model_dir, spec):
  os.makedirs(model_dir, exist_ok=True)
  records.write_json(os.path.join(model_dir, FILENAME), spec.to_json())


def load(model_dir):
  """The `RunSpec` a training run left in `model_dir`."""
  path = os.path.join(model_dir, FILENAME)
  if not os.path.isfile(path):
    raise RunSpecError(f"no {FILENAME} in {model_dir}: not a model_dir written by "
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
  if not os.path.isfile(os.path.join(model_dir, FILENAME)):
    return
  saved = load(model_dir)
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
