"""CNN-M-2048 (Chatfield et al. 2014) as the two-stream paper uses it, in the functional API.

Layer sizes, padding and pooling follow the Caffe reference model (VGG_CNN_M_2048):

  conv1  96 x 7x7 /2, pad 0, ReLU, LRN, max-pool 3x3 /2
  conv2 256 x 5x5 /2, pad 1, ReLU, LRN (spatial stream only), max-pool 3x3 /2
  conv3 512 x 3x3 /1, pad 1, ReLU
  conv4 512 x 3x3 /1, pad 1, ReLU
  conv5 512 x 3x3 /1, pad 1, ReLU, max-pool 3x3 /2
  full6 4096, ReLU, dropout
  full7 2048, ReLU, dropout

Caffe rounds pooling output sizes up; `_max_pool` pads to match, so a 224 input gives
6 x 6 x 512 = 18432 inputs to full6, as in the Caffe model.
"""

import math

import keras

from two_stream_tf.models import layers

# The convolutions: (name, filters, kernel, stride, zero padding), as in the Caffe model.
CONVOLUTIONS = (("conv1", 96, 7, 2, 0), ("conv2", 256, 5, 2, 1), ("conv3", 512, 3, 1, 1),
                ("conv4", 512, 3, 1, 1), ("conv5", 512, 3, 1, 1))
FULL6, FEATURES = 4096, 2048
# Layers whose weights make up the trunk, in order (the names weight files use).
WEIGHT_LAYERS = tuple(c[0] for c in CONVOLUTIONS) + ("full6", "full7")
POOL_SIZE, POOL_STRIDE = 3, 2  # every max-pooling
LRN = {"local_size": 5, "alpha": 5e-4, "beta": 0.75, "k": 2.0}  # Caffe's parameters
INITIALIZATIONS = ("caffe", "keras")
# Keras' (Glorot uniform kernels, zero biases): the one of the two whose first steps at lr 1e-2
# neither diverge nor stall at chance (issue 36; measurements in docs/networks_and_training.md,
# Models). Caffe's bias-1 full6/full7 start every ReLU open, the features a large
# near-constant vector, and the classifier's steps on it swing every logit together.
DEFAULT_INITIALIZATION = "keras"
# How Caffe's reference ImageNet models start (BVLC CaffeNet's train_val.prototxt): Gaussian
# weights, std 0.01 for convolutions and classifiers and 0.005 for the wide fully connected
# layers; biases 1 where a ReLU must start open (conv2, conv4, conv5, fc6, fc7), else 0.
CLASSIFIER_STD = 0.01
_CAFFE_INIT = {"conv1": (0.01, 0.0), "conv2": (0.01, 1.0), "conv3": (0.01, 0.0),
               "conv4": (0.01, 1.0), "conv5": (0.01, 1.0), "full6": (0.005, 1.0),
               "full7": (0.005, 1.0)}


def _max_pool(x, name):
  """3x3 /2 max pooling with Caffe's ceil-mode output size."""
  pads = []
  for size in x.shape[1:3]:
    out = math.ceil((size - POOL_SIZE) / POOL_STRIDE) + 1
    pads.append((out - 1) * POOL_STRIDE + POOL_SIZE - size)
  if any(pads):
    # Inputs are ReLU outputs (>= 0), so zero padding never wins the max: it equals
    # Caffe's implicit -inf border.
    x = keras.layers.ZeroPadding2D(((0, pads[0]), (0, pads[1])), name=f"{name}_ceil_pad")(x)
  return keras.layers.MaxPooling2D(POOL_SIZE, strides=POOL_STRIDE, name=name)(x)


def initializers(name, initialization):
  """Keyword arguments giving layer `name` the `initialization` ('caffe' or 'keras')."""
  if initialization not in INITIALIZATIONS:
    raise ValueError(f"unknown initialization {initialization!r}; choose from "
                     f"{INITIALIZATIONS}")
  if initialization == "keras":
    return {}
  std, bias = _CAFFE_INIT.get(name, (CLASSIFIER_STD, 0.0))
  return {"kernel_initializer": keras.initializers.RandomNormal(stddev=std),
          "bias_initializer": keras.initializers.Constant(bias)}


def _conv(x, filters, kernel, stride, pad, name, initialization):
  if pad:
    x = keras.layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
  return keras.layers.Conv2D(filters, kernel, strides=stride, activation="relu", name=name,
                             **initializers(name, initialization))(x)


def cnn_m_2048(input_shape, lrn_after_conv2=True, dropout=0.5, name="cnn_m_2048",
               initialization=DEFAULT_INITIALIZATION):
  """The CNN-M-2048 trunk: image or flow stack -> 2048 full7 features (after dropout).

  Args:
    input_shape: (crop, crop, channels): 3 for RGB, 2L for a flow stack.
    lrn_after_conv2: True for the spatial net; the temporal net drops it (paper, Sec. 5).
    dropout: dropout rate after full6 and full7.
    name: model name.
    initialization: 'keras' (Glorot, the default) or 'caffe' (the paper's Caffe start, see
      `INITIALIZATIONS`).
  Returns:
    A `keras.Model`.
  """
  inputs = keras.Input(input_shape, name="input")
  x = inputs
  for conv, filters, kernel, stride, pad in CONVOLUTIONS:
    x = _conv(x, filters, kernel, stride, pad, conv, initialization)
    if conv == "conv1" or (conv == "conv2" and lrn_after_conv2):
      x = layers.LocalResponseNormalization.from_caffe(**LRN, name=f"norm{conv[-1]}")(x)
    if conv in ("conv1", "conv2", "conv5"):
      x = _max_pool(x, f"pool{conv[-1]}")
  x = keras.layers.Flatten(name="flatten")(x)
  x = keras.layers.Dense(FULL6, activation="relu", name="full6",
                         **initializers("full6", initialization))(x)
  x = keras.layers.Dropout(dropout, name="drop6")(x)
  x = keras.layers.Dense(FEATURES, activation="relu", name="full7",
                         **initializers("full7", initialization))(x)
  x = keras.layers.Dropout(dropout, name="drop7")(x)
  return keras.Model(inputs, x, name=name)
