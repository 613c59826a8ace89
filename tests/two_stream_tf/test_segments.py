"""TSN's temporal segments: K snippets per sample, one in each segment, under one crop and
flip; the loss sees the mean of their logits; partial batch normalisation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from flow_tools.records import record_parsing
from tests.two_stream_tf import common
from tests.two_stream_tf import reference
from two_stream_tf import data
from two_stream_tf import models
from two_stream_tf import training
from two_stream_tf.data import packed
from two_stream_tf.data import sampling

K = 3


def _segments(first, last, k):
  """TSN's segment k of positions first..last, by hand: (lowest, highest), or None if empty."""
  n = last - first + 1
  low, high = first + k * n // K, first + (k + 1) * n // K - 1
  return (low, high) if high >= low else None


def _valid_range(config, frames):
  """(first, last) position, from the paper's definitions (stacking's module docstring)."""
  fields = frames - 1
  if config.stream == "spatial":
    return 0, frames - 1
  if config.stacking == "bidirectional":
    half = config.stack_length // 2
    first = min(half, fields // 2)
    return first, max(fields - half, first)
  return 0, max(fields - config.stack_length, 0)


@pytest.mark.parametrize("config", [
    data.InputConfig(stream="spatial"),
    data.InputConfig(stream="temporal", stack_length=2),
    data.InputConfig(stream="temporal", stack_length=4, stacking="bidirectional")],
    ids=["spatial", "flow", "bidirectional"])
def test_each_snippet_falls_in_its_own_segment(config):
  frames = np.array([2, 3, 4, 8, 11, 40], np.int32)  # some with fewer positions than K
  videos = {"frames": tf.constant(frames), "fields": tf.constant(frames - 1)}
  draws = np.stack([sampling.positions(videos, config, seed=7, index=i, segments=K).numpy()
                    for i in range(300)])  # draws x videos x K
  assert draws.shape == (300, len(frames), K)
  for v, length in enumerate(frames):
    first, last = _valid_range(config, int(length))
    for k in range(K):
      drawn = draws[:, v, k]
      segment = _segments(first, last, k)
      if segment is None:  # an empty segment takes its start
        assert set(drawn) == {min(first + k * (last - first + 1) // K, last)}
        continue
      low, high = segment
      assert low <= drawn.min() and drawn.max() <= high, (length, k)
      counts = np.bincount(drawn - low, minlength=high - low + 1)
      # Every position of the segment is drawn, about equally often.
      assert counts.min() > 0.5 * 300 / len(counts), (length, k, counts)


def test_k_snippets_are_stacks_of_one_video_one_per_segment_under_one_crop(records_dirs):
  crop = 32
  config = data.InputConfig(stream="temporal", crop_size=crop, stack_length=2,
                            mean_subtraction=False)
  dataset = data.training_dataset(records_dirs["ucf101"], 1, config, batch_size=4, seed=3,
                                  augmentation=data.Augmentation(num_segments=K))
  inputs, labels, _ = next(iter(dataset))
  assert inputs[packed.QUANTIZED_FLOW].shape == (4, K, 4, crop, crop)
  snippets = data.to_network_input(packed.merge_segments(inputs)).numpy().reshape(
      4, K, crop, crop, 4)
  cache, covered = {}, set()
  for sample, label in zip(snippets, labels["ucf101"].numpy()):
    origin = common.find_flow_origin(sample[0], int(label), records_dirs["ucf101"], config, cache,
                                     1e-5)
    assert origin is not None
    video_id, _, y, x, flipped = origin
    video = cache[video_id]
    first, last = _valid_range(config, len(video.frames))
    for k in range(K):
      # The same video, window and flip, at a start inside segment k.
      low, high = _segments(first, last, k)
      matches = []
      for start in range(low, high + 1):
        stack = reference.flow_stack(video, "flow", 2, start)
        if flipped:
          stack = reference.flip(stack, True)
          window = stack[y:y + crop, stack.shape[1] - crop - x:stack.shape[1] - x]
        else:
          window = stack[y:y + crop, x:x + crop]
        if np.allclose(window, sample[k], atol=1e-5):
          matches.append(start)
      assert matches, f"snippet {k} of a sample of {video_id} is no stack of segment {k}"
      covered.add(k)
  assert covered == set(range(K))


def test_k_rgb_snippets_are_frames_of_one_video_one_per_segment_under_one_crop(records_dirs):
  """RGB batches are read and decoded a batch at once: each sample's K crops still come
  from one video, one frame per segment, at one window and flip."""
  crop = 32
  config = data.InputConfig(stream="spatial", crop_size=crop)
  dataset = data.training_dataset(records_dirs["ucf101"], 1, config, batch_size=4, seed=3,
                                  augmentation=data.Augmentation(num_segments=K,
                                                                 rgb_jitter=False))
  inputs, labels, _ = next(iter(dataset))
  assert inputs[packed.RGB].shape == (4, K, crop, crop, 3)
  assert inputs["flip"].shape == (4, K) and inputs["jitter"].shape == (4, K, 3)
  snippets = data.to_network_input(packed.merge_segments(inputs)).numpy().reshape(
      4, K, crop, crop, 3)
  covered = set()
  for sample, label in zip(snippets, labels["ucf101"].numpy()):
    best = (np.inf, None)  # (error, (video, y, x, flipped)) of snippet 0 over every frame
    for video_id, video_label in common.train_videos(records_dirs["ucf101"]).items():
      if video_label != label:
        continue
      video = record_parsing.load_video(records_dirs["ucf101"], video_id)
      for frame in video.frames.astype(np.float32):
        for flipped in (False, True):
          candidate = frame[:, ::-1] if flipped else frame
          errors = np.abs(np.lib.stride_tricks.sliding_window_view(
              candidate, (crop, crop, 3))[..., 0, :, :, :] - sample[0]).mean(axis=(2, 3, 4))
          if errors.min() < best[0]:
            y, x = np.unravel_index(np.argmin(errors), errors.shape)
            best = (errors.min(), (video, y, x, flipped))
    assert best[0] < 1.0  # cropped and full decoding differ by a little chroma upsampling
    video, y, x, flipped = best[1]
    first, last = _valid_range(config, len(video.frames))
    for k in range(K):
      low, high = _segments(first, last, k)
      frames = video.frames[low:high + 1, :, ::-1] if flipped else video.frames[low:high + 1]
      errors = np.abs(frames[:, y:y + crop, x:x + crop].astype(np.float32) - sample[k])
      assert errors.mean(axis=(1, 2, 3)).min() < 1.0, f"snippet {k} is no frame of segment {k}"
      covered.add(k)
  assert covered == set(range(K))


def _tiny_model(heads):
  keras.utils.set_random_seed(2)
  return models.build_model("temporal", heads,
                            models.ModelConfig(dropout=0.0, initialization="keras"), crop_size=48,
                            stack_length=2)


def _logits_by_hand(model, snippets):
  """{head: [snippets, classes]}: the trunk's features times each head's kernel, plus bias."""
  normalized = model.get_layer("normalization")(snippets)
  features = model.get_layer("trunk")(normalized, training=False).numpy()
  return {head: features @ model.get_layer(f"{head}_logits").get_weights()[0]
          + model.get_layer(f"{head}_logits").get_weights()[1] for head in model.output}


def test_the_consensus_is_the_softmax_of_the_mean_of_the_snippets_logits():
  model = _tiny_model({"a": 3, "b": 2})
  x = np.random.default_rng(0).normal(0, 2, (5, K, 48, 48, 4)).astype(np.float32)
  outputs = models.segmental_consensus(model, K)(x)
  by_hand = _logits_by_hand(model, x.reshape(5 * K, 48, 48, 4))
  for head, logits in by_hand.items():
    expected = reference.softmax(logits.reshape(5, K, -1).mean(axis=1))
    np.testing.assert_allclose(outputs[head].numpy(), expected, rtol=1e-5, atol=1e-6)


def _segment_batch(records_dirs, size=12):
  dirs = [records_dirs["ucf101"], records_dirs["hmdb51"]]
  config = data.InputConfig(stream="temporal", crop_size=48, stack_length=2)
  return next(iter(data.training_dataset(dirs, 1, config, size, seed=4, deterministic=True,
                                         augmentation=data.Augmentation(num_segments=K))))


def test_k3_training_loss_is_the_masked_consensus_loss_and_falls(records_dirs, tmp_path):
  batch = _segment_batch(records_dirs)
  x, labels, weights = batch
  assert 0 < weights["ucf101"].numpy().sum() < 12  # both heads' samples, masked per head
  built = []

  def builder(head_scale):
    def build():
      model = _tiny_model({"ucf101": 12, "hmdb51": 12})
      for head in ("ucf101", "hmdb51"):
        layer = model.get_layer(f"{head}_logits")
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel * head_scale, bias])
      built.append((model, model.get_weights()))
      return model
    return build

  def make_dataset(batch_size, seed):
    return tf.data.Dataset.from_tensors(batch).repeat()

  def config(steps, rate, log_every):
    return training.TrainConfig(schedule=training.Schedule(rate, (), 0.1, steps),
                                batch_size=12, log_every=log_every, checkpoint_every=steps,
                                weight_decay=0.0)

  # The first step's losses are those of the untrained network's consensus, by hand (its
  # logits scaled far from uniform, where other consensus rules give other losses).
  first = training.train(builder(20.0), make_dataset, str(tmp_path / "by_hand"),
                         config(1, 0.01, 1), "temporal", num_segments=K)
  untrained, initial_weights = built[0]
  untrained.set_weights(initial_weights)
  snippets = data.to_network_input(packed.merge_segments(x)).numpy()
  for head, logits in _logits_by_hand(untrained, snippets).items():
    probabilities = reference.softmax(logits.reshape(12, K, -1).mean(axis=1))
    mine = weights[head].numpy() == 1
    cross_entropy = -np.log(probabilities[mine, labels[head].numpy()[mine]])
    assert first.metrics[f"loss/{head}"] == pytest.approx(cross_entropy.mean(), rel=1e-4)

  # A few steps lower it; the checkpoint is the one-snippet network evaluation loads.
  lines = []
  later = training.train(builder(1.0), make_dataset, str(tmp_path / "run"), config(12, 0.05, 1),
                         "temporal", log=lines.append, num_segments=K)
  losses = [float(line.split("  loss ")[1].split()[0]) for line in lines if "  loss " in line]
  assert len(losses) == 12 and np.mean(losses[-4:]) < 0.8 * losses[0]
  restored = models.build_model("temporal", {"ucf101": 12, "hmdb51": 12},
                                models.ModelConfig(dropout=0.0), crop_size=48, stack_length=2)
  tf.train.Checkpoint(model=restored).restore(later.checkpoint).expect_partial()
  np.testing.assert_allclose(restored(snippets[:2])["ucf101"].numpy(),
                             built[-1][0](snippets[:2])["ucf101"].numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("trunk, crop", [("resnet50", 32), ("inception_v3", 75)])
def test_partial_bn_freezes_the_statistics_of_every_batch_norm_but_the_first(trunk, crop,
                                                                            tmp_path):
  keras.utils.set_random_seed(0)
  model = models.build_model("temporal", {"a": 3}, models.ModelConfig(trunk=trunk, partial_bn=True),
                             crop_size=crop, stack_length=1)
  norms = [layer for layer in model.get_layer("trunk").layers
           if isinstance(layer, keras.layers.BatchNormalization)]
  before = [(n.moving_mean.numpy().copy(), n.moving_variance.numpy().copy()) for n in norms]
  x = np.random.default_rng(1).normal(0, 5, (4, crop, crop, 2)).astype(np.float32)
  with tf.GradientTape() as tape:
    loss = -tf.reduce_sum(tf.math.log(model(x, training=True)["a"][:, 0]))
  gradients = dict(zip([v.path for v in model.trainable_variables],
                       tape.gradient(loss, model.trainable_variables)))
  moved = [not (np.array_equal(n.moving_mean.numpy(), m)
                and np.array_equal(n.moving_variance.numpy(), v))
           for n, (m, v) in zip(norms, before)]
  assert moved == [True] + [False] * (len(norms) - 1)
  # Gamma and beta of the frozen layers still learn (Inception-v3's have no gamma).
  last = norms[-1]
  for variable in (last.gamma, last.beta):
    if variable is not None:
      assert np.abs(gradients[variable.path].numpy()).max() > 0
  # Inference and the checkpoint are those of the plain network.
  plain = models.build_model("temporal", {"a": 3}, models.ModelConfig(trunk=trunk), crop_size=crop,
                             stack_length=1)
  path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
  tf.train.Checkpoint(model=plain).restore(path).assert_existing_objects_matched()
  np.testing.assert_allclose(plain(x)["a"].numpy(), model(x)["a"].numpy(), rtol=1e-5,
                             atol=1e-6)


def test_partial_bn_needs_batch_norm_and_pretrained_statistics(records_dirs, tmp_path):
  with pytest.raises(ValueError, match="cnn_m_2048 has no batch normalisation"):
    models.build_model("temporal", {"a": 3}, models.ModelConfig(partial_bn=True))
  with pytest.raises(ValueError, match="needs `weights` or `init_from`"):
    common.run_config([records_dirs["ucf101"]], data.InputConfig(
        stream="temporal", crop_size=32, stack_length=2), training.TrainConfig(),
        trunk="resnet50", partial_bn=True)
  assert not (tmp_path / "model").exists()
