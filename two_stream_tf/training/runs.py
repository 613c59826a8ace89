"""A training run of one stream in a model_dir: its inputs checked, the run spec, the loop."""

import contextlib
import os

import tensorflow as tf

from flow_tools import records
from flow_tools.common import locks
from flow_tools.common import storage
from flow_tools.records import record_parsing
from two_stream_tf import data
from two_stream_tf import model_dirs
from two_stream_tf import models
from two_stream_tf.data import added_classes
from two_stream_tf.data import selection
from two_stream_tf.training import config
from two_stream_tf.training import loop
from two_stream_tf.training import strategy as strategy_lib


def run_spec(run: config.RunConfig) -> model_dirs.RunSpec:
  """The `model_dirs.RunSpec` a `RunConfig` trains: heads and extraction settings read from
  its records, its added classes, the RGB mean of its weights. Every file the run reads
  (records, weights, `init_from`) is checked here, before any work, and named if wrong."""
  model, dataset = run.model, run.dataset
  if model.weights not in (None, "imagenet") and not os.path.isfile(model.weights):
    raise FileNotFoundError(f"`weights`: no file {model.weights}")
  if model.init_from is not None and not os.path.isfile(
      os.path.join(model.init_from, model_dirs.SPEC_FILE)):
    raise ValueError(f"`init_from`: {model.init_from} is not a trained model_dir")
  for path in dataset.records_dirs:
    try:
      records.read_manifest(path)  # local or gs://; refuses other format versions
    except records.RecordsError as e:
      raise records.RecordsError(f"`records_dirs`: {e}") from e
  added = () if dataset.add_classes_from is None else (added_classes.non_overlapping(
      dataset.records_dirs[0], dataset.add_classes_from, dataset.overlapping_classes),)
  spatial_cnn_m = run.input.stream == "spatial" and model.trunk == "cnn_m_2048"
  return model_dirs.RunSpec.of_records(
      dataset.records_dirs, dataset.split, run.input, added_classes=added, trunk=model.trunk,
      dropout=model.dropout, rgb_mean=models.cnn_m_mean(model.weights) if spatial_cnn_m else None)


def _model_builder(spec, model):
  def build():
    network = model_dirs.build(spec, model)
    if model.init_from:
      model_dirs.init_trunk_from(network, model.init_from)
    return network
  return build


def _dataset_maker(spec, augmentation, source):
  def make(batch_size, seed):
    service = source.tf_data_service
    # Under the service each worker seeds itself (None): one seed would repeat every batch.
    dataset = data.training_dataset(
        list(spec.records_dirs), spec.split, spec.input, batch_size, None if service else seed,
        augmentation=augmentation, shuffle_buffer=source.shuffle_buffer,
        deterministic=source.deterministic_input, added=spec.added_classes,
        input_cache=source.input_cache)
    return data.service.distribute(dataset, service) if service else dataset
  return make


def train_stream(model_dir: str, run: config.RunConfig, *,
                 strategy: tf.distribute.Strategy | None = None, checkpoint: str | None = None,
                 flags_text: str | None = None) -> loop.TrainResult:
  """Trains the stream a `training.RunConfig` describes in `model_dir`, resuming what is there.

  Args:
    model_dir: checkpoints, TensorBoard logs (the run's fields in the HParams tab), the run
      spec and flags; held by this run (`flow_tools.common.locks`): a second run on it at
      the same time is refused, as is a model_dir holding another run.
    run: a `training.RunConfig`.
    strategy: a `tf.distribute.Strategy` (default: the current one).
    checkpoint: resume from this checkpoint prefix (default: the newest readable one).
    flags_text: the app's effective flags, saved in `model_dir` (None: not saved).
  Returns:
    A `loop.TrainResult`.
  """
  spec = run_spec(run)
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
      return loop.train(_model_builder(spec, run.model),
                        _dataset_maker(spec, run.augmentation, run.source),
                        model_dir, run.train, spec.stream, strategy, hparams=run.hparams(),
                        checkpoint=checkpoint, num_segments=run.augmentation.num_segments)
