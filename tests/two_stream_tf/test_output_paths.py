"""Output paths are checked before the work, and nothing of a user's is deleted or mixed:
export and train targets that are files, folders of other files, read-only and full disks."""

import contextlib
import errno
import glob
import os
import signal
import subprocess
import sys
import time

import pytest

from flow_tools.common import locks
from flow_tools.common import storage
from tests.two_stream_tf import common
from two_stream_tf import data
from two_stream_tf import evaluation
from two_stream_tf import training
from two_stream_tf.serving import exporting
from two_stream_tf.serving import prediction

CROP, STACK = 48, 2
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config():
  return training.TrainConfig(schedule=training.Schedule(0.01, (), 0.1, 1), batch_size=4,
                              log_every=1, checkpoint_every=1, weight_decay=0.0)


def _run(records_dirs, stream):
  return common.run_config([records_dirs["ucf101"]],
                           data.InputConfig(stream=stream, crop_size=CROP, stack_length=STACK),
                           _config())


@pytest.fixture(scope="module")
def streams(records_dirs, tmp_path_factory):
  """A spatial and a temporal model_dir, one training step each."""
  root = tmp_path_factory.mktemp("streams")
  out = {}
  for stream in ("spatial", "temporal"):
    out[stream] = str(root / stream)
    training.train_stream(out[stream], _run(records_dirs, stream))
  return out


@contextlib.contextmanager
def _mounted(path, options):
  """A tmpfs at `path` (e.g. options 'ro' or 'size=64k'): a real read-only or full disk."""
  os.makedirs(path)
  mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", path],
                           capture_output=True, text=True, check=False)
  if mounted.returncode:
    pytest.skip(f"mounting a tmpfs needs root: {mounted.stderr.strip()}")
  try:
    yield path
  finally:
    subprocess.run(["umount", path], check=True)


def _tree(root):
  """{relative path: bytes} of every file under `root`."""
  out = {}
  for folder, _, names in os.walk(root):
    for name in names:
      path = os.path.join(folder, name)
      with open(path, "rb") as f:
        out[os.path.relpath(path, root)] = f.read()
  return out


def _export(streams, export_dir):
  return exporting.export(streams["spatial"], streams["temporal"], str(export_dir))


def test_export_replaces_only_its_own_exports(streams, tmp_path):
  users = tmp_path / "users"
  (users / "notes").mkdir(parents=True)
  (users / "README").write_text("mine")
  (users / "notes" / "thesis.txt").write_text("chapter 1")
  with pytest.raises(storage.OutputError,
                     match=rf"^{users} holds files this app did not write \(README, notes\)"):
    _export(streams, users)
  assert _tree(users) == {"README": b"mine", "notes/thesis.txt": b"chapter 1"}

  a_file = tmp_path / "a_file"
  a_file.write_text("keep me")
  with pytest.raises(storage.OutputError, match=rf"^{a_file} is a file, not a directory$"):
    _export(streams, a_file)
  with pytest.raises(storage.OutputError,
                     match=rf"^cannot write {a_file}/out: {a_file} is a file, not a directory$"):
    _export(streams, a_file / "out")
  assert a_file.read_text() == "keep me"
  assert sorted(os.listdir(tmp_path)) == ["a_file", "users"]  # nothing moved beside them

  ours = tmp_path / "export"
  _export(streams, ours)
  first = _tree(ours)
  assert sorted({p.split("/")[0] for p in first}) == ["spatial", "temporal", "two_stream"]
  _export(streams, ours)  # an earlier export of ours is replaced
  assert sorted(_tree(ours)) == sorted(first)


def test_a_failed_export_leaves_the_earlier_one_whole(streams, tmp_path, monkeypatch):
  ours = tmp_path / "export"
  _export(streams, ours)
  before = _tree(ours)

  def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
  monkeypatch.setattr(exporting, "export_two_stream", full_disk)
  with pytest.raises(storage.OutputError,
                     match=rf"^cannot write {ours}: No space left on device$"):
    _export(streams, ours)
  assert _tree(ours) == before
  assert sorted(os.listdir(tmp_path)) == ["export"]


def test_read_only_and_full_disks_are_refused_before_the_work(records_dirs, streams, tmp_path,
                                                              monkeypatch):
  read_only = str(tmp_path / "read_only")
  with _mounted(read_only, "ro"):
    with pytest.raises(storage.OutputError,
                       match=rf"^cannot write {read_only}/export: {read_only} is on a read-only "
                             "filesystem$"):
      _export(streams, os.path.join(read_only, "export"))
    with pytest.raises(storage.OutputError, match=f"{read_only} is on a read-only filesystem"):
      training.train_stream(os.path.join(read_only, "model"), _run(records_dirs, "spatial"))
  full = str(tmp_path / "full")
  with _mounted(full, "size=64k"):
    with pytest.raises(storage.OutputError,
                       match=rf"^cannot write {full}/export: 0\.1 MB free on its disk, about "
                             r"\d+\.\d MB needed$"):
      _export(streams, os.path.join(full, "export"))

    def scored(*args, **kwargs):
      raise AssertionError("the views were scored before the output was checked")
    monkeypatch.setattr(evaluation.scoring, "score_videos", scored)
    with pytest.raises(storage.OutputError, match=rf"^cannot write {full}/s\.npz: 0\.1 MB free"):
      evaluation.evaluate(streams["spatial"], output=os.path.join(full, "s.npz"))
    assert os.listdir(full) == []


def test_evaluate_and_train_name_an_output_under_a_file_before_the_work(records_dirs, streams,
                                                                        tmp_path, monkeypatch):
  a_file = tmp_path / "afile"
  a_file.write_text("")

  def scored(*args, **kwargs):
    raise AssertionError("the views were scored before the output was checked")
  monkeypatch.setattr(evaluation.scoring, "score_videos", scored)
  with pytest.raises(storage.OutputError,
                     match=rf"^cannot write {a_file}/s\.npz: {a_file} is a file, not a "
                           "directory$"):
    evaluation.evaluate(streams["spatial"], output=str(a_file / "s.npz"))
  with pytest.raises(storage.OutputError, match=rf"^{a_file} is a file, not a directory$"):
    training.train_stream(str(a_file), _run(records_dirs, "spatial"))
  assert a_file.read_text() == ""


def test_a_model_dir_in_use_is_refused_naming_the_other_run(records_dirs, tmp_path):
  model_dir = str(tmp_path / "model")
  with locks.hold(model_dir, "training"):
    with pytest.raises(locks.LockedError,
                       match=rf"^{model_dir} is in use by process {os.getpid()} on .* "
                             r"\(training\): wait for it to end, or remove "
                             rf"{model_dir}/\.lock if it is no longer running$"):
      training.train_stream(model_dir, _run(records_dirs, "spatial"))
  assert sorted(os.listdir(model_dir)) == []  # no spec, no flags, no checkpoint


def test_predict_names_a_damaged_saved_model(tmp_path):
  (tmp_path / "two_stream").mkdir()
  (tmp_path / "two_stream" / "saved_model.pb").write_bytes(os.urandom(300))
  with pytest.raises(ValueError,
                     match=rf"^{tmp_path}/two_stream is not a readable SavedModel \(Cannot "
                           r"parse file.*\): run two_stream_tf.export again$"):
    prediction.load_export(str(tmp_path))


def test_ctrl_c_in_export_changes_nothing_and_says_so(streams, tmp_path):
  export_dir = tmp_path / "export"
  process = subprocess.Popen(
      [sys.executable, "-m", "two_stream_tf.export", f"--spatial_model_dir={streams['spatial']}",
       f"--temporal_model_dir={streams['temporal']}", f"--export_dir={export_dir}"],
      cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2"),
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
  deadline = time.time() + 240
  while not glob.glob(f"{export_dir}.tmp-*"):  # the export is being written beside it
    assert process.poll() is None, process.communicate()[1][-3000:]
    assert time.time() < deadline, "the export did not start in time"
    time.sleep(0.05)
  os.killpg(process.pid, signal.SIGINT)
  _, err = process.communicate(timeout=120)
  assert process.returncode == 130 and "Traceback" not in err, err[-3000:]
  assert err.strip().splitlines()[-1] == (
      f"interrupted: {export_dir} is as it was (an export is moved in only when whole); run "
      "the same command again")
  assert os.listdir(tmp_path) == []
