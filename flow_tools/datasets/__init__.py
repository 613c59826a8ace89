"""Video datasets as distributed: UCF-101, HMDB-51 and a folder-per-class layout.

Each loader turns a dataset directory plus its official split files into a
`DatasetIndex`: 0-based labels, class names, and one `VideoEntry` per video that
carries the video's membership in every split (0 = unused, 1 = train, 2 = test,
HMDB-51's own coding). A video has the same id in every split: its path relative
to the dataset root, without extension, with '/' separators.

Files are read exactly as the archives ship them: CRLF or LF line endings,
trailing spaces, odd characters in file names, and a case mismatch between list
files and file names (UCF-101's HandstandPushups). Anything missing or
inconsistent raises `DatasetError` with a one-line message naming the file.
Directories may be local or on a remote filesystem (gs://...; see
`flow_tools.common.storage`): videos are found by listing each class folder once, not by
one lookup per video.
"""

import dataclasses
import io
import os
import re

from flow_tools.common import storage

UNUSED, TRAIN, TEST = 0, 1, 2
SUBSETS = {"train": TRAIN, "test": TEST}
NUM_OFFICIAL_SPLITS = 3


class DatasetError(ValueError):
  """A dataset directory or split file is missing or inconsistent."""


@dataclasses.dataclass(frozen=True)
class VideoEntry:
  """One video: where it is, what it is, and which splits use it."""
  video_id: str
  path: str
  label: int
  class_name: str
  splits: tuple  # per split (split 1 first): UNUSED, TRAIN or TEST


@dataclasses.dataclass(frozen=True)
class DatasetIndex:
  """All videos of one dataset, sorted by video id."""
  name: str
  class_names: tuple
  entries: tuple

  @property
  def num_splits(self):
    return len(self.entries[0].splits) if self.entries else 0

  def select(self, split, subset):
    """Entries of `split` (1-based) whose membership is `subset` ('train' or 'test')."""
    if not 1 <= split <= self.num_splits:
      raise DatasetError(f"{self.name}: split {split} does not exist "
                         f"(it has {self.num_splits})")
    code = SUBSETS[subset]
    return [e for e in self.entries if e.splits[split - 1] == code]


def read_lines(path):
  """Non-empty, stripped lines of a text file with any line ending, with line numbers."""
  if not storage.isfile(path):
    raise DatasetError(f"missing file: {path}")
  with storage.open_file(path) as f:
    text = f.read().decode("utf-8", errors="surrogateescape")
  for number, line in enumerate(io.StringIO(text, newline=None), start=1):
    line = line.strip()
    if line:
      yield number, line


class FileResolver:
  """Finds a listed file (or folder) in its folder's listing, tolerating a case mismatch in
  its name; each folder is listed once."""

  def __init__(self, root):
    self._root = root
    self._listings = {}  # folder -> (names, lower-case name -> name)

  def find(self, relpath):
    """The path of `relpath` under the root as it is spelled on disk, or None."""
    path = os.path.join(self._root, *relpath.split("/"))
    folder, name = os.path.split(path)
    if folder not in self._listings:
      names = set(storage.listdir(folder)) if storage.isdir(folder) else set()
      self._listings[folder] = names, {n.lower(): n for n in names}
    names, by_lower_case = self._listings[folder]
    actual = name if name in names else by_lower_case.get(name.lower())
    return None if actual is None else os.path.join(folder, actual)

  def resolve(self, relpath, listed_in):
    """The path of a listed video file. Raises `DatasetError` if it is missing."""
    path = self.find(relpath)
    if path is None:
      raise DatasetError(f"video listed in {listed_in} is missing: "
                         + os.path.join(self._root, *relpath.split("/")))
    return path


def id_of(relpath):
  """The video id of a path listed in a split file: without extension, '/' separators."""
  return os.path.splitext(relpath.replace("\\", "/"))[0]


def build_index(name, class_names, memberships, paths, labels):
  """memberships: video_id -> {split: code}; paths/labels: video_id -> value."""
  num_splits = max((s for m in memberships.values() for s in m), default=0)
  entries = []
  for video_id in sorted(memberships):
    splits = tuple(memberships[video_id].get(s, UNUSED) for s in range(1, num_splits + 1))
    if not any(splits):
      continue
    label = labels[video_id]
    entries.append(VideoEntry(video_id, paths[video_id], label, class_names[label], splits))
  if not entries:
    raise DatasetError(f"{name}: the split files list no train or test videos")
  return DatasetIndex(name, tuple(class_names), tuple(entries))


def _first_existing(*candidates):
  for candidate in candidates:
    if storage.isdir(candidate):
      return candidate
  return candidates[0]


def load_ucf101(data_dir, splits_dir=None, locate=None):
  """UCF-101: `UCF-101/<Class>/v_<Class>_gGG_cCC.avi` and `ucfTrainTestlist/`.

  Args:
    data_dir: the `UCF-101` folder, or the folder that holds it.
    splits_dir: the `ucfTrainTestlist` folder; by default looked for beside and
      inside `data_dir`.
    locate: (path listed in a split file, where it is listed) -> the video's `path`;
      default: the video file, found under `data_dir` (`FileResolver.resolve`).
  Returns:
    A `DatasetIndex` with 101 (or however many classInd.txt lists) classes.
  """
  root = _first_existing(os.path.join(data_dir, "UCF-101"), data_dir)
  if not storage.isdir(root):
    raise DatasetError(f"UCF-101 video folder not found: {root}")
  if splits_dir is None:
    splits_dir = _first_existing(os.path.join(data_dir, "ucfTrainTestlist"),
                                 os.path.join(os.path.dirname(root), "ucfTrainTestlist"))
  class_ind = os.path.join(splits_dir, "classInd.txt")
  class_names = []
  for number, line in read_lines(class_ind):
    parts = line.split()
    if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) != len(class_names) + 1:
      raise DatasetError(f"{class_ind}:{number}: expected '{len(class_names) + 1} <ClassName>', "
                         f"got {line!r}")
    class_names.append(parts[1])
  label_of = {c.lower(): i for i, c in enumerate(class_names)}

  locate = locate or FileResolver(root).resolve
  memberships, paths, labels = {}, {}, {}
  for split in range(1, NUM_OFFICIAL_SPLITS + 1):
    for subset, code in SUBSETS.items():
      list_file = os.path.join(splits_dir, f"{subset}list{split:02d}.txt")
      for number, line in read_lines(list_file):
        parts = line.split()
        relpath = parts[0]
        where = f"{list_file}:{number}"
        class_dir = relpath.split("/")[0]
        if class_dir.lower() not in label_of:
          raise DatasetError(f"{where}: class folder {class_dir!r} is not in {class_ind}")
        label = label_of[class_dir.lower()]
        if len(parts) > 1 and (not parts[1].isdigit() or int(parts[1]) - 1 != label):
          raise DatasetError(f"{where}: label {parts[1]} disagrees with {class_ind} "
                             f"({class_names[label]} is {label + 1})")
        video_id = id_of(relpath)
        split_codes = memberships.setdefault(video_id, {})
        if split in split_codes:
          raise DatasetError(f"{where}: {relpath} is listed twice in split {split}")
        split_codes[split] = code
        if video_id not in paths:
          paths[video_id] = locate(relpath, where)
          labels[video_id] = label
  return build_index("ucf101", class_names, memberships, paths, labels)


_HMDB_SPLIT_FILE = re.compile(r"^(?P<cls>.+)_test_split(?P<split>\d+)\.txt$")


def load_hmdb51(data_dir, splits_dir=None, locate=None):
  """HMDB-51: `<class>/<video>.avi` and `testTrainMulti_7030_splits/`.

  Class names are the split files' prefixes, labels their alphabetical order.
  Videos marked 0 in every split are left out. `locate` as in `load_ucf101`.
  """
  if not storage.isdir(data_dir):
    raise DatasetError(f"HMDB-51 video folder not found: {data_dir}")
  if splits_dir is None:
    splits_dir = _first_existing(os.path.join(data_dir, "testTrainMulti_7030_splits"),
                                 os.path.join(os.path.dirname(storage.absolute(data_dir)),
                                              "testTrainMulti_7030_splits"))
  if not storage.isdir(splits_dir):
    raise DatasetError(f"HMDB-51 split folder not found: {splits_dir}")
  split_files = {}
  for name in storage.listdir(splits_dir):
    match = _HMDB_SPLIT_FILE.match(name)
    if match:
      split_files[(match["cls"], int(match["split"]))] = os.path.join(splits_dir, name)
  class_names = sorted({cls for cls, _ in split_files})
  if not class_names:
    raise DatasetError(f"no <class>_test_split<N>.txt files in {splits_dir}")
  locate = locate or FileResolver(data_dir).resolve
  memberships, paths, labels = {}, {}, {}
  for label, class_name in enumerate(class_names):
    for split in range(1, NUM_OFFICIAL_SPLITS + 1):
      list_file = split_files.get((class_name, split))
      if list_file is None:
        raise DatasetError("missing file: " + os.path.join(
            splits_dir, f"{class_name}_test_split{split}.txt"))
      for number, line in read_lines(list_file):
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
          raise DatasetError(f"{list_file}:{number}: expected '<video> 0|1|2', got {line!r}")
        relpath = f"{class_name}/{parts[0]}"
        video_id = id_of(relpath)
        if split in memberships.setdefault(video_id, {}):
          raise DatasetError(f"{list_file}:{number}: {parts[0]} is listed twice")
        memberships[video_id][split] = int(parts[1])
        if video_id not in paths and parts[1] != "0":
          paths[video_id] = locate(relpath, f"{list_file}:{number}")
          labels[video_id] = label
  memberships = {v: m for v, m in memberships.items() if v in paths}
  return build_index("hmdb51", class_names, memberships, paths, labels)


def load_folder(data_dir, splits_dir, locate=None, exclude=(), classes_from_lists=False):
  """Users' own data: `<data_dir>/<class>/<video>` and list files `split<N>.txt`.

  Each line of `<splits_dir>/split<N>.txt` is `<class>/<video file> train|test`;
  classes are the sub-folders of `data_dir` in alphabetical order, but for hidden ones and
  those named in `exclude` (an output directory inside `data_dir`), or, with
  `classes_from_lists`, the class parts of the listed paths (frame trees whose video
  folders need not sit in class folders). `locate` as in `load_ucf101`.
  """
  if not storage.isdir(data_dir):
    raise DatasetError(f"video folder not found: {data_dir}")
  if not splits_dir or not storage.isdir(splits_dir):
    raise DatasetError(f"split folder not found: {splits_dir}")
  numbers = sorted(int(m[1]) for m in (re.match(r"^split(\d+)\.txt$", n)
                                        for n in storage.listdir(splits_dir)) if m)
  if numbers != list(range(1, len(numbers) + 1)):
    raise DatasetError(f"{splits_dir} must hold split1.txt, split2.txt, ... "
                       f"(found splits {numbers})")
  listed = []  # (split, where, path as listed, subset)
  for split in numbers:
    list_file = os.path.join(splits_dir, f"split{split}.txt")
    for number, line in read_lines(list_file):
      parts = line.rsplit(maxsplit=1)
      where = f"{list_file}:{number}"
      if len(parts) != 2 or parts[1] not in SUBSETS:
        raise DatasetError(f"{where}: expected '<class>/<video> train|test', got {line!r}")
      listed.append((split, where, parts[0].replace("\\", "/"), parts[1]))
  if classes_from_lists:
    class_names = sorted({p.split("/")[0] for _, _, p, _ in listed if "/" in p})
  else:
    class_names = sorted(d for d in storage.listdir(data_dir)
                         if not d.startswith(".") and d not in exclude
                         and storage.isdir(os.path.join(data_dir, d)))
  label_of = {c: i for i, c in enumerate(class_names)}
  locate = locate or FileResolver(data_dir).resolve
  memberships, paths, labels, named = {}, {}, {}, {}
  for split, where, relpath, subset in listed:
    class_dir = relpath.split("/")[0]
    if class_dir not in label_of or "/" not in relpath:
      raise DatasetError(f"{where}: {relpath!r} is not in a class folder of {data_dir}")
    video_id = id_of(relpath)
    first = named.setdefault(video_id, relpath)
    if first != relpath:
      raise DatasetError(f"{where}: {relpath} and {first} have one video id {video_id!r} "
                         "(ids leave out the extension): rename one of them")
    if split in memberships.setdefault(video_id, {}):
      raise DatasetError(f"{where}: {relpath} is listed twice")
    memberships[video_id][split] = SUBSETS[subset]
    if video_id not in paths:
      paths[video_id] = locate(relpath, where)
      labels[video_id] = label_of[class_dir]
  folder = data_dir.rstrip("/") if storage.is_remote(data_dir) else os.path.normpath(data_dir)
  return build_index(os.path.basename(folder), class_names,
                      memberships, paths, labels)


LOADERS = {"ucf101": load_ucf101, "hmdb51": load_hmdb51, "folder": load_folder}
TFDS = "tfds"  # not a layout: a TensorFlow Datasets video dataset (flow_tools.datasets.tfds_videos)


def load_dataset(name, data_dir, splits_dir=None, locate=None, output_dir=None):
  """The `DatasetIndex` of dataset layout `name` ('ucf101', 'hmdb51' or 'folder');
  `locate` as in `load_ucf101`; `output_dir`, if inside `data_dir`, is no class folder."""
  if name not in LOADERS:
    raise DatasetError(f"unknown dataset layout {name!r}; choose from {sorted(LOADERS)}")
  if name != "folder":
    return LOADERS[name](data_dir, splits_dir, locate)
  return load_folder(data_dir, splits_dir, locate, exclude=_top_folder(output_dir, data_dir))


def _top_folder(path, root):
  """(the folder of `root` that holds `path`,) if `path` is inside `root`, else ()."""
  if not path or storage.is_remote(path) != storage.is_remote(root):
    return ()
  if storage.is_remote(path):
    inside = path.rstrip("/").startswith(root.rstrip("/") + "/")
    relative = path.rstrip("/")[len(root.rstrip("/")) + 1:] if inside else ""
  else:
    relative = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    inside = not relative.startswith(os.pardir) and relative != os.curdir
  return (relative.replace("\\", "/").split("/")[0],) if inside else ()


STAGED_CLASS = "videos"  # the one class folder of `stage_files`


def stage_files(paths, root):
  """Video files as a folder dataset in `root` (links, all in split 1's test set), for an
  extraction of files that belong to no dataset: (its `DatasetIndex`, {video id: path})."""
  video_dir, list_dir = os.path.join(root, "data"), os.path.join(root, "lists")
  os.makedirs(os.path.join(video_dir, STAGED_CLASS))
  os.makedirs(list_dir)
  names = {}
  for i, path in enumerate(paths):
    extension = os.path.splitext(path)[1] or ".avi"
    name = f"{i:05d}{extension}"
    os.symlink(os.path.abspath(path), os.path.join(video_dir, STAGED_CLASS, name))
    names[name] = path
  with open(os.path.join(list_dir, "split1.txt"), "w", encoding="utf-8") as f:
    f.writelines(f"{STAGED_CLASS}/{name} test\n" for name in names)
  index = load_folder(video_dir, list_dir)
  return index, {f"{STAGED_CLASS}/{os.path.splitext(name)[0]}": path
                 for name, path in names.items()}
