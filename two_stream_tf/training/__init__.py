"""Training: one run's config tree, the paper's schedule, masked multi-task losses, one loop
for every strategy, and a stream's run in a model_dir (`train_stream`, what
two_stream_tf.train calls)."""

from two_stream_tf.training.config import DatasetConfig
from two_stream_tf.training.config import RunConfig
from two_stream_tf.training.config import TrainConfig
from two_stream_tf.training.loop import TrainingDiverged
from two_stream_tf.training.loop import train
from two_stream_tf.training.runs import run_spec
from two_stream_tf.training.runs import train_stream
from two_stream_tf.training.schedule import Schedule
from two_stream_tf.training.schedule import paper_schedule
from two_stream_tf.training.strategy import make_strategy
