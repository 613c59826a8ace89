"""Training samples: each one is a valid crop of a valid stack (found by exhaustive search
in the numpy reference), flips negate x, heads are masked, sampling is class-balanced."""

import collections
import os
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf

from flow_tools import records
from flow_tools.records import record_parsing
from tests.flow_tools import helpers
from tests.two_stream_tf import common
from two_stream_tf import data
from two_stream_tf.data import packed
from two_stream_tf.data import reading
from two_stream_tf.data import selection

CROP = 32



def _expanded(dataset):
  """Training batches with the network input the training step makes of them."""
  return dataset.map(lambda x, labels, weights: (data.to_network_input(x), labels, weights))


@pytest.mark.parametrize("stacking, stack_length, atol", [
    ("flow", 5, 1e-5), ("bidirectional", 4, 1e-5), ("trajectory", 3, 2e-3)])
def test_flow_samples_are_crops_of_valid_stacks(records_dirs, stacking, stack_length, atol):
  config = data.InputConfig(stream="temporal", crop_size=CROP, stack_length=stack_length,
                            stacking=stacking, mean_subtraction=False)
  dataset = _expanded(data.training_dataset(records_dirs["ucf101"], 1, config, batch_size=8,
                                            seed=3))
  cache, origins = {}, []
  for x, labels, weights in dataset.unbatch().take(24):
    assert weights["ucf101"].numpy() == 1.0
    origin = common.find_flow_origin(x.numpy(), int(labels["ucf101"]), records_dirs["ucf101"],
                                     config, cache, atol)
    assert origin is not None, "a sample is no crop of any stack of a video of its label"
    origins.append(origin)
  # The choices vary: both flips, several starts, windows and videos.
  assert {o[4] for o in origins} == {False, True}
  assert len({o[1] for o in origins}) > 2 and len({(o[2], o[3]) for o in origins}) > 10
  assert len({o[0] for o in origins}) > 10


def test_mean_subtraction_in_training(records_dirs):
  config = data.InputConfig(stream="temporal", crop_size=CROP, stack_length=3)
  x, _, _ = next(iter(_expanded(data.training_dataset(records_dirs["hmdb51"], 2, config,
                                                       batch_size=16))))
  np.testing.assert_allclose(np.asarray(x).mean(axis=(1, 2)), 0.0, atol=1e-4)
  assert np.asarray(x).std() > 0.1


def test_rgb_samples_are_crops_of_frames(records_dirs):
  config = data.InputConfig(stream="spatial", crop_size=CROP)
  dataset = _expanded(data.training_dataset(records_dirs["hmdb51"], 1, config, batch_size=4,
                                            seed=1,
                                            augmentation=data.Augmentation(rgb_jitter=False)))
  cache, flips = {}, set()
  for x, labels, _ in dataset.unbatch().take(8):
    x, best = x.numpy(), (np.inf, None)
    for video_id, label in common.train_videos(records_dirs["hmdb51"]).items():
      if label != int(labels["hmdb51"]):
        continue
      if video_id not in cache:
        cache[video_id] = record_parsing.load_video(records_dirs["hmdb51"], video_id)
      video = cache[video_id]
      for frame in video.frames.astype(np.float32):
        for flipped in (False, True):
          candidate = frame[:, ::-1] if flipped else frame
          errors = np.abs(common.windows(candidate[..., 1], CROP) - x[..., 1]).mean(axis=(2, 3))
          if errors.min() < best[0]:
            best = (errors.min(), flipped)
    # Cropped decoding and full decoding differ by a little chroma upsampling at most.
    assert best[0] < 1.0
    flips.add(best[1])
  assert flips == {False, True}


def test_rgb_jitter_is_alexnet_pca_lighting():
  alpha = np.float32([0.1, -0.2, 0.05])
  eigenvalues = np.array([0.2175, 0.0188, 0.0045])
  eigenvectors = np.array([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140],
                           [-0.5836, -0.6948, 0.4203]])
  expected = 255 * sum(alpha[i] * eigenvalues[i] * eigenvectors[:, i] for i in range(3))
  np.testing.assert_allclose(packed.rgb_jitter_offset(alpha).numpy(), expected, rtol=1e-5)


def _dataset_shares(records, sampling, samples=960, samples_per_visit=1):
  config = data.InputConfig(stream="temporal", crop_size=CROP, stack_length=1)
  augmentation = data.Augmentation(sampling=sampling, samples_per_visit=samples_per_visit)
  dataset = data.training_dataset([records["ucf101"], records["hmdb51"]], 1, config,
                                  batch_size=32, seed=5, augmentation=augmentation)
  counts = collections.Counter()
  for _, labels, weights in dataset.unbatch().take(samples):
    w = {k: float(v) for k, v in weights.items()}
    assert sorted(w.values()) == [0.0, 1.0]  # exactly one head per sample
    head = max(w, key=w.get)
    other = "hmdb51" if head == "ucf101" else "ucf101"
    assert int(labels[other]) == 0 and 0 <= int(labels[head]) < 12  # dummy label, in range
    counts[(head, int(labels[head]))] += 1
  return counts


def test_multi_task_weights_and_class_balance(records_dirs):
  # Split 1 trains on 48 UCF-101-style and 72 HMDB-51-style videos, 12 classes each.
  balanced = _dataset_shares(records_dirs, "balanced")
  shuffled = _dataset_shares(records_dirs, "shuffle")
  def ucf_share(c):
    return sum(v for (h, _), v in c.items() if h == "ucf101") / sum(c.values())
  # Uniform over the 24 classes: half the samples from each dataset (sd ~ 0.016) ...
  assert abs(ucf_share(balanced) - 0.5) < 0.06
  # ... while plain shuffling follows the video counts, 48 / 120.
  assert abs(ucf_share(shuffled) - 0.4) < 0.06
  assert len(balanced) == 24 and max(balanced.values()) < 3 * min(balanced.values())
  # Several samples per read keep the balance.
  assert abs(ucf_share(_dataset_shares(records_dirs, "balanced", samples_per_visit=3)) - 0.5) < 0.08


def test_bad_requests_fail_before_any_work(records_dirs):
  with pytest.raises(ValueError, match="even stack_length"):
    data.InputConfig(stacking="bidirectional", stack_length=5)
  with pytest.raises(ValueError, match="same dataset 'ucf101'"):
    data.training_dataset([records_dirs["ucf101"]] * 2, 1, data.InputConfig(), 4)
  with pytest.raises(records.RecordsError, match="no manifest.json"):
    data.training_dataset("/nonexistent", 1, data.InputConfig(), 4)


def test_deterministic_mode_repeats_its_batches(records_dirs):
  config = data.InputConfig(stream="temporal", crop_size=CROP, stack_length=2)

  def first_batches(seed):
    dataset = _expanded(data.training_dataset([records_dirs["ucf101"], records_dirs["hmdb51"]],
                                              1, config, batch_size=16, seed=seed,
                                              deterministic=True))
    return [(x.numpy(), {k: v.numpy() for k, v in labels.items()})
            for x, labels, _ in dataset.take(3)]
  first, again, other = first_batches(4), first_batches(4), first_batches(5)
  for (x1, l1), (x2, l2) in zip(first, again):
    np.testing.assert_array_equal(x1, x2)
    assert all(np.array_equal(l1[k], l2[k]) for k in l1)
  assert not np.array_equal(first[0][0], other[0][0])


@pytest.mark.parametrize("stream", ["spatial", "temporal"])
@pytest.mark.parametrize("input_cache", ["memory", "disk"])
def test_records_on_a_remote_filesystem_give_the_same_batches(records_dirs, stream,
                                                              input_cache):
  remote = helpers.copy_to_remote(records_dirs["ucf101"])  # as on gs://, in memory
  config = data.InputConfig(stream=stream, crop_size=CROP, stack_length=2)

  def first_batches(records_dir, input_cache):
    dataset = data.training_dataset(records_dir, 1, config, batch_size=8, seed=3,
                                    deterministic=True, input_cache=input_cache)
    return [a.numpy() for x, _, _ in dataset.take(2) for a in tf.nest.flatten(x)]
  local = first_batches(records_dirs["ucf101"], "memory")
  there = first_batches(remote, input_cache)
  assert len(local) == len(there) > 0
  for a, b in zip(local, there):
    np.testing.assert_array_equal(b, a)


def test_samples_per_visit(records_dirs):
  def label_runs(samples_per_visit, sampling):
    config = data.InputConfig(stream="temporal", crop_size=CROP, stack_length=1)
    augmentation = data.Augmentation(sampling=sampling, samples_per_visit=samples_per_visit)
    dataset = data.training_dataset(records_dirs["hmdb51"], 1, config, batch_size=1,
                                    augmentation=augmentation, shuffle_buffer=1,
                                    deterministic=True)  # no mixing
    labels = [int(y["hmdb51"][0]) for _, y, _ in dataset.take(120)]
    runs, length = [], 1
    for previous, label in zip(labels, labels[1:]):
      if label == previous:
        length += 1
      else:
        runs.append(length)
        length = 1
    return runs
  # Without mixing, each video read gives 3 consecutive samples (same label) ...
  assert min(label_runs(3, "shuffle")[1:]) >= 3
  # ... and 1 with the paper's sampling, where videos of other classes come between.
  assert min(label_runs(1, "shuffle")[1:]) == 1
  with pytest.raises(ValueError, match="samples_per_visit"):
    data.Augmentation(samples_per_visit=0)


def test_batches_are_uint8_expanded_on_the_device():
  rng = np.random.default_rng(0)
  # Flow: 2 samples of 6 planes (channel-first, as decoded), 3 x 4 pixels; the first
  # mean-subtracted, the second flipped (its maps already negate x, as packed).
  q = rng.integers(0, 256, (2, 6, 3, 4), dtype=np.uint8)
  step = rng.uniform(-0.2, 0.2, (2, 6)).astype(np.float32)
  centre = rng.uniform(-3, 3, (2, 6)).astype(np.float32)
  flow = {"quantized_flow": q, "step": step, "centre": centre,
          "subtract_mean": np.array([True, False]), "flip": np.array([False, True])}
  qf = np.moveaxis(q.astype(np.float64), 1, -1)  # B x h x w x C
  expected = np.stack([(qf[0] - qf[0].mean(axis=(0, 1))) * step[0],
                       ((qf[1] - 127.5) * step[1] + centre[1])[:, ::-1]])
  # RGB: 2 crops, the second flipped, both jittered, clipped to 0..255.
  crops = rng.integers(0, 256, (2, 3, 4, 3), dtype=np.uint8)
  alpha = np.float32([[0.5, 0.0, 0.0], [-0.3, 0.2, 0.1]])
  offsets = np.array([255 * sum(a[i] * [0.2175, 0.0188, 0.0045][i] * np.array(
      [[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140],
       [-0.5836, -0.6948, 0.4203]])[:, i] for i in range(3)) for a in alpha])
  rgb = {"rgb": crops, "flip": np.array([False, True]), "jitter": alpha}
  expected_rgb = np.clip(np.stack([crops[0], crops[1][:, ::-1]]) + offsets[:, None, None, :],
                         0, 255)
  for inputs, truth in ((flow, expected), (rgb, expected_rgb)):
    eager = data.to_network_input(inputs).numpy()
    compiled = tf.function(data.to_network_input, jit_compile=True)(inputs).numpy()
    np.testing.assert_allclose(eager, truth, atol=1e-4)
    np.testing.assert_allclose(compiled, truth, atol=1e-4)
  floats = np.zeros((2, 3, 4, 6), np.float32)
  assert data.to_network_input(floats) is floats  # trajectory stacks pass as they are


def test_training_batches_leave_the_pipeline_as_uint8(records_dirs):
  config = data.InputConfig(stream="temporal", crop_size=CROP, stack_length=2)
  x, _, _ = next(iter(data.training_dataset(records_dirs["ucf101"], 1, config, batch_size=4)))
  assert x["quantized_flow"].dtype == tf.uint8
  assert x["quantized_flow"].shape == (4, 4, CROP, CROP)  # planes as decoded: 2L x h x w
  assert x["step"].shape == x["centre"].shape == (4, 4) and x["flip"].shape == (4,)
  config = data.InputConfig(stream="spatial", crop_size=CROP)
  x, _, _ = next(iter(data.training_dataset(records_dirs["ucf101"], 1, config, batch_size=4)))
  assert x["rgb"].dtype == tf.uint8 and x["rgb"].shape == (4, CROP, CROP, 3)
  assert x["jitter"].shape == (4, 3) and float(np.abs(x["jitter"]).max()) > 0


@pytest.mark.parametrize("config, segments", [
    (data.InputConfig(stream="spatial", crop_size=CROP), 1),
    (data.InputConfig(stream="spatial", crop_size=CROP), 3),
    (data.InputConfig(stream="temporal", crop_size=CROP, stack_length=3), 1),
    (data.InputConfig(stream="temporal", crop_size=CROP, stack_length=4,
                      stacking="bidirectional"), 3),
    (data.InputConfig(stream="temporal", crop_size=CROP, stack_length=2,
                      stacking="trajectory"), 1)])
def test_memory_and_disk_reads_give_the_same_batches_and_views(records_dirs, config, segments):
  """The other tests check the memory path (the default for records this small) against
  the numpy reference; the disk path must give the same bytes."""
  dirs = [records_dirs["ucf101"], records_dirs["hmdb51"]]

  def batches(input_cache):
    dataset = data.training_dataset(dirs, 1, config, 8, seed=6, deterministic=True,
                                    augmentation=data.Augmentation(num_segments=segments),
                                    input_cache=input_cache)
    return [tf.nest.flatten(batch) for batch in dataset.take(3)]

  def views(input_cache):
    return [batch["views"].numpy() for batch in data.evaluation_views(
        dirs[0], 1, config, batch_size=30, num_positions=2, input_cache=input_cache)]
  for from_memory, from_disk in zip(batches("memory"), batches("disk")):
    for a, b in zip(from_memory, from_disk):
      np.testing.assert_array_equal(a.numpy(), b.numpy())
  from_memory, from_disk = views("memory"), views("disk")
  assert len(from_memory) == len(from_disk) > 1
  for a, b in zip(from_memory, from_disk):
    np.testing.assert_array_equal(a, b)


def test_the_read_path_is_chosen_by_memory_and_said(records_dirs, monkeypatch, caplog):
  config = data.InputConfig(stream="spatial", crop_size=CROP)
  sources = selection.open_sources(records_dirs["ucf101"])
  table = reading.video_table(sources, selection.check_selection(sources, 1, "train"), config)
  held = sum(info["bytes"]["rgb"] for v, info in records.read_manifest(
      records_dirs["ucf101"])["videos"].items() if info["splits"][0] == 1)
  assert reading.records_bytes(table) == held
  chosen = []
  for available in (2 * held, 2 * held - 1):
    monkeypatch.setattr(reading, "available_memory", lambda a=available: a)
    caplog.clear()
    with caplog.at_level("INFO"):
      reading.with_reader(table, "auto", lambda reader: chosen.append(type(reader).__name__)
                          or tf.data.Dataset.range(1)).take(1).get_single_element()
    assert (f"input: records read from {'memory' if available >= 2 * held else 'disk'} "
            f"({held / 1e6:.1f} MB of records, {available / 1e6:.1f} MB of memory available; "
            "--input_cache=memory|disk chooses)") in caplog.text
  assert chosen == ["MemoryReader", "DiskReader"]
  with pytest.raises(ValueError, match="unknown input cache 'ram'; choose from"):
    data.training_dataset(records_dirs["ucf101"], 1, config, 4, input_cache="ram")


def test_records_without_indexes_are_read_from_memory_and_named_for_disk(records_dirs,
                                                                         tmp_path):
  old = str(tmp_path / "old")
  shutil.copytree(records_dirs["ucf101"], old)
  for folder, _, names in os.walk(old):
    for name in names:
      if name.endswith(".index"):
        os.remove(os.path.join(folder, name))
  config = data.InputConfig(stream="temporal", crop_size=CROP, stack_length=2)

  def first(records_dir, input_cache):
    return next(iter(data.training_dataset(records_dir, 1, config, 4, seed=1, deterministic=True,
                                           input_cache=input_cache)))[0]["quantized_flow"]
  np.testing.assert_array_equal(first(old, "memory"), first(records_dirs["ucf101"], "disk"))
  with pytest.raises(records.RecordsError, match=(
      rf"^{re.escape(old)}/videos/00000/\d{{7}}\.index is missing: these records were "
      rf"made before indexes; run python -m flow_tools\.index_records "
      rf"--records_dir={re.escape(old)}$")):
    data.training_dataset(old, 1, config, 4, input_cache="disk")
