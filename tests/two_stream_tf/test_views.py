"""The 25 x 10 test views against the numpy reference of the paper's definitions."""

import numpy as np
import pytest

from flow_tools import datasets
from flow_tools.records import record_parsing
from tests.two_stream_tf import reference
from two_stream_tf import data
from two_stream_tf.data import views as views_lib

CROP = 32


def _views_by_video(records_dir, config, split=1, subset="test", num_positions=25):
  out = {}
  for batch in data.evaluation_views(records_dir, split, config, subset, batch_size=64,
                                     num_positions=num_positions):
    for video_id, view in zip(batch["video_id"].numpy(), batch["views"].numpy()):
      out.setdefault(video_id.decode(), []).append(view)
  return {k: np.stack(v) for k, v in out.items()}


@pytest.mark.parametrize("stacking, stack_length, mean_subtraction", [
    ("flow", 10, False), ("flow", 5, True), ("flow", 1, True),
    ("bidirectional", 10, True), ("trajectory", 4, False)])
def test_flow_views_match_the_paper(records_dirs, stacking, stack_length, mean_subtraction):
  config = data.InputConfig(stream="temporal", crop_size=CROP, stack_length=stack_length,
                            stacking=stacking, mean_subtraction=mean_subtraction)
  got = _views_by_video(records_dirs["ucf101"], config)
  # The synthetic short clip (6 frames: 5 fields < L = 10) is in split 1's test set.
  short = "RedCheckerUp/v_RedCheckerUp_g01_c01"
  assert short in got
  for video_id in sorted(got)[::6] + [short]:
    video = record_parsing.load_video(records_dirs["ucf101"], video_id)
    expected = reference.views(video, config)
    assert got[video_id].shape == (250, CROP, CROP, 2 * stack_length)
    # float32 sums (means, trajectories) differ in order from numpy's float64.
    atol = 2e-3 if stacking == "trajectory" else 1e-4 if mean_subtraction else 1e-5
    np.testing.assert_allclose(got[video_id], expected, atol=atol, err_msg=video_id)


def test_short_clip_repeats_its_last_field(records_dirs):
  config = data.InputConfig(stream="temporal", crop_size=CROP, stack_length=10,
                            mean_subtraction=False)
  video_id = "RedCheckerUp/v_RedCheckerUp_g01_c01"
  views = _views_by_video(records_dirs["ucf101"], config)[video_id]
  video = record_parsing.load_video(records_dirs["ucf101"], video_id)
  assert len(video.flow) == 5
  centre = views[4]  # first position, centre crop, unflipped
  y, x = (48 - CROP) // 2, (64 - CROP) // 2
  for k, field in enumerate([0, 1, 2, 3, 4, 4, 4, 4, 4, 4]):
    np.testing.assert_allclose(centre[..., 2 * k:2 * k + 2],
                               video.flow[field, y:y + CROP, x:x + CROP], atol=1e-5)


def test_rgb_views_and_their_geometry(records_dirs):
  config = data.InputConfig(stream="spatial", crop_size=CROP)
  got = _views_by_video(records_dirs["hmdb51"], config, split=2)
  for video_id in sorted(got)[::10]:
    video = record_parsing.load_video(records_dirs["hmdb51"], video_id)
    np.testing.assert_array_equal(got[video_id], reference.views(video, config))
  # Hand-made geometry: a 48 x 64 frame, 32 crops.
  assert views_lib.crop_corners(48, 64, 32) == [(0, 0), (0, 32), (16, 0), (16, 32), (8, 16)]


def test_split_selection_without_rewriting(records_dirs, synthetic_dir):
  index = datasets.load_hmdb51(f"{synthetic_dir}/hmdb51/hmdb51_org")
  config = data.InputConfig(stream="temporal", crop_size=CROP, stack_length=2)
  for split in (1, 3):
    for subset in ("train", "test"):
      got = _views_by_video(records_dirs["hmdb51"], config, split, subset, num_positions=1)
      assert sorted(got) == sorted(e.video_id for e in index.select(split, subset))
  with pytest.raises(ValueError, match="split 4 does not exist"):
    data.evaluation_views(records_dirs["hmdb51"], 4, config)


def test_average_per_video_folds_views_back(records_dirs):
  config = data.InputConfig(stream="temporal", crop_size=CROP, stack_length=2,
                            mean_subtraction=False)
  dataset = data.evaluation_views([records_dirs["ucf101"], records_dirs["hmdb51"]], 1, config,
                                  batch_size=37)  # batches straddle videos
  # A "model" whose output is a known function of the view: the mean of its x-flow.
  def predict(batch):
    mean_x = np.asarray(batch["views"])[..., 0::2].mean(axis=(1, 2, 3))
    return {"a": np.stack([mean_x, -mean_x], axis=1)}
  scores = data.average_per_video(predict, dataset)
  assert np.all(scores.view_counts == 250)
  assert set(scores.heads) == {0, 1}
  video_id = scores.video_ids[5]
  dataset_dir = records_dirs["ucf101" if scores.heads[5] == 0 else "hmdb51"]
  expected = reference.views(record_parsing.load_video(dataset_dir, video_id), config)
  np.testing.assert_allclose(scores.scores["a"][5, 0], expected[..., 0::2].mean(), atol=1e-5)


@pytest.mark.parametrize("stream", ["spatial", "temporal"])
def test_views_cut_in_the_forward_pass_are_the_hosts(records_dirs, stream):
  """Scoring cuts the views from batches of positions' frames; they are `evaluation_views`."""
  config = data.InputConfig(stream=stream, crop_size=CROP, stack_length=3)
  host = np.concatenate([b["views"].numpy() for b in data.evaluation_views(
      records_dirs["ucf101"], 1, config, batch_size=40, num_positions=4)])
  batches = list(data.evaluation_positions(records_dirs["ucf101"], 1, config, batch_size=3,
                                           num_positions=4))
  cut = np.concatenate([data.to_views(b, config).numpy() for b in batches])
  assert len(batches) > 2 and host.shape == cut.shape
  np.testing.assert_array_equal(cut, host)


def test_a_batch_of_frames_of_two_sizes_cuts_each_at_its_own_corners():
  rng = np.random.default_rng(3)
  sizes, crop, fields = [(48, 64), (40, 52)], 32, 2
  rgb = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]
  planes = [rng.integers(0, 256, (2 * fields, h, w), dtype=np.uint8) for h, w in sizes]
  lo = rng.uniform(-9, -1, (2, 2 * fields)).astype(np.float32)
  hi = rng.uniform(1, 9, (2, 2 * fields)).astype(np.float32)

  def padded(images):
    out = np.zeros((2,) + tuple(max(i.shape[a] for i in images) for a in range(3)), np.uint8)
    for k, image in enumerate(images):
      out[(k,) + tuple(slice(0, s) for s in image.shape)] = image
    return out
  shape = {"height": np.array([h for h, _ in sizes]), "width": np.array([w for _, w in sizes])}
  got = data.to_views({"rgb": padded(rgb), **shape},
                      data.InputConfig(stream="spatial", crop_size=crop)).numpy()
  expected = np.concatenate([reference.ten_views(i.astype(np.float32), crop, False) for i in rgb])
  np.testing.assert_array_equal(got, expected)

  flow_config = data.InputConfig(stream="temporal", crop_size=crop, stack_length=fields)
  step, centre = (hi - lo) / 255, (hi + lo) / 2
  got = data.to_views({"quantized_flow": padded(planes), "step": step, "centre": centre,
                       **shape}, flow_config).numpy()
  flows = [(p.transpose(1, 2, 0) - 127.5) * s + c for p, s, c in zip(planes, step, centre)]
  expected = np.concatenate([[reference.mean_subtracted(v) for v in
                              reference.ten_views(f, crop, True)] for f in flows])
  np.testing.assert_allclose(got, expected, atol=1e-5)
