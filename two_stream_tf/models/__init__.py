"""Two-stream networks: CNN-M-2048 and keras.applications trunks with multi-task heads."""

from two_stream_tf.models.builder import build_model
from two_stream_tf.models.builder import restrict_heads
from two_stream_tf.models.cnn_m import DEFAULT_INITIALIZATION
from two_stream_tf.models.config import DEFAULT_DROPOUT
from two_stream_tf.models.config import TRUNKS
from two_stream_tf.models.config import ModelConfig
from two_stream_tf.models.config import check_crop_size
from two_stream_tf.models.consensus import segmental_consensus
from two_stream_tf.models.weights import WeightsError
from two_stream_tf.models.weights import cnn_m_mean
