"""TSN's segmental consensus (Wang et al. 2016): one network scores the K snippets of each
video, and each head's softmax is taken over the mean of their logits."""

import keras

from two_stream_tf.models import builder


def segmental_consensus(model, num_segments):
  """A model of `model`'s weights taking B x K snippets, with one output per video.

  Args:
    model: a two-stream network (`builder.build_model`): B x h x w x C -> {head: softmax}.
    num_segments: K.
  Returns:
    A functional `keras.Model`: B x K x h x w x C -> {head: B x classes softmax of the
    mean over the K snippets of `model`'s logits}, float32. It shares `model`'s layers:
    training it trains `model`, which is what is checkpointed, evaluated and exported.
  """
  shape = tuple(model.input.shape[1:])
  snippets = keras.Input((num_segments,) + shape, name=model.input.name)
  logits = builder.logits_model(model)(keras.ops.reshape(snippets, (-1,) + shape))
  outputs = {}
  for head, head_logits in logits.items():
    per_video = keras.ops.reshape(head_logits, (-1, num_segments, head_logits.shape[-1]))
    outputs[head] = keras.layers.Activation("softmax", dtype="float32", name=head)(
        keras.ops.mean(per_video, axis=1))
  return keras.Model(snippets, outputs, name=f"{model.name}_consensus_of_{num_segments}")
