"""CNN-M-2048's ImageNet weights from the VGG group's Caffe release, as the `.npz` `--weights`
reads.

The release (`VGG_CNN_M_2048.caffemodel`, V1 format, and `VGG_mean.binaryproto`) was
trained on BGR images with a mean image subtracted. The conversion:

- convolution kernels O x I x H x W -> H x W x I x O, conv1's input channels BGR -> RGB
  (the model's normalisation feeds RGB);
- fc6's rows from Caffe's C x H x W flattening of pool5 (512 x 6 x 6 at 224 crops) to
  Keras' H x W x C; fc6, fc7 (and the ImageNet classifier fc8, for checking) transposed to
  in x out; Caffe's fc6/fc7 become the trunk's full6/full7;
- the mean image becomes its per-channel mean, RGB (`mean/rgb`), which the model's
  normalisation layer subtracts. A mean image cannot be kept: training crops 224 x 224
  windows at random places of larger frames, and flips them, so no fixed image lines up
  with a crop (Caffe itself subtracts it before cropping, at the crop's place); VGG's later
  models publish a per-channel mean for this reason. `mean_channels` also says how far the
  image is from its channel means (a smooth image: a few grey levels).

Anything that is not CNN-M-2048 (a layer missing, another shape, stride, padding, group,
LRN or pooling) is refused in one line naming the layer.
"""

import numpy as np

from two_stream_tf.models import caffe_format
from two_stream_tf.models import cnn_m

IMAGENET_CLASSES = 1000
POOL5 = (512, 6, 6)  # C x H x W at 224 x 224 inputs: what fc6 reads
# Caffe layer -> (its weights' shape, the .npz name).
_DENSE = {"fc6": ((cnn_m.FULL6, int(np.prod(POOL5))), "full6"),
          "fc7": ((cnn_m.FEATURES, cnn_m.FULL6), "full7"),
          "fc8": ((IMAGENET_CLASSES, cnn_m.FEATURES), "fc8")}
_LRN_LAYERS = ("norm1", "norm2")
_POOL_LAYERS = ("pool1", "pool2", "pool5")


class ConversionError(ValueError):
  """The Caffe files are not CNN-M-2048's."""


def _shape(shape):
  return " x ".join(str(d) for d in shape)


def _single(params, *names, default=None):
  """The value of a Caffe geometry parameter given as `name` or `name_h`/`name_w`."""
  for name in names:
    if params.get(name):
      values = set(params[name])
      return values.pop() if len(values) == 1 else tuple(params[name])
  return default


def _check_layer(layers, name, kind, weight_shape, where):
  layer = layers.get(name)
  if layer is None:
    raise ConversionError(f"{where}: no layer {name!r} (CNN-M-2048 has conv1-conv5 and "
                          f"fc6-fc8; this net has {', '.join(layers) or 'none'})")
  if layer.type != kind:
    raise ConversionError(f"{where}: layer {name!r} is {layer.type}, CNN-M-2048's is {kind}")
  if len(layer.blobs) != 2:
    raise ConversionError(f"{where}: layer {name!r} has {len(layer.blobs)} blobs, "
                          "CNN-M-2048's has 2 (weights and bias)")
  weights, bias = layer.blobs
  if kind == "InnerProduct":  # legacy blobs are 1 x 1 x out x in
    weights = weights.reshape(weights.shape[-2:]) if weights.ndim >= 2 else weights
  if weights.shape != weight_shape or bias.size != weight_shape[0]:
    raise ConversionError(f"{where}: layer {name!r} has weights {_shape(weights.shape)} and "
                          f"{bias.size} biases, CNN-M-2048 needs {_shape(weight_shape)} and "
                          f"{weight_shape[0]}")
  return weights, bias.reshape(-1)


def _check_convolution(layer, kernel, stride, pad, where):
  """The stride, padding and groups of a convolution, where the file states them."""
  params = layer.params.get("convolution", {})
  found = {"kernel": _single(params, "kernel_size", "kernel_h", default=kernel),
           "stride": _single(params, "stride", "stride_h", default=1),
           "pad": _single(params, "pad", "pad_h", default=0),
           "group": _single(params, "group", default=1)}
  wanted = {"kernel": kernel, "stride": stride, "pad": pad, "group": 1}
  for key, value in wanted.items():
    if found[key] != value:
      raise ConversionError(f"{where}: layer {layer.name!r} has {key} {found[key]}, "
                            f"CNN-M-2048's is {value}")


def _check_normalisation_and_pooling(layers, where):
  """LRN and max-pooling layers (they hold no weights), where the file states them."""
  for name in _LRN_LAYERS:
    params = layers[name].params.get("lrn") if name in layers else None
    for key, wanted in cnn_m.LRN.items():
      found = _single(params or {}, key)
      if found is not None and not np.isclose(found, wanted):
        raise ConversionError(f"{where}: layer {name!r} has LRN {key} {found:.6g}, "
                              f"CNN-M-2048's is {wanted:g}")
  for name in _POOL_LAYERS:
    params = layers[name].params.get("pooling") if name in layers else None
    if params:
      found = (caffe_format.POOL_METHODS.get(_single(params, "pool", default=0)),
               _single(params, "kernel_size", "kernel_h"), _single(params, "stride", "stride_h"))
      if found != ("MAX", cnn_m.POOL_SIZE, cnn_m.POOL_STRIDE):
        raise ConversionError(f"{where}: layer {name!r} pools {found[0]} {found[1]} / "
                              f"{found[2]}, CNN-M-2048's is MAX {cnn_m.POOL_SIZE} / "
                              f"{cnn_m.POOL_STRIDE}")


def convert_net(layers, where, include_classifier=True):
  """{npz name: array} of CNN-M-2048's Caffe `layers` (`caffe_format.Layer`s), in the
  layout of `two_stream_tf.models.weights.cnn_m_source`."""
  by_name = {layer.name: layer for layer in layers}
  _check_normalisation_and_pooling(by_name, where)
  arrays = {}
  channels = 3
  for name, filters, kernel, stride, pad in cnn_m.CONVOLUTIONS:
    weights, bias = _check_layer(by_name, name, "Convolution",
                                 (filters, channels, kernel, kernel), where)
    _check_convolution(by_name[name], kernel, stride, pad, where)
    channels = filters
    if name == "conv1":
      weights = weights[:, ::-1]  # BGR -> RGB input channels
    arrays[f"{name}/kernel"] = np.ascontiguousarray(weights.transpose(2, 3, 1, 0))
    arrays[f"{name}/bias"] = bias
  for caffe_name, (shape, npz_name) in _DENSE.items():
    if caffe_name == "fc8" and not include_classifier:
      continue
    weights, bias = _check_layer(by_name, caffe_name, "InnerProduct", shape, where)
    if caffe_name == "fc6":
      weights = weights.reshape(shape[0], *POOL5).transpose(0, 2, 3, 1).reshape(shape)
    arrays[f"{npz_name}/kernel"] = np.ascontiguousarray(weights.T)
    arrays[f"{npz_name}/bias"] = bias
  return {k: v.astype(np.float32, copy=False) for k, v in arrays.items()}


def mean_channels(mean_image, where):
  """(per-channel mean, and the image's standard deviation around it), RGB order, of a Caffe
  BGR mean image (1 x 3 x H x W or 3 x H x W)."""
  image = np.asarray(mean_image, np.float32)
  if image.ndim == 4 and image.shape[0] == 1:
    image = image[0]
  if image.ndim != 3 or image.shape[0] != 3:
    raise ConversionError(f"{where}: a mean image must be 3 x H x W (BGR), got "
                          f"{_shape(np.shape(mean_image))}")
  pixels = image.reshape(3, -1)[::-1]
  return pixels.mean(axis=1).astype(np.float32), pixels.std(axis=1).astype(np.float32)


def convert(caffemodel, mean=None, include_classifier=True):
  """The `.npz` arrays of a VGG_CNN_M_2048 `.caffemodel` (and its `.binaryproto` `mean`).

  Returns:
    ({npz name: array}, the mean image's spread per channel or None).
  Raises:
    ConversionError / caffe_format.CaffeFormatError: one line naming the file and the
      layer at fault.
  """
  _, layers = caffe_format.read_net(caffemodel)
  arrays = convert_net(layers, caffemodel, include_classifier)
  spread = None
  if mean is not None:
    arrays["mean/rgb"], spread = mean_channels(caffe_format.read_blob(mean), mean)
  return arrays, spread
