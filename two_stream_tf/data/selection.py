"""Which videos a pipeline reads: records directories, heads, split selection, class balance.

Nothing is rewritten: a split's train or test videos are chosen from the split membership
the manifest holds for every video, so no other video is ever read.
"""

import dataclasses

import numpy as np

from flow_tools import datasets
from flow_tools import records


@dataclasses.dataclass(frozen=True)
class RecordsSource:
  """One records directory (one dataset) as written by flow_tools.extract."""
  records_dir: str
  manifest: dict

  @property
  def dataset(self):
    return self.manifest["dataset"]

  @property
  def class_names(self):
    return tuple(self.manifest["class_names"])

  def select(self, split, subset):
    """{video id: label} of the split's `subset` ('train' or 'test') videos."""
    if subset not in datasets.SUBSETS:
      raise ValueError(f"unknown subset {subset!r}; choose from {sorted(datasets.SUBSETS)}")
    if not 1 <= split <= self.manifest["num_splits"]:
      raise ValueError(f"{self.records_dir}: split {split} does not exist "
                       f"({self.dataset} has {self.manifest['num_splits']})")
    code = datasets.SUBSETS[subset]
    return {v: info["label"] for v, info in self.manifest["videos"].items()
            if info["splits"][split - 1] == code}


def open_sources(records_dirs):
  """`RecordsSource`s of several directories, one per dataset; their order is the head order."""
  if isinstance(records_dirs, str):
    records_dirs = [records_dirs]
  sources = [RecordsSource(d, records.read_manifest(d)) for d in records_dirs]
  names = [s.dataset for s in sources]
  for name in set(names):
    if names.count(name) > 1:
      dirs = [s.records_dir for s in sources if s.dataset == name]
      raise ValueError(f"records directories {dirs} hold the same dataset {name!r}: "
                       "give one directory per dataset")
  return sources


def check_selection(sources, split, subset):
  """The selection of every source, with a clear error if one of them is empty."""
  selections = [s.select(split, subset) for s in sources]
  for source, selected in zip(sources, selections):
    if not selected:
      raise ValueError(f"{source.records_dir}: no {subset} videos in split {split}")
  return selections


def balanced_weights(sources, selections):
  """Per dataset, per label: the expected samples per video visit for class-balanced sampling.

  Each class of every dataset gets the same share of samples (the paper: videos sampled
  uniformly across classes), while one pass still gives as many samples as videos.
  Returns one float32 array per source, indexed by label (0 for classes with no video).
  """
  counts = [np.bincount(list(sel.values()), minlength=len(s.class_names))
            for s, sel in zip(sources, selections)]
  total_videos = sum(int(c.sum()) for c in counts)
  total_classes = sum(int((c > 0).sum()) for c in counts)
  return [np.where(c > 0, total_videos / (total_classes * np.maximum(c, 1)), 0.0)
          .astype(np.float32) for c in counts]
