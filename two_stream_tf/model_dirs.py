"""What a model_dir holds: the run spec that rebuilds the network and its input, and checkpoints.

`train` writes `run_spec.json` (`save_spec`) and checkpoints; `evaluate` and `export` read
them back (`load`), so they need no flags repeating the stream, heads, trunk or input
settings of the training run.
"""

import dataclasses
import json
import os

from absl import logging
import keras
import tensorflow as tf

from flow_tools import records
from flow_tools.common import storage
from two_stream_tf import data
from two_stream_tf import models
from two_stream_tf.data import added_classes
from two_stream_tf.data import selection

SPEC_FILE = "run_spec.json"
# What `RunSpec.to_json` writes; specs from before this entry are format 1 (`load_spec`).
SPEC_FORMAT = "two_stream_tf.run_spec/2"
# Checkpoints go one level below the TensorBoard logs' parent: TensorBoard's projector looks
# for checkpoints in each log directory and its parent, and shows an empty tab if it finds one.
CHECKPOINTS = "checkpoints"
FLAGS_FILE = "flags.txt"  # this run's effective flags, usable as a flagfile
FLAGS_HISTORY_FILE = "flags_history.txt"  # every run's, appended


class RunSpecError(ValueError):
  """A model_dir's spec is missing, unreadable, or differs from the one asked for."""


@dataclasses.dataclass(frozen=True)
class RunSpec:
  """Settings of one trained stream (model and input; not optimisation).

  Attributes:
    heads: ((dataset name, (class names...)), ...) in output order.
    records_dirs: the records directories trained on, one per head.
    extraction: per records directory, the settings its frames and flow were extracted
      with (its manifest's `config`): a resume on other records is refused, and the
      export says what a caller's videos must go through.
    split: 1-based split number trained on.
    input: the `two_stream_tf.data.InputConfig` the network sees (stream included).
    trunk, dropout, rgb_mean: as `two_stream_tf.models.build_model` (dropout None: the
      paper's for the stream; rgb_mean None: the trunk's default).
    added_classes: `added_classes.AddedClasses` trained as extra classes of a head after its
      own (`heads` holds the own classes, which tests and exports score).
  """
  heads: tuple
  records_dirs: tuple
  extraction: tuple
  split: int
  input: data.InputConfig = dataclasses.field(default_factory=data.InputConfig)
  trunk: str = "cnn_m_2048"
  dropout: float = None
  rgb_mean: tuple = None
  added_classes: tuple = ()

  def __post_init__(self):
    if self.dropout is None:
      object.__setattr__(self, "dropout", models.DEFAULT_DROPOUT[self.stream])

  @classmethod
  def of_records(cls, records_dirs, split, input_config, added_classes=(), **model):
    """The spec of a run on `records_dirs` (heads and extraction settings read from them)
    and `added_classes`; `model`: trunk, dropout, rgb_mean."""
    # Absolute: evaluate and export may run from another directory than training did.
    return cls(records_dirs=tuple(storage.absolute(d) for d in records_dirs), split=split,
               input=input_config,
               added_classes=tuple(added_classes), **records_facts(records_dirs), **model)

  @property
  def stream(self):
    return self.input.stream

  @property
  def head_names(self):
    return [name for name, _ in self.heads]

  @property
  def class_counts(self):
    """{head: number of classes trained}, as `build_model` takes them: a head's own and
    those added to it."""
    counts = {name: len(classes) for name, classes in self.heads}
    for added in self.added_classes:
      counts[added.head] += len(added.class_names)
    return counts

  @property
  def records_read(self):
    """Every records directory training reads: the heads', then the added classes'."""
    return tuple(self.records_dirs) + tuple(a.records_dir for a in self.added_classes)

  def to_json(self):
    """Flat JSON: the input's fields beside the others, each named as its train flag."""
    return {"format": SPEC_FORMAT,
            "heads": [[name, list(classes)] for name, classes in self.heads],  # ordered
            "records_dirs": list(self.records_dirs), "extraction": list(self.extraction),
            "split": self.split, "trunk": self.trunk, "dropout": self.dropout,
            "rgb_mean": None if self.rgb_mean is None else list(self.rgb_mean),
            "added_classes": [a.to_json() for a in self.added_classes],
            **dataclasses.asdict(self.input)}

  @classmethod
  def from_json(cls, value):
    value = dict(value)
    value.pop("format", None)  # checked by `load_spec`
    inputs = {f.name: value.pop(f.name) for f in dataclasses.fields(data.InputConfig)}
    rgb_mean = value.pop("rgb_mean", None)  # None: the trunk's default, or an older spec
    added = value.pop("added_classes", [])
    return cls(heads=tuple((name, tuple(c)) for name, c in value.pop("heads")),
               records_dirs=tuple(value.pop("records_dirs")),
               extraction=tuple(value.pop("extraction")),
               rgb_mean=None if rgb_mean is None else tuple(rgb_mean),
               added_classes=tuple(added_classes.AddedClasses.from_json(a) for a in added),
               input=data.InputConfig(**inputs), **value)


def records_facts(records_dirs):
  """{'heads': ((dataset, class names), ...), 'extraction': (settings, ...)} of records
  directories, one per dataset: the RunSpec fields that come from the records."""
  sources = selection.open_sources(list(records_dirs))
  return {"heads": tuple((s.dataset, s.class_names) for s in sources),
          "extraction": tuple(s.manifest["config"] for s in sources)}


def save_spec(model_dir: str, spec: RunSpec) -> None:
  """Writes `spec` into `model_dir` (atomically)."""
  os.makedirs(model_dir, exist_ok=True)
  storage.write_json(os.path.join(model_dir, SPEC_FILE), spec.to_json())


def save_flags(model_dir, text):
  """Writes a run's effective flags (`FLAGS_FILE`, atomically) and appends them to the history."""
  storage.write_text(os.path.join(model_dir, FLAGS_FILE), text)
  with open(os.path.join(model_dir, FLAGS_HISTORY_FILE), "a", encoding="utf-8") as f:
    f.write(text + "\n")


def load_spec(model_dir: str) -> RunSpec:
  """The `RunSpec` a training run left in `model_dir`."""
  path = os.path.join(model_dir, SPEC_FILE)
  if not os.path.isfile(path):
    raise RunSpecError(f"no {SPEC_FILE} in {model_dir}: not a model_dir written by "
                       "python -m two_stream_tf.train")
  try:
    with open(path, encoding="utf-8") as f:
      value = json.load(f)
    made = value.get("format")
    if made is None:
      value = _from_format_1(value, path)
    elif made != SPEC_FORMAT:
      raise RunSpecError(f"{path}: a run spec of format {made}, this version reads "
                         f"{SPEC_FORMAT}: written by a newer two_stream_tf?")
    return RunSpec.from_json(value)
  except RunSpecError:
    raise
  except (ValueError, TypeError, KeyError, AttributeError) as e:
    raise RunSpecError(f"{path}: unreadable run spec ({e})") from e


def _from_format_1(value, path):
  """The one place older specs are read: those from before the format entry may lack the
  records' extraction settings, which their records still hold (paths as they were written,
  relative to where training ran in the oldest)."""
  if "extraction" in value:
    return value
  try:
    return {**value, "extraction": [records.read_manifest(d)["config"]
                                    for d in value["records_dirs"]]}
  except records.RecordsError as e:
    raise RunSpecError(
        f"{path} was written by an older version that did not record how its records were "
        f"extracted, and they cannot be read ({e}): run from the directory training ran in, "
        "or train again") from e


_SPEC_NAMES = {"rgb_mean": "the RGB mean of --weights"}  # spec fields that are not flags


def _added_summary(added):
  return ", ".join(f"{len(a['class_names'])} {a['dataset']} classes to {a['head']}"
                   for a in added) or "none"


def extraction_differences(there, now, names=("there", "now")):
  """['key=<there> there, <now> now', ...] of two extraction settings (manifest configs)."""
  return [f"{key}={there.get(key)!r} {names[0]}, {now.get(key)!r} {names[1]}"
          for key in sorted(set(there) | set(now)) if there.get(key) != now.get(key)]


def check_resumable(model_dir, spec):
  """Raises if `model_dir` holds a run whose model or input differs from `spec`.

  Records directories may move between runs; everything else, the records' extraction
  settings included, must match, or the checkpoint would be resumed into a different
  network or trained on different input. A spec without a checkpoint beside it (a run
  that failed before its first one) binds nothing.
  """
  if (not os.path.isfile(os.path.join(model_dir, SPEC_FILE))
      or _checkpoint_state(model_dir) is None):
    return
  saved, wanted = load_spec(model_dir).to_json(), spec.to_json()
  differences = [f"{_SPEC_NAMES.get(name, '--' + name)}={saved[name]!r} there, "
                 f"{wanted[name]!r} now" for name in sorted(saved)
                 if name not in ("format", "records_dirs", "heads", "extraction",
                                 "added_classes")
                 and saved[name] != wanted[name]]
  for there, now in zip(saved["extraction"], wanted["extraction"]):
    differences += [f"records extracted with {d}" for d in extraction_differences(there, now)]
  def added(value):  # records directories may move
    return [{k: v for k, v in a.items() if k != "records_dir"} for a in value["added_classes"]]
  if added(saved) != added(wanted):
    differences.append(f"classes added to the heads (--add_classes_from, "
                       f"--overlapping_classes): {_added_summary(added(saved))} there, "
                       f"{_added_summary(added(wanted))} now")
  if saved["heads"] != wanted["heads"]:
    differences.append(f"heads {[h for h, _ in saved['heads']]} there, {spec.head_names} now "
                       "(or their class lists differ)")
  if differences:
    raise RunSpecError(f"{model_dir} holds a different run ({'; '.join(differences)}): use "
                       "another --model_dir or the same flags")


def build(spec: RunSpec, model: models.ModelConfig | None = None) -> keras.Model:
  """The network `spec` describes, untrained; `model`: a training run's `models.ModelConfig`
  (weights, what trains, initialisation, partial BN), whose trunk and dropout `spec` holds."""
  model = dataclasses.replace(model or models.ModelConfig(), trunk=spec.trunk,
                              dropout=spec.dropout)
  return models.build_model(spec.stream, spec.class_counts, model,
                            crop_size=spec.input.crop_size, stack_length=spec.input.stack_length,
                            rgb_mean=spec.rgb_mean)


# What reading a damaged checkpoint raises (a data file cut short by a full disk or a kill:
# IndexError "Read less bytes than requested"; a damaged index: DataLossError).
_UNREADABLE = (IndexError, tf.errors.OpError)


def checkpoints_dir(model_dir: str) -> str:
  """Where a run's checkpoints (`ckpt-<step>`) are."""
  return os.path.join(model_dir, CHECKPOINTS)


def newest_checkpoint(model_dir: str) -> str | None:
  """The newest checkpoint prefix of `model_dir`, or None."""
  return tf.train.latest_checkpoint(checkpoints_dir(model_dir))


def _checkpoint_state(model_dir):
  state = tf.train.get_checkpoint_state(checkpoints_dir(model_dir))
  if state is None and tf.train.get_checkpoint_state(model_dir) is not None:
    raise RunSpecError(
        f"{model_dir} holds checkpoints beside run_spec.json, where older versions saved "
        f"them: move them with mkdir {checkpoints_dir(model_dir)} && mv {model_dir}/checkpoint "
        f"{model_dir}/ckpt-* {checkpoints_dir(model_dir)}/")
  return state


def restore(checkpoint, model_dir, path=None, *, partial=False, fits="this network"):
  """Restores the `tf.train.Checkpoint` `checkpoint` from `path` (a prefix such as
  model_dir/checkpoints/ckpt-2000) or else from the newest readable checkpoint of
  `model_dir`.

  A damaged checkpoint is named in a warning and the one before it is tried.
  Args:
    partial: the checkpoint may hold more than `checkpoint` tracks (an optimizer).
    fits: what `checkpoint` holds, for the error when the checkpoint does not match it.
  Returns:
    The path restored, or None if `model_dir` holds no checkpoint (and no `path`).
  Raises:
    FileNotFoundError: no checkpoint at `path`.
    ValueError: the checkpoint does not match `checkpoint`, or none is readable.
  """
  if path is not None:
    if not tf.io.gfile.exists(path + ".index"):
      raise FileNotFoundError(f"no checkpoint {path} (expected {path}.index)")
    candidates = [path]
  else:
    state = _checkpoint_state(model_dir)
    candidates = list(reversed(state.all_model_checkpoint_paths)) if state else []
  damaged = []
  for candidate in candidates:
    try:
      status = checkpoint.restore(candidate)
      (status.expect_partial() if partial else status).assert_existing_objects_matched()
      return candidate
    except _UNREADABLE as e:
      damaged.append(f"{candidate} ({type(e).__name__}: {str(e).splitlines()[0]})")
      logging.warning("checkpoint %s is damaged and cannot be read; trying the one before it",
                      damaged[-1])
    except (AssertionError, ValueError) as e:
      raise ValueError(f"{candidate} does not match {fits}: {str(e).splitlines()[0]}") from e
  if damaged:
    raise ValueError(f"no readable checkpoint in {model_dir}: {'; '.join(damaged)}")
  return None


def checkpoint_step(path):
  """The training step a checkpoint was written at."""
  return int(tf.train.load_variable(path, "step/.ATTRIBUTES/VARIABLE_VALUE"))


def load(model_dir: str, checkpoint: str | None = None
         ) -> tuple[keras.Model, RunSpec, int]:
  """(model, spec, step) of the run in `model_dir`, weights from the given checkpoint or
  the newest readable one (see `restore`). A head with added classes scores its own
  classes only (`models.restrict_heads`), as tests and exports do."""
  spec = load_spec(model_dir)
  model = build(spec)
  path = restore(tf.train.Checkpoint(model=model), model_dir, checkpoint, partial=True,
                 fits=f"the network of {SPEC_FILE}")
  if path is None:
    raise FileNotFoundError(f"no checkpoint in {model_dir}: train it first")
  if spec.added_classes:
    model = models.restrict_heads(model, {a.head: len(dict(spec.heads)[a.head])
                                          for a in spec.added_classes})
  return model, spec, checkpoint_step(path)


def init_trunk_from(model, source_dir):
  """Copies the trunk of the run in `source_dir` into `model` (heads stay new): fine-tuning a
  network trained on another dataset (the paper's HMDB-51 from UCF-101)."""
  source, spec, _ = load(source_dir)
  try:
    model.get_layer("trunk").set_weights(source.get_layer("trunk").get_weights())
  except ValueError as e:
    raise ValueError(f"the trunk in {source_dir} ({spec.stream}, {spec.trunk}, crop "
                     f"{spec.input.crop_size}, L={spec.input.stack_length}) does not fit this "
                     f"network: {e}") from e
  return model
