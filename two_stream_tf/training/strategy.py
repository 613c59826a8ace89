"""tf.distribute strategies by name, and which worker writes checkpoints and summaries."""

import json
import os

import tensorflow as tf

DISTRIBUTIONS = ("none", "mirrored", "multi_worker")


def make_strategy(distribution):
  """'none' (the default strategy), 'mirrored' (all local GPUs, or the CPU) or
  'multi_worker' (the cluster in the TF_CONFIG environment variable)."""
  if distribution == "none":
    return tf.distribute.get_strategy()
  if distribution == "mirrored":
    return tf.distribute.MirroredStrategy()
  if distribution == "multi_worker":
    if "TF_CONFIG" not in os.environ:
      raise ValueError("--distribution=multi_worker needs the TF_CONFIG environment variable "
                       "(the cluster and this worker's task)")
    return tf.distribute.MultiWorkerMirroredStrategy()
  raise ValueError(f"unknown distribution {distribution!r}; choose from {DISTRIBUTIONS}")


def _task(strategy):
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.task_type:
    return None, 0, {}
  return resolver.task_type, resolver.task_id, resolver.cluster_spec().as_dict()


def is_chief(strategy):
  """Whether this process writes the run's checkpoints and summaries."""
  task_type, task_id, cluster = _task(strategy)
  if task_type is None or task_type == "chief":
    return True
  return task_type == "worker" and task_id == 0 and "chief" not in cluster


def write_dir(model_dir, strategy):
  """Where this process saves: `model_dir` for the chief, a private scratch folder for the
  other workers (which must save too, since saving is a collective operation)."""
  if is_chief(strategy):
    return model_dir
  task_type, task_id, _ = _task(strategy)
  return os.path.join(model_dir, "workers", f"{task_type}_{task_id}")


def task_description(strategy):
  task_type, task_id, cluster = _task(strategy)
  if task_type is None:
    return f"{strategy.num_replicas_in_sync} replica(s)"
  return f"{task_type} {task_id} of {json.dumps({k: len(v) for k, v in cluster.items()})}"
