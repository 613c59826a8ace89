"""Custom Keras layers of the two-stream models, each serialisable (`get_config`)."""

import keras
import numpy as np
import tensorflow as tf


@keras.saving.register_keras_serializable(package="two_stream_tf")
class LocalResponseNormalization(keras.layers.Layer):
  """Cross-channel LRN as in AlexNet and Caffe (Keras 3 has none).

  b_c = a_c / (bias + alpha * sum_{|c' - c| <= depth_radius} a_c'^2) ** beta, which is
  Caffe's LRN with local_size = 2 * depth_radius + 1, k = bias and
  alpha_caffe = alpha * local_size (Caffe divides its alpha by local_size).
  """

  def __init__(self, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75, **kwargs):
    super().__init__(**kwargs)
    self.depth_radius = depth_radius
    self.bias = bias
    self.alpha = alpha
    self.beta = beta

  @classmethod
  def from_caffe(cls, local_size, alpha, beta, k, **kwargs):
    """The layer for Caffe's LRN parameters."""
    return cls(depth_radius=local_size // 2, bias=k, alpha=alpha / local_size, beta=beta,
               **kwargs)

  def call(self, inputs):
    # In float32 even under mixed precision: a sum of squares overflows float16 sooner,
    # and XLA rejects TF's LRN on float16 ("floating point types of different precisions").
    outputs = tf.nn.local_response_normalization(
        tf.cast(inputs, tf.float32), depth_radius=self.depth_radius, bias=self.bias,
        alpha=self.alpha, beta=self.beta)
    return tf.cast(outputs, inputs.dtype)

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    return {**super().get_config(), "depth_radius": self.depth_radius, "bias": self.bias,
            "alpha": self.alpha, "beta": self.beta}


@keras.saving.register_keras_serializable(package="two_stream_tf")
class InputNormalization(keras.layers.Layer):
  """y = x[..., channel order] * scale + offset, with per-channel scale and offset.

  Puts each trunk's input convention (mean subtraction, BGR order, [-1, 1] range, flow
  scale) inside the model, so pipelines and exported models feed raw RGB in [0, 255]
  and flow in pixels.
  """

  def __init__(self, scale=1.0, offset=0.0, reverse_channels=False, **kwargs):
    super().__init__(**kwargs)
    self.scale = np.asarray(scale, np.float32).tolist()
    self.offset = np.asarray(offset, np.float32).tolist()
    self.reverse_channels = reverse_channels

  def call(self, inputs):
    if self.reverse_channels:
      inputs = inputs[..., ::-1]
    scale = tf.constant(self.scale, dtype=inputs.dtype)
    offset = tf.constant(self.offset, dtype=inputs.dtype)
    return inputs * scale + offset

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    return {**super().get_config(), "scale": self.scale, "offset": self.offset,
            "reverse_channels": self.reverse_channels}


@keras.saving.register_keras_serializable(package="two_stream_tf")
class FrozenStatisticsBatchNormalization(keras.layers.BatchNormalization):
  """Batch normalisation that always normalises with its moving mean and variance and
  never updates them, in training too; gamma and beta still train (TSN's partial BN)."""

  def call(self, inputs, training=None, mask=None):
    return super().call(inputs, training=False, mask=mask)
