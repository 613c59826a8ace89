"""Extraction into records: content, manifest, layout, failures, resume after SIGKILL, the app."""

import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import tensorflow as tf

from flow_tools import datasets
from flow_tools import records
from flow_tools.common import locks
from flow_tools.extraction import encoding
from flow_tools.extraction import flow
from flow_tools.extraction import local_runner
from flow_tools.extraction import output_directory
from flow_tools.extraction import video
from flow_tools.records import record_parsing
from tests.flow_tools import helpers

DIS = encoding.ExtractionConfig(algorithm="dis", short_side=0)


@pytest.fixture(scope="module")
def ucf_index(synthetic_dir):
  return datasets.load_ucf101(os.path.join(synthetic_dir, "ucf101"))


@pytest.fixture(scope="module")
def ucf_records(ucf_index, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("records"))
  summary = local_runner.extract(ucf_index, out, DIS, num_workers=2, progress=False)
  return out, summary


def test_records_hold_the_videos_frames_and_flow(ucf_index, ucf_records):
  out, summary = ucf_records
  assert summary.num_extracted == len(ucf_index.entries) == 72 and not summary.failures
  # Two workers' encoding time, part of it in the flow algorithm.
  assert 0 < summary.flow_seconds < summary.worker_seconds < 2 * summary.seconds
  compute = flow.create("dis")
  for entry in ucf_index.entries[::9]:
    loaded = record_parsing.load_video(out, entry.video_id)
    source = video.read_frames(entry.path, short_side=0)
    t = len(source)
    assert loaded.frames.shape == source.shape and loaded.frames.dtype == np.uint8
    assert loaded.flow.shape == (t - 1,) + source.shape[1:3] + (2,)  # T frames, T - 1 fields
    assert loaded.flow.dtype == np.float32 and loaded.backward_flow is None
    # The stored frames are the source frames JPEG-coded at quality 90 (here by libjpeg in
    # OpenCV, there by TensorFlow's decoder).
    _, jpeg = cv2.imencode(".jpg", source[0][..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    expected = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[..., ::-1]
    assert np.abs(loaded.frames[0].astype(float) - expected).mean() < 2.0  # decoders differ
    truth = np.stack([compute(video.to_gray(a), video.to_gray(b))
                      for a, b in zip(source[:-1], source[1:])])
    assert np.sqrt(np.mean((loaded.flow - truth) ** 2)) < 0.1  # quantisation + JPEG, px
    assert (loaded.label, loaded.class_name, loaded.dataset) == (entry.label, entry.class_name,
                                                                  "ucf101")
    assert loaded.metadata["clip/split_membership"] == list(entry.splits)
    assert loaded.metadata["clip/frame_count"] == t and loaded.metadata["clip/flow_count"] == t - 1
    assert loaded.metadata["flow/algorithm"] == "dis"
    assert loaded.metadata["flow/quantization"] == "minmax"


def _first_record(path):
  """A file's first record, read by TensorFlow's own reader and parsed as a plain Example."""
  return tf.train.Example.FromString(next(iter(tf.data.TFRecordDataset(path))).numpy())


def test_manifest_and_files_agree(ucf_index, ucf_records):
  out, _ = ucf_records
  manifest = records.read_manifest(out)
  assert manifest["class_names"] == list(ucf_index.class_names) and manifest["num_splits"] == 3
  ids = sorted(e.video_id for e in ucf_index.entries)
  assert sorted(manifest["videos"]) == ids and manifest["modalities"] == ["rgb", "flow"]
  # Files are named by the video's position among the sorted ids, never by the id, two
  # record files a video and its index, in folders of at most 1000 videos; nothing else
  # is left.
  expected = [f"videos/00000/{n:07d}.{name}" for n in range(len(ids))
              for name in ("flow.tfrecord", "rgb.tfrecord", "index")]
  assert helpers.tree_files(out) == sorted(expected + ["manifest.json"])
  for video_id, info in manifest["videos"].items():
    assert info["number"] == ids.index(video_id)
    entry = next(e for e in ucf_index.entries if e.video_id == video_id)
    # The index: a version tag, the byte count of a JSON part naming each file's records
    # and the source's fingerprint, then per file where each record starts (TFRecord
    # framing: 16 bytes around each record's data) and, last, the file's size.
    with open(os.path.join(out, f"videos/00000/{info['number']:07d}.index"), "rb") as f:
      index = f.read()
    assert index[:8] == b"tsindex2"
    meta_end = 12 + int.from_bytes(index[8:12], "little")
    meta = json.loads(index[12:meta_end])
    with open(entry.path, "rb") as f:
      assert meta["source"]["sha256"] == hashlib.sha256(f.read()).hexdigest()
    assert meta["source"] == info["source"] and meta["source"]["size"] == os.path.getsize(
        entry.path)
    assert meta["records"] == [["rgb", info["frames"] + 1], ["flow", info["flow_pairs"] + 1]]
    index_offsets = np.frombuffer(index[meta_end:], "<u8")
    for modality, steps in (("rgb", info["frames"]), ("flow", info["flow_pairs"])):
      path = os.path.join(out, f"videos/00000/{info['number']:07d}.{modality}.tfrecord")
      header = _first_record(path).features.feature  # each file describes itself
      assert header["clip/media_id"].bytes_list.value == [video_id.encode()]
      assert header["record/modality"].bytes_list.value == [modality.encode()]
      assert header["clip/label/index"].int64_list.value == [entry.label] == [info["label"]]
      assert list(header["clip/split_membership"].int64_list.value) == list(entry.splits)
      assert header["image/height"].int64_list.value == [info["height"]] == [48]
      assert header["image/width"].int64_list.value == [info["width"]] == [64]
      lengths = [len(r.numpy()) for r in tf.data.TFRecordDataset(path)]
      assert len(lengths) == 1 + steps
      start = 0 if modality == "rgb" else info["frames"] + 2
      np.testing.assert_array_equal(index_offsets[start:start + steps + 2],
                                    np.cumsum([0] + [n + 16 for n in lengths]))
      assert os.path.getsize(path) == sum(n + 16 for n in lengths) == info["bytes"][modality]
    assert info["flow_pairs"] == info["frames"] - 1 and info["splits"] == list(entry.splits)
  assert manifest["num_flow_pairs"] == sum(i["flow_pairs"] for i in manifest["videos"].values())


def _readmes_plain_tensorflow_reader():
  """`read_step` as docs/data_and_flow.md's "What reads our records besides us" prints it."""
  with open(os.path.join(helpers.REPO, "docs", "data_and_flow.md"), encoding="utf-8") as f:
    readme = f.read()
  section = readme[readme.index("## What reads our records besides us"):]
  code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
  namespace = {}
  exec(code, namespace)  # pylint: disable=exec-used
  return namespace["read_step"]


def test_a_step_is_read_alone_by_tensorflow_alone_and_equals_the_video(ucf_records):
  # The docs' reader, which imports nothing of ours: the schema is what the files hold.
  out, _ = ucf_records
  read_step = _readmes_plain_tensorflow_reader()
  manifest = records.read_manifest(out)
  video_id, info = sorted(manifest["videos"].items())[7]
  loaded = record_parsing.load_video(out, video_id)
  for t in (0, 3, info["flow_pairs"] - 1):
    np.testing.assert_array_equal(read_step(out, video_id, "rgb", t), loaded.frames[t])
    np.testing.assert_allclose(read_step(out, video_id, "flow", t), loaded.flow[t], atol=1e-5)
  np.testing.assert_array_equal(read_step(out, video_id, "rgb", info["frames"] - 1),
                                loaded.frames[-1])


def test_records_of_another_format_version_are_refused_in_one_line(ucf_records, tmp_path):
  out, _ = ucf_records
  with open(os.path.join(out, "manifest.json"), encoding="utf-8") as f:
    manifest = json.load(f)
  manifest["format"] = "two_stream_tf.records/1"
  (tmp_path / "manifest.json").write_text(json.dumps(manifest))
  with pytest.raises(records.RecordsError) as raised:
    records.read_manifest(str(tmp_path))
  message = str(raised.value)
  assert "\n" not in message and "two_stream_tf.records/1" in message
  assert str(tmp_path) in message and "python -m flow_tools.extract" in message


def test_rerun_of_a_finished_directory_changes_nothing(ucf_index, ucf_records):
  out, first = ucf_records
  before = {f: os.path.getmtime(os.path.join(out, f)) for f in helpers.tree_files(out)}
  again = local_runner.extract(ucf_index, out, DIS, num_workers=2, progress=False)
  assert (again.num_extracted, again.flow_pairs) == (first.num_extracted, first.flow_pairs)
  assert again.worker_seconds == again.flow_seconds == 0.0  # nothing was encoded again
  assert (again.num_new, again.num_redone, again.num_kept, again.num_skipped) == (0, 0, 72, 0)
  assert before == {f: os.path.getmtime(os.path.join(out, f)) for f in helpers.tree_files(out)}
  with pytest.raises(output_directory.ExtractionError, match="other settings"):
    local_runner.extract(ucf_index, out,
                         encoding.ExtractionConfig(algorithm="farneback", short_side=0),
                         progress=False)


def _change_videos(data_dir, good, other_clip):
  """Changes a folder dataset as a user does between runs: the truncated clip repaired, one
  good clip replaced by another, the garbage overwritten by other garbage of the same size
  (only the content hash tells), and one clip touched (same bytes, a newer time)."""
  videos = os.path.join(data_dir, "things")
  shutil.copy(good[0][1], os.path.join(videos, "truncated.avi"))
  shutil.copy(other_clip, os.path.join(data_dir, f"{good[1][0]}.avi"))
  with open(os.path.join(videos, "garbage.avi"), "wb") as f:
    f.write(np.random.default_rng(1).bytes(4000))
  touched = os.path.join(data_dir, f"{good[2][0]}.avi")
  stat = os.stat(touched)
  os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
  for name in ("truncated.avi", "garbage.avi"):  # a copy within the same second
    path = os.path.join(videos, name)
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))


def test_a_rerun_redoes_changed_and_repaired_videos_and_says_so(ucf_index, tmp_path):
  good = [(e.video_id, e.path, "train") for e in ucf_index.entries[:3]]
  data_dir, splits_dir = helpers.write_folder_dataset(str(tmp_path / "data"), good,
                                                      with_broken=True)
  args = ["--dataset=folder", f"--data_dir={data_dir}", f"--splits_dir={splits_dir}",
          "--algorithm=dis", "--short_side=0", "--num_workers=2", "--noprogress"]
  out = str(tmp_path / "out")
  first = helpers.run_extract([*args, f"--output_dir={out}"])
  # Of the 7 new videos, the 4 broken ones fail: they are not counted as encoded.
  assert first.returncode == 3 and "this run: encoded 3 new, 4 new failed\n" in first.stdout
  again = helpers.run_extract([*args, f"--output_dir={out}"])
  assert "nothing to do: no video changed, kept 3 extracted before, skipped 4 that failed" in (
      again.stdout)
  _change_videos(data_dir, good, ucf_index.entries[40].path)
  # A rerun cut short after one redone video: the directory is unfinished, nothing is lost.
  index = datasets.load_folder(data_dir, splits_dir)
  with pytest.raises(output_directory.ExtractionError, match="did not yield 2 videos"):
    local_runner.extract(index, out, DIS, progress=False,
                         read_videos=lambda ids: local_runner.file_sources(index)(ids[:1]))
  assert not os.path.exists(os.path.join(out, records.MANIFEST))
  rerun = helpers.run_extract([*args, f"--output_dir={out}"])
  assert rerun.returncode == 3, rerun.stderr[-2000:]
  # The cut run discarded the three changed videos and redid the first (the replaced one);
  # of the two left, the repaired clip is encoded and the re-garbaged one fails.
  assert ("this run: encoded 1 new, 1 new failed, kept 3 extracted before, skipped 2 that "
          "failed before" in rerun.stdout), rerun.stdout
  manifest = records.read_manifest(out)
  assert sorted(manifest["failures"]) == ["things/empty", "things/garbage", "things/one_frame"]
  # The result is what a first extraction of the changed files gives.
  fresh = str(tmp_path / "fresh")
  assert helpers.run_extract([*args, f"--output_dir={fresh}"]).returncode == 3
  # The touched clip keeps the time it had when it was extracted.
  helpers.assert_same_files(fresh, out, same_source_times=False)
  np.testing.assert_array_equal(record_parsing.load_video(out, good[1][0]).frames.shape,
                                video.read_frames(ucf_index.entries[40].path, 0).shape)


def test_a_rerun_counts_what_it_redid_kept_and_skipped(ucf_index, tmp_path):
  good = [(e.video_id, e.path, "train") for e in ucf_index.entries[:3]]
  data_dir, splits_dir = helpers.write_folder_dataset(str(tmp_path / "data"), good,
                                                      with_broken=True)
  out = str(tmp_path / "out")
  local_runner.extract(datasets.load_folder(data_dir, splits_dir), out, DIS, progress=False)
  _change_videos(data_dir, good, ucf_index.entries[40].path)
  index = datasets.load_folder(data_dir, splits_dir)
  summary = local_runner.extract(index, out, DIS, progress=False)
  # Redone: the repaired, the replaced and the re-garbaged clip; kept: the untouched and the
  # touched one (same hash); skipped: the empty and the one-frame clip.
  assert (summary.num_new, summary.num_redone, summary.num_kept, summary.num_skipped) == (
      0, 3, 2, 2)
  assert summary.num_extracted == 4 and sorted(summary.failures) == ["things/empty",
                                                                      "things/garbage",
                                                                      "things/one_frame"]
  retried = local_runner.extract(index, out, DIS, progress=False, retry_failed=True)
  assert (retried.num_redone, retried.num_kept, retried.num_skipped) == (3, 4, 0)
  manifest = records.read_manifest(out)
  replaced = manifest["videos"][good[1][0]]["source"]
  with open(ucf_index.entries[40].path, "rb") as f:
    content = f.read()
  assert replaced["size"] == len(content)
  assert replaced["sha256"] == hashlib.sha256(content).hexdigest()


def test_a_second_extraction_into_a_directory_in_use_is_refused_naming_the_first(ucf_index,
                                                                                   tmp_path):
  args = helpers.killable_extraction_args(str(tmp_path / "data"), ucf_index.entries)
  out = tmp_path / "out"
  with locks.hold(str(out), "a test"):
    result = helpers.run_extract([*args, f"--output_dir={out}"])
  last = result.stderr.strip().splitlines()[-1]
  assert result.returncode == 1 and f"in use by process {os.getpid()} on" in last, last
  assert f"remove {out}/.lock" in last and not (out / "videos").exists()
  assert not (out / ".lock").exists()  # let go of
  remote = f"ram://{tmp_path.name}/out"  # as on an object store: no exclusive create
  with locks.hold(remote, "a test"):
    with pytest.raises(locks.LockedError, match=f"in use by process {os.getpid()}"):
      with locks.hold(remote, "another"):
        pass
  (out / ".lock").write_text('{"host": "')  # cut short by a kill: no holder to name
  with pytest.raises(locks.LockedError, match="in use by another process"):
    with locks.hold(str(out), "a test"):
      pass


def test_a_video_source_is_read_only_as_videos_finish(ucf_index, tmp_path):
  # A source that yields decoded videos (TFDS) must not be read ahead of the workers:
  # with one worker at most two videos are in flight.
  index = datasets.DatasetIndex("ucf101", ucf_index.class_names, ucf_index.entries[:8])
  videos_dir = tmp_path / "videos" / "00000"
  finished_when_read = []

  def read_videos(video_ids):
    for video_id in video_ids:
      finished_when_read.append(len([f for f in os.listdir(videos_dir) if f.endswith(
          ".index")]) if videos_dir.is_dir() else 0)
      yield video_id, next(e.path for e in index.entries if e.video_id == video_id)

  summary = local_runner.extract(index, str(tmp_path), DIS, num_workers=1, progress=False,
                                 read_videos=read_videos)
  assert summary.num_extracted == 8 and len(finished_when_read) == 8
  assert all(finished >= k - 1 for k, finished in enumerate(finished_when_read)), (
      finished_when_read)


def test_backward_flow_and_resizing(ucf_index, tmp_path):
  entries = ucf_index.entries[1:4]
  index = datasets.DatasetIndex("ucf101", ucf_index.class_names, entries)
  config = encoding.ExtractionConfig(algorithm="dis", short_side=32, backward=True,
                                   quantization="bound")
  local_runner.extract(index, str(tmp_path), config, num_workers=1, progress=False)
  loaded = record_parsing.load_video(str(tmp_path), entries[0].video_id)
  t = len(video.read_frames(entries[0].path, 0))
  assert loaded.frames.shape == (t, 32, 43, 3)  # 64x48 -> smaller side 32
  assert loaded.backward_flow.shape == loaded.flow.shape == (t - 1, 32, 43, 2)
  # Backward flow undoes forward flow: on the background (the camera pan) they are opposite.
  forward_median = np.median(loaded.flow.reshape(-1, 2), axis=0)
  backward_median = np.median(loaded.backward_flow.reshape(-1, 2), axis=0)
  np.testing.assert_allclose(backward_median, -forward_median, atol=0.3)
  assert loaded.metadata["flow/range"][:2] == [-20.0, 20.0]  # the bound scheme's fixed range
  np.testing.assert_allclose(
      _readmes_plain_tensorflow_reader()(str(tmp_path), entries[0].video_id, "flow_backward", 2),
      loaded.backward_flow[2], atol=1e-5)


def test_corrupt_videos_are_reported_not_fatal(ucf_index, tmp_path):
  good = next(e.path for e in ucf_index.entries if "_g03_" in e.video_id)
  data_dir, splits_dir = helpers.write_folder_dataset(
      str(tmp_path), [("things/good", good, "train")], with_broken=True)
  flagfile = tmp_path / "extract.flags"
  flagfile.write_text("\n".join([
      "# a flagfile, as users write them", "--dataset=folder", f"--data_dir={data_dir}",
      f"--splits_dir={splits_dir}", f"--output_dir={tmp_path / 'out'}", "--algorithm=tvl1",
      "--num_workers=2", "--short_side=0"]) + "\n")
  result = helpers.run_extract([f"--flagfile={flagfile}", "--algorithm=dis", "--noprogress"])
  assert result.returncode == 3, result.stderr[-2000:]
  manifest = records.read_manifest(str(tmp_path / "out"))
  assert list(manifest["videos"]) == ["things/good"]
  assert manifest["config"]["algorithm"] == "dis"  # a flag after the flagfile overrides it
  reasons = {v: f["reason"] for v, f in manifest["failures"].items()}
  assert sorted(reasons) == sorted(helpers.BROKEN)
  assert "truncated" in reasons["things/truncated"] and "one frame" in reasons["things/one_frame"]
  for video_id in reasons:
    assert f"failed: {video_id}" in result.stdout
  with pytest.raises(records.RecordsError, match="extraction failed"):
    record_parsing.load_video(str(tmp_path / "out"), "things/garbage")


def test_unusable_output_dirs_and_manifests_are_named_in_one_line(ucf_index, tmp_path):
  a_file = tmp_path / "a_file"
  a_file.write_text("not a directory")
  with pytest.raises(output_directory.ExtractionError,
                     match=f"the output directory {a_file} is a file"):
    local_runner.extract(ucf_index, str(a_file), encoding.ExtractionConfig(), progress=False)
  args = helpers.killable_extraction_args(str(tmp_path / "data"), ucf_index.entries)
  result = helpers.run_extract([*args, f"--output_dir={a_file}/records"])
  last = result.stderr.strip().splitlines()[-1]
  assert result.returncode == 1 and last.startswith("error: ") and f"{a_file}/records" in last
  cut = tmp_path / "cut"
  cut.mkdir()
  (cut / records.MANIFEST).write_text('{"format": "two_stream_tf.records/2", "vid')
  with pytest.raises(records.RecordsError, match=f"{cut}/manifest.json is not readable JSON"):
    records.read_manifest(str(cut))


def test_a_write_that_fails_names_its_file_and_loses_nothing(ucf_index, tmp_path):
  good = [(e.video_id, e.path, "train") for e in ucf_index.entries[:3]]
  data_dir, splits_dir = helpers.write_folder_dataset(str(tmp_path / "data"), good)
  args = ["--dataset=folder", f"--data_dir={data_dir}", f"--splits_dir={splits_dir}",
          "--algorithm=dis", "--short_side=0", "--noprogress",
          f"--output_dir={tmp_path / 'out'}"]
  full = helpers.run_extract(args, max_file_bytes=4000)  # the first frames file is larger
  last = full.stderr.strip().splitlines()[-1]
  assert full.returncode == 1, full.stderr[-2000:]
  assert re.fullmatch(rf"error: cannot write {tmp_path}/out/videos/00000/\d+\.rgb\.tfrecord: "
                      "File too large", last), last
  assert not (tmp_path / "out" / ".lock").exists()
  assert helpers.run_extract(args).returncode == 0
  assert len(records.read_manifest(str(tmp_path / "out"))["videos"]) == 3


@pytest.mark.slow
def test_bad_flags_and_missing_files_give_one_line_errors(tmp_path):
  dirs = ["--dataset=ucf101", f"--data_dir={tmp_path}", f"--output_dir={tmp_path}/o"]
  result = helpers.run_extract(dirs)
  assert result.returncode == 1 and "classInd.txt" in result.stderr.strip().splitlines()[-1]
  result = helpers.run_extract([*dirs, "--jpeg_quality=101"])
  assert result.returncode == 1 and "jpeg_quality must be in 1..100, got 101" in result.stderr
  result = helpers.run_extract([*dirs, "--algorithm=brox_cuda"])
  if not flow.cuda_available():
    assert "needs OpenCV built with CUDA" in result.stderr.strip().splitlines()[-1]


def test_a_dead_worker_ends_the_run_naming_its_video(ucf_index, tmp_path):
  """A worker killed mid-video (the OOM killer, a decoder segfault) must not hang the run."""
  args = helpers.killable_extraction_args(str(tmp_path), ucf_index.entries)
  args = [a for a in args if a != "--num_workers=1"] + ["--num_workers=2"]
  output_dir = str(tmp_path / "out")
  process = subprocess.Popen([sys.executable, "-m", "flow_tools.extract", *args,
                              f"--output_dir={output_dir}"], cwd=helpers.REPO,
                             env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 120
  while not glob.glob(os.path.join(output_dir, "videos", "*", "*.index")):
    assert process.poll() is None and time.time() < deadline, "no video finished in time"
    time.sleep(0.05)
  finished = helpers.tree_files(os.path.join(output_dir, "videos"))
  os.kill(helpers.worker_pids(process.pid)[0], signal.SIGKILL)
  try:
    _, err = process.communicate(timeout=60)
  except subprocess.TimeoutExpired:
    process.kill()
    pytest.fail("the extraction hung after its worker died")
  last = err.strip().splitlines()[-1]
  assert process.returncode == 1 and "a worker process died" in last
  named = re.findall(r"while encoding '([^']+)'", last)
  assert named and named[0] in {e.video_id for e in ucf_index.entries[:16]}, last
  assert set(finished) <= set(helpers.tree_files(os.path.join(output_dir, "videos")))


def test_resume_after_sigkill_gives_identical_output(ucf_index, tmp_path):
  """One killed run, resumed by the local runner and (a copy of it) by the Beam runner."""
  args = helpers.killable_extraction_args(str(tmp_path), ucf_index.entries)
  killed = str(tmp_path / "killed")
  helpers.kill_extract_midway(args, killed)
  killed_for_beam = str(tmp_path / "killed_for_beam")
  shutil.copytree(killed, killed_for_beam)
  assert not os.path.exists(os.path.join(killed, records.MANIFEST)), "finished before the kill"
  # No partial file is visible where readers look: work in progress is in .incomplete/.
  left = helpers.tree_files(killed)
  assert [f for f in left if not f.startswith(".incomplete/") and ".tmp" in f] == []
  # A video is finished when its index is there (written after its files).
  indexed = [f[:-len("index")] for f in left if f.startswith("videos/") and f.endswith(".index")]
  assert len(indexed) >= 2, "killed before two videos were finished"
  # As if killed between a video's files and its index: the resumed run encodes it again.
  for copy in (killed, killed_for_beam):
    os.remove(os.path.join(copy, indexed[0] + "index"))
  finished = [f for f in left if any(f.startswith(v) for v in indexed[1:])]
  before = {f: os.path.getmtime(os.path.join(killed, f)) for f in finished}
  resumed = helpers.run_extract([*args, f"--output_dir={killed}"])
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  # Finished videos are kept as they are, not encoded again.
  assert before == {f: os.path.getmtime(os.path.join(killed, f)) for f in finished}
  reference = str(tmp_path / "reference")
  assert helpers.run_extract([*args, f"--output_dir={reference}"]).returncode == 0
  # rgb and flow files of 16 videos, their indexes, the manifest
  assert len(helpers.tree_files(reference)) == 3 * 16 + 1
  helpers.assert_same_files(reference, killed)
  resumed = helpers.run_extract([*args, f"--output_dir={killed_for_beam}", "--runner=beam"])
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert before == {f: os.path.getmtime(os.path.join(killed_for_beam, f)) for f in finished}
  helpers.assert_same_files(reference, killed_for_beam)


def test_ctrl_c_says_what_is_kept_in_one_line(ucf_index, tmp_path):
  args = helpers.killable_extraction_args(str(tmp_path), ucf_index.entries)
  output_dir = str(tmp_path / "out")
  code, err = helpers.kill_extract_midway(args, output_dir, signal.SIGINT)
  assert code == 130 and "Traceback" not in err, err[-3000:]
  assert err.strip().splitlines()[-1] == (
      f"interrupted: the videos finished are kept in {output_dir}; run the same command "
      "again to resume")
  assert not os.path.exists(os.path.join(output_dir, ".lock"))
