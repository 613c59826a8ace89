"""Multi-task losses: each head's cross-entropy averaged over its own dataset's samples only.

A head's loss is sum_i w_i * CE_i / sum_i w_i over the *global* batch (all replicas), with
w_i = 1 for samples of the head's dataset and 0 otherwise; a batch with none of them
gives 0, never NaN. The total is the sum over heads plus weight decay. On each replica
the local numerator is divided by the global denominator, so summing replicas'
gradients (what tf.distribute does) gives the gradient of the global loss.
"""

import keras
import tensorflow as tf


def cross_entropy(labels, probabilities):
  """-log p[label] per sample, from softmax outputs.

  Keras computes it from the softmax's logits when the tensor carries them (a model's
  softmax output does): clipping probabilities instead would give a saturated, confidently
  wrong head zero gradient, and training would stall there (seen on RGB from scratch).
  """
  return keras.losses.sparse_categorical_crossentropy(tf.cast(labels, tf.int32), probabilities)


def head_statistics(labels, weights, outputs):
  """Per head, on this replica: (weighted cross-entropy sum, weight sum, weighted hits)."""
  stats = {}
  for name, probabilities in outputs.items():
    w = tf.cast(weights[name], tf.float32)
    hits = tf.cast(tf.equal(tf.argmax(probabilities, axis=-1, output_type=tf.int32),
                            tf.cast(labels[name], tf.int32)), tf.float32)
    stats[name] = (tf.reduce_sum(w * cross_entropy(labels[name], probabilities)),
                   tf.reduce_sum(w), tf.reduce_sum(w * hits))
  return stats


def head_losses(stats, global_weights):
  """{head: this replica's share of the head's masked mean loss}."""
  return {name: tf.math.divide_no_nan(stats[name][0], global_weights[name]) for name in stats}


def weight_decay(variables, rate):
  """Caffe's L2 weight decay, rate / 2 * sum of squared kernels (biases are not decayed)."""
  kernels = [tf.cast(v, tf.float32) for v in variables if v.name == "kernel"]
  if not kernels or rate == 0:
    return tf.constant(0.0)
  return 0.5 * rate * tf.add_n([tf.reduce_sum(tf.square(k)) for k in kernels])
