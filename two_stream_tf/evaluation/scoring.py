"""The paper's test protocol on a trained stream: the records to score, per-video scores and
their accuracies.

Every selected video gets the softmax of each head averaged over its 25 x 10 views. A
head is scored on its own dataset's videos only.
"""

import os

import numpy as np
import tensorflow as tf

from flow_tools import records
from flow_tools.common import storage
from flow_tools.records import record_parsing
from two_stream_tf import data
from two_stream_tf import model_dirs
from two_stream_tf import streams
from two_stream_tf.evaluation import score_files
from two_stream_tf.reporting import summaries


def records_to_score(spec, model_dir, records_dirs=None, accept_other_records=False):
  """The records directories to score `spec`'s run on: `records_dirs`, or those trained on.

  Raises model_dirs.RunSpecError naming the directory when the records trained on are gone
  (moved, or a relative path of an older run spec), and when `records_dirs` hold other
  datasets than the heads or were extracted with other settings (another flow algorithm,
  frame size, quantisation) than the training records, unless `accept_other_records`.
  """
  error = model_dirs.RunSpecError
  for trained_on in () if records_dirs else spec.records_dirs:
    if not storage.exists(os.path.join(trained_on, records.MANIFEST)):
      why = ("moved or removed?" if storage.is_remote(trained_on) or os.path.isabs(trained_on)
             else f"an older version wrote this path into {model_dirs.SPEC_FILE} relative to "
                  "the directory training ran in: run from there")
      raise error(f"the records {trained_on} that {model_dir} was trained on are not there "
                  f"({why}); give their place with --records_dirs")
  chosen = list(records_dirs or spec.records_dirs)
  if len(chosen) != len(spec.heads):
    raise error(f"{len(chosen)} records directories for the {len(spec.heads)} heads "
                f"{spec.head_names} of {model_dir}: give one per head, in this order")
  for records_dir, (head, _), trained in zip(chosen, spec.heads, spec.extraction):
    manifest = records.read_manifest(records_dir)
    if manifest["dataset"] != head:
      raise error(f"{records_dir} holds {manifest['dataset']} records; head {head!r} of "
                  f"{model_dir} is scored on {head} records")
    differences = model_dirs.extraction_differences(
        trained, manifest["config"], ("in training", "here"))
    if differences and not accept_other_records:
      raise error(f"{records_dir} was extracted with other settings than the records "
                  f"{model_dir} was trained on ({'; '.join(differences)}): its scores would "
                  "not be the model's; extract with the training settings, or pass "
                  "--accept_other_records to score them anyway")
  return chosen


def score_videos(model, spec, *, subset="test", batch_size=50,
                 num_positions=streams.NUM_POSITIONS, records_dirs=None, jit_compile=False,
                 input_cache="auto"):
  """`spec`'s split `subset` videos under the 25 x 10-view protocol.

  Args:
    model: the trained stream (dict outputs {head: softmax}).
    spec: its `two_stream_tf.model_dirs.RunSpec`.
    subset: 'test' (the paper's numbers) or 'train' (scores to fit a fusion SVM on).
    batch_size: views per forward pass, a multiple of 10 (memory does not grow with videos
      or frames).
    num_positions: frames or stacks per video (25 in the paper).
    records_dirs: records to read instead of the ones trained on (same datasets).
    input_cache: where the views' steps are read from (`data.evaluation_views`).
  Returns:
    ({head: HeadScores}, the first few views seen, for pictures).
  """
  if batch_size % streams.VIEWS_PER_POSITION:
    raise ValueError(f"batch_size {batch_size} is not a multiple of the "
                     f"{streams.VIEWS_PER_POSITION} views of a position")
  records_dirs = list(records_dirs or spec.records_dirs)
  positions = data.evaluation_positions(
      records_dirs, spec.split, spec.input, subset=subset,
      batch_size=batch_size // streams.VIEWS_PER_POSITION, num_positions=num_positions,
      input_cache=input_cache)
  # The views are cut from the decoded frames here, on the accelerator, not on the host.
  forward = tf.function(lambda x: model(data.to_views(x, spec.input), training=False),
                        jit_compile=jit_compile)
  first_views = []

  def predict(batch):
    frames = {k: v for k, v in batch.items() if k not in data.VIDEO_INFO}
    if not first_views:
      first_views.append(data.to_views(frames, spec.input)[:summaries.MAX_IMAGES].numpy())
    return forward(frames)
  with record_parsing.naming_damaged_files(records_dirs):
    averaged = data.average_per_video(predict, positions)
  out = {}
  for index, (head, class_names) in enumerate(spec.heads):
    own = averaged.heads == index
    out[head] = score_files.HeadScores(np.array(averaged.video_ids, dtype=str)[own],
                                       averaged.labels[own], averaged.scores[head][own],
                                       tuple(class_names))
  return out, (first_views[0] if first_views else None)


def accuracies(labels, predictions, class_names):
  """Accuracy, mean class accuracy (over the classes with videos) and per-class accuracy
  {class name: accuracy} of predicted labels (JSON-ready)."""
  labels, hits = np.asarray(labels), np.asarray(predictions) == np.asarray(labels)
  per_class = {name: float(hits[labels == c].mean())
               for c, name in enumerate(class_names) if np.any(labels == c)}
  return {"accuracy": float(hits.mean()) if len(hits) else 0.0,
          "mean_class_accuracy": float(np.mean(list(per_class.values()))) if per_class else 0.0,
          "per_class_accuracy": per_class}


def accuracy_report(head_scores):
  """{head: accuracy, mean class accuracy, per-class accuracy, video count} (JSON-ready)."""
  return {head: {**accuracies(s.labels, s.predictions, s.class_names),
                 "videos": int(len(s.labels))} for head, s in head_scores.items()}


def report_table(report, title):
  lines = [title, "| head | videos | accuracy | mean class accuracy |", "|---|---|---|---|"]
  lines += [f"| {h} | {r['videos']} | {100 * r['accuracy']:.1f}% | "
            f"{100 * r['mean_class_accuracy']:.1f}% |" for h, r in report.items()]
  return "\n".join(lines)
