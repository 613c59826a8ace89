"""What network a run builds: the trunks there are (`TRUNKS`) and one run's choice of trunk,
starting weights and what trains (`ModelConfig`)."""

import dataclasses

import keras

from two_stream_tf.models import cnn_m
from two_stream_tf.models import weights as weights_lib

# Caffe's ImageNet mean, RGB order.
IMAGENET_MEAN_RGB = (123.68, 116.779, 103.939)
_FLOW_BOUND = 20.0  # px: flow in +-20 is put on the range each trunk's RGB input has.


@dataclasses.dataclass(frozen=True)
class Trunk:
  """How to build one trunk and what input it expects."""
  constructor: object  # keras.applications function, or None for CNN-M-2048
  rgb_scale: float
  rgb_offset: tuple
  reverse_channels: bool  # weights trained on BGR input
  flow_scale: float
  min_crop_size: int  # smaller inputs vanish in the trunk's pooling


TRUNKS = {
    "cnn_m_2048": Trunk(None, 1.0, tuple(-m for m in IMAGENET_MEAN_RGB), False, 1.0, 41),
    # keras.applications.resnet50.preprocess_input: 'caffe' mode (BGR, mean subtracted).
    "resnet50": Trunk(keras.applications.ResNet50, 1.0,
                      tuple(-m for m in IMAGENET_MEAN_RGB[::-1]), True, 127.5 / _FLOW_BOUND,
                      32),
    # keras.applications.inception_v3.preprocess_input: 'tf' mode, [-1, 1].
    "inception_v3": Trunk(keras.applications.InceptionV3, 1 / 127.5, (-1.0,) * 3, False,
                          1 / _FLOW_BOUND, 75),
}
DEFAULT_DROPOUT = {"spatial": 0.5, "temporal": 0.9}  # the paper's


def check_crop_size(trunk, crop_size):
  """Raises ValueError if `trunk` cannot take `crop_size` x `crop_size` inputs."""
  smallest = TRUNKS[trunk].min_crop_size
  if crop_size < smallest:
    raise ValueError(f"{trunk} needs crops of at least {smallest} pixels, got {crop_size}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """The network of a run; defaults are the paper's. Error messages name fields `so`.

  Attributes:
    trunk: 'cnn_m_2048' (the paper's), 'resnet50' or 'inception_v3'.
    weights: None (from scratch), 'imagenet' (keras.applications download), or a local
      file: CNN-M-2048 `.npz`/`.weights.h5` (see `weights.cnn_m_source`) or a
      keras.applications no-top weights file. Temporal trunks get them by cross-modality
      initialisation.
    init_from: a model_dir whose trained trunk a training run starts from (loaded by the
      run, `model_dirs.init_trunk_from`), or None.
    last_layer_only: freeze everything but the heads (needs `weights` or `init_from`).
    initialization: how CNN-M-2048 and its heads start, 'keras' (Glorot; the default) or
      'caffe' (the paper's Caffe defaults, `cnn_m.INITIALIZATIONS`); keras.applications
      trunks and their heads start as Keras does.
    partial_bn: TSN's partial batch normalisation: every BatchNormalization layer of the
      trunk but the first keeps its (pre-trained) mean and variance in training; gamma
      and beta train. Inference is unchanged. keras.applications trunks only.
    dropout: rate after full6/full7 (CNN-M) or after pooling; None: the paper's for the
      stream (`DEFAULT_DROPOUT`).
  """
  trunk: str = "cnn_m_2048"
  weights: str = None
  init_from: str = None
  last_layer_only: bool = False
  initialization: str = cnn_m.DEFAULT_INITIALIZATION
  partial_bn: bool = False
  dropout: float = None

  def __post_init__(self):
    if self.trunk not in TRUNKS:
      raise ValueError(f"unknown `trunk` {self.trunk!r}; choose from {sorted(TRUNKS)}")
    if self.initialization not in cnn_m.INITIALIZATIONS:
      raise ValueError(f"unknown initialization {self.initialization!r}; choose from "
                       f"{cnn_m.INITIALIZATIONS}")
    if self.weights is not None and self.init_from is not None:
      raise ValueError("give `weights` or `init_from`, not both")
    if self.weights == "imagenet" and TRUNKS[self.trunk].constructor is None:
      raise weights_lib.WeightsError(
          "`weights`=imagenet: CNN-M-2048 has no Keras download; give its converted weights "
          "file (.npz or .weights.h5)")
    if self.last_layer_only and not self.pretrained:
      raise ValueError("`last_layer_only` needs `weights` or `init_from`: a frozen random "
                       "trunk learns nothing (it needs pre-trained weights)")
    if self.partial_bn and TRUNKS[self.trunk].constructor is None:
      raise ValueError(f"`partial_bn`: {self.trunk} has no batch normalisation (the "
                       "keras.applications trunks have)")
    if self.dropout is not None and not 0 <= self.dropout < 1:
      raise ValueError(f"`dropout` must be in [0, 1), got {self.dropout}")

  @property
  def pretrained(self):
    """Whether the trunk starts from trained weights (`weights` or `init_from`)."""
    return self.weights is not None or self.init_from is not None
