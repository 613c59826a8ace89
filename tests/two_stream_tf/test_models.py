"""Models: CNN-M-2048 layer arithmetic, LRN, heads, trunks, weight loading, cross-modality."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from two_stream_tf import models
from two_stream_tf.models import cnn_m
from two_stream_tf.models import layers
from two_stream_tf.models import weights as weights_lib


def _conv_params(k, c_in, c_out):
  return k * k * c_in * c_out + c_out


def _cnn_m_params(channels, classes):
  """CNN-M-2048 at 224 from the paper's table: conv sizes and the 6x6x512 pool5 output."""
  convs = (_conv_params(7, channels, 96) + _conv_params(5, 96, 256) + _conv_params(3, 256, 512)
           + 2 * _conv_params(3, 512, 512))
  full = (6 * 6 * 512 * 4096 + 4096) + (4096 * 2048 + 2048)
  return convs + full + sum(2048 * n + n for n in classes)


@pytest.mark.slow
@pytest.mark.parametrize("stream, channels, lrn_layers", [("spatial", 3, 2), ("temporal", 20, 1)])
def test_cnn_m_2048_matches_the_paper(stream, channels, lrn_layers):
  model = models.build_model(stream, {"ucf101": 101, "hmdb51": 51})
  assert model.count_params() == _cnn_m_params(channels, (101, 51))
  trunk = model.get_layer("trunk")
  assert trunk.get_layer("pool5").output.shape[1:] == (6, 6, 512)  # Caffe: 18432 into full6
  assert trunk.get_layer("conv1").output.shape[1:] == (109, 109, 96)
  assert trunk.get_layer("conv2").output.shape[1:] == (26, 26, 256)
  norms = [x for x in trunk.layers if isinstance(x, layers.LocalResponseNormalization)]
  assert len(norms) == lrn_layers  # the temporal net drops the LRN after conv2
  assert model.input.shape[1:] == (224, 224, channels)
  outputs = model(np.zeros((2, 224, 224, channels), np.float32))
  assert sorted(outputs) == ["hmdb51", "ucf101"] and outputs["ucf101"].shape == (2, 101)
  np.testing.assert_allclose(np.sum(outputs["hmdb51"], axis=1), 1.0, rtol=1e-5)


def test_lrn_against_caffe_formula():
  x = np.random.default_rng(0).uniform(0, 30, size=(2, 3, 4, 9)).astype(np.float32)
  local_size, alpha, beta, k = 5, 5e-4, 0.75, 2.0
  expected = np.empty_like(x)
  for c in range(x.shape[-1]):
    lo, hi = max(0, c - local_size // 2), min(x.shape[-1], c + local_size // 2 + 1)
    scale = k + alpha / local_size * np.sum(x[..., lo:hi] ** 2, axis=-1)
    expected[..., c] = x[..., c] / scale ** beta
  lrn = layers.LocalResponseNormalization.from_caffe(local_size, alpha, beta, k)
  np.testing.assert_allclose(lrn(x), expected, rtol=1e-5)
  again = layers.LocalResponseNormalization.from_config(lrn.get_config())
  np.testing.assert_allclose(again(x), expected, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("trunk, preprocess", [
    ("resnet50", keras.applications.resnet50.preprocess_input),
    ("inception_v3", keras.applications.inception_v3.preprocess_input)])
def test_rgb_normalisation_is_the_trunks_own(trunk, preprocess):
  model = models.build_model("spatial", {"a": 3}, models.ModelConfig(trunk=trunk), crop_size=80)
  rgb = np.random.default_rng(1).uniform(0, 255, size=(2, 80, 80, 3)).astype(np.float32)
  normalised = model.get_layer("normalization")(rgb)
  np.testing.assert_allclose(normalised, preprocess(rgb.copy()), rtol=1e-5, atol=1e-4)


def test_the_mean_a_weights_file_states_is_what_the_spatial_cnn_m_subtracts(tmp_path):
  path = str(tmp_path / "converted.npz")
  np.savez(path, **{"mean/rgb": np.array([120.5, 110.25, 100.0], np.float32)})
  mean = models.cnn_m_mean(path)
  assert mean == (120.5, 110.25, 100.0)
  model = models.build_model("spatial", {"a": 3}, crop_size=64, rgb_mean=mean)
  rgb = np.random.default_rng(2).uniform(0, 255, size=(1, 64, 64, 3)).astype(np.float32)
  np.testing.assert_allclose(model.get_layer("normalization")(rgb), rgb - np.array(mean),
                             atol=1e-4)
  default = models.build_model("spatial", {"a": 3}, crop_size=64)  # Caffe's ImageNet mean
  np.testing.assert_allclose(default.get_layer("normalization")(rgb),
                             rgb - np.array([123.68, 116.779, 103.939]), atol=1e-4)
  with pytest.raises(ValueError, match="rgb_mean is for the spatial CNN-M-2048"):
    models.build_model("temporal", {"a": 3}, crop_size=64, stack_length=1, rgb_mean=mean)
  np.savez(path, **{"mean/rgb": np.zeros((3, 2, 2), np.float32)})
  with pytest.raises(models.WeightsError, match="'mean/rgb' must hold 3 values"):
    models.cnn_m_mean(path)


@pytest.mark.slow
def test_cnn_m_starts_as_keras_does_unless_asked_for_caffes_reference_start():
  keras.utils.set_random_seed(0)
  glorot = models.build_model("spatial", {"a": 101}, crop_size=64)
  for name, fan_in, fan_out in (("conv1", 7 * 7 * 3, 7 * 7 * 96),
                                ("conv3", 3 * 3 * 256, 3 * 3 * 512)):
    kernel, biases = glorot.get_layer("trunk").get_layer(name).get_weights()
    # Glorot uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)), std a / sqrt(3).
    assert abs(kernel.std() - np.sqrt(2 / (fan_in + fan_out))) < 0.05 * kernel.std(), name
    assert np.abs(kernel).max() <= np.sqrt(6 / (fan_in + fan_out)), name
    assert not biases.any(), name
  # BVLC CaffeNet's train_val.prototxt: Gaussian std 0.01 (0.005 for fc6/fc7), bias 1 for
  # conv2, conv4, conv5, fc6, fc7 and 0 elsewhere; the classifier std 0.01, bias 0.
  caffe = {"conv1": (0.01, 0.0), "conv2": (0.01, 1.0), "conv3": (0.01, 0.0),
           "conv4": (0.01, 1.0), "conv5": (0.01, 1.0), "full6": (0.005, 1.0),
           "full7": (0.005, 1.0)}
  model = models.build_model("spatial", {"a": 101}, models.ModelConfig(initialization="caffe"),
                             crop_size=64)
  trunk = model.get_layer("trunk")
  for name, (std, bias) in caffe.items():
    kernel, biases = trunk.get_layer(name).get_weights()
    assert abs(kernel.std() - std) < 0.05 * std and abs(kernel.mean()) < 0.05 * std, name
    np.testing.assert_array_equal(biases, bias, err_msg=name)
  kernel, biases = model.get_layer("a_logits").get_weights()
  assert abs(kernel.std() - 0.01) < 0.0005 and not biases.any()
  with pytest.raises(ValueError, match="unknown initialization 'he'"):
    models.build_model("spatial", {"a": 3}, models.ModelConfig(initialization="he"), crop_size=64)


def test_heads_stay_float32_under_mixed_precision():
  keras.mixed_precision.set_global_policy("mixed_float16")
  try:
    model = models.build_model("temporal", {"ucf101": 5, "hmdb51": 4}, crop_size=64,
                               stack_length=2)
    assert model.get_layer("trunk").get_layer("conv3").compute_dtype == "float16"
    outputs = model(np.ones((1, 64, 64, 4), np.float32))
    assert {v.dtype for v in outputs.values()} == {tf.float32}
  finally:
    keras.mixed_precision.set_global_policy("float32")


def _random_cnn_m_file(tmp_path, suffix):
  rgb = cnn_m.cnn_m_2048((224, 224, 3))
  rng = np.random.default_rng(2)
  for layer in rgb.layers:
    if layer.weights:
      layer.set_weights([rng.normal(size=v.shape).astype(np.float32) for v in layer.weights])
  path = str(tmp_path / f"cnn_m{suffix}")
  if suffix == ".npz":
    weights_lib.save_npz(rgb, path)
  else:
    rgb.save_weights(path)
  return rgb, path


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".npz", ".weights.h5"])
def test_cross_modality_init_of_cnn_m(tmp_path, suffix):
  rgb, path = _random_cnn_m_file(tmp_path, suffix)
  flow = models.build_model("temporal", {"ucf101": 101}, models.ModelConfig(weights=path),
                            stack_length=10)
  trunk = flow.get_layer("trunk")
  rgb_kernel = rgb.get_layer("conv1").get_weights()[0]
  flow_kernel = trunk.get_layer("conv1").get_weights()[0]
  assert flow_kernel.shape == (7, 7, 20, 96)
  # Every flow channel holds the mean of the RGB filters over their 3 channels.
  rgb_mean = rgb_kernel.mean(axis=2)
  for channel in range(20):
    np.testing.assert_allclose(flow_kernel[:, :, channel], rgb_mean, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(flow_kernel.mean(axis=2), rgb_mean, rtol=1e-5, atol=1e-7)
  for name in cnn_m.WEIGHT_LAYERS[1:]:
    for got, want in zip(trunk.get_layer(name).get_weights(), rgb.get_layer(name).get_weights()):
      np.testing.assert_array_equal(got, want)
  # The spatial net takes the file unchanged.
  spatial = models.build_model("spatial", {"ucf101": 101}, models.ModelConfig(weights=path))
  np.testing.assert_array_equal(spatial.get_layer("trunk").get_layer("conv1").get_weights()[0],
                                rgb_kernel)


@pytest.mark.slow
def test_weights_are_never_silently_skipped(tmp_path):
  _, path = _random_cnn_m_file(tmp_path, ".npz")
  with np.load(path) as data:
    arrays = {k: data[k] for k in data.files if not k.startswith("full7")}
  np.savez(tmp_path / "partial.npz", **arrays)
  with pytest.raises(models.WeightsError, match="full7/kernel"):
    models.build_model("temporal", {"a": 3},
                       models.ModelConfig(weights=str(tmp_path / "partial.npz")))
  # Another crop size changes full6's input: an error naming the layer, not a skip.
  with pytest.raises(models.WeightsError, match="full6"):
    models.build_model("spatial", {"a": 3}, models.ModelConfig(weights=path), crop_size=192)
  with pytest.raises(models.WeightsError, match="weights file not found: /no/such.npz"):
    models.build_model("spatial", {"a": 3}, models.ModelConfig(weights="/no/such.npz"))
  with pytest.raises(models.WeightsError, match="no Keras download"):
    models.build_model("spatial", {"a": 3}, models.ModelConfig(weights="imagenet"))


@pytest.mark.slow
def test_keras_application_trunk_from_a_local_file_with_cross_modality(tmp_path):
  source = keras.applications.ResNet50(include_top=False, weights=None,
                                       input_shape=(64, 64, 3), pooling="avg")
  rng = np.random.default_rng(3)
  conv1 = source.get_layer("conv1_conv")
  conv1.set_weights([rng.normal(size=v.shape).astype(np.float32) for v in conv1.weights])
  path = str(tmp_path / "resnet50_notop.weights.h5")
  source.save_weights(path)
  flow = models.build_model("temporal", {"a": 3},
                            models.ModelConfig(trunk="resnet50", weights=path), crop_size=64,
                            stack_length=2)
  trunk = flow.get_layer("trunk")
  kernel = trunk.get_layer("conv1_conv").get_weights()[0]
  expected = conv1.get_weights()[0].mean(axis=2)
  assert kernel.shape[2] == 4
  for channel in range(4):
    np.testing.assert_allclose(kernel[:, :, channel], expected, rtol=1e-5, atol=1e-7)
  for name in ("conv5_block3_3_conv", "conv5_block3_3_bn"):
    for got, want in zip(trunk.get_layer(name).get_weights(),
                         source.get_layer(name).get_weights()):
      np.testing.assert_array_equal(got, want)
  rgb = models.build_model("spatial", {"a": 3}, models.ModelConfig(trunk="resnet50", weights=path),
                           crop_size=64)
  np.testing.assert_array_equal(rgb.get_layer("trunk").get_layer("conv1_conv").get_weights()[0],
                                conv1.get_weights()[0])


@pytest.mark.slow
def test_mismatched_layers_raise():
  source = weights_lib.weighted_layers(cnn_m.cnn_m_2048((224, 224, 3)))
  target = cnn_m.cnn_m_2048((224, 224, 20))
  assert weights_lib.transfer(source, target, "src") == 7
  with pytest.raises(models.WeightsError, match="6 layers with weights"):
    weights_lib.transfer(source[:6], target, "src")
  swapped = [source[1], source[0]] + source[2:]
  with pytest.raises(models.WeightsError, match="layer 'conv2'"):
    weights_lib.transfer(swapped, target, "src")


@pytest.mark.slow
def test_train_last_layer_only(tmp_path):
  _, path = _random_cnn_m_file(tmp_path, ".npz")
  model = models.build_model("spatial", {"ucf101": 101, "hmdb51": 51},
                             models.ModelConfig(weights=path, last_layer_only=True))
  assert sorted(v.path for v in model.trainable_weights) == [
      "hmdb51_logits/bias", "hmdb51_logits/kernel", "ucf101_logits/bias", "ucf101_logits/kernel"]
  with pytest.raises(ValueError, match="needs pre-trained weights"):
    models.build_model("spatial", {"a": 2}, models.ModelConfig(last_layer_only=True))
