"""Frame folders as other tools write them: one JPEG per RGB frame and per flow component.

The layouts found in the wild (`LAYOUTS`), each with the conventions of the tool that
writes it:

* 'denseflow': open-mmlab's denseflow as MMAction2's `tools/data/build_rawframes.py`
  calls it (`denseflow -b=20 -s=1`): `<root>/<class>/<video>/img_?????.jpg` ... for the T
  frames and `flow_x_00000.jpg`, `flow_y_00000.jpg` ... for the T - 1 fields, numbered
  from 0 (mmaction2 #2207, denseflow #33): the i-th field maps the i-th frame to the next.
  The frames are numbered from 0 by denseflow's current source (`video_frame_idx` from 0
  since its commit 2085344; mmaction2 #79 shows img_00000..) and from 1 by older builds and
  by `build_rawframes.py --use-opencv`: the first number is read from each video's files
  (0 or 1, `AUTO`) and recorded with its source fingerprint.
* 'mmaction2': the same folders, with the flow numbered from 1 as MMAction2's
  `RawFrameDecode` reads it (`flow_{}_{:05d}.jpg`, `start_index=1`): field k maps frame k
  to frame k + 1. What `flow_tools.export_rawframes` writes.
* 'tsn': the dense_flow of TSN (yjxiong/dense_flow, TSN's `build_of.py -b 20`): images,
  x and y numbered from 1 with as many of each, T - 1 for a video of T frames: image k is
  the second frame of the pair field k was computed on, so field 1 starts at a frame
  that has no image and is left out (UntrimmedNet #23: "decrease the number of RGB
  frames by 1").
* 'feichtenhofer': the frames and TV-L1 flow of Feichtenhofer et al.'s two-stream fusion
  download, as the most-starred PyTorch two-stream reproduction reads them
  (jeffreyyihuang/two-stream-action-recognition): `jpegs_256/<video>/frame000001.jpg`,
  `tvl1_flow/u/<video>/frame000001.jpg`, `tvl1_flow/v/...`, videos without their class
  folder, everything numbered from 1, field k maps frame k to frame k + 1. The download
  does not document its bound: 20 px is assumed, as in the others; check it with
  `python -m flow_tools.visualize`.

Every layout quantises flow as those tools do, `q = round(255 (v + b) / 2b)` clipped to
0..255 (the 'bound' scheme of `flow_tools.extraction.quantization`). This module lists, checks
and reads one video's files (in worker processes: no TensorFlow) and writes them.
"""

import dataclasses
import hashlib
import os
import re

import numpy as np

from flow_tools.common import storage
from flow_tools.extraction import encoding
from flow_tools.extraction import sources

FRAMES_MINUS_ONE, FRAMES = "frames_minus_1", "frames"
FLOW_COUNTS = (FRAMES_MINUS_ONE, FRAMES)
EXTENSION = ".jpg"
AUTO = None  # a first frame number read from the files: 0 or 1, whichever they start at
_AUTO_FIRST = (0, 1)


class RawframesError(ValueError):
  """A video's folders do not hold what its layout says."""


@dataclasses.dataclass(frozen=True)
class FolderLayout:
  """Where a video's files are and how they are named and numbered.

  Folders are relative to the layout's root; `{video}` is the video id (`<class>/<video>`),
  `{name}` its last part. `flow_count` is FRAMES_MINUS_ONE (T - 1 fields, field k from frame
  k to k + 1) or FRAMES (TSN: as many fields as images, field k ending at image k).
  """
  name: str
  rgb_dir: str
  flow_x_dir: str
  flow_y_dir: str
  rgb_prefix: str
  flow_x_prefix: str
  flow_y_prefix: str
  first_frame: int
  first_flow: int
  flow_count: str
  bound: float
  digits: int  # of the numbers in the names this module writes

  def __post_init__(self):
    if self.flow_count not in FLOW_COUNTS:
      raise ValueError(f"flow_count must be one of {FLOW_COUNTS}, got {self.flow_count!r}")
    if self.bound <= 0:
      raise ValueError(f"flow bound must be positive, got {self.bound}")
    if (self.first_frame is not AUTO and self.first_frame < 0) or self.first_flow < 0:
      raise ValueError("file numbers start at 0 or more")

  def folders(self, root, video_id, flat=False):
    """(rgb, flow x, flow y) folders of a video; `flat`: without its class folder, as
    TSN's build_of.py writes `<out>/<video>/` (and MMAction2's lists may name them)."""
    name = video_id.rsplit("/", 1)[-1]
    names = {"video": name if flat else video_id, "name": name}
    return tuple(os.path.join(root, *template.format(**names).split("/"))
                 for template in (self.rgb_dir, self.flow_x_dir, self.flow_y_dir))

  def file_name(self, prefix, number):
    return f"{prefix}{number:0{self.digits}d}{EXTENSION}"


_CLASS_FOLDERS = dict(rgb_dir="{video}", flow_x_dir="{video}", flow_y_dir="{video}",
                      rgb_prefix="img_", flow_x_prefix="flow_x_", flow_y_prefix="flow_y_",
                      first_frame=1, bound=20.0, digits=5)
LAYOUTS = {
    "denseflow": FolderLayout("denseflow", **{**_CLASS_FOLDERS, "first_frame": AUTO}, first_flow=0,
                              flow_count=FRAMES_MINUS_ONE),
    "mmaction2": FolderLayout("mmaction2", **_CLASS_FOLDERS, first_flow=1,
                              flow_count=FRAMES_MINUS_ONE),
    "tsn": FolderLayout("tsn", **_CLASS_FOLDERS, first_flow=1, flow_count=FRAMES),
    "feichtenhofer": FolderLayout(
        "feichtenhofer", rgb_dir="jpegs_256/{name}", flow_x_dir="tvl1_flow/u/{name}",
        flow_y_dir="tvl1_flow/v/{name}", rgb_prefix="frame", flow_x_prefix="frame",
        flow_y_prefix="frame", first_frame=1, first_flow=1, flow_count=FRAMES_MINUS_ONE,
        bound=20.0, digits=6),
}


def layout_named(name, **overrides):
  """The layout `name` of `LAYOUTS`, with the fields in `overrides` that are not None
  replaced (the import app's flags)."""
  if name not in LAYOUTS:
    raise ValueError(f"unknown layout {name!r}; choose from {sorted(LAYOUTS)}")
  return dataclasses.replace(LAYOUTS[name],
                             **{k: v for k, v in overrides.items() if v is not None})


@dataclasses.dataclass(frozen=True)
class VideoFolders:
  """A video to import: its folders, its layout, and the frame count a list gives (or None)."""
  folders: tuple  # rgb, flow x, flow y
  layout: FolderLayout
  listed_frames: int = None


def _numbered(names, prefix):
  """{number: name} of the names `<prefix><digits>.jpg`."""
  pattern = re.compile(re.escape(prefix) + r"(\d+)" + re.escape(EXTENSION) + "$")
  return {int(m[1]): m[0] for m in map(pattern.match, names) if m}


def _contiguous(numbers, first, what, folder, flag):
  """Checks that `numbers` are first, first + 1, ... (`first` AUTO: 0 or 1); the reason
  they are not, else None."""
  if not numbers:
    return f"no {what} files in {folder}"
  low, high = min(numbers), max(numbers)
  if first is AUTO and low not in _AUTO_FIRST:
    return (f"{what} files are numbered from {low} in {folder}, the layout says 0 or 1 "
            f"({flag}): another layout?")
  if first is not AUTO and low != first:
    return (f"{what} files are numbered from {low} in {folder}, the layout says {first} "
            f"({flag}): another layout?")
  if high - low + 1 != len(numbers):
    missing = next(n for n in range(low, high) if n not in numbers)
    return f"{what} number {missing} is missing in {folder} ({low}..{high} otherwise)"
  return None


def list_files(video):
  """The paths of a video's frames, x and y components in time order, checked against its
  layout: the record's T frames and T - 1 fields.

  Raises:
    RawframesError: a folder is missing or empty, files are numbered otherwise than the
      layout says, x and y disagree, or the counts are not what the layout's `flow_count`
      (or a list's frame count) says, naming the fact and the flag that sets it.
  """
  spec = video.layout
  rgb_dir, x_dir, y_dir = video.folders
  listings = {}
  for folder in dict.fromkeys(video.folders):
    if not storage.isdir(folder):
      raise RawframesError(f"missing folder {folder}")
    listings[folder] = storage.listdir(folder)
  frames = _numbered(listings[rgb_dir], spec.rgb_prefix)
  xs = _numbered(listings[x_dir], spec.flow_x_prefix)
  ys = _numbered(listings[y_dir], spec.flow_y_prefix)
  reason = (_contiguous(frames, spec.first_frame, f"frame ({spec.rgb_prefix}*)", rgb_dir,
                        "--first_frame")
            or _contiguous(xs, spec.first_flow, f"flow x ({spec.flow_x_prefix}*)", x_dir,
                           "--first_flow"))
  if reason:
    raise RawframesError(reason)
  if set(xs) != set(ys):
    number = min(set(xs) ^ set(ys))
    raise RawframesError(f"flow number {number} has "
                         f"{'x but no y' if number in xs else 'y but no x'} component "
                         f"({x_dir}, {y_dir})")
  if video.listed_frames is not None and video.listed_frames != len(frames):
    raise RawframesError(f"the annotation list says {video.listed_frames} frames, "
                         f"{rgb_dir} holds {len(frames)}")
  expected = len(frames) - 1 if spec.flow_count == FRAMES_MINUS_ONE else len(frames)
  if len(xs) != expected:
    raise RawframesError(
        f"{len(frames)} frames and {len(xs)} flow fields in {x_dir}: the layout expects "
        f"{expected} (--flow_count={spec.flow_count}; denseflow, MMAction2 and Feichtenhofer's "
        f"write one fewer than the frames, TSN's dense_flow as many)")
  if len(frames) < 2:
    raise RawframesError(f"only one frame in {rgb_dir}: no flow")
  skip = 1 if spec.flow_count == FRAMES else 0  # TSN: field 1 starts before image 1
  flow_numbers = sorted(xs)[skip:]
  return ([os.path.join(rgb_dir, frames[n]) for n in sorted(frames)],
          [os.path.join(x_dir, xs[n]) for n in flow_numbers],
          [os.path.join(y_dir, ys[n]) for n in flow_numbers])


# Start of frame markers; not DHT, JPG, DAC.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def jpeg_size(data):
  """(height, width) of JPEG bytes from their frame header, without decoding them.

  Raises:
    ValueError: not a whole JPEG (no start or end marker, no frame header).
  """
  # Some writers pad with zeros after the end marker: stripped only then (a copy).
  if data[:2] != b"\xff\xd8" or not (data.endswith(b"\xff\xd9")
                                     or data.rstrip(b"\0").endswith(b"\xff\xd9")):
    raise ValueError("not a whole JPEG (its start or end marker is missing: cut short?)")
  at = 2
  while at + 4 <= len(data):
    if data[at] != 0xFF:
      break
    marker = data[at + 1]
    if marker == 0xFF:  # fill byte
      at += 1
      continue
    length = int.from_bytes(data[at + 2:at + 4], "big")
    if marker in _SOF_MARKERS and at + 9 <= len(data):
      return (int.from_bytes(data[at + 5:at + 7], "big"),
              int.from_bytes(data[at + 7:at + 9], "big"))
    at += 2 + length
  raise ValueError("a JPEG without a frame header")


def read_video(video, config):
  """A video's files as an `encoding.EncodedVideo`, the JPEG bytes as they are, and its
  fingerprint (`sources.read_files`).

  Every frame and field must have one size, the same; with `config.short_side` > 0 its
  smaller side must be that (what a model trained on it expects of new videos).
  Raises:
    RawframesError: see `list_files`; a file that is not a whole JPEG; sizes that disagree.
  """
  frames, xs, ys = list_files(video)
  paths = [*frames, *xs, *ys]
  fingerprint, contents = sources.read_files(paths)
  name = os.path.basename(frames[0])
  fingerprint["first_frame"] = int(name[len(video.layout.rgb_prefix):-len(EXTENSION)])
  sizes = {}
  for path, data in zip(paths, contents):
    try:
      sizes.setdefault(jpeg_size(data), path)
    except ValueError as error:
      raise RawframesError(f"{path}: {error}") from error
    if len(sizes) > 1:
      (h0, w0), (h1, w1) = sizes
      raise RawframesError(f"{path} is {w1}x{h1}, {sizes[(h0, w0)]} is {w0}x{h0}: a video's "
                           "frames and flow must have one size")
  (height, width), = sizes
  if config.short_side and min(height, width) != config.short_side:
    raise RawframesError(f"{frames[0]} is {width}x{height}, not of short side "
                         f"{config.short_side} (--short_side; 0 takes any size)")
  t = len(frames)
  bound = np.float32(video.layout.bound)
  ranges = np.tile(np.array([-bound, bound, -bound, bound], np.float32), (t - 1, 1))
  forward = encoding.EncodedFlow(contents[t:2 * t - 1], contents[2 * t - 1:], ranges)
  return fingerprint, encoding.EncodedVideo(contents[:t], height, width, forward, None)


def _read_or_explain(video, config):
  """(fingerprint, `EncodedVideo` or None, None or why the video cannot be used)."""
  try:
    fingerprint, encoded = read_video(video, config)
    return fingerprint, encoded, None
  except (RawframesError, OSError) as error:
    return _listing(video), None, str(error)


def _listing(video):
  """The fingerprint of a video that cannot be imported: its folders as listed (names,
  sizes, times), so that an unchanged rerun skips it and a repaired one is tried again."""
  entries = []
  for folder in dict.fromkeys(video.folders):  # denseflow keeps all three in one
    for name in sorted(storage.listdir(folder)) if storage.isdir(folder) else ():
      size, mtime_ns = storage.stat(os.path.join(folder, name))
      entries.append(f"{folder}/{name} {size} {mtime_ns}")
  return {"listing": hashlib.sha256("\n".join(entries).encode("utf-8")).hexdigest()}


def import_task(task):
  """`encoding.encode_task` for frame folders: (key, `VideoFolders`, config) -> its
  `encoding.Outcome`."""
  return encoding.run_task(task, _read_or_explain)


def changed(recorded, video):
  """Whether a video's files differ from those `recorded` was taken of (`sources.changed`
  for frame folders; a video whose files cannot be listed now does not count: the
  import reports it when it reads it; one that could not be imported is recorded by its
  `_listing`)."""
  if recorded is not None and "listing" in recorded:
    return _listing(video) != recorded
  try:
    paths = [p for group in list_files(video) for p in group]
  except RawframesError:
    return recorded is None and all(storage.isdir(f) for f in video.folders)
  return sources.files_changed(recorded, paths)


def write_video(spec, root, video_id, frames, xs, ys, staging):
  """Writes a video's frames and fields (JPEG bytes, T and T - 1) as `spec` names them,
  into folders under `staging` that replace the video's folders under `root` when whole
  (`storage.replace_directory`): a video is never half written where readers look.

  Only layouts whose three folders are one (or three distinct ones) and `flow_count` is
  FRAMES_MINUS_ONE are written.
  """
  if spec.flow_count != FRAMES_MINUS_ONE:
    raise ValueError(f"layout {spec.name!r} is read, not written")
  targets = spec.folders(root, video_id)
  staged = {folder: os.path.join(staging, f"{i}") for i, folder in
            enumerate(dict.fromkeys(targets))}
  for folder in staged.values():
    storage.makedirs(folder)
  # An AUTO layout (denseflow) is written from 1, what MMAction2's loader reads.
  first_frame = 1 if spec.first_frame is AUTO else spec.first_frame
  groups = ((targets[0], spec.rgb_prefix, first_frame, frames),
            (targets[1], spec.flow_x_prefix, spec.first_flow, xs),
            (targets[2], spec.flow_y_prefix, spec.first_flow, ys))
  for folder, prefix, first, contents in groups:
    for k, data in enumerate(contents):
      with storage.open_file(os.path.join(staged[folder], spec.file_name(prefix, first + k)),
                             "wb") as f:
        f.write(data)
  for target, folder in staged.items():
    storage.makedirs(os.path.dirname(target))
    storage.replace_directory(folder, target)

