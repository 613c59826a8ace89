"""What a stream sees (`InputConfig`, kept with a trained model), how training varies it
(`Augmentation`) and where training batches are made (`InputSource`)."""

import dataclasses
import re

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
      raise ValueError(f"unknown `sampling` {self.sampling!r}; choose from {SAMPLINGS}")
    if self.samples_per_visit < 1:
      raise ValueError(f"`samples_per_visit` must be at least 1, got {self.samples_per_visit}")
    if self.num_segments < 1:
      raise ValueError(f"`num_segments` must be at least 1, got {self.num_segments}")


@dataclasses.dataclass(frozen=True)
class InputSource:
  """Where and how training batches are made; not what they hold (`Augmentation`).

  Attributes:
    shuffle_buffer: samples mixed after their choice, before reading.
    deterministic_input: the same batches every run with the same seed (slower).
    input_cache: where samples read their steps: 'memory', 'disk' or 'auto'
      (`reading.with_reader`); the batches are the same.
    tf_data_service: grpc://HOST:PORT of a tf.data service dispatcher whose workers read,
      decode and augment the input, or None (this process does).
  """
  shuffle_buffer: int = 1024
  deterministic_input: bool = False
  input_cache: str = "auto"
  tf_data_service: str = None

  def __post_init__(self):
    if self.shuffle_buffer < 1:
      raise ValueError(f"`shuffle_buffer` must be at least 1, got {self.shuffle_buffer}")
    if self.input_cache not in streams.INPUT_CACHES:
      raise ValueError(f"unknown `input_cache` {self.input_cache!r}; choose from "
                       f"{streams.INPUT_CACHES}")
    if self.tf_data_service is None:
      return
    if not re.fullmatch(r"grpc://[^\s/]+:\d+", self.tf_data_service):
      raise ValueError(f"`tf_data_service` must look like grpc://HOST:PORT, got "
                       f"{self.tf_data_service!r}")
    if self.deterministic_input:
      raise ValueError("`deterministic_input` cannot hold with `tf_data_service` (batches "
                       "arrive from several workers in any order)")
