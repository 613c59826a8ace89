"""Input pipelines over flow_tools records: training samples and the 25 x 10 test views."""

from two_stream_tf.data import service
from two_stream_tf.data.batches import training_dataset
from two_stream_tf.data.config import Augmentation
from two_stream_tf.data.config import InputConfig
from two_stream_tf.data.config import InputSource
from two_stream_tf.data.packed import to_network_input
from two_stream_tf.data.reading import configure_input_process
from two_stream_tf.data.views import VIDEO_INFO
from two_stream_tf.data.views import average_per_video
from two_stream_tf.data.views import evaluation_positions
from two_stream_tf.data.views import evaluation_views
from two_stream_tf.data.views import to_views
