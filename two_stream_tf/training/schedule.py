"""The paper's optimisation: SGD with momentum and a step learning-rate schedule."""

import dataclasses

import keras

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

  def rates(self):
    return [self.learning_rate * self.decay ** i for i in range(len(self.boundaries) + 1)]

  def rate_at(self, step):
    """The learning rate of training step `step` (0-based), in Python."""
    return self.rates()[sum(step >= b for b in self.boundaries)]


def paper_schedule(fine_tuning, learning_rate=1e-2, boundaries=None, train_steps=None):
  """The paper's schedule (from scratch, or fine-tuning pre-trained weights), with overrides."""
  default_boundaries, default_steps = FINE_TUNING if fine_tuning else SCRATCH
  return Schedule(learning_rate,
                  tuple(default_boundaries if boundaries is None else boundaries), 0.1,
                  default_steps if train_steps is None else train_steps)


def make_optimizer(schedule, momentum=0.9, mixed_precision=False):
  """SGD with momentum on `schedule` (loss-scaled under mixed precision)."""
  if schedule.boundaries:
    learning_rate = keras.optimizers.schedules.PiecewiseConstantDecay(
        list(schedule.boundaries), schedule.rates())
  else:
    learning_rate = schedule.learning_rate
  optimizer = keras.optimizers.SGD(learning_rate, momentum=momentum)
  if mixed_precision:
    optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
  return optimizer
