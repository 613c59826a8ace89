"""Training input on tf.data service workers, for hosts with too few cores to decode it."""

import tensorflow as tf


def distribute(dataset, address):
  """`dataset` produced by the workers of the dispatcher at `address`.

  Every worker runs the whole pipeline (reading, decoding, augmentation, batching) with
  its own random stream (build it with `training_dataset(seed=None)`) and needs the
  records at the same paths; each trainer gets its own job, fed by all the workers.
  """
  distributed = dataset.apply(tf.data.experimental.service.distribute(
      processing_mode=tf.data.experimental.service.ShardingPolicy.OFF,
      service=address))
  return distributed.prefetch(tf.data.AUTOTUNE)
