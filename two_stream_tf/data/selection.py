"""Which videos a pipeline reads: records directories, heads (and classes added to them),
split selection, class balance.

Nothing is rewritten: a split's train or test videos are chosen from the split membership
the manifest holds for every video, so no other video is ever read.
"""

import dataclasses

import numpy as np

from flow_tools import datasets
from flow_tools import records
from flow_tools.common import storage


@dataclasses.dataclass(frozen=True)
class RecordsSource:
  """One records directory (one dataset) as written by flow_tools.extract, and the head its
  videos train.

  Attributes:
    head: index of that head.
    classes: None: the head's own dataset (every class, labels as in the manifest); else
      the class names read, labelled `first_label`, `first_label` + 1, ... in the head
      (`added_classes.AddedClasses`).
  """
  records_dir: str
  manifest: dict
  head: int = 0
  classes: tuple = None
  first_label: int = 0

  @property
  def dataset(self):
    return self.manifest["dataset"]

  @property
  def class_names(self):
    return tuple(self.manifest["class_names"])

  @property
  def head_labels(self):
    """{label in the manifest: label in the head} of the classes read."""
    if self.classes is None:
      return {label: label for label in range(len(self.class_names))}
    return {self.class_names.index(name): self.first_label + i
            for i, name in enumerate(self.classes)}

  def select(self, split, subset):
    """{video id: head label} of the split's `subset` ('train' or 'test') videos of the
    classes read."""
    if subset not in datasets.SUBSETS:
      raise ValueError(f"unknown subset {subset!r}; choose from {sorted(datasets.SUBSETS)}")
    if not 1 <= split <= self.manifest["num_splits"]:
      raise ValueError(f"{self.records_dir}: split {split} does not exist "
                       f"({self.dataset} has {self.manifest['num_splits']})")
    code, labels = datasets.SUBSETS[subset], self.head_labels
    return {v: labels[info["label"]] for v, info in self.manifest["videos"].items()
            if info["splits"][split - 1] == code and info["label"] in labels}


def open_sources(records_dirs, added=()):
  """`RecordsSource`s of several directories, one per dataset: first the heads' (in head
  order), then those of `added` (`added_classes.AddedClasses`), each labelled after its
  head's classes and the classes added to it before."""
  if isinstance(records_dirs, str):
    records_dirs = [records_dirs]
  sources = [RecordsSource(d, records.read_manifest(d), head=i)
             for i, d in enumerate(records_dirs)]
  heads = [s.dataset for s in sources]
  next_label = [len(s.class_names) for s in sources]
  for extra in added:
    if extra.head not in heads:
      raise ValueError(f"classes of {extra.records_dir} are added to head {extra.head!r}, "
                       f"which is not one of the heads {heads}")
    manifest = records.read_manifest(extra.records_dir)
    unknown = [c for c in extra.class_names if c not in manifest["class_names"]]
    if unknown:
      raise ValueError(f"{extra.records_dir}: {manifest['dataset']} has no classes {unknown}")
    head = heads.index(extra.head)
    sources.append(RecordsSource(extra.records_dir, manifest, head=head,
                                 classes=tuple(extra.class_names), first_label=next_label[head]))
    next_label[head] += len(extra.class_names)
  names = [s.dataset for s in sources]
  for name in set(names):
    if names.count(name) > 1:
      dirs = [s.records_dir for s in sources if s.dataset == name]
      raise ValueError(f"records directories {dirs} hold the same dataset {name!r}: "
                       "give one directory per dataset")
  return sources


def head_names(sources):
  """The heads' names (their datasets), in head order."""
  return [s.dataset for s in sources if s.classes is None]


def head_sizes(sources):
  """Per head (in order), its number of labels: its own classes and those added to it."""
  sizes = [0] * len(head_names(sources))
  for s in sources:
    sizes[s.head] = max(sizes[s.head], s.first_label + len(s.classes or s.class_names))
  return sizes


def check_selection(sources, split, subset):
  """The selection of every source, with a clear error if one of them is empty."""
  selections = [s.select(split, subset) for s in sources]
  for source, selected in zip(sources, selections):
    if not selected:
      raise ValueError(f"{source.records_dir}: no {subset} videos in split {split}")
    _check_files(source, selected)
  return selections


def _check_files(source, selected):
  """Raises RecordsError naming a selected video whose files are missing or cut short
  (checked where a stat is cheap: local records; a remote file is named when read)."""
  if storage.is_remote(source.records_dir):
    return
  damaged = records.size_damage(source.records_dir, source.manifest, selected)
  if damaged:
    raise records.damage_error(source.records_dir, damaged, "found before reading")


def balanced_weights(sources, selections):
  """Per head, per label: the expected samples per video visit for class-balanced sampling.

  Each class of every head gets the same share of samples (the paper: videos sampled
  uniformly across classes), while one pass still gives as many samples as videos.
  Returns one float32 array per head, indexed by label (0 for classes with no video).
  """
  counts = [np.zeros(n, np.int64) for n in head_sizes(sources)]
  for s, sel in zip(sources, selections):
    counts[s.head] += np.bincount(list(sel.values()), minlength=len(counts[s.head]))
  total_videos = sum(int(c.sum()) for c in counts)
  total_classes = sum(int((c > 0).sum()) for c in counts)
  return [np.where(c > 0, total_videos / (total_classes * np.maximum(c, 1)), 0.0)
          .astype(np.float32) for c in counts]
