"""One training loop for every strategy (none, mirrored, multi-worker): SGD on the masked
multi-task loss, checkpoints that resume after any interruption, TensorBoard, a NaN guard.

A custom loop rather than `model.fit`: Keras 3's `fit` fails under
MultiWorkerMirroredStrategy (keras#20585), and one path for all strategies is simpler.
"""

import dataclasses
import os
import re
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

from two_stream_tf import model_dirs
from two_stream_tf import models
from two_stream_tf.data import packed
from two_stream_tf.reporting import summaries
from two_stream_tf.training import losses
from two_stream_tf.training import schedule as schedule_lib
from two_stream_tf.training import strategy as strategy_lib

CHECKPOINT_PREFIX = "ckpt"


class TrainingDiverged(RuntimeError):
  """The loss became NaN/infinite or exceeded `max_loss`; nothing after it was saved."""


@dataclasses.dataclass
class TrainResult:
  start_step: int        # 0, or the step resumed from
  step: int              # the last step trained (== schedule.train_steps)
  metrics: dict          # the last logging interval's losses, accuracies, rate, examples/s
  checkpoint: str        # the last checkpoint written by this process
  seconds: float


def data_seed(seed, start_step, pipeline_id):
  """The input pipeline's seed: a resumed run (or another worker) gets fresh samples."""
  return int(np.random.SeedSequence([seed, start_step, pipeline_id]).generate_state(1)[0])


def _build(build_model, config):
  previous = keras.mixed_precision.global_policy()
  if config.mixed_precision:
    keras.mixed_precision.set_global_policy("mixed_float16")
  try:
    return build_model()
  finally:
    keras.mixed_precision.set_global_policy(previous)


def _remove_interrupted_saves(save_dir, say):
  """Deletes the `ckpt-N_temp/` folders a save killed midway (or a full disk) leaves."""
  for name in tf.io.gfile.listdir(save_dir):
    if re.fullmatch(rf"{CHECKPOINT_PREFIX}-\d+_temp/?", name):
      path = os.path.join(save_dir, name.rstrip("/"))
      tf.io.gfile.rmtree(path)
      say(f"removed {path}, left by an interrupted checkpoint save")


def adjusted_gradients(grads, variables, config, optimizer, context):
  """This replica's share of the gradient, with `config.bias_lr_multiplier` on biases and
  the global norm clipped to `config.clip_global_norm`.

  Scaling a gradient scales SGD's step for it, momentum included (the velocity is linear
  in the gradients), so a bias gradient times m is the bias learning at m times the rate.
  The norm clipped is the whole step's: the replicas' gradients summed (what the optimizer
  applies), and under loss scaling divided by the scale.
  """
  if config.bias_lr_multiplier != 1.0:
    grads = [g * config.bias_lr_multiplier if v.name == "bias" else g
             for g, v in zip(grads, variables)]
  if config.clip_global_norm is not None:
    norm = tf.linalg.global_norm(context.all_reduce(tf.distribute.ReduceOp.SUM, grads))
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
      norm = norm / tf.cast(optimizer.dynamic_scale, norm.dtype)
    factor = tf.minimum(1.0, tf.math.divide_no_nan(
        tf.constant(config.clip_global_norm, norm.dtype), norm))
    factor = tf.where(norm > 0, factor, 1.0)
    grads = [g * tf.cast(factor, g.dtype) for g in grads]
  return grads


def _step_function(model, optimizer, strategy, config, heads, num_segments):
  replicas = strategy.num_replicas_in_sync
  scored = model if num_segments == 1 else models.segmental_consensus(model, num_segments)

  def network_input(x):
    if num_segments == 1:
      return packed.to_network_input(x)
    snippets = packed.to_network_input(packed.merge_segments(x))
    return tf.reshape(snippets, tf.concat([[-1, num_segments], tf.shape(snippets)[1:]], 0))

  def forward_backward(x, labels, weights, global_weights):
    with tf.GradientTape() as tape:
      outputs = scored(network_input(x), training=True)
      stats = losses.head_statistics(labels, weights, outputs)
      decay = losses.weight_decay(model.trainable_variables, config.weight_decay) / replicas
      total = tf.add_n(list(losses.head_losses(stats, global_weights).values())) + decay
      scaled = optimizer.scale_loss(total)
    return tape.gradient(scaled, model.trainable_variables), total, decay, stats

  if config.jit_compile:
    forward_backward = tf.function(forward_backward, jit_compile=True)

  names = ["total", "weight_decay"] + [f"{head}/{value}" for head in heads
                                       for value in ("cross_entropy", "weight", "hits")]

  def replica_step(x, labels, weights):
    context = tf.distribute.get_replica_context()
    local = {h: tf.reduce_sum(tf.cast(w, tf.float32)) for h, w in weights.items()}
    global_weights = context.all_reduce(tf.distribute.ReduceOp.SUM, local)
    grads, total, decay, stats = forward_backward(x, labels, weights, global_weights)
    grads = adjusted_gradients(grads, model.trainable_variables, config, optimizer, context)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    # One vector, so that one collective reduces every statistic.
    return tf.stack([total, decay] + [v for head in heads for v in stats[head]])

  @tf.function
  def train_step(batch):
    per_replica = strategy.run(replica_step, args=batch)
    return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

  def step_values(batch):
    return dict(zip(names, train_step(batch).numpy().tolist()))
  return step_values


class _Interval:
  """Statistics of the steps since the last log line: sums, step count and start time."""

  def __init__(self, heads):
    self.heads = heads
    self._restart()

  def _restart(self):
    self.sums, self.steps, self.start = {}, 0, time.time()

  def add(self, values):
    self.sums = {k: self.sums.get(k, 0.0) + v for k, v in values.items()}
    self.steps += 1

  def close(self, learning_rate, batch_size):
    """The interval's mean losses, accuracies, rate and throughput; starts the next one."""
    sums, steps = self.sums, self.steps
    metrics = {"loss/total": sums["total"] / steps,
               "loss/weight_decay": sums["weight_decay"] / steps}
    for head in self.heads:
      weight = sums[f"{head}/weight"]
      metrics[f"loss/{head}"] = sums[f"{head}/cross_entropy"] / weight if weight else 0.0
      metrics[f"accuracy/{head}"] = sums[f"{head}/hits"] / weight if weight else 0.0
    metrics["learning_rate"] = learning_rate
    metrics["examples_per_second"] = steps * batch_size / max(time.time() - self.start, 1e-9)
    self._restart()
    return metrics


def _console_line(step, total_steps, metrics, heads):
  parts = [f"step {step}/{total_steps}", f"loss {metrics['loss/total']:.4f}"]
  parts += [f"{h} loss {metrics[f'loss/{h}']:.3f} acc {metrics[f'accuracy/{h}']:.3f}"
            for h in heads]
  parts += [f"lr {metrics['learning_rate']:g}", f"{metrics['examples_per_second']:.1f} ex/s"]
  return "  ".join(parts)


def _distributed_iterator(strategy, make_dataset, config, start_step):
  def dataset_fn(context):
    return make_dataset(context.get_per_replica_batch_size(config.batch_size),
                        data_seed(config.seed, start_step, context.input_pipeline_id))
  return iter(strategy.distribute_datasets_from_function(dataset_fn))


def _check_loss(values, step, config, saved):
  if not np.isfinite(values["total"]) or values["total"] > config.max_loss:
    raise TrainingDiverged(
        f"loss {values['total']:.4g} at step {step} (limit {config.max_loss:g}): "
        f"stopped; the last good checkpoint is {saved or 'none'} (try a lower learning rate)")


def train(build_model, make_dataset, model_dir, config, stream, strategy=None, hparams=None,
          log=print, checkpoint=None, num_segments=1):
  """Trains until `config.schedule.train_steps`, resuming from `model_dir` if it has a checkpoint.

  Args:
    build_model: () -> a `keras.Model` with dict outputs {head: softmax}; called in the
      strategy's scope (and under mixed precision when configured).
    make_dataset: (per-replica batch size, seed) -> a `tf.data.Dataset` of
      (inputs, {head: label}, {head: 0/1 weight}), e.g. `two_stream_tf.data.training_dataset`;
      quantised inputs are expanded in the step, on the device.
    model_dir: checkpoints (`checkpoints/ckpt-<step>`) and TensorBoard logs (`train/`).
    config: a `TrainConfig`.
    stream: 'spatial' or 'temporal' (for the input pictures in TensorBoard).
    strategy: a `tf.distribute.Strategy`; default: the current one.
    hparams: {name: value} shown in TensorBoard's HParams tab.
    log: where console lines go (the chief's only).
    checkpoint: resume from this checkpoint prefix (default: the newest readable one in
      `model_dir`; a damaged one is named and the one before it used).
    num_segments: K > 1: each sample of the dataset is K snippets of a video (a second
      input axis) and the loss is on their segmental consensus (TSN); the model built
      (what is checkpointed) scores one snippet.
  Returns:
    A `TrainResult`.
  Raises:
    TrainingDiverged: the loss became NaN or exceeded `config.max_loss`; the last good
      checkpoint stays the latest.
  """
  strategy = strategy or tf.distribute.get_strategy()
  replicas = strategy.num_replicas_in_sync
  if config.batch_size % replicas:
    raise ValueError(f"batch size {config.batch_size} does not split over {replicas} replicas")
  chief = strategy_lib.is_chief(strategy)
  say = log if chief else (lambda line: None)
  save_dir = strategy_lib.write_dir(model_dirs.checkpoints_dir(model_dir), strategy)
  os.makedirs(save_dir, exist_ok=True)

  keras.utils.set_random_seed(config.seed)  # initial weights and dropout masks
  with strategy.scope():
    model = _build(build_model, config)
    optimizer = schedule_lib.make_optimizer(config.schedule, config.momentum,
                                            config.mixed_precision)
    optimizer.build(model.trainable_variables)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
  heads = list(model.output)  # dict outputs: the head names, in order
  state = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step)
  manager = tf.train.CheckpointManager(state, save_dir, config.keep_checkpoints if chief else 1,
                                       checkpoint_name=CHECKPOINT_PREFIX)
  if chief:
    _remove_interrupted_saves(save_dir, say)
  restored = model_dirs.restore(
      state, model_dir, checkpoint,
      fits="this model and optimizer (were model flags or --mixed_precision changed?)")
  start = int(step.numpy())
  total_steps = config.schedule.train_steps
  say(f"{'resumed from ' + restored if restored else 'training from scratch'} at step {start} "
      f"of {total_steps}, {strategy_lib.task_description(strategy)}")
  if start >= total_steps:
    say(f"nothing to train: the checkpoint is at step {start}, at or past the last step "
        f"{total_steps} (raise --train_steps to train on)")

  iterator = _distributed_iterator(strategy, make_dataset, config, start)
  train_step = _step_function(model, optimizer, strategy, config, heads, num_segments)

  writer = (tf.summary.create_file_writer(os.path.join(model_dir, "train")) if chief
            else tf.summary.create_noop_writer())
  started = time.time()
  interval, metrics, saved = _Interval(heads), {}, restored
  if hparams and chief:
    # In model_dir itself: TensorBoard's HParams tab then finds the metrics of every log
    # directory below it, the evaluations' (eval_test/accuracy/<head>, ...) included.
    with tf.summary.create_file_writer(model_dir).as_default():
      summaries.write_hparams(hparams)
  with writer.as_default():
    for step_value in range(start + 1, total_steps + 1):
      batch = next(iterator)
      if step_value == start + 1 and chief:
        local_inputs = strategy.experimental_local_results(batch[0])[0]
        if num_segments > 1:
          local_inputs = packed.merge_segments(local_inputs)
        summaries.write_inputs("training_inputs", stream,
                               packed.to_network_input(local_inputs), step_value)
      values = train_step(batch)
      step.assign(step_value)
      _check_loss(values, step_value, config, saved)
      interval.add(values)
      last = step_value == total_steps
      if step_value % config.log_every == 0 or last:
        metrics = interval.close(config.schedule.rate_at(step_value - 1), config.batch_size)
        for name, value in metrics.items():
          tf.summary.scalar(name, value, step=step_value)
        writer.flush()
        say(_console_line(step_value, total_steps, metrics, heads))
      if step_value % config.checkpoint_every == 0 or last:
        saved = manager.save(checkpoint_number=step_value)
  if not chief:
    shutil.rmtree(save_dir, ignore_errors=True)
  return TrainResult(start, max(start, total_steps), metrics, saved, time.time() - started)
