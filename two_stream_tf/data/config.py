"""What a stream sees (`InputConfig`, kept with a trained model) and how training varies it
(`Augmentation`, training only)."""

import dataclasses

from two_stream_tf import streams
from two_stream_tf.data import stacking

SAMPLINGS = ("balanced", "shuffle")


@dataclasses.dataclass(frozen=True)
class InputConfig:
  """The input of one stream, the same in training, evaluation and export; defaults are
  the paper's.

  Attributes:
    stream: 'spatial' (one RGB frame) or 'temporal' (a flow stack).
    crop_size: side of the square crop fed to the network.
    stack_length: L, flow fields per stack (2L channels).
    stacking: 'flow', 'trajectory' or 'bidirectional' (see `stacking`).
    mean_subtraction: subtract each field's mean vector (camera-motion compensation).
  """
  stream: str = "temporal"
  crop_size: int = streams.CROP_SIZE
  stack_length: int = streams.STACK_LENGTH
  stacking: str = "flow"
  mean_subtraction: bool = True

  def __post_init__(self):
    streams.check_stream(self.stream)
    if self.crop_size < 1:
      raise ValueError(f"crop_size must be positive, got {self.crop_size}")
    stacking.check_stacking(self.stacking, self.stack_length)

  @property
  def channels(self):
    return streams.input_channels(self.stream, self.stack_length)


@dataclasses.dataclass(frozen=True)
class Augmentation:
  """How training samples vary; defaults are the paper's.

  Attributes:
    flip: random horizontal flips (x-flow negated).
    rgb_jitter: AlexNet-style PCA colour jitter of spatial frames.
    sampling: 'balanced' (videos uniform across classes, the paper's) or 'shuffle'.
    samples_per_visit: samples (each with its own stack, crop and flip, each reading its
      own steps) drawn from a video each time it is visited. 1 is the paper's sampling;
      more visits each video more often per pass over the shuffled videos.
    num_segments: K. 1 is the paper's: a sample is one frame or stack. K > 1 is TSN's
      (Wang et al. 2016): a sample is K snippets of one video, one at a random position in
      each of K equal segments of its valid positions, under one crop, flip and jitter;
      the loss sees the mean of their logits (`models.segmental_consensus`).
  """
  flip: bool = True
  rgb_jitter: bool = True
  sampling: str = "balanced"
  samples_per_visit: int = 1
  num_segments: int = 1

  def __post_init__(self):
    if self.sampling not in SAMPLINGS:
      raise ValueError(f"unknown sampling {self.sampling!r}; choose from {SAMPLINGS}")
    if self.samples_per_visit < 1:
      raise ValueError(f"samples_per_visit must be at least 1, got {self.samples_per_visit}")
    if self.num_segments < 1:
      raise ValueError(f"num_segments must be at least 1, got {self.num_segments}")
