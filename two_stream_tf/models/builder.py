"""Two-stream models: input normalisation -> trunk -> one softmax head per dataset.

    model = build_model("temporal", {"ucf101": 101, "hmdb51": 51})
    model(flow_stacks)  # {'ucf101': B x 101, 'hmdb51': B x 51} probabilities, float32

Inputs are what the pipelines of `two_stream_tf.data` produce: RGB in [0, 255]
(`rgb`, crop x crop x 3) or flow in pixels (`flow`, crop x crop x 2L); each trunk's
own input convention is applied inside the model, so exported models take the same.
"""

import warnings

import keras

from two_stream_tf import streams
from two_stream_tf.models import cnn_m
from two_stream_tf.models import layers
from two_stream_tf.models import weights as weights_lib
from two_stream_tf.models.config import DEFAULT_DROPOUT
from two_stream_tf.models.config import TRUNKS
from two_stream_tf.models.config import ModelConfig
from two_stream_tf.models.config import check_crop_size


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


def build_model(stream: str, heads: dict[str, int], model: ModelConfig = ModelConfig(), *,
                crop_size: int = streams.CROP_SIZE, stack_length: int = streams.STACK_LENGTH,
                rgb_mean: tuple[float, float, float] | None = None) -> keras.Model:
  """A two-stream network with one softmax head per dataset.

  Args:
    stream: 'spatial' (RGB frame) or 'temporal' (flow stack).
    heads: {dataset name: number of classes}, in output order; one entry for
      single-dataset training, several for multi-task.
    model: a `ModelConfig`: trunk, weights, what trains, initialisation, partial BN,
      dropout (its `init_from` is loaded by the training run, not here).
    crop_size: input height and width.
    stack_length: L, flow fields per stack (temporal input has 2L channels).
    rgb_mean: (R, G, B) the spatial CNN-M-2048 subtracts (`weights.cnn_m_mean` of its
      weights); None: Caffe's ImageNet mean.
  Returns:
    A functional `keras.Model` with dict outputs {dataset: B x classes softmax, float32}.
  """
  streams.check_stream(stream)
  if not heads or any(n < 1 for n in heads.values()):
    raise ValueError(f"heads must map each dataset to its number of classes, got {heads!r}")
  if stack_length < 1:
    raise ValueError(f"stack_length must be at least 1, got {stack_length}")
  check_crop_size(model.trunk, crop_size)
  if rgb_mean is not None and (model.trunk != "cnn_m_2048" or stream != "spatial"):
    raise ValueError("rgb_mean is for the spatial CNN-M-2048 (other trunks normalise as "
                     "their keras.applications weights do)")
  dropout = DEFAULT_DROPOUT[stream] if model.dropout is None else model.dropout
  spec = TRUNKS[model.trunk]
  input_shape = (crop_size, crop_size, streams.input_channels(stream, stack_length))
  if spec.constructor is None:
    body = _cnn_m_trunk(stream, input_shape, model.weights, dropout, model.initialization)
    head_initializers = cnn_m.initializers("classifier", model.initialization)
  else:
    body = _application_trunk(spec, input_shape, model.weights, dropout, model.partial_bn)
    head_initializers = {}
  body.trainable = not model.last_layer_only

  inputs = keras.Input(input_shape, name="rgb" if stream == "spatial" else "flow")
  features = body(_normalization(spec, stream, rgb_mean)(inputs))
  outputs = {}
  for name, classes in heads.items():
    logits = keras.layers.Dense(classes, dtype="float32", name=f"{name}_logits",
                                **head_initializers)(features)
    outputs[name] = keras.layers.Activation("softmax", dtype="float32", name=name)(logits)
  return keras.Model(inputs, outputs, name=f"{stream}_{model.trunk}")


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
