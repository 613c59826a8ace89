"""Another dataset's classes trained as extra classes of a head (the paper's Table 2: HMDB-51
training with the 78 UCF-101 classes HMDB-51 lacks).

The head's label space becomes its own classes followed by the added ones; the added
videos are extra training samples. Tests and predictions score the head's own classes only
(`two_stream_tf.models.restrict_heads`): the added classes are never a right answer there.
"""

import dataclasses
import os

from flow_tools import records

_LISTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "class_lists")
# (added dataset, head dataset) -> the shipped list of the added dataset's classes that the
# head's dataset already has.
OVERLAP_LISTS = {("ucf101", "hmdb51"): os.path.join(_LISTS, "ucf101_in_hmdb51.txt")}


@dataclasses.dataclass(frozen=True)
class AddedClasses:
  """Classes of the records in `records_dir` (dataset `dataset`) added to head `head`,
  in the order of their labels there (after the head's own classes)."""
  head: str
  records_dir: str
  dataset: str
  class_names: tuple

  def to_json(self):
    return {**dataclasses.asdict(self), "class_names": list(self.class_names)}

  @classmethod
  def from_json(cls, value):
    return cls(**{**value, "class_names": tuple(value["class_names"])})


def read_class_list(path):
  """The first word of each line of a class list file ('#' starts a comment)."""
  try:
    with open(path, encoding="utf-8") as f:
      lines = [line.split("#", 1)[0].split() for line in f]
  except OSError as e:
    raise FileNotFoundError(f"cannot read the class list {path}: {e.strerror}") from e
  return [words[0] for words in lines if words]


def non_overlapping(head_records_dir, added_records_dir, overlap_list=None):
  """The `AddedClasses` of `added_records_dir`'s classes that are not in `overlap_list`.

  Args:
    head_records_dir: records of the head's dataset.
    added_records_dir: records of the dataset whose other classes are added.
    overlap_list: a class list file (`read_class_list`) of the added dataset's classes the
      head's dataset already has; None: the shipped list for the pair (`OVERLAP_LISTS`).
  Raises:
    ValueError: no list for the pair, a listed name that is not a class of the added
      dataset (a typo would otherwise add a class twice), or the two records were
      extracted differently (one head would mix two kinds of input).
  """
  head, added = records.read_manifest(head_records_dir), records.read_manifest(added_records_dir)
  pair = (added["dataset"], head["dataset"])
  if overlap_list is None:
    if pair not in OVERLAP_LISTS:
      raise ValueError(f"no shipped list of the {pair[0]} classes that {pair[1]} has: give "
                       "--overlapping_classes=FILE (one class name per line)")
    overlap_list = OVERLAP_LISTS[pair]
  overlapping = read_class_list(overlap_list)
  unknown = sorted(set(overlapping) - set(added["class_names"]))
  if unknown:
    raise ValueError(f"{overlap_list}: {', '.join(unknown)} not classes of {added['dataset']} "
                     f"({added_records_dir})")
  differing = sorted(k for k in set(head["config"]) | set(added["config"])
                     if head["config"].get(k) != added["config"].get(k))
  if differing:
    settings = ", ".join(f"{k}={added['config'].get(k)!r} vs {head['config'].get(k)!r}"
                         for k in differing)
    raise ValueError(f"{added_records_dir} was extracted with other settings than "
                     f"{head_records_dir} ({settings}): one head would mix two kinds of input")
  return AddedClasses(head["dataset"], added_records_dir, added["dataset"],
                      tuple(c for c in added["class_names"] if c not in set(overlapping)))
