"""The paper's test protocol: 25 frames or stacks x 10 crops = 250 views per video.

Positions are equally spaced over the video (frames for RGB, valid stack starts for
flow); each gives the 4 corner crops and the centre crop, then their horizontal flips
(x-flow negated): view index = 5 * flipped + crop, crops ordered top-left, top-right,
bottom-left, bottom-right, centre. Views come in batches of a fixed size, so memory
does not grow with video length or count, and `average_per_video` folds the model's
outputs back into one score per video and head.
"""

import collections
import dataclasses

import numpy as np
import tensorflow as tf

from two_stream_tf import streams
from two_stream_tf.data import decoding
from two_stream_tf.data import reading
from two_stream_tf.data import sampling
from two_stream_tf.data import selection
from two_stream_tf.data import stacking


def crop_corners(height, width, size):
  """(y, x) of the 5 crops: top-left, top-right, bottom-left, bottom-right, centre."""
  bottom, right = height - size, width - size
  return [(0, 0), (0, right), (bottom, 0), (bottom, right), (bottom // 2, right // 2)]


def _position_sample(config, num_positions):
  def sample(video, position):
    return {"video": video,
            "position": sampling.positions(video, config, count=num_positions)[position]}
  return sample


def ten_crops(image, size, flip):
  """h x w x C -> 10 x size x size x C: 5 crops, then each flipped by `flip`."""
  height, width = tf.shape(image)[0], tf.shape(image)[1]
  crops = tf.stack([image[y:y + size, x:x + size]
                    for y, x in crop_corners(height, width, size)])
  return tf.concat([crops, flip(crops)], axis=0)


def _decode_views(config, reader):
  size = config.crop_size

  def decode(sample):
    video = sample["video"]
    read = reader.stack_jpegs(video, config, sample["position"])
    if config.stream == "spatial":
      image = decoding.decode_rgb(read["jpegs"][0])
      views = ten_crops(image, size, lambda crops: tf.reverse(crops, axis=[-2]))
    else:
      image = decoding.decode_flow(read["jpegs"], read["lo"], read["hi"])
      if config.stacking == "trajectory":
        height, width = tf.shape(image)[0], tf.shape(image)[1]
        image = stacking.trajectory_stack(decoding.as_fields(image), (0, 0, height, width))
      views = ten_crops(image, size, stacking.flip_flow)
      if config.mean_subtraction:
        views = stacking.subtract_mean_flow(views)
    views = tf.ensure_shape(views, [streams.VIEWS_PER_POSITION, size, size, config.channels])
    info = {k: tf.fill([streams.VIEWS_PER_POSITION], video[k])
            for k in ("video_id", "head", "label")}
    return {"views": views, **info}
  return decode


def evaluation_views(records_dirs, split, config, subset="test", batch_size=50,
                     num_positions=streams.NUM_POSITIONS, video_ids=None, input_cache="auto"):
  """Every view of every selected video, in batches of `batch_size` views.

  `video_ids` (optional) keeps only those of the selected videos; `input_cache`: where the
  views' steps are read from (`reading.with_reader`).
  Returns:
    A `tf.data.Dataset` of {'views': B x crop x crop x C, 'video_id': B, 'head': B,
    'label': B}; a video's `num_positions` x 10 views are consecutive.
  """
  sources = selection.open_sources(records_dirs)
  selections = selection.check_selection(sources, split, subset)
  if video_ids is not None:
    keep = set(video_ids)
    selections = [{v: label for v, label in s.items() if v in keep} for s in selections]
  table = reading.video_table(sources, selections, config)
  sample = _position_sample(config, num_positions)
  return reading.with_reader(table, input_cache, lambda reader: (
      reading.selected_videos(table)
      .flat_map(lambda video: tf.data.Dataset.range(num_positions).map(
          lambda position: sample(video, position)))
      .map(_decode_views(config, reader), num_parallel_calls=tf.data.AUTOTUNE)
      .unbatch()
      .batch(batch_size))).prefetch(tf.data.AUTOTUNE)


@dataclasses.dataclass
class VideoScores:
  """Per video (in reading order): id, head index, label, mean output of each head."""
  video_ids: list
  heads: np.ndarray
  labels: np.ndarray
  scores: dict  # head name -> videos x classes
  view_counts: np.ndarray  # views averaged per video


def average_per_video(predict, dataset):
  """Runs `predict` (views -> {head: B x classes}) over `dataset` and averages per video."""
  sums, counts, info = {}, collections.Counter(), {}
  for batch in dataset:
    outputs = {k: np.asarray(v, np.float64) for k, v in predict(batch["views"]).items()}
    for row, video_id in enumerate(batch["video_id"].numpy()):
      if video_id not in sums:
        sums[video_id] = {k: np.zeros(v.shape[1]) for k, v in outputs.items()}
        info[video_id] = (int(batch["head"][row]), int(batch["label"][row]))
      for name, values in outputs.items():
        sums[video_id][name] += values[row]
      counts[video_id] += 1
  ids = list(sums)
  names = list(sums[ids[0]]) if ids else []
  return VideoScores(
      video_ids=[v.decode("utf-8") for v in ids],
      heads=np.array([info[v][0] for v in ids], np.int32),
      labels=np.array([info[v][1] for v in ids], np.int32),
      scores={n: np.stack([sums[v][n] / counts[v] for v in ids]).astype(np.float32)
              for n in names},
      view_counts=np.array([counts[v] for v in ids], np.int32))
