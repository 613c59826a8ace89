"""Loading pre-trained trunk weights, with cross-modality initialisation for flow trunks.

A flow trunk (2L input channels) takes RGB ImageNet weights as TSN does: the first
convolution's filters are averaged over their 3 RGB input channels and the average is
replicated over the 2L flow channels; every other layer is copied as is. Any other
difference in shape is an error that names the layer: nothing is ever skipped.
"""

import os

import numpy as np

from two_stream_tf.models import cnn_m


class WeightsError(ValueError):
  """Weights cannot be loaded into a model as asked."""


def cross_modality_kernel(rgb_kernel, channels):
  """kh x kw x 3 x filters RGB kernel -> kh x kw x channels x filters (mean over RGB,
  replicated)."""
  mean = np.mean(rgb_kernel, axis=2, keepdims=True)
  return np.repeat(mean, channels, axis=2).astype(rgb_kernel.dtype)


def weighted_layers(model):
  """(name, [arrays]) of the layers of `model` that hold weights, in graph order."""
  return [(layer.name, layer.get_weights()) for layer in model.layers if layer.weights]


def transfer(source, target, source_name):
  """Copies `source` [(name, arrays)] into the weighted layers of `target`, in order.

  A kernel of 3 input channels meets one of C != 3 channels only at the first
  convolution: it gets the cross-modality kernel. Returns the number of layers set.
  """
  target_layers = [layer for layer in target.layers if layer.weights]
  if len(source) != len(target_layers):
    raise WeightsError(f"{source_name}: {len(source)} layers with weights, but "
                       f"{target.name} has {len(target_layers)}")
  for position, ((name, arrays), layer) in enumerate(zip(source, target_layers)):
    shapes = [tuple(v.shape) for v in layer.weights]
    if [a.shape for a in arrays] != shapes:
      first_conv = position == 0 and len(shapes[0]) == 4
      if not (first_conv and arrays[0].shape[2] == 3 and arrays[0].shape[:2] == shapes[0][:2]
              and arrays[0].shape[3] == shapes[0][3]):
        raise WeightsError(f"{source_name}: layer {name!r} has shapes "
                           f"{[a.shape for a in arrays]}, {target.name}/{layer.name} needs "
                           f"{shapes}")
      arrays = [cross_modality_kernel(arrays[0], shapes[0][2])] + list(arrays[1:])
    layer.set_weights(arrays)
  return len(target_layers)


def _require_file(path):
  if not os.path.isfile(path):
    raise WeightsError(f"weights file not found: {path}")


def cnn_m_source(path, crop_size):
  """[(name, arrays)] of CNN-M-2048 trunk weights from a local file.

  `.npz`: arrays `<layer>/kernel` and `<layer>/bias` for conv1..conv5, full6, full7 in Keras layout
  (conv kernels h x w x in x out, RGB input order; dense in x out); other arrays (fc8, the ImageNet
  classifier; `mean/rgb`: `cnn_m_mean`) are not trunk weights. `.weights.h5`: saved by
  `save_weights` from the spatial trunk `cnn_m.cnn_m_2048((crop, crop, 3))`.
  """
  _require_file(path)
  if path.endswith(".npz"):
    with np.load(path, allow_pickle=False) as data:
      source = []
      for name in cnn_m.WEIGHT_LAYERS:
        missing = [k for k in (f"{name}/kernel", f"{name}/bias") if k not in data.files]
        if missing:
          raise WeightsError(f"{path}: no array {missing[0]!r}")
        source.append((name, [data[f"{name}/kernel"], data[f"{name}/bias"]]))
    return source
  if path.endswith(".weights.h5"):
    rgb = cnn_m.cnn_m_2048((crop_size, crop_size, 3))
    try:
      rgb.load_weights(path)
    except ValueError as error:
      raise WeightsError(f"{path}: not CNN-M-2048 trunk weights for {crop_size} crops "
                         f"({error})") from error
    return weighted_layers(rgb)
  raise WeightsError(f"{path}: CNN-M-2048 weights must be a .npz or .weights.h5 file")


def cnn_m_mean(path):
  """The RGB mean a CNN-M-2048 `.npz` was trained with (`mean/rgb`, as the Caffe conversion
  writes it), or None if it does not say."""
  if not (path and path.endswith(".npz")):
    return None
  _require_file(path)
  with np.load(path, allow_pickle=False) as data:
    if "mean/rgb" not in data.files:
      return None
    mean = data["mean/rgb"]
  if mean.shape != (3,):
    raise WeightsError(f"{path}: 'mean/rgb' must hold 3 values (R, G, B), has shape "
                       f"{mean.shape}")
  return tuple(float(v) for v in mean)


def application_source(constructor, weights, crop_size):
  """[(name, arrays)] of an RGB `keras.applications` trunk with `weights` ('imagenet' or a file)."""
  if weights != "imagenet":
    _require_file(weights)
  try:
    rgb = constructor(include_top=False, weights=weights, input_shape=(crop_size, crop_size, 3),
                      pooling="avg")
  except ValueError as error:
    raise WeightsError(f"{weights}: cannot be loaded into {constructor.__name__} without its "
                       f"top ({error})") from error
  return weighted_layers(rgb)


def save_npz(model, path):
  """Writes a CNN-M-2048 trunk's weights in the `.npz` layout `cnn_m_source` reads."""
  arrays = {}
  for name in cnn_m.WEIGHT_LAYERS:
    kernel, bias = model.get_layer(name).get_weights()
    arrays[f"{name}/kernel"], arrays[f"{name}/bias"] = kernel, bias
  np.savez(path, **arrays)
