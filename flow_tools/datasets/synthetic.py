"""Embedded default data: small seeded action datasets in the official layouts.

`generate(DIR)` (the app: `python -m flow_tools.synthesize --output_dir=DIR`) writes

  DIR/ucf101/UCF-101/<Class>/v_<Class>_gGG_cCC.avi and DIR/ucf101/ucfTrainTestlist/
  DIR/hmdb51/hmdb51_org/<class>/<video>.avi and DIR/hmdb51/testTrainMulti_7030_splits/

with the quirks of the real archives: CRLF list files and a class whose file names
are cased differently from its folder (UCF-101's HandstandPushups), trailing spaces,
odd characters in file names and unused (0) videos (HMDB-51), and in each dataset
one clip shorter than a 10-field flow stack.

A class is an appearance (object colour and pattern) times a motion (direction of
the object relative to a panning camera). A single frame shows the appearance but
not the motion; grayscale optical flow shows the motion but hardly the appearance;
so either stream alone is ambiguous between classes and only their fusion is right.
UCF-101-style classes move along the axes, HMDB-51-style classes diagonally. Like real
actions, a class survives a horizontal flip (the paper's augmentation and test views):
a motion either has no horizontal part or goes left or right at random per clip.
"""

import dataclasses
import os

import cv2
import numpy as np

FPS = 25
SHORT_CLIP_FRAMES = 6  # Shorter than the paper's L = 10 stack.


@dataclasses.dataclass(frozen=True)
class Appearance:
  name: str
  rgb: tuple
  pattern: str  # 'checker', 'dots' or 'rings'


UCF_APPEARANCES = (Appearance("Red", (220, 40, 40), "checker"),
                   Appearance("Green", (40, 200, 60), "dots"),
                   Appearance("Blue", (50, 80, 235), "rings"))
HMDB_APPEARANCES = (Appearance("yellow", (230, 210, 40), "rings"),
                    Appearance("cyan", (40, 210, 220), "checker"),
                    Appearance("magenta", (215, 50, 210), "dots"))


@dataclasses.dataclass(frozen=True)
class Motion:
  """The object's direction relative to the camera; `mirrored`: x sign random per clip."""
  direction: tuple
  mirrored: bool = False


UCF_MOTIONS = {"Up": Motion((0, -1)), "Down": Motion((0, 1)),
               "Sideways": Motion((1, 0), mirrored=True), "Still": Motion((0, 0))}
HMDB_MOTIONS = {"rise": Motion((1, -1), mirrored=True), "fall": Motion((1, 1), mirrored=True),
                "sideways": Motion((1, 0), mirrored=True), "still": Motion((0, 0))}
# Like UCF-101's HandstandPushups folder holding v_HandStandPushups_* files.
UCF_MISCASED_FILE_NAMES = {"GreenDotsUp": "GreenDotsUP"}
# Characters HMDB-51 file names really contain.
HMDB_NAME_DECORATIONS = ("#{k}_", "({k})_", "[clip{k}]_", "Tom&Jerry's_", "wow!_{k};+_", "{k},_")


@dataclasses.dataclass(frozen=True)
class Scene:
  """Everything random about one clip."""
  appearance: Appearance
  motion: Motion
  num_frames: int
  width: int
  height: int
  seed: int


def _pattern(name, x, y):
  """Pattern intensity in [0, 1] at object-local coordinates."""
  if name == "checker":
    return ((np.floor(x / 6) + np.floor(y / 6)) % 2).astype(np.float32)
  if name == "dots":
    dx, dy = (x % 8) - 4, (y % 8) - 4
    return np.clip(3.0 - np.hypot(dx, dy), 0, 1).astype(np.float32)
  if name == "rings":
    return (0.5 + 0.5 * np.sin(np.hypot(x, y) / 1.6)).astype(np.float32)
  raise ValueError(f"unknown pattern {name!r}")


def render(scene):
  """The clip's frames, T x H x W x 3 uint8 RGB."""
  rng = np.random.default_rng(scene.seed)
  w, h, t_count = scene.width, scene.height, scene.num_frames
  camera = rng.uniform(-1.2, 1.2, size=2)  # pixels per frame
  direction = np.asarray(scene.motion.direction, np.float64)
  if scene.motion.mirrored and rng.random() < 0.5:
    direction[0] = -direction[0]
  speed = rng.uniform(1.2, 2.2) / max(np.hypot(*direction), 1.0)
  velocity = camera + speed * direction
  radius = rng.uniform(0.15, 0.22) * min(w, h)
  centre0 = rng.uniform([0.35 * w, 0.35 * h], [0.65 * w, 0.65 * h])
  pattern_shift = rng.uniform(0, 64, size=2)

  margin = int(np.ceil(np.abs(camera).max() * t_count)) + 4
  noise = rng.normal(size=(h + 2 * margin, w + 2 * margin, 3)).astype(np.float32)
  background = cv2.GaussianBlur(noise, (0, 0), 2.0)
  background = 125 + 60 * background / background.std()
  background = background * rng.uniform(0.7, 1.1, size=3)

  ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
  colour = np.asarray(scene.appearance.rgb, np.float32)
  frames = []
  for t in range(t_count):
    offset = margin - camera * t  # Content moves with the camera velocity.
    shift = np.float32([[1, 0, -offset[0]], [0, 1, -offset[1]]])
    frame = cv2.warpAffine(background, shift, (w, h), flags=cv2.INTER_LINEAR)
    centre = centre0 + velocity * (t - (t_count - 1) / 2)
    lx, ly = xs - centre[0], ys - centre[1]
    inside = np.clip(radius - np.hypot(lx, ly) + 0.5, 0, 1)[..., None]
    shade = 0.35 + 0.65 * _pattern(scene.appearance.pattern, lx + pattern_shift[0],
                                   ly + pattern_shift[1])[..., None]
    frame = frame * (1 - inside) + colour * shade * inside
    frame += rng.normal(0, 2.0, size=frame.shape)
    frames.append(np.clip(np.rint(frame), 0, 255).astype(np.uint8))
  return np.stack(frames)


def write_video(path, frames):
  """Writes RGB frames as an MPEG-4 Part 2 (XviD) AVI, like UCF-101 and HMDB-51."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  h, w = frames.shape[1:3]
  writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"XVID"), FPS, (w, h))
  if not writer.isOpened():
    raise RuntimeError(f"OpenCV cannot write XviD AVI files: {path}")
  for frame in frames:
    writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
  writer.release()


def _write_text(path, lines, newline):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding="utf-8", newline="") as f:
    f.write("".join(line + newline for line in lines))


def _seed(seed, dataset, *indices):
  return int(np.random.SeedSequence([seed, dataset, *indices]).generate_state(1)[0])


def _num_frames(rng, frames_range, is_short):
  return SHORT_CLIP_FRAMES if is_short else int(rng.integers(frames_range[0], frames_range[1] + 1))


def generate_ucf101(root, seed=0, groups=6, clips_per_group=2, width=160, height=120,
                    frames_range=(20, 32)):
  """UCF-101 layout under `root`; split s tests on groups 2s - 1 and 2s (of 6).

  Returns:
    The class names in label order.
  """
  if groups < 6:
    raise ValueError("UCF-101 layout needs at least 6 groups (two test groups per split), "
                     f"got {groups}")
  class_names, class_ind, train, test = [], [], {1: [], 2: [], 3: []}, {1: [], 2: [], 3: []}
  for appearance in UCF_APPEARANCES:
    for motion_name, motion in UCF_MOTIONS.items():
      class_names.append((f"{appearance.name}{appearance.pattern.title()}{motion_name}",
                          appearance, motion))
  for label, (name, appearance, motion) in enumerate(class_names):
    class_ind.append(f"{label + 1} {name}")
    file_class = UCF_MISCASED_FILE_NAMES.get(name, name)
    for g in range(1, groups + 1):
      for c in range(1, clips_per_group + 1):
        relpath = f"{name}/v_{file_class}_g{g:02d}_c{c:02d}.avi"
        rng = np.random.default_rng(_seed(seed, 0, label, g, c))
        scene = Scene(appearance, motion,
                      _num_frames(rng, frames_range, label == 0 and g == 1 and c == 1),
                      width, height, _seed(seed, 1, label, g, c))
        write_video(os.path.join(root, "UCF-101", relpath), render(scene))
        for split in (1, 2, 3):
          if g in (2 * split - 1, 2 * split):
            test[split].append(relpath)
          else:
            train[split].append(f"{relpath} {label + 1}")
  lists = os.path.join(root, "ucfTrainTestlist")
  _write_text(os.path.join(lists, "classInd.txt"), class_ind, "\r\n")
  for split in (1, 2, 3):
    _write_text(os.path.join(lists, f"trainlist{split:02d}.txt"), train[split], "\r\n")
    _write_text(os.path.join(lists, f"testlist{split:02d}.txt"), test[split], "\r\n")
  return [name for name, _, _ in class_names]


def generate_hmdb51(root, seed=0, videos_per_class=10, width=160, height=120,
                    frames_range=(20, 32)):
  """HMDB-51 layout under `root`: per split, 6 train, 3 test and 1 unused video in 10.

  Returns:
    The class names in label (alphabetical) order.
  """
  classes = sorted((f"{a.name}_{a.pattern}_{motion_name}", a, motion)
                   for a in HMDB_APPEARANCES for motion_name, motion in HMDB_MOTIONS.items())
  split_lines = {}
  for label, (name, appearance, motion) in enumerate(classes):
    for k in range(videos_per_class):
      decoration = HMDB_NAME_DECORATIONS[k % len(HMDB_NAME_DECORATIONS)].format(k=k)
      file_name = f"{decoration}synthetic_{name}_u_cm_np1_fr_goo_{k}.avi"
      rng = np.random.default_rng(_seed(seed, 2, label, k))
      scene = Scene(appearance, motion,
                    _num_frames(rng, frames_range, label == 0 and k == 0),
                    width, height, _seed(seed, 3, label, k))
      write_video(os.path.join(root, "hmdb51_org", name, file_name), render(scene))
      for split in (1, 2, 3):
        slot = (k + 3 * split) % 10
        code = 2 if slot < 3 else 0 if slot == 3 else 1
        split_lines.setdefault((name, split), []).append(f"{file_name} {code} ")
  for (name, split), lines in split_lines.items():
    _write_text(os.path.join(root, "testTrainMulti_7030_splits",
                             f"{name}_test_split{split}.txt"), lines, "\n")
  return [name for name, _, _ in classes]


def generate(output_dir, seed=0, width=160, height=120, frames_range=(20, 32),
             ucf_groups=6, ucf_clips_per_group=2, hmdb_videos_per_class=10):
  """Writes both datasets under `output_dir` (see the module docstring)."""
  generate_ucf101(os.path.join(output_dir, "ucf101"), seed, ucf_groups, ucf_clips_per_group,
                  width, height, frames_range)
  generate_hmdb51(os.path.join(output_dir, "hmdb51"), seed, hmdb_videos_per_class,
                  width, height, frames_range)
