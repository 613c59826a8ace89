"""The two streams and the input each one takes; shared by the pipelines and the models."""

STREAMS = ("spatial", "temporal")


def check_stream(stream):
  if stream not in STREAMS:
    raise ValueError(f"unknown stream {stream!r}; choose from {STREAMS}")


def input_channels(stream, stack_length):
  """3 for an RGB frame, 2L for a stack of L flow fields."""
  return 3 if stream == "spatial" else 2 * stack_length
