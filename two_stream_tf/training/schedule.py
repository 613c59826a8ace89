"""The paper's optimisation: SGD with momentum and a step learning-rate schedule."""

import dataclasses

import keras
import tensorflow as tf

# (boundaries, last step) of the paper's two schedules, both from 1e-2 and divided by 10
# at each boundary.
SCRATCH = ((50_000, 70_000), 80_000)
FINE_TUNING = ((14_000,), 20_000)


@dataclasses.dataclass(frozen=True)
class Schedule:
  """Learning rate `learning_rate`, times `decay` after each step in `boundaries`."""
  learning_rate: float = 1e-2
  boundaries: tuple = SCRATCH[0]
  decay: float = 0.1
  train_steps: int = SCRATCH[1]

  def __post_init__(self):
    if self.learning_rate <= 0 or not 0 < self.decay <= 1:
      raise ValueError(f"learning rate must be positive and decay in (0, 1], got "
                       f"{self.learning_rate}, {self.decay}")
    if self.train_steps < 1:
      raise ValueError(f"train_steps must be at least 1, got {self.train_steps}")
    bounds = list(self.boundaries)
    if bounds != sorted(set(bounds)) or any(b < 1 for b in bounds):
      raise ValueError(f"learning rate boundaries must be positive and increasing, got {bounds}")

  def rate_at(self, step):
    """The learning rate of training step `step` (0-based), in Python."""
    return self.learning_rate * self.decay ** sum(step >= b for b in self.boundaries)


def paper_schedule(fine_tuning, learning_rate=1e-2, boundaries=None, train_steps=None,
                   decay=0.1):
  """The paper's schedule (from scratch, or fine-tuning pre-trained weights), with overrides."""
  default_boundaries, default_steps = FINE_TUNING if fine_tuning else SCRATCH
  return Schedule(learning_rate,
                  tuple(default_boundaries if boundaries is None else boundaries), decay,
                  default_steps if train_steps is None else train_steps)


class StepDecay(keras.optimizers.schedules.LearningRateSchedule):
  """`learning_rate` * `decay` ** (boundaries passed), from the optimizer's step counter.

  A schedule, never a float: Keras keeps a float rate in a variable that a checkpoint
  restores, so a run resumed with another --learning_rate would silently keep the old one.
  """

  def __init__(self, learning_rate, boundaries, decay):
    self.learning_rate, self.boundaries, self.decay = learning_rate, list(boundaries), decay

  def __call__(self, step):
    boundaries = tf.constant(self.boundaries, tf.int64)
    passed = tf.reduce_sum(tf.cast(tf.cast(step, tf.int64) >= boundaries, tf.float32))
    return self.learning_rate * tf.pow(self.decay, passed)

  def get_config(self):
    return {"learning_rate": self.learning_rate, "boundaries": self.boundaries,
            "decay": self.decay}


def make_optimizer(schedule, momentum=0.9, mixed_precision=False):
  """SGD with momentum on `schedule` (loss-scaled under mixed precision)."""
  optimizer = keras.optimizers.SGD(
      StepDecay(schedule.learning_rate, schedule.boundaries, schedule.decay), momentum=momentum)
  if mixed_precision:
    optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
  return optimizer
