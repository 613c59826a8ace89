"""The Caffe conversion of CNN-M-2048 against a numpy forward pass with Caffe's semantics.

The .caffemodel files are written here, not by the converter's code: the messages come from
a descriptor of the few caffe.proto messages written below (protobuf's own serialiser), and
the large weight arrays are appended in raw wire encoding (a message's fields may come in
any order, so appending a field to a serialised message is the protobuf way to add it).
"""

import os
import subprocess
import sys

from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
import pytest

from two_stream_tf import models
from two_stream_tf.models import caffe_conversion

_F = descriptor_pb2.FieldDescriptorProto
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _caffe_messages():
  """Message classes for a subset of caffe.proto (field numbers as there); blobs inside
  layers are declared `bytes` (the same wire encoding) so that raw-encoded blobs can go in."""
  file = descriptor_pb2.FileDescriptorProto(name="caffe_subset.proto", package="caffe_subset",
                                            syntax="proto2")

  def message(name, *fields):
    proto = file.message_type.add(name=name)
    for field_name, number, kind, repeated, *type_name in fields:
      field = proto.field.add(name=field_name, number=number, type=kind,
                              label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
      if type_name:
        field.type_name = f".caffe_subset.{type_name[0]}"
      if kind == _F.TYPE_INT64 and repeated:
        field.options.packed = True

  message("BlobShape", ("dim", 1, _F.TYPE_INT64, True))
  message("BlobProto", ("num", 1, _F.TYPE_INT32, False), ("channels", 2, _F.TYPE_INT32, False),
          ("height", 3, _F.TYPE_INT32, False), ("width", 4, _F.TYPE_INT32, False),
          ("shape", 7, _F.TYPE_MESSAGE, False, "BlobShape"))
  message("ConvolutionParameter", ("num_output", 1, _F.TYPE_UINT32, False),
          ("pad", 3, _F.TYPE_UINT32, True), ("kernel_size", 4, _F.TYPE_UINT32, True),
          ("group", 5, _F.TYPE_UINT32, False), ("stride", 6, _F.TYPE_UINT32, True))
  message("LRNParameter", ("local_size", 1, _F.TYPE_UINT32, False),
          ("alpha", 2, _F.TYPE_FLOAT, False), ("beta", 3, _F.TYPE_FLOAT, False),
          ("k", 5, _F.TYPE_FLOAT, False))
  message("PoolingParameter", ("pool", 1, _F.TYPE_INT32, False),
          ("kernel_size", 2, _F.TYPE_UINT32, False), ("stride", 3, _F.TYPE_UINT32, False))
  message("InnerProductParameter", ("num_output", 1, _F.TYPE_UINT32, False))
  message("V1LayerParameter", ("bottom", 2, _F.TYPE_STRING, True),
          ("top", 3, _F.TYPE_STRING, True), ("name", 4, _F.TYPE_STRING, False),
          ("type", 5, _F.TYPE_INT32, False), ("blobs", 6, _F.TYPE_BYTES, True),
          ("convolution_param", 10, _F.TYPE_MESSAGE, False, "ConvolutionParameter"),
          ("inner_product_param", 17, _F.TYPE_MESSAGE, False, "InnerProductParameter"),
          ("lrn_param", 18, _F.TYPE_MESSAGE, False, "LRNParameter"),
          ("pooling_param", 19, _F.TYPE_MESSAGE, False, "PoolingParameter"))
  message("LayerParameter", ("name", 1, _F.TYPE_STRING, False),
          ("type", 2, _F.TYPE_STRING, False), ("bottom", 3, _F.TYPE_STRING, True),
          ("top", 4, _F.TYPE_STRING, True), ("blobs", 7, _F.TYPE_BYTES, True),
          ("convolution_param", 106, _F.TYPE_MESSAGE, False, "ConvolutionParameter"),
          ("inner_product_param", 117, _F.TYPE_MESSAGE, False, "InnerProductParameter"),
          ("lrn_param", 118, _F.TYPE_MESSAGE, False, "LRNParameter"),
          ("pooling_param", 121, _F.TYPE_MESSAGE, False, "PoolingParameter"))
  message("NetParameter", ("name", 1, _F.TYPE_STRING, False),
          ("layers", 2, _F.TYPE_MESSAGE, True, "V1LayerParameter"),
          ("layer", 100, _F.TYPE_MESSAGE, True, "LayerParameter"))
  pool = descriptor_pool.DescriptorPool()
  pool.Add(file)
  return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"caffe_subset.{name}"))
          for name in ("BlobProto", "V1LayerParameter", "LayerParameter", "NetParameter")}


MESSAGES = _caffe_messages()
V1_CODES = {"Convolution": 4, "InnerProduct": 14, "LRN": 15, "Pooling": 17, "ReLU": 18,
            "Dropout": 6, "Softmax": 20}


def _varint(value):
  out = bytearray()
  while True:
    byte, value = value & 0x7F, value >> 7
    out.append(byte | (0x80 if value else 0))
    if not value:
      return bytes(out)


def _blob(array, v1):
  """A BlobProto: V1 files give legacy 4-D dims and unpacked floats (tag, 4 bytes, ...);
  V2 files a `shape` and one packed field."""
  array = np.asarray(array, np.float32)
  blob = MESSAGES["BlobProto"]()
  if v1:
    dims = (1,) * (4 - array.ndim) + array.shape
    blob.num, blob.channels, blob.height, blob.width = dims
    rows = np.empty((array.size, 5), np.uint8)
    rows[:, 0] = (5 << 3) | 5
    rows[:, 1:] = array.astype("<f4").reshape(-1, 1).view(np.uint8)
    data = rows.tobytes()
  else:
    blob.shape.dim.extend(array.shape)
    raw = array.astype("<f4").tobytes()
    data = _varint((5 << 3) | 2) + _varint(len(raw)) + raw
  return blob.SerializeToString() + data


def _caffemodel(path, layers, v1, name="VGG_CNN_M_2048"):
  """Writes a net of `layers`: (name, type, [arrays], {param message: {field: value}})."""
  net = MESSAGES["NetParameter"](name=name)
  for layer_name, kind, blobs, params in layers:
    layer = net.layers.add() if v1 else net.layer.add()
    layer.name = layer_name
    layer.type = V1_CODES[kind] if v1 else kind
    layer.blobs.extend(_blob(b, v1) for b in blobs)
    for field, values in params.items():
      for key, value in values.items():
        target = getattr(layer, field)
        if isinstance(value, list):
          getattr(target, key).extend(value)
        else:
          setattr(target, key, value)
  with open(path, "wb") as f:
    f.write(net.SerializeToString())


def _cnn_m_layers(rng):
  """CNN-M-2048 as VGG released it, with random weights (He-normal, so activations stay in
  range through 8 layers)."""
  def he(shape, fan_in):
    return (rng.standard_normal(shape, dtype=np.float32) * np.sqrt(2.0 / fan_in)).astype(
        np.float32)
  lrn = {"lrn_param": {"local_size": 5, "alpha": 0.0005, "beta": 0.75, "k": 2.0}}
  pool = {"pooling_param": {"pool": 0, "kernel_size": 3, "stride": 2}}
  layers, channels = [], 3
  for name, filters, kernel, stride, pad in (("conv1", 96, 7, 2, 0), ("conv2", 256, 5, 2, 1),
                                             ("conv3", 512, 3, 1, 1), ("conv4", 512, 3, 1, 1),
                                             ("conv5", 512, 3, 1, 1)):
    conv = {"num_output": filters, "kernel_size": [kernel], "stride": [stride]}
    if pad:
      conv["pad"] = [pad]
    layers.append((name, "Convolution",
                   [he((filters, channels, kernel, kernel), channels * kernel * kernel),
                    rng.uniform(-0.1, 0.1, filters)], {"convolution_param": conv}))
    layers.append((f"relu{name[-1]}", "ReLU", [], {}))
    if name in ("conv1", "conv2"):
      layers.append((f"norm{name[-1]}", "LRN", [], lrn))
    if name in ("conv1", "conv2", "conv5"):
      layers.append((f"pool{name[-1]}", "Pooling", [], pool))
    channels = filters
  for name, outputs, inputs in (("fc6", 4096, 18432), ("fc7", 2048, 4096), ("fc8", 1000, 2048)):
    layers.append((name, "InnerProduct", [he((outputs, inputs), inputs),
                                          rng.uniform(-0.1, 0.1, outputs)],
                   {"inner_product_param": {"num_output": outputs}}))
  return layers


def _caffe_forward(layers, image_bgr):
  """fc7 (after its ReLU) and fc8 of a C x H x W BGR image, in float64, as Caffe computes
  them: cross-correlation, LRN over channels (alpha / local_size), ceil-mode max pooling
  with windows clipped at the border, fc on the C x H x W flattening."""
  params = {name: [b.astype(np.float64) for b in blobs] for name, _, blobs, _ in layers}
  x = image_bgr.astype(np.float64)

  def conv(x, name, stride, pad):
    w, b = params[name]
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(x, w.shape[2:], axis=(1, 2))[:, ::stride, ::stride]
    return np.maximum(np.einsum("chwij,ocij->ohw", windows, w, optimize=True)
                      + b[:, None, None], 0)

  def lrn(x, size=5, alpha=0.0005, beta=0.75, k=2.0):
    squares = np.pad(x ** 2, ((size // 2, size // 2), (0, 0), (0, 0)))
    window_sums = sum(squares[i:i + len(x)] for i in range(size))
    return x / (k + alpha / size * window_sums) ** beta

  def pool(x, kernel=3, stride=2):
    out = [int(np.ceil((d - kernel) / stride)) + 1 for d in x.shape[1:]]
    padded = np.full((len(x), (out[0] - 1) * stride + kernel, (out[1] - 1) * stride + kernel),
                     -np.inf)
    padded[:, :x.shape[1], :x.shape[2]] = x
    return sliding_window_view(padded, (kernel, kernel), axis=(1, 2))[
        :, ::stride, ::stride].max(axis=(3, 4))

  x = pool(lrn(conv(x, "conv1", 2, 0)))
  x = pool(lrn(conv(x, "conv2", 2, 1)))
  x = pool(conv(conv(conv(x, "conv3", 1, 1), "conv4", 1, 1), "conv5", 1, 1))
  assert x.shape == (512, 6, 6)
  fc6 = np.maximum(params["fc6"][0] @ x.ravel() + params["fc6"][1], 0)
  fc7 = np.maximum(params["fc7"][0] @ fc6 + params["fc7"][1], 0)
  return fc7, params["fc8"][0] @ fc7 + params["fc8"][1]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
  """Random CNN-M-2048 weights as a V1 file (legacy dims, unpacked) and a V2 file (shapes,
  packed), a BGR mean image, and each converted: the V2 file by the app."""
  root = tmp_path_factory.mktemp("caffe")
  rng = np.random.default_rng(0)
  layers = _cnn_m_layers(rng)
  mean_image = (np.array([100.0, 115.0, 125.0])[:, None, None]  # B, G, R
                + rng.uniform(-8, 8, (3, 224, 224))).astype(np.float32)
  mean_path = str(root / "mean.binaryproto")
  with open(mean_path, "wb") as f:
    f.write(_blob(mean_image[None], v1=True))
  paths = {}
  for version in ("v1", "v2"):
    paths[version] = str(root / f"cnn_m_2048_{version}.caffemodel")
    _caffemodel(paths[version], layers, v1=version == "v1")
  v1_arrays, spread = caffe_conversion.convert(paths["v1"], mean_path)
  npz = str(root / "cnn_m_2048.npz")
  result = subprocess.run(
      [sys.executable, "-m", "two_stream_tf.convert_caffe", f"--caffemodel={paths['v2']}",
       f"--mean={mean_path}", f"--output={npz}"], cwd=REPO, capture_output=True, text=True,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  return {"layers": layers, "mean_image": mean_image, "v1": v1_arrays, "spread": spread,
          "npz": npz, "stdout": result.stdout, "paths": paths}


@pytest.mark.slow
def test_v1_and_v2_files_give_the_same_arrays_and_the_mean_in_rgb(converted):
  with np.load(converted["npz"]) as v2:
    assert sorted(v2.files) == sorted(converted["v1"])
    for name in v2.files:
      np.testing.assert_array_equal(v2[name], converted["v1"][name], err_msg=name)
    expected_mean = converted["mean_image"].reshape(3, -1).mean(axis=1)[::-1]  # RGB
    np.testing.assert_allclose(v2["mean/rgb"], expected_mean, rtol=1e-6)
    assert v2["full6/kernel"].shape == (18432, 4096) and v2["fc8/kernel"].shape == (2048, 1000)
  np.testing.assert_allclose(converted["spread"], 16 / np.sqrt(12), rtol=0.02)  # uniform +-8
  assert "mean (R, G, B): " in converted["stdout"] and "wrote " in converted["stdout"]


@pytest.mark.slow
def test_the_converted_spatial_network_computes_what_caffe_does(converted):
  rng = np.random.default_rng(1)
  rgb = rng.uniform(0, 255, (224, 224, 3)).astype(np.float32)
  model = models.build_model("spatial", {"ucf101": 3}, models.ModelConfig(weights=converted["npz"]),
                             crop_size=224, rgb_mean=models.cnn_m_mean(converted["npz"]))
  features = model.get_layer("trunk")(model.get_layer("normalization")(rgb[None]),
                                      training=False).numpy()[0]
  # Caffe: BGR, channels first, minus the mean (per channel, as the conversion keeps it).
  channel_means = converted["mean_image"].reshape(3, -1).mean(axis=1)
  bgr = rgb[..., ::-1].transpose(2, 0, 1) - channel_means[:, None, None]
  fc7, fc8 = _caffe_forward(converted["layers"], bgr)
  assert fc7.max() > 0 and (fc7 > 0).mean() > 0.2  # a live network, not zeros
  np.testing.assert_allclose(features, fc7, rtol=1e-4, atol=1e-4 * np.abs(fc7).max())
  with np.load(converted["npz"]) as arrays:
    logits = features @ arrays["fc8/kernel"] + arrays["fc8/bias"]
  np.testing.assert_allclose(logits, fc8, rtol=1e-4, atol=1e-4 * np.abs(fc8).max())


def _small_net(path, conv1_shape=(96, 3, 7, 7), stride=2, alpha=0.0005, v1=False):
  rng = np.random.default_rng(2)
  _caffemodel(path, [
      ("conv1", "Convolution", [rng.standard_normal(conv1_shape), np.zeros(conv1_shape[0])],
       {"convolution_param": {"num_output": conv1_shape[0], "kernel_size": [conv1_shape[2]],
                              "stride": [stride]}}),
      ("norm1", "LRN", [], {"lrn_param": {"local_size": 5, "alpha": alpha, "beta": 0.75,
                                          "k": 2.0}})], v1=v1)


@pytest.mark.parametrize("net, message", [
    (dict(conv1_shape=(96, 3, 11, 11), v1=True),  # AlexNet's conv1
     "layer 'conv1' has weights 96 x 3 x 11 x 11 and 96 biases, CNN-M-2048 needs 96 x 3 x 7 x 7"),
    (dict(stride=4), "layer 'conv1' has stride 4, CNN-M-2048's is 2"),
    (dict(alpha=0.0001), "layer 'norm1' has LRN alpha 0.0001"),
    (dict(), "no layer 'conv2' (CNN-M-2048 has conv1-conv5 and fc6-fc8; this net has conv1, "
             "norm1)"),
])
def test_another_network_is_refused_in_one_line_naming_the_layer(tmp_path, net, message):
  path = str(tmp_path / "other.caffemodel")
  _small_net(path, **net)
  with pytest.raises(caffe_conversion.ConversionError) as raised:
    caffe_conversion.convert(path)
  assert str(raised.value).startswith(f"{path}: ") and message in str(raised.value)
  assert "\n" not in str(raised.value)


@pytest.mark.slow
def test_files_that_are_not_caffe_nets_are_named(tmp_path):
  garbage = tmp_path / "garbage.caffemodel"
  garbage.write_bytes(np.random.default_rng(3).bytes(1000))
  with pytest.raises(ValueError, match=f"^{garbage}: "):  # a format or a conversion error
    caffe_conversion.convert(str(garbage))
  result = subprocess.run(
      [sys.executable, "-m", "two_stream_tf.convert_caffe", f"--caffemodel={garbage}",
       f"--output={tmp_path / 'out.npz'}"], cwd=REPO, capture_output=True, text=True,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), timeout=300)
  last = result.stderr.strip().splitlines()[-1]
  assert result.returncode == 1 and last.startswith(f"error: {garbage}: "), last
  assert not (tmp_path / "out.npz").exists()
