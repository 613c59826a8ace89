"""The two streams, the input each one takes and the paper's test protocol; stated once here.

Shared by the pipelines, the models and the apps.
"""

STREAMS = ("spatial", "temporal")
CROP_SIZE = 224    # the paper's network input side
STACK_LENGTH = 10  # L, flow fields per stack (the paper's best)
# Test protocol: NUM_POSITIONS frames or stacks per video, each giving NUM_CROPS crops
# (4 corners, centre) and their horizontal flips.
NUM_POSITIONS = 25
NUM_CROPS = 5
VIEWS_PER_POSITION = 2 * NUM_CROPS
# Where a pipeline reads its samples' steps from (two_stream_tf.data.reading.with_reader).
INPUT_CACHES = ("auto", "memory", "disk")


def check_stream(stream):
  if stream not in STREAMS:
    raise ValueError(f"unknown stream {stream!r}; choose from {STREAMS}")


def input_channels(stream, stack_length):
  """3 for an RGB frame, 2L for a stack of L flow fields."""
  return 3 if stream == "spatial" else 2 * stack_length
