"""The paper's test protocol: 25 frames or stacks x 10 crops = 250 views per video.

Positions are equally spaced over the video (frames for RGB, valid stack starts for
flow); each gives the 4 corner crops and the centre crop, then their horizontal flips
(x-flow negated): view index = 5 * flipped + crop, crops ordered top-left, top-right,
bottom-left, bottom-right, centre. For scoring, the pipeline gives each position's full
frames as decoded (`evaluation_positions`) and the views are cut inside the forward pass
(`to_views`): cutting 10 float views of a flow stack on the host measured 0.06x the
decode bound (2026-12-07); `evaluation_views` cuts them on the host for pictures and
exports. Batches have a fixed size, so memory does not grow with video length or count,
and `average_per_video` folds the model's outputs back into one score per video and head.
"""

import collections
import dataclasses

import numpy as np
import tensorflow as tf

from two_stream_tf import streams
from two_stream_tf.data import decoding
from two_stream_tf.data import packed
from two_stream_tf.data import reading
from two_stream_tf.data import sampling
from two_stream_tf.data import selection
from two_stream_tf.data import stacking

VIDEO_INFO = ("video_id", "head", "label")  # what a batch says of the video of each row


def crop_corners(height, width, size):
  """(y, x) of the 5 crops: top-left, top-right, bottom-left, bottom-right, centre."""
  bottom, right = height - size, width - size
  return [(0, 0), (0, right), (bottom, 0), (bottom, right), (bottom // 2, right // 2)]


def _read_positions(config, num_positions, reader):
  """A video -> its `num_positions` test positions' JPEGs (read at once: one gather or byte
  range per file, one parse), each with its video's frame size and info."""
  def read(video):
    jpegs = reader.stack_jpegs(video, config,
                               sampling.positions(video, config, count=num_positions))
    return {**jpegs, **{k: tf.fill([num_positions], video[k])
                        for k in ("height", "width") + VIDEO_INFO}}
  return read


def _crop(images, y, x, size, row_axis):
  """The `size` x `size` windows at per-image (y, x) [B] of a batch, rows on `row_axis`."""
  images = tf.gather(images, y[:, None] + tf.range(size), axis=row_axis, batch_dims=1)
  return tf.gather(images, x[:, None] + tf.range(size), axis=row_axis + 1, batch_dims=1)


def _five_crops(images, height, width, size, row_axis):
  """B images (rows on `row_axis`, each its own height and width [B]) -> B x 5 crops."""
  height, width = tf.cast(height, tf.int32), tf.cast(width, tf.int32)
  zeros = tf.zeros_like(height)
  return tf.stack([_crop(images, zeros + y, zeros + x, size, row_axis)
                   for y, x in crop_corners(height, width, size)], axis=1)


def _full_frames(config):
  """One position's JPEGs -> what its views are cut from: the full frames as decoded."""
  def decode(read):
    if config.stream == "spatial":
      frames = {packed.RGB: tf.io.decode_jpeg(read["jpegs"][0], channels=3)}
    elif config.stacking == "trajectory":  # trajectories leave any crop: full-frame float
      image = decoding.decode_flow(read["jpegs"], read["lo"], read["hi"])
      height, width = tf.shape(image)[0], tf.shape(image)[1]
      frames = {"flow": stacking.trajectory_stack(decoding.as_fields(image),
                                                  (0, 0, height, width))}
    else:
      step, centre = decoding.quantization_maps(read["lo"], read["hi"])
      frames = {packed.QUANTIZED_FLOW: decoding.decode_planes(read["jpegs"]),
                "step": step, "centre": centre}
    return {**frames, **{k: read[k] for k in ("height", "width") + VIDEO_INFO}}
  return decode


def to_views(positions, config):
  """A batch of positions (`evaluation_positions`) -> their views, 10 per position in the
  protocol's order: float32 B*10 x crop x crop x C, RGB 0..255 or flow in pixels (x
  negated where flipped, mean-subtracted if `config` says so), as network input."""
  size, height, width = config.crop_size, positions["height"], positions["width"]
  if packed.RGB in positions:
    crops = tf.cast(_five_crops(positions[packed.RGB], height, width, size, 1), tf.float32)
    views = tf.concat([crops, tf.reverse(crops, axis=[-2])], axis=1)
  else:
    if packed.QUANTIZED_FLOW in positions:
      planes = _five_crops(positions[packed.QUANTIZED_FLOW], height, width, size, 2)
      crops = decoding.dequantize(decoding.channels_last(planes), positions["step"][:, None],
                                  positions["centre"][:, None])
    else:
      crops = _five_crops(positions["flow"], height, width, size, 1)
    views = tf.concat([crops, stacking.flip_flow(crops)], axis=1)
    if config.mean_subtraction:
      views = stacking.subtract_mean_flow(views)
  views = tf.reshape(views, tf.concat([[-1], tf.shape(views)[2:]], axis=0))
  return tf.ensure_shape(views, [None, size, size, config.channels])


def _position_dataset(records_dirs, split, config, subset, num_positions, video_ids, input_cache,
                      pipeline):
  sources = selection.open_sources(records_dirs)
  selections = selection.check_selection(sources, split, subset)
  if video_ids is not None:
    keep = set(video_ids)
    selections = [{v: label for v, label in s.items() if v in keep} for s in selections]
  table = reading.video_table(sources, selections, config)
  one_size = len(set(zip(table["height"], table["width"]))) <= 1
  return reading.with_reader(table, input_cache, lambda reader: pipeline(
      reading.selected_videos(table)
      .map(_read_positions(config, num_positions, reader), num_parallel_calls=tf.data.AUTOTUNE)
      .unbatch()
      .map(_full_frames(config), num_parallel_calls=tf.data.AUTOTUNE), one_size)
  ).prefetch(tf.data.AUTOTUNE)


def evaluation_positions(records_dirs, split, config, subset="test", batch_size=5,
                         num_positions=streams.NUM_POSITIONS, video_ids=None, input_cache="auto"):
  """Every test position of every selected video, as decoded, in batches of `batch_size`
  positions: what the 10 views of each are cut from on the accelerator (`to_views`).

  Full frames leave the pipeline as their JPEGs decode (flow as uint8 planes with their
  dequantisation maps), so that the host does no more than decode them; frames of other sizes in one
  batch are padded to its largest (never inside a crop). Arguments as `evaluation_views`.
  Returns:
    A `tf.data.Dataset` of dicts, per position the frames, 'height', 'width', 'video_id',
    'head' and 'label'; a video's `num_positions` positions are consecutive.
  """
  # Padding measured ~5% of the input's time for spatial (2026-12-07): only when needed.
  return _position_dataset(
      records_dirs, split, config, subset, num_positions, video_ids, input_cache,
      lambda positions, one_size: positions.batch(batch_size) if one_size
      else positions.padded_batch(batch_size))


def evaluation_views(records_dirs, split, config, subset="test", batch_size=50,
                     num_positions=streams.NUM_POSITIONS, video_ids=None, input_cache="auto"):
  """Every view of every selected video, in batches of `batch_size` views (cut on the host:
  for pictures, exports and checks; scoring cuts them on the accelerator).

  `video_ids` (optional) keeps only those of the selected videos; `input_cache`: where the
  views' steps are read from (`reading.with_reader`).
  Returns:
    A `tf.data.Dataset` of {'views': B x crop x crop x C, 'video_id': B, 'head': B,
    'label': B}; a video's `num_positions` x 10 views are consecutive.
  """
  def views(position):
    info = {k: tf.fill([streams.VIEWS_PER_POSITION], position[k])
            for k in VIDEO_INFO}
    return {"views": to_views(tf.nest.map_structure(lambda t: t[None], position), config),
            **info}
  return _position_dataset(
      records_dirs, split, config, subset, num_positions, video_ids, input_cache,
      lambda positions, _: positions.map(views, num_parallel_calls=tf.data.AUTOTUNE)
      .unbatch().batch(batch_size))


@dataclasses.dataclass
class VideoScores:
  """Per video (in reading order): id, head index, label, mean output of each head."""
  video_ids: list
  heads: np.ndarray
  labels: np.ndarray
  scores: dict  # head name -> videos x classes
  view_counts: np.ndarray  # views averaged per video


def average_per_video(predict, dataset):
  """Runs `predict` over `dataset` and averages its outputs per video.

  Args:
    predict: a batch -> {head: N x classes}, N rows per video id of the batch in order
      (N = 10 per position of an `evaluation_positions` batch, 1 per view of an
      `evaluation_views` batch).
    dataset: `evaluation_positions` or `evaluation_views`.
  """
  sums, counts, info = {}, collections.Counter(), {}
  for batch in dataset:
    outputs = {k: np.asarray(v, np.float64) for k, v in predict(batch).items()}
    video_ids = batch["video_id"].numpy()
    per_id = len(next(iter(outputs.values()))) // len(video_ids)
    for row in range(len(video_ids) * per_id):
      video_id = video_ids[row // per_id]
      if video_id not in sums:
        sums[video_id] = {k: np.zeros(v.shape[1]) for k, v in outputs.items()}
        info[video_id] = (int(batch["head"][row // per_id]), int(batch["label"][row // per_id]))
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
