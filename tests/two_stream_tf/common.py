"""What several test files of two_stream_tf share: tiny training setups, locating a sample in
its records, score files for fusion."""

import keras
import numpy as np
import tensorflow as tf

from flow_tools import records
from flow_tools.records import record_parsing
from tests.two_stream_tf import reference
from two_stream_tf import data
from two_stream_tf import model_dirs
from two_stream_tf import models
from two_stream_tf import training
from two_stream_tf.evaluation import score_files

CLASSES = ("a", "b", "c")


def builder(spec):
  """A function that builds `spec`'s model with fixed initial weights."""
  def build():
    keras.utils.set_random_seed(1)
    return model_dirs.build(spec)
  return build


def train_config(steps, **overrides):
  """A `TrainConfig` of `steps` at a fixed learning rate, logging and saving every 5 steps."""
  settings = dict(schedule=training.Schedule(0.01, (), 0.1, steps), batch_size=16,
                  log_every=5, checkpoint_every=5, weight_decay=0.0)
  settings.update(overrides)
  return training.TrainConfig(**settings)


def run_config(records_dirs, input_config, train, source=data.InputSource(), **model):
  """A `training.RunConfig` on split 1 of `records_dirs`; `model`: `models.ModelConfig` fields."""
  return training.RunConfig(training.DatasetConfig(tuple(records_dirs)), input_config,
                            models.ModelConfig(**model), train=train, source=source)


def fixed_batch_dataset(spec, size=16, segments=1):
  """One real training batch, repeated: a learnable problem for a few steps."""
  x, labels, weights = next(iter(data.training_dataset(
      list(spec.records_dirs), spec.split, spec.input, size, seed=3,
      deterministic=True, augmentation=data.Augmentation(num_segments=segments))))
  return lambda batch_size, seed: tf.data.Dataset.from_tensors((x, labels, weights)).repeat()


def train_videos(records_dir, split=1):
  """{video id: label} of a split's training videos."""
  manifest = records.read_manifest(records_dir)
  return {v: i["label"] for v, i in manifest["videos"].items() if i["splits"][split - 1] == 1}


def windows(image, size):
  """All size x size windows of an H x W image: (H - size + 1) x (W - size + 1) x size x size."""
  return np.lib.stride_tricks.sliding_window_view(image, (size, size))


def find_flow_origin(sample, label, records_dir, config, cache, atol):
  """(video id, start, y, x, flipped) whose reference stack crop equals the square `sample`,
  or None; `cache` keeps the videos loaded."""
  crop = sample.shape[0]
  for video_id, video_label in train_videos(records_dir).items():
    if video_label != label:
      continue
    if video_id not in cache:
      cache[video_id] = record_parsing.load_video(records_dir, video_id)
    video = cache[video_id]
    for start in range(len(video.flow)):
      stack = reference.flow_stack(video, config.stacking, config.stack_length, start)
      for flipped in (False, True):
        candidate = reference.flip(stack, True) if flipped else stack
        # Locate the window on channel 0, then require every channel to agree there.
        errors = np.abs(windows(candidate[..., 0], crop) - sample[..., 0]).max(axis=(2, 3))
        for y, x in zip(*np.nonzero(errors < 1e-5)):
          if np.allclose(candidate[y:y + crop, x:x + crop], sample, atol=atol):
            # A flipped stack's window at x is the unflipped one at W - crop - x.
            x = candidate.shape[1] - crop - x if flipped else x
            return video_id, start, y, x, flipped
  return None


def two_streams(n, seed):
  """Spatial cannot tell b from c and is confidently 'c' on both; temporal separates b and c
  only weakly (and never sees a). Averaging follows spatial's confidence and calls every b a
  c; a linear SVM on both L2-normalised score vectors learns to read temporal's b-vs-c."""
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 3, n)
  spatial = np.where(labels[:, None] == 0, [6.0, 0.0, 0.0], [0.0, 2.0, 4.0])
  temporal = np.where(labels[:, None] == 1, [0.0, 0.8, 0.0], [0.0, 0.0, 0.8])
  temporal = np.where(labels[:, None] == 0, [0.0, 0.4, 0.4], temporal)
  spatial = reference.softmax(spatial + rng.normal(0, 0.3, (n, 3))).astype(np.float32)
  temporal = reference.softmax(temporal + rng.normal(0, 0.15, (n, 3))).astype(np.float32)
  ids = np.array([f"v{seed}_{i:03d}" for i in range(n)])
  return (score_files.HeadScores(ids, labels.astype(np.int32), spatial, CLASSES),
          score_files.HeadScores(ids, labels.astype(np.int32), temporal, CLASSES))


def score_source(stream, subset, split=1):
  """The source a score file records, of a made-up run."""
  return {"stream": stream, "subset": subset, "split": split, "step": 10,
          "model_dir": f"/runs/{stream}", "records": [], "trained_extraction": None,
          "accepted_other_records": False}


def write_score_files(root, split_of=lambda stream, subset: 1):
  """{(stream, subset): path} of the four score files fusion takes."""
  files = {}
  for subset, seed in (("train", 0), ("test", 1)):
    s, t = two_streams(150, seed)
    for stream, scores in (("spatial", s), ("temporal", t)):
      files[stream, subset] = str(root / f"{stream}_{subset}.npz")
      score_files.save(files[stream, subset], {"ucf101": scores},
                             score_source(stream, subset, split_of(stream, subset)))
  return files
