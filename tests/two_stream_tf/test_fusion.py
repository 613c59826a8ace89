"""Score fusion: averaging, the Crammer & Singer SVM, plain-array files, mismatch errors."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from flow_tools.common import storage
from tests.two_stream_tf import common
from tests.two_stream_tf import reference
from two_stream_tf import fusion
from two_stream_tf.evaluation import score_files

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
def test_svm_fusion_is_right_where_averaging_fails(tmp_path):
  train_s, train_t = common.two_streams(300, 0)
  test_s, test_t = common.two_streams(300, 1)
  model = fusion.fit_svm(train_s.scores, train_t.scores, train_s.labels, common.CLASSES)
  report = fusion.fusion_report({"h": (test_s, test_t)}, 0.5, {"h": model})["h"]
  # Averaging gets only the a's and c's (about 2/3); the SVM also the b's.
  assert report["averaging"]["accuracy"] < 0.75
  assert report["spatial"]["accuracy"] < 0.75 and report["temporal"]["accuracy"] < 0.75
  assert report["svm"]["accuracy"] > 0.95
  assert model.c in fusion.DEFAULT_C_GRID and model.cv_accuracy > 0.9

  path = str(tmp_path / "svm.npz")
  fusion.save_svm(path, model)
  with np.load(path, allow_pickle=False) as f:  # plain arrays only
    assert all(f[k].dtype != object for k in f.files)
  loaded = fusion.load_svm(path)
  np.testing.assert_array_equal(loaded.predict(test_s.scores, test_t.scores),
                                model.predict(test_s.scores, test_t.scores))
  assert loaded.class_names == common.CLASSES


def test_svm_features_are_l2_normalised_per_stream():
  features = fusion.svm_features(np.array([[3.0, 4.0]]), np.array([[0.0, 2.0]]))
  np.testing.assert_allclose(features, [[0.6, 0.8, 0.0, 1.0]])
  np.testing.assert_allclose(fusion.average(np.array([1.0]), np.array([0.0]), 0.25), [0.75])


def test_two_class_svm_keeps_a_row_per_class():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 2, 80)
  scores = reference.softmax(np.eye(2)[labels] * 3 + rng.normal(0, 0.5, (80, 2)))
  model = fusion.fit_svm(scores, scores, labels, ("x", "y"))
  assert model.weights.shape == (2, 4)
  assert np.mean(model.predict(scores, scores) == labels) > 0.9


def test_mismatched_scores_name_the_difference():
  s, t = common.two_streams(10, 0)
  shuffled = np.random.default_rng(1).permutation(10)
  reordered = score_files.HeadScores(t.video_ids[shuffled], t.labels[shuffled],
                                    t.scores[shuffled], common.CLASSES)
  (a, b), = fusion.aligned({"h": s}, {"h": reordered}).values()
  np.testing.assert_array_equal(b.scores, t.scores)  # put back in the spatial order
  with pytest.raises(fusion.FusionError, match=r"h: videos differ: 1 only in spatial .*v0_009"):
    fusion.aligned({"h": s}, {"h": score_files.HeadScores(t.video_ids[:9], t.labels[:9],
                                                         t.scores[:9], common.CLASSES)})
  with pytest.raises(fusion.FusionError, match="class lists differ"):
    fusion.aligned({"h": s}, {"h": score_files.HeadScores(t.video_ids, t.labels, t.scores,
                                                         ("a", "b", "d"))})
  with pytest.raises(fusion.FusionError, match=r"heads differ"):
    fusion.aligned({"h": s}, {"g": t})
  with pytest.raises(fusion.FusionError, match="labels differ"):
    fusion.aligned({"h": s}, {"h": score_files.HeadScores(t.video_ids, (t.labels + 1) % 3,
                                                         t.scores, common.CLASSES)})


def test_fusion_refuses_score_files_of_another_stream_subset_or_split(tmp_path):
  files = common.write_score_files(tmp_path)
  given = {"spatial_scores": files["spatial", "test"],
           "temporal_scores": files["temporal", "test"],
           "spatial_train_scores": files["spatial", "train"],
           "temporal_train_scores": files["temporal", "train"]}
  (tmp_path / "split2").mkdir()
  other_split = common.write_score_files(tmp_path / "split2", lambda stream, subset: 2)
  old = str(tmp_path / "old.npz")  # a score file without its source, as older versions wrote
  with np.load(files["spatial", "train"]) as f:
    storage.write_npz(old, {k: f[k] for k in f.files if k != "source"})
  cases = [
      ({"spatial_train_scores": files["spatial", "test"],
        "temporal_train_scores": files["temporal", "test"]},
       f"{files['spatial', 'test']} holds test scores, given as train scores (an SVM fitted "
       "on test scores would report a leaked accuracy)"),
      ({"temporal_scores": files["spatial", "test"]},
       f"{files['spatial', 'test']} holds spatial scores, given as the temporal stream's"),
      ({"temporal_train_scores": files["spatial", "train"]},
       f"{files['spatial', 'train']} holds spatial scores, given as the temporal stream's"),
      ({"temporal_scores": other_split["temporal", "test"],
        "temporal_train_scores": other_split["temporal", "train"]},
       "score files of different splits: "),
      ({"spatial_train_scores": old}, f"{old}: says nothing of what it holds"),
  ]
  for override, message in cases:
    with pytest.raises(fusion.FusionError, match=re.escape(message)):
      fusion.fuse(output_dir=str(tmp_path / "fusion"), **{**given, **override})
  assert not (tmp_path / "fusion").exists()  # nothing written
  report = fusion.fuse(output_dir=str(tmp_path / "fusion"), **given)
  assert report["sources"]["temporal_train"] == common.score_source("temporal", "train")


def test_altered_score_and_svm_files_are_named(tmp_path):
  files = common.write_score_files(tmp_path)
  with np.load(files["spatial", "test"]) as f:
    arrays = {k: f[k] for k in f.files}
  altered = str(tmp_path / "altered.npz")
  storage.write_npz(altered, {**arrays, "ucf101/scores": arrays["ucf101/scores"][:, :2]})
  with pytest.raises(score_files.ScoreFileError, match=re.escape(
      f"{altered}: ucf101 holds 150 videos and 3 classes but labels of shape (150,) and "
      "scores of shape (150, 2)")):
    score_files.load(altered)
  s, t = common.two_streams(60, 0)
  svm = str(tmp_path / "svm.npz")
  fusion.save_svm(svm, fusion.fit_svm(s.scores, t.scores, s.labels, common.CLASSES))
  with np.load(svm) as f:
    arrays = {k: f[k] for k in f.files}
  storage.write_npz(svm, {k: v for k, v in arrays.items() if k != "bias"})
  with pytest.raises(fusion.FusionError, match=f"{svm}: not an SVM file of two_stream_tf.fuse"):
    fusion.load_svm(svm)
  storage.write_npz(svm, {**arrays, "weights": arrays["weights"][:, :4]})
  with pytest.raises(fusion.FusionError, match=re.escape(
      f"{svm}: 3 classes but weights of shape (3, 4) and bias of shape (3,)")):
    fusion.load_svm(svm)


@pytest.mark.slow
def test_the_fusion_files_are_read_with_one_version_check_each(tmp_path):
  s, t = common.two_streams(60, 0)
  model = fusion.fit_svm(s.scores, t.scores, s.labels, common.CLASSES)
  svm = str(tmp_path / "svm.npz")
  fusion.save_svm(svm, model)
  with np.load(svm) as f:
    arrays = {k: f[k] for k in f.files}
  assert str(arrays["format"]) == "two_stream_tf.svm/1"
  # A file from before the format entry is read by its arrays; another format is refused.
  storage.write_npz(svm, {k: v for k, v in arrays.items() if k != "format"})
  np.testing.assert_array_equal(fusion.load_svm(svm).weights, model.weights)
  storage.write_npz(svm, {**arrays, "format": np.array("two_stream_tf.svm/9")})
  with pytest.raises(fusion.FusionError, match=re.escape(
      f"{svm}: an SVM file of format two_stream_tf.svm/9, this version reads "
      "two_stream_tf.svm/1")):
    fusion.load_svm(svm)

  report = tmp_path / "fusion_report.json"
  heads = {"h": {"videos": 3}}
  for written in ({"format": "two_stream_tf.fusion_report/1", "heads": heads},
                  {"heads": heads}):  # today's, and one from before the format entry
    report.write_text(json.dumps(written))
    assert fusion.read_report(str(tmp_path))["heads"] == heads
  for written in ({"format": "two_stream_tf.fusion_report/2", "heads": heads}, {"c": 1}, [1]):
    report.write_text(json.dumps(written))
    with pytest.raises(fusion.FusionError, match=f"^{re.escape(str(report))}: not a fusion "
                                                 "report of this version"):
      fusion.read_report(str(tmp_path))
  os.remove(report)
  with pytest.raises(fusion.FusionError, match=f"^{re.escape(str(report))}: no fusion report"):
    fusion.read_report(str(tmp_path))


def test_fuse_app_writes_report_and_svms(tmp_path):
  files = common.write_score_files(tmp_path)
  out = tmp_path / "fusion"
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
  args = [sys.executable, "-m", "two_stream_tf.fuse", f"--output_dir={out}",
          f"--spatial_scores={files['spatial', 'test']}",
          f"--temporal_scores={files['temporal', 'test']}",
          f"--spatial_train_scores={files['spatial', 'train']}",
          f"--temporal_train_scores={files['temporal', 'train']}"]
  process = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
  assert process.returncode == 0, process.stderr[-2000:]
  assert "| ucf101 | 150 | svm |" in process.stdout
  report = json.loads((out / "fusion_report.json").read_text())["heads"]["ucf101"]
  assert report["svm"]["accuracy"] > report["averaging"]["accuracy"]
  assert (out / "svm_ucf101.npz").exists()

  # The test scores given as train scores: refused in one line, naming the file.
  args[-2:] = [f"--spatial_train_scores={files['spatial', 'test']}",
               f"--temporal_train_scores={files['temporal', 'test']}"]
  process = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
  assert process.returncode == 1
  assert (f"{files['spatial', 'test']} holds test scores, given as train scores"
          in process.stderr.strip().splitlines()[-1])


def _files_under(root):
  return {os.path.relpath(os.path.join(folder, name), root): os.path.getmtime(
      os.path.join(folder, name)) for folder, _, names in os.walk(root) for name in names}


def test_fuse_replaces_its_output_whole_and_nothing_else(tmp_path, monkeypatch):
  scores = tmp_path / "scores"
  scores.mkdir()
  files = common.write_score_files(scores)
  args = (files["spatial", "test"], files["temporal", "test"])
  train = (files["spatial", "train"], files["temporal", "train"])
  out = tmp_path / "fusion"
  fusion.fuse(*args, str(out), *train)
  earlier = _files_under(out)
  assert {"fusion_report.json", "svm_ucf101.npz", "fusion_report.png"} <= set(earlier)

  # A disk that fills while the new fusion is written (its SVMs and report are, its figures
  # not): the earlier fusion stays whole, not a mix of the two runs.
  def full_disk(*unused, **kwargs):
    raise OSError(28, "No space left on device")
  monkeypatch.setattr(fusion.outputs, "write_figures", full_disk)
  with pytest.raises(storage.OutputError, match=rf"^cannot write {out}: No space left on device$"):
    fusion.fuse(*args, str(out), *train, temporal_weight=0.3)
  assert _files_under(out) == earlier
  assert sorted(os.listdir(tmp_path)) == ["fusion", "scores"]
  monkeypatch.undo()
  fusion.fuse(*args, str(out), *train, temporal_weight=0.3)  # over its own output: replaced
  def kinds(names):  # TensorBoard names its event files by time, host and process
    return sorted("events" if n.startswith("events.out.tfevents.") else n for n in names)
  assert kinds(_files_under(out)) == kinds(earlier)
  assert json.loads((out / "fusion_report.json").read_text())["temporal_weight"] == 0.3

  users = tmp_path / "users"
  users.mkdir()
  (users / "notes.txt").write_text("mine")
  a_file = tmp_path / "a_file"
  a_file.write_text("")
  for output_dir, message in (
      (users, rf"^{users} holds files this app did not write \(notes\.txt\)"),
      (a_file, rf"^{a_file} is a file, not a directory$"),
      (a_file / "fusion", rf"^cannot write {a_file}/fusion: {a_file} is a file, not a directory$")):
    with pytest.raises(storage.OutputError, match=message):
      fusion.fuse(*args, str(output_dir), *train)
  assert (users / "notes.txt").read_text() == "mine" and os.listdir(users) == ["notes.txt"]
