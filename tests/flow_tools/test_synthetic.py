"""The embedded synthetic datasets: deterministic, and classes = appearance x motion."""

import filecmp
import os
import re

import numpy as np
import pytest

from flow_tools import datasets
from flow_tools import flow
from flow_tools import synthetic
from flow_tools import video

# Ground truth from the class names alone.
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
COLOURS = {"red": (1, 0, 0), "green": (0, 1, 0), "blue": (0, 0, 1),
           "yellow": (1, 1, 0), "cyan": (0, 1, 1), "magenta": (1, 0, 1)}


def _words(class_name):
  return [w.lower() for w in re.findall(r"[A-Z]?[a-z]+", class_name)]


def _direction(class_name):
  vector = np.sum([DIRECTIONS[w] for w in _words(class_name) if w in DIRECTIONS], axis=0)
  return vector / np.linalg.norm(vector)


def _object_motion_and_colour(path):
  """Object motion relative to the camera, and the object's mean chromaticity.

  The object is where the flow differs from the dominant (camera) motion.
  """
  frames = video.read_frames(path, short_side=0)
  compute = flow.create("tvl1")
  motions, colours = [], []
  for first, second in zip(frames[:-1], frames[1:]):
    field = compute(video.to_gray(first), video.to_gray(second))
    relative = field - np.median(field.reshape(-1, 2), axis=0)
    moving = np.linalg.norm(relative, axis=-1) > 1.0
    if moving.sum() > 20:
      motions.append(relative[moving].mean(axis=0))
      colours.append(first[moving].astype(float).mean(axis=0))
  motion = np.mean(motions, axis=0)
  colour = np.mean(colours, axis=0)
  return motion / np.linalg.norm(motion), colour / np.linalg.norm(colour)


def _nearest_colour(chromaticity, names):
  return max(names, key=lambda n: np.dot(chromaticity, np.array(COLOURS[n]) / np.linalg.norm(
      COLOURS[n])))


@pytest.mark.parametrize("layout, videos", [("ucf101", "ucf101"), ("hmdb51", "hmdb51/hmdb51_org")])
def test_classes_are_appearance_times_motion(synthetic_dir, layout, videos):
  index = datasets.load_dataset(layout, os.path.join(synthetic_dir, videos))
  colour_names = [n for n in COLOURS if any(n in _words(c) for c in index.class_names)]
  assert len(colour_names) == 3
  checked = 0
  for label, class_name in enumerate(index.class_names):
    entry = next(e for e in index.entries if e.label == label and "_g01_" not in e.video_id
                 and not e.video_id.endswith("_0"))  # skip the deliberately short clips
    motion, chromaticity = _object_motion_and_colour(entry.path)
    assert np.dot(motion, _direction(class_name)) > 0.8, class_name
    assert _nearest_colour(chromaticity, colour_names) in _words(class_name), class_name
    checked += 1
  assert checked == 12


def test_same_seed_same_files_other_seed_other_files(tmp_path):
  kwargs = dict(width=48, height=32, frames_range=(4, 5), groups=6, clips_per_group=1)
  synthetic.generate_ucf101(str(tmp_path / "a"), seed=3, **kwargs)
  synthetic.generate_ucf101(str(tmp_path / "b"), seed=3, **kwargs)
  synthetic.generate_ucf101(str(tmp_path / "c"), seed=4, **kwargs)
  files = sorted(os.path.relpath(os.path.join(d, f), tmp_path / "a")
                 for d, _, fs in os.walk(tmp_path / "a") for f in fs)
  assert len(files) == 12 * 6 + 7
  _, mismatch, errors = filecmp.cmpfiles(tmp_path / "a", tmp_path / "b", files, shallow=False)
  assert not mismatch and not errors
  videos = [f for f in files if f.endswith(".avi")]
  _, mismatch, _ = filecmp.cmpfiles(tmp_path / "a", tmp_path / "c", videos, shallow=False)
  assert len(mismatch) == len(videos)


def test_one_short_clip_per_dataset(synthetic_dir):
  lengths = {}
  for layout, sub in (("ucf101", ""), ("hmdb51", "hmdb51_org")):
    index = datasets.load_dataset(layout, os.path.join(synthetic_dir, layout, sub))
    lengths[layout] = sorted(len(video.read_frames(e.path, 0)) for e in index.entries)
  for counts in lengths.values():
    assert counts[0] == synthetic.SHORT_CLIP_FRAMES and counts[1] >= 8  # conftest: 8..11 frames
