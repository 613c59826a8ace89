"""Extraction into records: content, manifest, failures, resume after SIGKILL, the app."""

import filecmp
import os

import cv2
import numpy as np
import pytest
import tensorflow as tf

from flow_tools import datasets
from flow_tools import encode
from flow_tools import extraction
from flow_tools import flow
from flow_tools import records
from flow_tools import video
from tests.flow_tools import helpers

DIS = encode.ExtractionConfig(algorithm="dis", short_side=0)


@pytest.fixture(scope="module")
def ucf_index(synthetic_dir):
  return datasets.load_ucf101(os.path.join(synthetic_dir, "ucf101"))


@pytest.fixture(scope="module")
def ucf_records(ucf_index, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("records"))
  summary = extraction.extract(ucf_index, out, DIS, num_workers=2, videos_per_shard=16,
                               progress=False)
  return out, summary


def test_records_hold_the_videos_frames_and_flow(ucf_index, ucf_records):
  out, summary = ucf_records
  assert summary.num_extracted == len(ucf_index.entries) == 72 and not summary.failures
  # Two workers' encoding time, part of it in the flow algorithm.
  assert 0 < summary.flow_seconds < summary.worker_seconds < 2 * summary.seconds
  compute = flow.create("dis")
  for entry in ucf_index.entries[::9]:
    loaded = records.load_video(out, entry.video_id)
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


def test_manifest_and_shards_agree(ucf_index, ucf_records):
  out, _ = ucf_records
  manifest = records.read_manifest(out)
  assert manifest["class_names"] == list(ucf_index.class_names) and manifest["num_splits"] == 3
  assert sorted(manifest["videos"]) == sorted(e.video_id for e in ucf_index.entries)
  assert manifest["shards"] == sorted(f for f in os.listdir(out) if f.endswith(".tfrecord"))
  assert len(manifest["shards"]) == 5 and not os.path.exists(os.path.join(out, ".incomplete"))
  seen = {}
  for shard in manifest["shards"]:
    for serialized in tf.data.TFRecordDataset(os.path.join(out, shard)):
      context, _ = records.parse(serialized)
      seen[context["clip/media_id"].numpy().decode()] = shard
  assert seen == {v: info["shard"] for v, info in manifest["videos"].items()}
  labels = [info["label"] for info in manifest["videos"].values()]
  first_shard = [manifest["videos"][v]["label"] for v in seen if seen[v] == manifest["shards"][0]]
  assert len(set(first_shard)) > 5  # shards mix classes
  assert manifest["num_flow_pairs"] == sum(i["frames"] - 1 for i in manifest["videos"].values())
  assert sorted(set(labels)) == list(range(12))


def test_tf_model_garden_reader_keys(ucf_records):
  out, _ = ucf_records
  shard = os.path.join(out, records.read_manifest(out)["shards"][0])
  serialized = next(iter(tf.data.TFRecordDataset(shard)))
  context, sequences = tf.io.parse_single_sequence_example(
      serialized, {"clip/label/index": tf.io.FixedLenFeature([], tf.int64)},
      {"image/encoded": tf.io.FixedLenSequenceFeature([], tf.string)})
  frames = tf.map_fn(lambda b: tf.io.decode_jpeg(b, channels=3), sequences["image/encoded"],
                     fn_output_signature=tf.uint8)
  assert frames.shape[1:] == (48, 64, 3) and 0 <= int(context["clip/label/index"]) < 12


def test_rerun_of_a_finished_directory_changes_nothing(ucf_index, ucf_records):
  out, first = ucf_records
  before = {f: os.path.getmtime(os.path.join(out, f)) for f in os.listdir(out)}
  again = extraction.extract(ucf_index, out, DIS, num_workers=2, videos_per_shard=16,
                             progress=False)
  assert (again.num_extracted, again.flow_pairs) == (first.num_extracted, first.flow_pairs)
  assert again.worker_seconds == again.flow_seconds == 0.0  # nothing was encoded again
  assert before == {f: os.path.getmtime(os.path.join(out, f)) for f in os.listdir(out)}
  with pytest.raises(extraction.ExtractionError, match="other settings"):
    extraction.extract(ucf_index, out, encode.ExtractionConfig(algorithm="farneback", short_side=0),
                       progress=False)


def test_a_video_source_is_read_only_as_videos_finish(ucf_index, tmp_path):
  # A source that yields decoded videos (TFDS) must not be read ahead of the workers:
  # with one worker at most two videos are in flight.
  index = datasets.DatasetIndex("ucf101", ucf_index.class_names, ucf_index.entries[:8])
  work_dir = tmp_path / extraction.WORK_DIR
  finished_when_read = []

  def read_videos(video_ids):
    for video_id in video_ids:
      finished_when_read.append(
          len([f for f in os.listdir(work_dir) if f.endswith((".info", ".failed"))]))
      yield video_id, next(e.path for e in index.entries if e.video_id == video_id)

  summary = extraction.extract(index, str(tmp_path), DIS, num_workers=1, videos_per_shard=8,
                               progress=False, read_videos=read_videos)
  assert summary.num_extracted == 8 and len(finished_when_read) == 8
  assert all(finished >= k - 1 for k, finished in enumerate(finished_when_read)), (
      finished_when_read)


def test_backward_flow_and_resizing(ucf_index, tmp_path):
  entries = ucf_index.entries[1:4]
  index = datasets.DatasetIndex("ucf101", ucf_index.class_names, entries)
  config = encode.ExtractionConfig(algorithm="dis", short_side=32, backward=True,
                                   quantization="bound")
  extraction.extract(index, str(tmp_path), config, num_workers=1, progress=False)
  loaded = records.load_video(str(tmp_path), entries[0].video_id)
  t = len(video.read_frames(entries[0].path, 0))
  assert loaded.frames.shape == (t, 32, 43, 3)  # 64x48 -> smaller side 32
  assert loaded.backward_flow.shape == loaded.flow.shape == (t - 1, 32, 43, 2)
  # Backward flow undoes forward flow: on the background (the camera pan) they are opposite.
  forward_median = np.median(loaded.flow.reshape(-1, 2), axis=0)
  backward_median = np.median(loaded.backward_flow.reshape(-1, 2), axis=0)
  np.testing.assert_allclose(backward_median, -forward_median, atol=0.3)
  assert loaded.metadata["flow/range"][:2] == [-20.0, 20.0]  # the bound scheme's fixed range


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
    records.load_video(str(tmp_path / "out"), "things/garbage")


def test_bad_flags_and_missing_files_give_one_line_errors(tmp_path):
  result = helpers.run_extract(["--dataset=ucf101", f"--data_dir={tmp_path}", f"--output_dir={tmp_path}/o"])
  assert result.returncode == 1 and "classInd.txt" in result.stderr.strip().splitlines()[-1]
  result = helpers.run_extract(["--dataset=ucf101", f"--data_dir={tmp_path}", f"--output_dir={tmp_path}/o",
                     "--jpeg_quality=101"])
  assert result.returncode == 1 and "jpeg_quality must be in 1..100, got 101" in result.stderr
  result = helpers.run_extract(["--dataset=ucf101", f"--data_dir={tmp_path}", f"--output_dir={tmp_path}/o",
                     "--algorithm=brox_cuda"])
  if not flow.cuda_available():
    assert "needs OpenCV built with CUDA" in result.stderr.strip().splitlines()[-1]


def test_resume_after_sigkill_gives_identical_output(ucf_index, tmp_path):
  args = helpers.killable_extraction_args(str(tmp_path), ucf_index.entries)
  killed = str(tmp_path / "killed")
  helpers.kill_extract_midway(args, killed)
  assert not os.path.exists(os.path.join(killed, records.MANIFEST)), "finished before the kill"
  assert all(".tmp" not in f for f in os.listdir(killed))  # no partial shard is visible
  resumed = helpers.run_extract([*args, f"--output_dir={killed}"])
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  reference = str(tmp_path / "reference")
  assert helpers.run_extract([*args, f"--output_dir={reference}"]).returncode == 0
  names = sorted(os.listdir(reference))
  assert names == sorted(os.listdir(killed)) and len(names) == 5  # 4 shards + manifest
  _, mismatch, errors = filecmp.cmpfiles(reference, killed, names, shallow=False)
  assert not mismatch and not errors
