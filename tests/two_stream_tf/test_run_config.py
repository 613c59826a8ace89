"""One config tree per training run: every leaf field has a train flag and every flag a field,
the flags land in their fields, and the tree refuses what does not go together."""

import dataclasses

from absl import flags
import pytest

from two_stream_tf import data
from two_stream_tf import models
from two_stream_tf import train as train_app
from two_stream_tf import training
from two_stream_tf.training import config as run_config_lib

# Flags whose default says "decided from the rest of the run" where the field has a value.
_DERIVED_DEFAULTS = {"stream", "records_dirs", "lr_boundaries", "train_steps"}


def _app_flags():
  return {f.name: f for f in flags.FLAGS.get_key_flags_for_module(train_app)}


def _leaf_defaults():
  """{flag name: default} of every leaf field that has a default, walked by hand."""
  defaults = {}
  def walk(config_type):
    for field in dataclasses.fields(config_type):
      if dataclasses.is_dataclass(field.type):
        walk(field.type)
      else:
        name = train_app.FLAG_OF_FIELD.get(field.name, field.name)
        defaults[name] = field.default
  walk(training.RunConfig)
  return defaults


def test_every_leaf_field_has_a_flag_and_every_flag_a_field():
  names = [train_app.FLAG_OF_FIELD.get(n, n) for n in run_config_lib.field_names()]
  assert len(names) == len(set(names)), "two leaf fields share a name"
  app_flags = set(_app_flags())
  assert sorted(set(names) - app_flags) == [], "fields without a flag"
  assert sorted(app_flags - set(names) - set(train_app.APP_FLAGS)) == [], "flags without a field"
  assert set(train_app.APP_FLAGS) <= app_flags
  assert set(names) == set(_leaf_defaults())


def test_each_flag_default_is_its_fields_default():
  app_flags = _app_flags()
  for name, default in _leaf_defaults().items():
    if name in _DERIVED_DEFAULTS:
      continue
    default = None if default is dataclasses.MISSING else default
    assert app_flags[name].default == default, name


def _values(**changes):
  values = {name: flag.default for name, flag in _app_flags().items()}
  values.update(stream="temporal", records_dirs=["/r/ucf101", "/r/hmdb51"], model_dir="/m")
  values.update(changes)
  return values


def test_the_flags_land_in_their_fields():
  run = train_app.run_config(_values(
      stream="spatial", split=2, crop_size=112, dropout=0.3, samples_per_visit=3,
      num_segments=3, clip_global_norm=20.0, learning_rate=0.001, lr_boundaries=["10", "20"],
      lr_decay=0.5, train_steps=30, batch_size=8, shuffle_buffer=5, input_cache="disk",
      trunk="resnet50", weights="imagenet", partial_bn=True))
  assert run.dataset == training.DatasetConfig(("/r/ucf101", "/r/hmdb51"), split=2)
  assert run.input == data.InputConfig(stream="spatial", crop_size=112)
  assert run.model == models.ModelConfig(trunk="resnet50", weights="imagenet", partial_bn=True,
                                         dropout=0.3)
  assert run.augmentation == data.Augmentation(samples_per_visit=3, num_segments=3)
  assert run.train.schedule == training.Schedule(0.001, (10, 20), 0.5, 30)
  assert (run.train.clip_global_norm, run.train.batch_size) == (20.0, 8)
  assert run.source == data.InputSource(shuffle_buffer=5, input_cache="disk")
  hparams = run.hparams()
  assert hparams["clip_global_norm"] == 20.0 and hparams["boundaries"] == (10, 20)
  assert len(hparams) == len(run_config_lib.field_names())


def test_the_schedule_defaults_follow_the_starting_weights():
  scratch = train_app.run_config(_values()).train.schedule
  tuned = train_app.run_config(_values(trunk="resnet50", weights="imagenet")).train.schedule
  assert (scratch.boundaries, scratch.train_steps) == ((50_000, 70_000), 80_000)
  assert (tuned.boundaries, tuned.train_steps) == ((14_000,), 20_000)


@pytest.mark.parametrize("changes, message", [
    ({"trunk": "resnet50", "partial_bn": True},
     "--partial_bn keeps pre-trained batch statistics: it needs --weights or --init_from"),
    ({"crop_size": 40}, "cnn_m_2048 needs crops of at least 41 pixels, got 40"),
    ({"weights": "w.npz", "init_from": "/m0"}, "give --weights or --init_from, not both"),
    ({"dropout": 1.0}, "--dropout must be in [0, 1), got 1.0"),
    ({"clip_global_norm": 0.0}, "--clip_global_norm must be positive"),
    ({"records_dirs": ["/r/hmdb51", "/r/ucf101"], "add_classes_from": "/r/ucf101"},
     "--add_classes_from adds classes to the head of one --records_dirs dataset, got 2"),
    ({"tf_data_service": "grpc://dispatcher:5050", "deterministic_input": True},
     "--deterministic_input cannot hold with --tf_data_service"),
    ({"lr_decay": 2.0}, "decay in (0, 1]"),
])
def test_the_tree_refuses_what_does_not_go_together_naming_the_flags(changes, message):
  with pytest.raises(ValueError) as raised:
    train_app.run_config(_values(**changes))
  assert message in train_app.as_flags(raised.value)


def test_from_python_the_errors_name_the_fields():
  with pytest.raises(ValueError, match="`partial_bn` keeps pre-trained batch statistics"):
    training.RunConfig(training.DatasetConfig(("/r",)), model=models.ModelConfig(
        trunk="resnet50", partial_bn=True))
  with pytest.raises(ValueError, match="`records_dirs` names no records directory"):
    training.DatasetConfig(())
  assert training.DatasetConfig(["/r"]).records_dirs == ("/r",)
