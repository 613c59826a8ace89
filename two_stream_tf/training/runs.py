"""A training run of one stream in a model_dir: checks, the run spec, then the loop."""

import contextlib

from flow_tools.common import locks
from flow_tools.common import storage
from flow_tools.records import record_parsing
from two_stream_tf import data
from two_stream_tf import model_dirs
from two_stream_tf import models
from two_stream_tf.data import selection
from two_stream_tf.training import loop
from two_stream_tf.training import strategy as strategy_lib


def _model_builder(spec, weights, init_from, last_layer_only, initialization, partial_bn):
  def build():
    model = model_dirs.build(spec, weights,
                             train_last_layer_only=last_layer_only and weights is not None,
                             initialization=initialization, partial_bn=partial_bn)
    if init_from:
      model_dirs.init_trunk_from(model, init_from)
      model.get_layer("trunk").trainable = not last_layer_only
    return model
  return build


def _dataset_maker(spec, augmentation, shuffle_buffer, deterministic, tf_data_service,
                   input_cache):
  def make(batch_size, seed):
    if tf_data_service:
      return data.service.distribute(data.training_dataset(
          list(spec.records_dirs), spec.split, spec.input, batch_size, None,
          augmentation=augmentation, shuffle_buffer=shuffle_buffer,
          added=spec.added_classes, input_cache=input_cache), tf_data_service)
    return data.training_dataset(list(spec.records_dirs), spec.split, spec.input, batch_size,
                                 seed, augmentation=augmentation, shuffle_buffer=shuffle_buffer,
                                 deterministic=deterministic, added=spec.added_classes,
                                 input_cache=input_cache)
  return make


def train_stream(model_dir, spec, config, *, augmentation=None, weights=None, init_from=None,
                 last_layer_only=False, shuffle_buffer=1024, deterministic_input=False,
                 input_cache="auto", tf_data_service=None, strategy=None, hparams=None,
                 flags_text=None, checkpoint=None, initialization=models.DEFAULT_INITIALIZATION,
                 partial_bn=False):
  """Trains the stream `spec` describes in `model_dir`, resuming what is there.

  Args:
    model_dir: checkpoints, TensorBoard logs, the run spec and flags; held by this run
      (`flow_tools.common.locks`): a second run on it at the same time is refused.
    spec: a `model_dirs.RunSpec`; a model_dir holding another run is refused.
    config: a `loop.TrainConfig`.
    augmentation: a `data.Augmentation` (None: the paper's).
    weights: pre-trained trunk ('imagenet' or a weights file), or None.
    init_from: a model_dir whose trunk initialises this one, or None.
    last_layer_only: train the heads only (with `weights` or `init_from`).
    shuffle_buffer, deterministic_input, input_cache: as `data.training_dataset`.
    tf_data_service: grpc://HOST:PORT of a tf.data service dispatcher, or None.
    strategy: a `tf.distribute.Strategy` (default: the current one).
    hparams: {name: value} for TensorBoard's HParams tab.
    flags_text: the app's effective flags, saved in `model_dir` (None: not saved).
    checkpoint: resume from this checkpoint prefix (default: the newest readable one).
    initialization: how a CNN-M-2048 trained from scratch starts ('keras', the default, or
      'caffe', the paper's); pre-trained layers are loaded over it.
    partial_bn: TSN's partial batch normalisation (`models.build_model`); needs `weights`
      or `init_from` (statistics worth keeping).
  Returns:
    A `loop.TrainResult`.
  """
  if partial_bn and weights is None and init_from is None:
    raise ValueError("partial_bn keeps the trunk's pre-trained batch statistics: it needs "
                     "weights or init_from (from scratch there are none to keep)")
  augmentation = augmentation or data.Augmentation()
  storage.check_writable(model_dir)
  selection.check_selection(
      selection.open_sources(list(spec.records_dirs), spec.added_classes), spec.split, "train")
  strategy = strategy or strategy_lib.make_strategy("none")
  chief = strategy_lib.is_chief(strategy)
  # One run per model_dir: the other workers of a cluster write their own folders in it.
  with (locks.hold(model_dir, "training") if chief else contextlib.nullcontext()):
    model_dirs.check_resumable(model_dir, spec)
    if chief:
      model_dirs.save_spec(model_dir, spec)
      if flags_text is not None:
        model_dirs.save_flags(model_dir, flags_text)
    with record_parsing.naming_damaged_files(spec.records_read):
      return loop.train(_model_builder(spec, weights, init_from, last_layer_only, initialization,
                                       partial_bn),
                        _dataset_maker(spec, augmentation, shuffle_buffer, deterministic_input,
                                       tf_data_service, input_cache),
                        model_dir, config, spec.stream, strategy, hparams=hparams,
                        checkpoint=checkpoint, num_segments=augmentation.num_segments)
