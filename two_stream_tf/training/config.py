"""One training run's settings as one tree, validated when made (Model Garden's task configs):

    RunConfig
      dataset       DatasetConfig   records directories, split, classes added to a head
      input         data.InputConfig       what the network sees (kept with the model)
      model         models.ModelConfig     trunk, starting weights, what trains
      augmentation  data.Augmentation      how training samples vary
      train         TrainConfig            optimisation, schedule, logging, checkpoints
      source        data.InputSource       where batches are made (cache, tf.data service)

Error messages name fields `so`; `two_stream_tf.train` has one flag per leaf field, named as
it (`field_names`), and shows them as --so.
"""

import dataclasses

from two_stream_tf.data import config as data_config
from two_stream_tf.models import config as model_config
from two_stream_tf.training import schedule as schedule_lib


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """How to optimise (the paper's defaults; `schedule` is `schedule_lib.paper_schedule`).

  Attributes:
    bias_lr_multiplier: biases learn at this times the learning rate (Caffe's reference
      nets, the paper's era: 2, `blobs_lr: 1 2`); weight decay never applies to them.
    clip_global_norm: if set, each step's gradient (over all replicas) is scaled down to
      at most this global norm (tsn-pytorch's `--gd 20`); None: no clipping.
  """
  schedule: schedule_lib.Schedule = schedule_lib.Schedule()
  batch_size: int = 256
  momentum: float = 0.9
  weight_decay: float = 5e-4
  bias_lr_multiplier: float = 1.0
  clip_global_norm: float = None
  mixed_precision: bool = False
  jit_compile: bool = False
  seed: int = 0
  log_every: int = 100
  checkpoint_every: int = 1000
  keep_checkpoints: int = 3
  max_loss: float = 1e3

  def __post_init__(self):
    for name in ("batch_size", "log_every", "checkpoint_every", "keep_checkpoints"):
      if getattr(self, name) < 1:
        raise ValueError(f"`{name}` must be at least 1, got {getattr(self, name)}")
    for name in ("momentum", "weight_decay", "bias_lr_multiplier"):
      if getattr(self, name) < 0:
        raise ValueError(f"`{name}` must not be negative, got {getattr(self, name)}")
    if self.clip_global_norm is not None and self.clip_global_norm <= 0:
      raise ValueError(f"`clip_global_norm` must be positive, got {self.clip_global_norm}")


@dataclasses.dataclass(frozen=True)
class DatasetConfig:
  """What a run trains on.

  Attributes:
    records_dirs: records directories from flow_tools.extract, one per dataset; several
      train one multi-task network with a head per dataset (in this order).
    split: 1-based split whose training videos are used.
    add_classes_from: records of another dataset whose classes the one `records_dirs`
      dataset lacks are added to its head as extra training classes (Table 2: HMDB-51 with
      the 78 UCF-101 classes it lacks), or None.
    overlapping_classes: a file listing the `add_classes_from` classes not added (None:
      the shipped UCF-101-in-HMDB-51 list; `data.added_classes`).
  """
  records_dirs: tuple
  split: int = 1
  add_classes_from: str = None
  overlapping_classes: str = None

  def __post_init__(self):
    object.__setattr__(self, "records_dirs", tuple(self.records_dirs))
    if not self.records_dirs:
      raise ValueError("`records_dirs` names no records directory")
    if self.split < 1:
      raise ValueError(f"`split` must be at least 1, got {self.split}")
    if self.add_classes_from is None and self.overlapping_classes is not None:
      raise ValueError("`overlapping_classes` needs `add_classes_from`")
    if self.add_classes_from is not None and len(self.records_dirs) != 1:
      raise ValueError("`add_classes_from` adds classes to the head of one `records_dirs` "
                       f"dataset, got {len(self.records_dirs)} directories")


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """Everything one training run of a stream is (see the module docstring)."""
  dataset: DatasetConfig
  input: data_config.InputConfig = data_config.InputConfig()
  model: model_config.ModelConfig = model_config.ModelConfig()
  augmentation: data_config.Augmentation = data_config.Augmentation()
  train: TrainConfig = TrainConfig()
  source: data_config.InputSource = data_config.InputSource()

  def __post_init__(self):
    model_config.check_crop_size(self.model.trunk, self.input.crop_size)
    if self.model.partial_bn and not self.model.pretrained:
      raise ValueError("`partial_bn` keeps pre-trained batch statistics: it needs `weights` "
                       "or `init_from` (from scratch there are none to keep)")

  def hparams(self):
    """{leaf field: value} of the whole tree, for TensorBoard's HParams tab."""
    return _leaves(self)


def _leaves(config):
  values = {}
  for field in dataclasses.fields(config):
    value = getattr(config, field.name)
    values.update(_leaves(value) if dataclasses.is_dataclass(value) else {field.name: value})
  return values


def field_names(config_type=RunConfig):
  """The leaf field names of a config tree type, in order (nested configs walked)."""
  names = []
  for field in dataclasses.fields(config_type):
    names += (field_names(field.type) if dataclasses.is_dataclass(field.type)
              else [field.name])
  return names
