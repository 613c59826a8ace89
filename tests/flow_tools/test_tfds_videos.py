"""UCF-101 through TensorFlow Datasets, on `tfds.testing.mock_data` (no download).

The truth is TFDS itself: its ids, labels, class names and decoded frames for the
same mocked dataset, read with `tfds.load`.
"""

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from flow_tools import datasets
from flow_tools import records
from flow_tools.datasets import tfds_videos
from flow_tools.extraction import encoding
from flow_tools.extraction import local_runner
from flow_tools.records import record_parsing
from tests.flow_tools import helpers

NAME = "ucf101/ucf101_1"
NUM_EXAMPLES = 4  # per TFDS split
DIS = encoding.ExtractionConfig(algorithm="dis", short_side=0)
MOCKED_APP = """import sys
import tensorflow_datasets as tfds
from absl import app
from flow_tools import extract
if __name__ == "__main__":
  with tfds.testing.mock_data(num_examples=%d):
    app.run(extract.main)
""" % NUM_EXAMPLES


@pytest.fixture(name="mocked_tfds")
def fixture_mocked_tfds():
  with tfds.testing.mock_data(num_examples=NUM_EXAMPLES):
    yield


def _tfds_videos(name, split):
  """{tfds id: (label, T x H x W x 3 frames)} as TFDS itself decodes them."""
  dataset = tfds.load(name, split=split, shuffle_files=False,
                      read_config=tfds.ReadConfig(add_tfds_id=True))
  return {ex["tfds_id"].decode(): (int(ex["label"]), ex["video"])
          for ex in tfds.as_numpy(dataset)}


@pytest.mark.slow
def test_index_takes_ids_labels_names_and_splits_from_tfds(mocked_tfds):
  index = tfds_videos.TfdsVideos(NAME).index()
  names = tfds.builder(NAME).info.features["label"].names
  assert index.name == "ucf101" and index.class_names == tuple(names) and len(names) == 101
  expected = {}
  for subset, membership in (("train", (datasets.TRAIN,)), ("test", (datasets.TEST,))):
    for video_id, (label, _) in _tfds_videos(NAME, subset).items():
      expected[video_id] = (label, names[label], membership)
  assert len(expected) == 2 * NUM_EXAMPLES
  assert {e.video_id: (e.label, e.class_name, e.splits) for e in index.entries} == expected
  assert index.num_splits == 1 and [e.video_id for e in index.entries] == sorted(expected)
  assert tfds_videos.TfdsVideos(NAME).index() == index  # the same ids on every run
  # ucf101_2 holds split 2: its membership there, split 1 unknown (unused).
  second = tfds_videos.TfdsVideos("ucf101/ucf101_2").index()
  assert {e.splits for e in second.entries} == {(datasets.UNUSED, datasets.TRAIN),
                                                (datasets.UNUSED, datasets.TEST)}
  assert len(second.select(2, "train")) == NUM_EXAMPLES and not second.select(1, "train")


@pytest.mark.slow
def test_extraction_from_tfds_holds_its_frames_and_labels(mocked_tfds, tmp_path):
  source = tfds_videos.TfdsVideos(NAME)
  index = source.index()
  out = str(tmp_path / "records")
  summary = local_runner.extract(index, out, DIS, num_workers=2, progress=False,
                                 read_videos=source.read)
  truth = {**_tfds_videos(NAME, "train"), **_tfds_videos(NAME, "test")}
  # Mocked videos are noise of 5..50 pixels a side; DIS needs a side of 12 or more.
  too_small = {v for v, (_, frames) in truth.items() if max(frames.shape[1:3]) < 12}
  assert set(summary.failures) == too_small
  assert summary.num_extracted == len(truth) - len(too_small) >= 6
  manifest = records.read_manifest(out)
  assert manifest["dataset"] == "ucf101" and len(manifest["class_names"]) == 101
  for video_id in manifest["videos"]:
    label, frames = truth[video_id]
    loaded = record_parsing.load_video(out, video_id)
    assert loaded.label == label and loaded.class_name == index.class_names[label]
    assert loaded.frames.shape == frames.shape
    assert loaded.flow.shape == (len(frames) - 1,) + frames.shape[1:3] + (2,)
    assert loaded.metadata["clip/split_membership"] in ([datasets.TRAIN], [datasets.TEST])
    # Stored frames are TFDS's frames JPEG-coded again (quality 90). The mocked frames are
    # colour noise, which JPEG's chroma subsampling wipes out, so compare luma: a few grey
    # levels apart (the frames in reverse order are ~55 apart).
    luma = np.array([0.299, 0.587, 0.114])
    error = np.abs(loaded.frames @ luma - frames @ luma).mean()
    assert error < 6, (video_id, error)


@pytest.mark.slow
def test_app_extracts_tfds_and_resumes_to_the_same_records(tmp_path):
  script = tmp_path / "mocked_extract.py"
  script.write_text(MOCKED_APP)
  args = ["--dataset=tfds", f"--tfds_name={NAME}", "--algorithm=dis", "--short_side=32",
          "--noprogress"]
  first = helpers.run_extract([*args, f"--output_dir={tmp_path / 'a'}"], script=str(script))
  assert first.returncode == 0, first.stderr[-3000:]
  assert f"ucf101: {2 * NUM_EXAMPLES} of {2 * NUM_EXAMPLES} videos" in first.stdout
  manifest = records.read_manifest(str(tmp_path / "a"))
  assert manifest["config"]["short_side"] == 32 and manifest["num_splits"] == 1
  for info in manifest["videos"].values():
    assert info["frames"] >= 5 and info["splits"] in ([1], [2])
  out = str(tmp_path / "a")
  before = {f: os.path.getmtime(os.path.join(out, f)) for f in helpers.tree_files(out)}
  again = helpers.run_extract([*args, f"--output_dir={out}"], script=str(script))
  assert again.returncode == 0 and before == {
      f: os.path.getmtime(os.path.join(out, f)) for f in helpers.tree_files(out)}


@pytest.mark.slow
def test_tfds_flag_errors_are_one_line(tmp_path):
  out = f"--output_dir={tmp_path / 'o'}"
  cases = [
      (["--dataset=tfds", out], "--dataset=tfds needs it"),
      (["--dataset=ucf101", f"--data_dir={tmp_path}", "--tfds_name=ucf101/ucf101_1", out],
       "--tfds_name goes with --dataset=tfds"),
      (["--dataset=tfds", "--tfds_name=ucf101/ucf101_1", "--runner=beam", out],
       "with --dataset=tfds use --runner=local"),
      (["--dataset=tfds", "--tfds_name=no_such_dataset/x", "--notfds_download", out],
       "error: tfds no_such_dataset/x: DatasetNotFoundError"),
      (["--dataset=tfds", "--tfds_name=ucf101/ucf101_1", f"--data_dir={tmp_path / 'empty'}",
        "--notfds_download", out],
       "error: tfds ucf101/ucf101_1: cannot read split 'train'"),
  ]
  for args, message in cases:
    result = helpers.run_extract(args)
    assert result.returncode == 1 and message in result.stderr, (args, result.stderr[-1000:])
    assert "Traceback" not in result.stderr
  assert not os.path.exists(tmp_path / "o")
