"""Two-stream models: input normalisation -> trunk -> one softmax head per dataset.

    model = build_model("temporal", {"ucf101": 101, "hmdb51": 51})
    model(flow_stacks)  # {'ucf101': B x 101, 'hmdb51': B x 51} probabilities, float32

Inputs are what the pipelines of `two_stream_tf.data` produce: RGB in [0, 255]
(`rgb`, crop x crop x 3) or flow in pixels (`flow`, crop x crop x 2L); each trunk's
own input convention is applied inside the model, so exported models take the same.
"""

import dataclasses
import warnings

import keras

from two_stream_tf import streams
from two_stream_tf.models import cnn_m
from two_stream_tf.models import layers
from two_stream_tf.models import weights as weights_lib

# Caffe's ImageNet mean, RGB order.
_IMAGENET_MEAN_RGB = (123.68, 116.779, 103.939)
_FLOW_BOUND = 20.0  # px: flow in +-20 is put on the range each trunk's RGB input has.


@dataclasses.dataclass(frozen=True)
class Trunk:
  """How to build one trunk and what input it expects."""
  constructor: object  # keras.applications function, or None for CNN-M-2048
  rgb_scale: float
  rgb_offset: tuple
  reverse_channels: bool  # weights trained on BGR input
  flow_scale: float
  min_crop_size: int  # smaller inputs vanish in the trunk's pooling


TRUNKS = {
    "cnn_m_2048": Trunk(None, 1.0, tuple(-m for m in _IMAGENET_MEAN_RGB), False, 1.0, 41),
    # keras.applications.resnet50.preprocess_input: 'caffe' mode (BGR, mean subtracted).
    "resnet50": Trunk(keras.applications.ResNet50, 1.0,
                      tuple(-m for m in _IMAGENET_MEAN_RGB[::-1]), True, 127.5 / _FLOW_BOUND,
                      32),
    # keras.applications.inception_v3.preprocess_input: 'tf' mode, [-1, 1].
    "inception_v3": Trunk(keras.applications.InceptionV3, 1 / 127.5, (-1.0,) * 3, False,
                          1 / _FLOW_BOUND, 75),
}
DEFAULT_DROPOUT = {"spatial": 0.5, "temporal": 0.9}  # the paper's


def check_crop_size(trunk, crop_size):
  """Raises ValueError if `trunk` cannot take `crop_size` x `crop_size` inputs."""
  smallest = TRUNKS[trunk].min_crop_size
  if crop_size < smallest:
    raise ValueError(f"{trunk} needs crops of at least {smallest} pixels, got {crop_size}")


def _normalization(trunk, stream, rgb_mean):
  if stream == "spatial":
    offset = trunk.rgb_offset if rgb_mean is None else tuple(-m for m in rgb_mean)
    return layers.InputNormalization(trunk.rgb_scale, offset, trunk.reverse_channels,
                                     name="normalization")
  return layers.InputNormalization(trunk.flow_scale, 0.0, name="normalization")


def _cnn_m_trunk(stream, input_shape, weights, dropout, initialization):
  model = cnn_m.cnn_m_2048(input_shape, lrn_after_conv2=stream == "spatial", dropout=dropout,
                           name="trunk", initialization=initialization)
  if weights is not None:
    if weights == "imagenet":
      raise weights_lib.WeightsError(
          "CNN-M-2048 has no Keras download: pass a local weights file (.npz or .weights.h5)")
    weights_lib.transfer(weights_lib.cnn_m_source(weights, input_shape[0]), model, weights)
  return model


def _frozen_statistics(base):
  """`base` with every BatchNormalization layer but the first normalising with its moving
  statistics, in training too (TSN's partial BN); weights as they were."""
  norms = [layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)]

  def clone(layer):
    kind = (layers.FrozenStatisticsBatchNormalization if layer in norms[1:]
            else layer.__class__)
    return kind.from_config(layer.get_config())
  frozen = keras.models.clone_model(base, clone_function=clone)
  frozen.set_weights(base.get_weights())
  return frozen


def _application_trunk(trunk, input_shape, weights, dropout, partial_bn):
  with warnings.catch_warnings():
    # Flow stacks have 2L channels by design; the weights come by cross-modality transfer.
    warnings.filterwarnings("ignore", message="This model usually expects 1 or 3 input channels")
    base = trunk.constructor(include_top=False, weights=None, input_shape=input_shape,
                             pooling="avg")
  if partial_bn:
    base = _frozen_statistics(base)
  if weights is not None:
    source = weights_lib.application_source(trunk.constructor, weights, input_shape[0])
    weights_lib.transfer(source, base, weights)
  features = keras.layers.Dropout(dropout, name="dropout")(base.output)
  return keras.Model(base.input, features, name="trunk")


def build_model(stream, heads, trunk="cnn_m_2048", crop_size=streams.CROP_SIZE,
                stack_length=streams.STACK_LENGTH, dropout=None, weights=None,
                train_last_layer_only=False, rgb_mean=None,
                initialization=cnn_m.DEFAULT_INITIALIZATION, partial_bn=False):
  """A two-stream network with one softmax head per dataset.

  Args:
    stream: 'spatial' (RGB frame) or 'temporal' (flow stack).
    heads: {dataset name: number of classes}, in output order; one entry for
      single-dataset training, several for multi-task.
    trunk: 'cnn_m_2048' (the paper's), 'resnet50' or 'inception_v3'.
    crop_size: input height and width.
    stack_length: L, flow fields per stack (temporal input has 2L channels).
    dropout: rate after full6/full7 (CNN-M) or after pooling; default 0.5 spatial, 0.9 temporal.
    weights: None (from scratch), 'imagenet' (keras.applications download), or a local
      file: CNN-M-2048 `.npz`/`.weights.h5` (see `weights.cnn_m_source`) or a
      keras.applications no-top weights file. Temporal trunks get them by
      cross-modality initialisation.
    train_last_layer_only: freeze everything but the heads (needs `weights`).
    rgb_mean: (R, G, B) the spatial CNN-M-2048 subtracts (`weights.cnn_m_mean` of its
      weights); None: Caffe's ImageNet mean.
    initialization: how CNN-M-2048 and its heads start, 'keras' (Glorot; the default) or
      'caffe' (the paper's Caffe defaults, `cnn_m.INITIALIZATIONS`); keras.applications
      trunks and their heads start as Keras does.
    partial_bn: TSN's partial batch normalisation: every BatchNormalization layer of the
      trunk but the first keeps its (pre-trained) mean and variance in training; gamma
      and beta train. Inference is unchanged. keras.applications trunks only.
  Returns:
    A functional `keras.Model` with dict outputs {dataset: B x classes softmax, float32}.
  """
  streams.check_stream(stream)
  if trunk not in TRUNKS:
    raise ValueError(f"unknown trunk {trunk!r}; choose from {sorted(TRUNKS)}")
  if not heads or any(n < 1 for n in heads.values()):
    raise ValueError(f"heads must map each dataset to its number of classes, got {heads!r}")
  if stack_length < 1:
    raise ValueError(f"stack_length must be at least 1, got {stack_length}")
  check_crop_size(trunk, crop_size)
  if train_last_layer_only and weights is None:
    raise ValueError("train_last_layer_only needs pre-trained weights: a frozen random "
                     "trunk learns nothing")
  if rgb_mean is not None and (trunk != "cnn_m_2048" or stream != "spatial"):
    raise ValueError("rgb_mean is for the spatial CNN-M-2048 (other trunks normalise as "
                     "their keras.applications weights do)")
  if partial_bn and TRUNKS[trunk].constructor is None:
    raise ValueError(f"partial_bn: {trunk} has no batch normalisation (the keras.applications "
                     "trunks have)")
  dropout = DEFAULT_DROPOUT[stream] if dropout is None else dropout
  spec = TRUNKS[trunk]
  input_shape = (crop_size, crop_size, streams.input_channels(stream, stack_length))
  if spec.constructor is None:
    body = _cnn_m_trunk(stream, input_shape, weights, dropout, initialization)
    head_initializers = cnn_m.initializers("classifier", initialization)
  else:
    body = _application_trunk(spec, input_shape, weights, dropout, partial_bn)
    head_initializers = {}
  body.trainable = not train_last_layer_only

  inputs = keras.Input(input_shape, name="rgb" if stream == "spatial" else "flow")
  features = body(_normalization(spec, stream, rgb_mean)(inputs))
  outputs = {}
  for name, classes in heads.items():
    logits = keras.layers.Dense(classes, dtype="float32", name=f"{name}_logits",
                                **head_initializers)(features)
    outputs[name] = keras.layers.Activation("softmax", dtype="float32", name=name)(logits)
  return keras.Model(inputs, outputs, name=f"{stream}_{trunk}")


def logits_model(model):
  """`model` (`build_model`'s) with each head's logits as its outputs, sharing its layers."""
  return keras.Model(model.input, {head: model.get_layer(f"{head}_logits").output
                                   for head in model.output}, name=f"{model.name}_logits")


def restrict_heads(model, own_classes):
  """`model` scoring only the first `own_classes[head]` classes of each head given: its
  softmax over their logits (the head's classes given that the answer is one of them).

  A head trained with another dataset's classes added after its own
  (`two_stream_tf.data.added_classes`) is tested on its own dataset, where an added class is
  never the answer. Other heads and the weights are `model`'s own.
  """
  outputs = dict(model.output)
  for head, count in own_classes.items():
    logits = model.get_layer(f"{head}_logits").output
    outputs[head] = keras.layers.Activation("softmax", dtype="float32",
                                            name=f"{head}_own_classes")(logits[:, :count])
  return keras.Model(model.input, outputs, name=model.name)
