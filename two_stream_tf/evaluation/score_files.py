"""Score files: a stream's per-video softmax scores on a subset, written by `evaluate` and
read by `fuse` (and the quickstart job), through this module only.

A score file (.npz, plain arrays, loadable without pickle) holds, per head,
`<head>/video_ids`, `<head>/labels`, `<head>/scores` (videos x classes, float32) and
`<head>/class_names`; `heads` (their order); `format` (FORMAT); and `source`: JSON saying
what the file holds (`source`), which `fuse` checks before it fits anything on the scores.
"""

import dataclasses
import json
import os

import numpy as np

from flow_tools import records
from flow_tools.common import storage

FORMAT = "two_stream_tf.scores/1"
# What `source` holds in this format: files written before `format` was stored that hold
# all of it are of this format too; older ones are refused.
_SOURCE_KEYS = frozenset({"stream", "subset", "split", "step", "model_dir", "records",
                          "trained_extraction", "accepted_other_records"})


class ScoreFileError(ValueError):
  """A score file that is missing, damaged or of another version: one line naming it."""


@dataclasses.dataclass
class HeadScores:
  """One head's averaged softmax scores on its own dataset's videos."""
  video_ids: np.ndarray  # str
  labels: np.ndarray     # int32
  scores: np.ndarray     # videos x classes, float32
  class_names: tuple

  @property
  def predictions(self):
    return np.argmax(self.scores, axis=1)


@dataclasses.dataclass
class ScoreFile:
  """A score file: where it is, what it holds (`source`), the scores ({head: HeadScores})."""
  path: str
  source: dict
  heads: dict


def path(model_dir, subset, split):
  """Where `evaluate` writes a stream's scores of a split's `subset` videos."""
  return os.path.join(model_dir, f"scores_{subset}_split{split}.npz")


def source(spec, subset, step, model_dir, records_dirs=None, accepted_other_records=False):
  """What a score file of `spec`'s run holds (JSON values): its stream, subset, split,
  checkpoint step, model_dir, the records scored with their extraction settings, the
  settings of the records trained on (None: a model_dir that does not record them), and
  whether a difference was accepted."""
  scored = []
  for records_dir in records_dirs or spec.records_dirs:
    manifest = records.read_manifest(records_dir)
    scored.append({"records_dir": storage.absolute(records_dir),
                   "dataset": manifest["dataset"], "extraction": manifest["config"]})
  return {"stream": spec.stream, "subset": subset, "split": spec.split, "step": step,
          "model_dir": storage.absolute(model_dir), "records": scored,
          "trained_extraction": list(spec.extraction),
          "accepted_other_records": accepted_other_records}


def save(file_path, head_scores, file_source):
  """Writes the score file of {head: HeadScores} and its `source` (atomically)."""
  arrays = {"heads": np.array(list(head_scores), dtype=str), "format": np.array(FORMAT),
            "source": np.array(json.dumps(file_source, sort_keys=True))}
  for head, s in head_scores.items():
    arrays.update({f"{head}/video_ids": s.video_ids.astype(str),
                   f"{head}/labels": s.labels.astype(np.int32),
                   f"{head}/scores": s.scores.astype(np.float32),
                   f"{head}/class_names": np.array(s.class_names, dtype=str)})
  storage.write_npz(file_path, arrays)


def load(file_path):
  """The `ScoreFile` at `file_path`.

  Raises:
    ScoreFileError: no file there, not a score file, one of another version (the one
      version check), or arrays whose shapes disagree.
  """
  try:
    with np.load(file_path, allow_pickle=False) as f:
      # The one version check: this format, or a file from before `format` was stored
      # that holds all of this format's source.
      found = str(f["format"]) if "format" in f.files else None
      if found not in (None, FORMAT):
        raise ScoreFileError(f"{file_path}: written by another version (format {found}, this "
                             f"reads {FORMAT}): run python -m two_stream_tf.evaluate again")
      file_source = json.loads(str(f["source"])) if "source" in f.files else {}
      if not _SOURCE_KEYS <= set(file_source):
        raise ScoreFileError(f"{file_path}: says nothing of what it holds (written by an "
                             "older version): run python -m two_stream_tf.evaluate again")
      heads = [str(h) for h in f["heads"]]
      scores = {h: HeadScores(f[f"{h}/video_ids"].astype(str), f[f"{h}/labels"].astype(np.int32),
                              f[f"{h}/scores"].astype(np.float32),
                              tuple(str(c) for c in f[f"{h}/class_names"]))
                for h in heads}
  except FileNotFoundError as e:
    raise ScoreFileError(f"no score file {file_path}") from e
  except ScoreFileError:
    raise
  except (KeyError, ValueError, OSError) as e:
    raise ScoreFileError(f"{file_path}: not a score file of two_stream_tf.evaluate ({e})") from e
  for head, s in scores.items():
    videos, classes = len(s.video_ids), len(s.class_names)
    if s.labels.shape != (videos,) or s.scores.shape != (videos, classes):
      raise ScoreFileError(f"{file_path}: {head} holds {videos} videos and {classes} classes "
                           f"but labels of shape {s.labels.shape} and scores of shape "
                           f"{s.scores.shape}: the file was altered; evaluate again")
  return ScoreFile(file_path, file_source, scores)
