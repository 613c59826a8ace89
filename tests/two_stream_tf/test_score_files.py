"""Score files: what is written is read back, and the one version check refuses other
versions in one line naming the file."""

import numpy as np
import pytest

from flow_tools.common import storage
from tests.two_stream_tf import common
from two_stream_tf.evaluation import score_files


def _scores():
  return {"ucf101": score_files.HeadScores(np.array(["a/v1", "b/v2"]), np.int32([0, 1]),
                                           np.float32([[0.9, 0.1], [0.2, 0.8]]), ("a", "b"))}


def test_a_score_file_reads_back_what_was_written(tmp_path):
  path = str(tmp_path / "scores.npz")
  source = common.score_source("spatial", "test")
  score_files.save(path, _scores(), source)
  with np.load(path) as f:  # the layout the module docstring promises, read without it
    assert str(f["format"]) == "two_stream_tf.scores/1" and list(f["heads"]) == ["ucf101"]
    np.testing.assert_array_equal(f["ucf101/scores"], np.float32([[0.9, 0.1], [0.2, 0.8]]))
  loaded = score_files.load(path)
  assert loaded.source == source and list(loaded.heads) == ["ucf101"]
  head = loaded.heads["ucf101"]
  assert list(head.video_ids) == ["a/v1", "b/v2"] and head.class_names == ("a", "b")
  np.testing.assert_array_equal(head.predictions, [0, 1])


def test_other_versions_and_damaged_files_are_named(tmp_path):
  path = str(tmp_path / "scores.npz")
  score_files.save(path, _scores(), common.score_source("spatial", "test"))
  with np.load(path) as f:
    arrays = {k: f[k] for k in f.files}

  def variant(name, **changes):
    out = str(tmp_path / name)
    storage.write_npz(out, {k: v for k, v in {**arrays, **changes}.items() if v is not None})
    return out
  # Written before the format was stored, with today's source: the same format.
  assert score_files.load(variant("unversioned.npz", format=None)).heads
  for name, changes, message in [
      ("no_source.npz", dict(format=None, source=None), "says nothing of what it holds"),
      ("newer.npz", dict(format=np.array("two_stream_tf.scores/9")),
       "format two_stream_tf.scores/9"),
      ("altered.npz", {"ucf101/labels": np.int32([0])}, "holds 2 videos and 2 classes"),
      ("no_heads.npz", dict(heads=None), "not a score file of two_stream_tf.evaluate")]:
    with pytest.raises(score_files.ScoreFileError, match=name):
      score_files.load(variant(name, **changes))
    with pytest.raises(score_files.ScoreFileError, match=message):
      score_files.load(str(tmp_path / name))
  with pytest.raises(score_files.ScoreFileError, match="no score file"):
    score_files.load(str(tmp_path / "missing.npz"))
