"""Damaged or edited inputs are named, never silently used or dropped: records changed at
their size, labels out of range, records of other settings, records that moved."""

import json
import os
import re
import shutil

import keras
import numpy as np
import pytest

from flow_tools import records
from tests.two_stream_tf import common
from two_stream_tf import data
from two_stream_tf import evaluation
from two_stream_tf import fusion
from two_stream_tf import model_dirs
from two_stream_tf import training
from two_stream_tf.evaluation import score_files

CROP = 48


def _copy(records_dirs, tmp_path, dataset="ucf101"):
  copied = str(tmp_path / dataset)
  shutil.copytree(records_dirs[dataset], copied)
  return copied, records.read_manifest(copied)


_SPATIAL = data.InputConfig(stream="spatial", crop_size=CROP)


def _spec(records_dir):
  return model_dirs.RunSpec.of_records([records_dir], 1, _SPATIAL)


def _run(records_dir, source=data.InputSource()):
  return common.run_config([records_dir], _SPATIAL, _config(), source)


def _config():
  return training.TrainConfig(schedule=training.Schedule(0.01, (), 0.1, 1), batch_size=8,
                              log_every=1, checkpoint_every=1, weight_decay=0.0)


def _flip_bytes(path, at):
  """Inverts 4 bytes at `at`: the file keeps its size, a record's checksum fails."""
  with open(path, "r+b") as f:
    f.seek(at)
    original = f.read(4)
    f.seek(at)
    f.write(bytes(b ^ 0xFF for b in original))


def _write_manifest(records_dir, manifest):
  with open(os.path.join(records_dir, records.MANIFEST), "w", encoding="utf-8") as f:
    json.dump(manifest, f)


@pytest.mark.parametrize("input_cache", ["memory", "disk"])
def test_a_records_file_changed_at_its_size_is_named_with_its_video(records_dirs, tmp_path,
                                                                     input_cache):
  """TensorFlow says only 'corrupted record at N'; the sizes all match the manifest."""
  copied, manifest = _copy(records_dirs, tmp_path)
  videos = manifest["videos"]
  path = {v: records.video_path(copied, info, "rgb") for v, info in videos.items()}
  train_ids = sorted(v for v, info in videos.items() if info["splits"][0] == 1)
  for video_id in train_ids:  # bit flips in the middle of a frame's JPEG bytes
    _flip_bytes(path[video_id], os.path.getsize(path[video_id]) // 2)
  spec = _spec(copied)
  with pytest.raises(records.RecordsError) as raised:
    training.train_stream(str(tmp_path / "model"),
                          _run(copied, data.InputSource(input_cache=input_cache)))
  message = str(raised.value)
  named = re.search(r"^(\S+) fails its checksum \(video '([^']+)'\)", message)
  assert named and "\n" not in message, message
  assert named.group(2) in train_ids and named.group(1) == path[named.group(2)]
  assert "corrupted record at" in message and copied in message

  shutil.rmtree(copied)
  copied, _ = _copy(records_dirs, tmp_path)
  test_id = sorted(v for v, info in videos.items() if info["splits"][0] == 2)[2]
  _flip_bytes(path[test_id], os.path.getsize(path[test_id]) - 100)  # in its last record
  keras.utils.set_random_seed(0)
  model = model_dirs.build(spec)
  with pytest.raises(records.RecordsError,
                     match=rf"^{re.escape(path[test_id])} fails its checksum \(video "
                           rf"'{re.escape(test_id)}'\)"):
    evaluation.score_videos(model, spec, batch_size=60, num_positions=2,
                            input_cache=input_cache)


@pytest.mark.parametrize("label", [99, -1, "3"])
def test_a_label_out_of_range_is_refused_naming_the_video(records_dirs, tmp_path, label):
  copied, manifest = _copy(records_dirs, tmp_path)
  video_id = sorted(manifest["videos"])[7]
  manifest["videos"][video_id]["label"] = label
  _write_manifest(copied, manifest)
  classes = len(manifest["class_names"])
  expected = (rf"video '{re.escape(video_id)}' has label {re.escape(repr(label))}, but ucf101 "
              rf"has {classes} classes \(labels 0\.\.{classes - 1}\)")
  with pytest.raises(records.RecordsError, match=expected):
    training.train_stream(str(tmp_path / "model"), _run(copied))
  with pytest.raises(records.RecordsError, match=expected):
    next(iter(data.evaluation_views([copied], 1, _spec(copied).input, batch_size=10,
                                    num_positions=1)))


def test_a_listed_video_without_its_files_is_named_before_training(records_dirs, tmp_path):
  copied, manifest = _copy(records_dirs, tmp_path)
  train_id = sorted(v for v, info in manifest["videos"].items() if info["splits"][0] == 1)[4]
  path = records.video_path(copied, manifest["videos"][train_id], "rgb")
  os.remove(path)
  with pytest.raises(records.RecordsError,
                     match=rf"^{re.escape(path)} is missing \(video '{re.escape(train_id)}'\)"):
    training.train_stream(str(tmp_path / "model"), _run(copied))
  assert not os.path.exists(tmp_path / "model" / "checkpoints")


@pytest.fixture(scope="module")
def trained_spatial(records_dirs, tmp_path_factory):
  """A model_dir trained one step on the ucf101 records (DIS), and a copy of those records
  whose manifest says Farneback."""
  root = tmp_path_factory.mktemp("trained")
  model_dir = str(root / "model")
  training.train_stream(model_dir, _run(records_dirs["ucf101"]))
  other = str(root / "farneback")
  shutil.copytree(records_dirs["ucf101"], other)
  manifest = records.read_manifest(other)
  manifest["config"]["algorithm"] = "farneback"
  _write_manifest(other, manifest)
  return model_dir, other


def test_evaluate_refuses_records_of_other_settings_unless_accepted_and_fuse_checks(
    trained_spatial, tmp_path):
  model_dir, farneback = trained_spatial
  with pytest.raises(model_dirs.RunSpecError,
                     match=r"extracted with other settings than the records .* trained on "
                           r"\(algorithm='dis' in training, 'farneback' here\).*"
                           r"--accept_other_records"):
    evaluation.evaluate(model_dir, records_dirs=[farneback], num_positions=1,
                        output=str(tmp_path / "refused.npz"))
  assert not os.path.exists(tmp_path / "refused.npz")
  output = str(tmp_path / "accepted.npz")
  evaluation.evaluate(model_dir, records_dirs=[farneback], num_positions=1, output=output,
                      accept_other_records=True)
  source = score_files.load(output).source
  assert source["accepted_other_records"] is True
  assert source["records"][0]["extraction"]["algorithm"] == "farneback"
  assert source["trained_extraction"][0]["algorithm"] == "dis"

  # A score file saying other records without saying they were accepted (edited) is refused.
  with np.load(output) as f:
    arrays = dict(f)
  arrays["source"] = np.array(json.dumps(dict(source, accepted_other_records=False)))
  edited = str(tmp_path / "edited.npz")
  np.savez(edited, **arrays)
  files = {("spatial", "test"): score_files.load(edited)}
  with pytest.raises(fusion.FusionError, match="extracted with other settings than the model"):
    fusion.check_sources(files)
  # Test scores of Farneback records beside train scores of DIS records: refused.
  train = str(tmp_path / "train.npz")
  evaluation.evaluate(model_dir, subset="train", num_positions=1, output=train)
  files = {("spatial", "test"): score_files.load(output),
           ("spatial", "train"): score_files.load(train)}
  with pytest.raises(fusion.FusionError, match="score records extracted with different settings"):
    fusion.check_sources(files)


def test_evaluate_finds_the_records_from_any_directory_and_names_moved_ones(
    trained_spatial, tmp_path, monkeypatch):
  model_dir, _ = trained_spatial
  spec = model_dirs.load_spec(model_dir)
  assert all(os.path.isabs(d) for d in spec.records_dirs)
  monkeypatch.chdir(tmp_path)
  report = evaluation.evaluate(os.path.abspath(model_dir), num_positions=1,
                               output=str(tmp_path / "s.npz"))
  assert report["heads"]["ucf101"]["videos"] > 0
  # A spec of an older version, its records relative to where training ran.
  old_dir = str(tmp_path / "old")
  shutil.copytree(model_dir, old_dir)
  with open(os.path.join(old_dir, model_dirs.SPEC_FILE), encoding="utf-8") as f:
    value = json.load(f)
  value["records_dirs"] = ["runs/quickstart/records/ucf101"]
  with open(os.path.join(old_dir, model_dirs.SPEC_FILE), "w", encoding="utf-8") as f:
    json.dump(value, f)
  with pytest.raises(model_dirs.RunSpecError,
                     match=r"the records runs/quickstart/records/ucf101 that .* are not there "
                           r"\(an older version wrote this path .* relative to the directory "
                           r"training ran in: run from there\); give their place with "
                           r"--records_dirs"):
    evaluation.evaluate(old_dir, num_positions=1)
  value["records_dirs"] = [str(tmp_path / "moved")]
  with open(os.path.join(old_dir, model_dirs.SPEC_FILE), "w", encoding="utf-8") as f:
    json.dump(value, f)
  with pytest.raises(model_dirs.RunSpecError, match=r"are not there \(moved or removed\?\)"):
    evaluation.evaluate(old_dir, num_positions=1)
