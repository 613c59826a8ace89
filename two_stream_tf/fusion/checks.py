"""What fusion refuses: score files of the wrong stream, subset, split or extraction, and two
streams whose heads, classes, videos or labels differ."""

import dataclasses

import numpy as np


class FusionError(ValueError):
  """Score files that cannot be fused (different videos, classes or heads), or a bad file."""


def check_sources(files):
  """Raises FusionError, naming the file, unless each of `files` ({(stream, subset):
  ScoreFile}) holds that stream's scores of that subset, all of one split."""
  for (stream, subset), file in files.items():
    source = file.source
    if source["stream"] != stream:
      raise FusionError(f"{file.path} holds {source['stream']} scores, given as the {stream} "
                        "stream's")
    if source["subset"] != subset:
      leak = (" (an SVM fitted on test scores would report a leaked accuracy)"
              if subset == "train" else "")
      raise FusionError(f"{file.path} holds {source['subset']} scores, given as {subset} "
                        f"scores{leak}")
    trained = source["trained_extraction"]  # None: a model_dir that does not record it
    scored = [r["extraction"] for r in source["records"]]
    if trained and scored != trained and not source["accepted_other_records"]:
      raise FusionError(f"{file.path} holds scores of records extracted with other settings "
                        "than the model was trained on, and does not say they were accepted: "
                        "evaluate again on the training records")
  for stream in {stream for stream, _ in files}:
    test, train = files.get((stream, "test")), files.get((stream, "train"))
    if test and train and ([r["extraction"] for r in test.source["records"]] !=
                           [r["extraction"] for r in train.source["records"]]):
      raise FusionError(f"{test.path} and {train.path} score records extracted with different "
                        "settings: an SVM fitted on the one would be tested on other input")
  splits = {file.path: file.source["split"] for file in files.values()}
  if len(set(splits.values())) > 1:
    raise FusionError("score files of different splits: " +
                      ", ".join(f"{path} split {split}" for path, split in splits.items()))


def aligned(first, second, first_name="spatial", second_name="temporal"):
  """The two streams' {head: HeadScores}, second reordered to the first's video order.

  Raises FusionError naming the difference when heads, class lists, videos or labels differ.
  """
  if list(first) != list(second):
    raise FusionError(f"heads differ: {first_name} has {list(first)}, {second_name} "
                      f"{list(second)}")
  out = {}
  for head, a in first.items():
    b = second[head]
    if a.class_names != b.class_names:
      where = next((i for i, (x, y) in enumerate(zip(a.class_names, b.class_names)) if x != y),
                   min(len(a.class_names), len(b.class_names)))
      raise FusionError(f"{head}: class lists differ ({first_name} {len(a.class_names)} "
                        f"classes, {second_name} {len(b.class_names)}; first difference at "
                        f"index {where})")
    only_a = sorted(set(a.video_ids) - set(b.video_ids))
    only_b = sorted(set(b.video_ids) - set(a.video_ids))
    if only_a or only_b:
      raise FusionError(f"{head}: videos differ: {len(only_a)} only in {first_name} "
                        f"{only_a[:3]}, {len(only_b)} only in {second_name} {only_b[:3]}")
    order = {v: i for i, v in enumerate(b.video_ids)}
    index = np.array([order[v] for v in a.video_ids], dtype=np.int64)
    if not np.array_equal(a.labels, b.labels[index]):
      bad = a.video_ids[np.argmax(a.labels != b.labels[index])]
      raise FusionError(f"{head}: labels differ between the files (e.g. {bad})")
    out[head] = (a, dataclasses.replace(b, video_ids=b.video_ids[index], labels=b.labels[index],
                                        scores=b.scores[index]))
  return out
