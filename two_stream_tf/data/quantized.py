"""Temporal training batches as quantised flow, expanded to pixels on the accelerator.

Flow and bidirectional stacks leave the training pipeline as their JPEGs' uint8 bytes
with each channel's step and centre: a quarter of float32's bytes to produce, batch and
copy to the device (on one core, converting the same batches to float32 on the host
measured ~30% fewer samples/s). `to_network_input`, run inside the training step, turns
them into the flow in pixels that the network takes.
"""

import tensorflow as tf

from two_stream_tf.data import decoding

QUANTIZED_FLOW = "quantized_flow"


def pack(q, step, centre, subtract_mean):
  """One sample's quantised stack (h x w x 2L uint8, per-channel step and centre)."""
  return {QUANTIZED_FLOW: q, "step": step, "centre": centre,
          "subtract_mean": tf.constant(subtract_mean)}


def to_network_input(inputs):
  """A training batch's inputs -> float32 network input; float inputs pass as they are.

  Args:
    inputs: B x h x w x C float32, or a dict from `pack`, batched.
  Returns:
    float32 B x h x w x C: RGB 0..255, or flow in pixels (mean-subtracted if so packed).
  """
  if not isinstance(inputs, dict):
    return inputs
  return decoding.dequantize(inputs[QUANTIZED_FLOW], inputs["step"], inputs["centre"],
                             inputs["subtract_mean"])
