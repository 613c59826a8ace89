"""The flow viewer on a video with known motion: a patch moving right (Middlebury red) and
one moving down (yellow), on a still background (white)."""

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from flow_tools.datasets import synthetic
from flow_tools.extraction import encoding
from flow_tools.pictures import visualization

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
H, W, FRAMES, SPEED = 72, 96, 8, 2


def _texture(rng, h, w):
  return cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), np.uint8), (0, 0), 1.2)


def _known_motion_video(path):
  """Patch A (20 x 20) moves +x from (x 6, y 8), patch B moves +y from (x 64, y 4), both
  by SPEED px per frame, over a still textured background. Returns where each patch's
  centre is in frame t."""
  rng = np.random.default_rng(3)
  background, a, b = _texture(rng, H, W), _texture(rng, 20, 20), _texture(rng, 20, 20)
  frames = []
  for t in range(FRAMES):
    frame = background.copy()
    frame[8:28, 6 + SPEED * t:26 + SPEED * t] = a
    frame[4 + SPEED * t:24 + SPEED * t, 64:84] = b
    frames.append(frame)
  synthetic.write_video(path, np.stack(frames))
  return lambda t: {"right": (18, 16 + SPEED * t), "down": (14 + SPEED * t, 74)}  # (row, col)


@pytest.fixture(scope="module", name="known")
def _known(tmp_path_factory):
  root = tmp_path_factory.mktemp("known_motion")
  path = str(root / "known.avi")
  centres = _known_motion_video(path)
  video = visualization.extracted_video(
      path, str(root / "work"), encoding.ExtractionConfig(algorithm="dis", short_side=0))
  assert video.video_id == "known.avi"  # what the sheet's title names, not a staged id
  return path, video, centres


def _is_right(colour):
  """Middlebury +x: red (255, 0, 0) desaturated towards white by a smaller magnitude."""
  r, g, b = np.asarray(colour, int)
  return r > 200 and r - g > 60 and r - b > 60 and abs(g - b) < 50


def _is_down(colour):
  """Middlebury +y (image down): yellow (255, 229, 0), desaturated towards white."""
  r, g, b = np.asarray(colour, int)
  return r > 200 and g > 170 and r - b > 60 and g - b > 50


def _is_still(colour):
  return np.all(np.asarray(colour, int) > 215)


def test_panels_show_known_directions_in_their_colours(known):
  _, video, centres = known
  assert video.frames.shape == (FRAMES, H, W, 3) and len(video.flow) == FRAMES - 1
  for step in (1, 3):
    pictures = visualization.panels(video, step, max_magnitude=SPEED)
    right, down = centres(step)["right"], centres(step)["down"]
    # The estimate is smoothed on these small patches; its direction is what must be right.
    assert pictures["d_x"][right] > 0.5 and abs(pictures["d_y"][right]) < 0.3
    assert pictures["d_y"][down] > 0.5 and abs(pictures["d_x"][down]) < 0.3
    assert _is_right(pictures["flow_colour"][right]), pictures["flow_colour"][right]
    assert _is_down(pictures["flow_colour"][down]), pictures["flow_colour"][down]
    assert _is_still(pictures["flow_colour"][60, 40])  # below both paths
    np.testing.assert_array_equal(pictures["rgb"], video.frames[step])


def test_flow_video_puts_rgb_colour_and_key_side_by_side(known, tmp_path):
  _, video, centres = known
  out = str(tmp_path / "flow.avi")
  visualization.write_video(visualization.flow_video_frames(video, SPEED), out)
  capture = cv2.VideoCapture(out)
  frames = []
  ok, frame = capture.read()
  while ok:
    frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    ok, frame = capture.read()
  assert len(frames) == FRAMES - 1 and frames[0].shape == (H, W + W + H, 3)
  row, col = centres(2)["right"]
  assert _is_right(frames[2][row, W + col]), frames[2][row, W + col]  # JPEG-compressed
  row, col = centres(2)["down"]
  assert _is_down(frames[2][row, W + col]), frames[2][row, W + col]
  # The key (a disc): right of its centre is red, below it yellow.
  assert _is_right(frames[2][H // 2, 2 * W + H - 6])
  assert _is_down(frames[2][H - 6, 2 * W + H // 2])
  assert sorted(os.listdir(tmp_path)) == ["flow.avi"]  # nothing temporary left


@pytest.mark.slow
def test_app_writes_a_contact_sheet_of_a_video_file_and_refuses_bad_flags(known, tmp_path):
  path, _, _ = known
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")

  def run(*args):
    return subprocess.run([sys.executable, "-m", "flow_tools.visualize", *args], env=env,
                          capture_output=True, text=True, check=False)
  sheet = str(tmp_path / "sheet.png")
  done = run(f"--video={path}", "--short_side=0", "--algorithm=dis", f"--output={sheet}",
             "--steps=3")
  assert done.returncode == 0, done.stderr[-2000:]
  picture = cv2.imread(sheet)
  assert picture.shape[0] > 3 * H and picture.shape[1] > 4 * W  # 3 rows of 5 panels
  failed = run(f"--video={path}", f"--output={tmp_path / 'x.gif'}")
  assert failed.returncode == 1 and "--output must end in one of" in failed.stderr
  with pytest.raises(FileNotFoundError, match="no video file"):
    visualization.extracted_video(str(tmp_path / "none.avi"), str(tmp_path / "w"),
                                  encoding.ExtractionConfig())
  with pytest.raises(ValueError, match="must end in one of"):
    visualization.write(None, str(tmp_path / "x.gif"))
  broken = tmp_path / "broken.avi"
  broken.write_bytes(b"not a video")
  failed = run(f"--video={broken}", f"--output={sheet}")
  assert failed.returncode == 1 and str(broken) in failed.stderr.strip().splitlines()[-1]
