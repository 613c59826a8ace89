"""MMAction2's annotation lists of frame folders, read into a `DatasetIndex` and written.

MMAction2's `tools/data/build_file_list.py --format rawframes` writes, per split N,
`<dataset>_train_split_<N>_rawframes.txt` and `<dataset>_val_split_<N>_rawframes.txt`, a
line per video: `<class>/<video> <number of RGB frames> <0-based label>` (or `<video>`
without its class folder, as in MMAction2's own test data). The val list is the split's
test set. Class names are not in the lists: they are read from a `classInd.txt` beside
them (UCF-101's format, `<label + 1> <class name>` a line, which `write_lists` writes for
any dataset), else taken from the class folders of each label's videos.

Those lists give the RGB frame count T, which MMAction2 also takes as the Flow count when
a Flow config reads the same list: its `SampleFrames` in test mode (and in train mode on
short videos) then reaches index T with `start_index=1`, `flow_x_<T>.jpg`, a field a
video of T frames does not have. So `write_lists` also writes Flow lists,
`<dataset>_flow_{train,val}_split_<N>_rawframes.txt` (the `_flow_` of MMAction2's
Kinetics Flow lists), with the field count T - 1; `load_lists` reads the RGB ones.
"""

import os
import re

from flow_tools import datasets
from flow_tools.common import storage

_LIST = re.compile(r"^(?P<dataset>.+?)(?P<flow>_flow)?_(?P<subset>train|val)_split_(?P<split>\d+)"
                   r"_rawframes\.txt$")
_SUBSET_CODES = {"train": datasets.TRAIN, "val": datasets.TEST}
CLASS_LIST = "classInd.txt"


def list_name(dataset, subset, split, flow=False):
  """The file name of a split's list; `subset` 'train' or 'test' (MMAction2's 'val');
  `flow`: the Flow list (field counts)."""
  return (f"{dataset}{'_flow' if flow else ''}_{'val' if subset == 'test' else subset}"
          f"_split_{split}_rawframes.txt")


def _list_files(lists_dir):
  """(dataset name, {(subset, split): path}) of the lists in `lists_dir`."""
  if not storage.isdir(lists_dir):
    raise datasets.DatasetError(f"annotation list folder not found: {lists_dir}")
  found = {}
  for name in storage.listdir(lists_dir):
    match = _LIST.match(name)
    if match and not match["flow"]:
      found.setdefault(match["dataset"], {})[(match["subset"], int(match["split"]))] = (
          os.path.join(lists_dir, name))
  if len(found) != 1:
    raise datasets.DatasetError(
        f"{lists_dir} must hold the <dataset>_{{train,val}}_split_<N>_rawframes.txt lists of "
        f"one dataset (found {sorted(found) or 'none'})")
  (dataset, lists), = found.items()
  splits = sorted({split for _, split in lists})
  if splits != list(range(1, len(splits) + 1)):
    raise datasets.DatasetError(f"{lists_dir}: the lists' splits are {splits}, not 1, 2, ...")
  for split in splits:
    for subset in _SUBSET_CODES:
      if (subset, split) not in lists:
        raise datasets.DatasetError("missing file: " + os.path.join(
            lists_dir, f"{dataset}_{subset}_split_{split}_rawframes.txt"))
  return dataset, lists


def load_lists(lists_dir, locate):
  """The `DatasetIndex` of MMAction2's lists in `lists_dir`.

  Args:
    locate: (video id as listed, where it is listed) -> the video's `path`.
  Returns:
    (the index, {video id: the frame count its lists give}).
  Raises:
    datasets.DatasetError: a malformed line, a video listed twice in a split or with two
      labels or frame counts, a label whose videos are in two class folders, labels with
      no video (named: their class names cannot be known).
  """
  dataset, lists = _list_files(lists_dir)
  memberships, labels, counts, paths, class_of_label = {}, {}, {}, {}, {}
  for (subset, split), list_file in sorted(lists.items()):
    for number, line in datasets.read_lines(list_file):
      where = f"{list_file}:{number}"
      parts = line.split()
      if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        raise datasets.DatasetError(f"{where}: expected '<class>/<video> <frames> <label>', "
                                    f"got {line!r}")
      video_id, frames, label = parts[0].strip("/"), int(parts[1]), int(parts[2])
      if split in memberships.setdefault(video_id, {}):
        raise datasets.DatasetError(f"{where}: {video_id} is listed twice in split {split}")
      memberships[video_id][split] = _SUBSET_CODES[subset]
      if labels.setdefault(video_id, label) != label:
        raise datasets.DatasetError(f"{where}: {video_id} has label {label} here, "
                                    f"{labels[video_id]} elsewhere")
      if counts.setdefault(video_id, frames) != frames:
        raise datasets.DatasetError(f"{where}: {video_id} has {frames} frames here, "
                                    f"{counts[video_id]} elsewhere")
      class_name = video_id.split("/")[0] if "/" in video_id else None
      if class_name is None:
        class_of_label.setdefault(label, None)
      elif class_of_label.setdefault(label, class_name) is None:
        class_of_label[label] = class_name
      elif class_of_label[label] != class_name:
        raise datasets.DatasetError(f"{where}: label {label} is class folder {class_name!r} "
                                    f"here, {class_of_label[label]!r} elsewhere")
      if video_id not in paths:
        paths[video_id] = locate(video_id, where)
  class_names = _class_names(lists_dir, class_of_label)
  return datasets.build_index(dataset, class_names, memberships, paths, labels), counts


def _class_names(lists_dir, class_of_label):
  """The class names of labels 0, 1, ...: `CLASS_LIST`'s, checked against the folders of
  the labels' videos, else those folders' (`class_of_label`: {label: its videos' class
  folder, or None where they have none})."""
  path = os.path.join(lists_dir, CLASS_LIST)
  if storage.isfile(path):
    names = []
    for number, line in datasets.read_lines(path):
      parts = line.split()
      if len(parts) != 2 or parts[0] != str(len(names) + 1):
        raise datasets.DatasetError(f"{path}:{number}: expected '{len(names) + 1} <class name>', "
                                    f"got {line!r}")
      names.append(parts[1])
    for label, folder in sorted(class_of_label.items()):
      if label >= len(names) or (folder is not None and names[label].lower() != folder.lower()):
        raise datasets.DatasetError(
            f"{path}: label {label} is {names[label] if label < len(names) else 'not there'}, "
            f"its videos are in {folder}/")
    return names
  missing = sorted(set(range(max(class_of_label) + 1)) - set(class_of_label))
  if missing:
    raise datasets.DatasetError(f"{lists_dir}: no video has label {missing[0]} and there is no "
                                f"{CLASS_LIST}: its class name is unknown")
  unnamed = sorted(label for label, folder in class_of_label.items() if folder is None)
  if unnamed:
    raise datasets.DatasetError(f"{lists_dir}: the videos of label {unnamed[0]} are in no class "
                                f"folder and there is no {CLASS_LIST}: its class name is unknown "
                                f"(put a {CLASS_LIST}, '<label + 1> <class name>' a line, beside "
                                "the lists)")
  return [class_of_label[k] for k in range(len(class_of_label))]


def write_lists(lists_dir, dataset, class_names, videos, num_splits):
  """Writes the lists of `videos` ({video id: (frame count, label, split memberships)}),
  one per split and subset, in video id order: the RGB lists (frame counts), the Flow
  lists (frame counts - 1) and `CLASS_LIST`; returns their paths."""
  storage.makedirs(lists_dir)
  class_list = os.path.join(lists_dir, CLASS_LIST)
  storage.write_text(class_list, "".join(f"{k + 1} {n}\n" for k, n in enumerate(class_names)))
  written = [class_list]
  for flow in (False, True):
    for split in range(1, num_splits + 1):
      for subset, code in (("train", datasets.TRAIN), ("test", datasets.TEST)):
        lines = [f"{v} {frames - flow} {label}\n"
                 for v, (frames, label, splits) in sorted(videos.items())
                 if splits[split - 1] == code]
        path = os.path.join(lists_dir, list_name(dataset, subset, split, flow))
        storage.write_text(path, "".join(lines))
        written.append(path)
  return written
