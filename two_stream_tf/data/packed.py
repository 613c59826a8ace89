"""Training batches as decoded uint8 JPEG bytes, expanded to network input on the accelerator.

RGB crops and flow and bidirectional stacks leave the training pipeline as the uint8 their
JPEGs decode to, with what turns them into network input: for flow each channel's step
and centre (x negated for a flipped sample), for RGB the colour jitter; and the sample's
flip. A quarter of float32's bytes to produce, batch and copy to the device, and no host
pass over them after decoding: on one core, converting flow batches to float32 on the host
measured ~30% fewer samples/s, moving flow planes to the channel axis there ~1.8 ms a
sample, and flipping, jittering and converting RGB crops there ~0.4 ms of a 1.1 ms sample.
`to_network_input`, run inside the training step, makes the network input of them.
"""

import numpy as np
import tensorflow as tf

from two_stream_tf.data import decoding

QUANTIZED_FLOW = "quantized_flow"
RGB = "rgb"

# AlexNet's PCA colour augmentation: eigenvalues and eigenvectors (columns) of the
# ImageNet RGB covariance on a [0, 1] scale; alpha ~ N(0, 0.1).
_PCA_EIGENVALUES = np.float32([0.2175, 0.0188, 0.0045])
_PCA_EIGENVECTORS = np.float32([[-0.5675, 0.7192, 0.4009],
                                [-0.5808, -0.0045, -0.8140],
                                [-0.5836, -0.6948, 0.4203]])
JITTER_STDDEV = 0.1


def rgb_jitter_offset(alpha):
  """The RGB offset (0..255 scale) that PCA jitter with coefficients `alpha` [..., 3] adds."""
  return tf.linalg.matvec(tf.constant(_PCA_EIGENVECTORS), alpha * _PCA_EIGENVALUES) * 255.0


def pack_flow(planes, step, centre, subtract_mean, flip):
  """One sample's quantised stack: 2L x h x w uint8 planes, per-channel step and centre
  (x negated if flipped: `decoding.quantization_maps`), and whether to mirror it."""
  return {QUANTIZED_FLOW: planes, "step": step, "centre": centre,
          "subtract_mean": tf.constant(subtract_mean), "flip": flip}


def pack_rgb(crop, flip, jitter):
  """One sample's h x w x 3 uint8 RGB crop, whether to mirror it, and its jitter alpha [3]
  (zeros: none)."""
  return {RGB: crop, "flip": flip, "jitter": jitter}


def _mirrored(images, flip):
  return tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)


def to_network_input(inputs):
  """A training batch's inputs -> float32 network input; float inputs pass as they are.

  Args:
    inputs: B x h x w x C float32, or a dict from `pack_flow` or `pack_rgb`, batched.
  Returns:
    float32 B x h x w x C: RGB 0..255 (mirrored and jittered as packed), or flow in pixels
    (mean-subtracted if so packed, mirrored with x negated where flipped).
  """
  if not isinstance(inputs, dict):
    return inputs
  if RGB in inputs:
    rgb = _mirrored(tf.cast(inputs[RGB], tf.float32), inputs["flip"])
    return tf.clip_by_value(rgb + rgb_jitter_offset(inputs["jitter"])[:, None, None, :],
                            0.0, 255.0)
  flow = decoding.dequantize(decoding.channels_last(inputs[QUANTIZED_FLOW]), inputs["step"],
                             inputs["centre"], inputs["subtract_mean"])
  return _mirrored(flow, inputs["flip"])


def merge_segments(inputs):
  """A batch of B samples of K snippets each -> the B x K snippets as one batch, video by
  video: every tensor's leading B x K axes become one (what `to_network_input` takes)."""
  return tf.nest.map_structure(
      lambda t: tf.reshape(t, tf.concat([[-1], tf.shape(t)[2:]], axis=0)), inputs)
