"""Reading the protocol buffer wire format without generated code: varints and fields.

Both `tf.train.Example` (flow_tools.records.tfrecord_format) and Caffe's NetParameter
(two_stream_tf.models.caffe_format) are read through it.
"""

VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5  # wire types


class WireError(ValueError):
  """Bytes that are not a valid protocol buffer message."""


def read_varint(data, position):
  """(value, position after) of the base-128 varint at `position`."""
  value = shift = 0
  while True:
    if position >= len(data):
      raise WireError("truncated varint")
    byte = data[position]
    position += 1
    value |= (byte & 0x7F) << shift
    if byte < 0x80:
      return value, position
    shift += 7


def next_field(data, position):
  """(field number, wire type, value, position after) of the field at `position`: an int
  for a varint, a slice of `data` for a length-delimited field, bytes for fixed ones."""
  key, position = read_varint(data, position)
  number, wire = key >> 3, key & 7
  if wire == VARINT:
    value, position = read_varint(data, position)
    return number, wire, value, position
  if wire == LEN:
    size, position = read_varint(data, position)
  elif wire in (FIXED32, FIXED64):
    size = 4 if wire == FIXED32 else 8
  else:
    raise WireError(f"unsupported wire type {wire} (field {number})")
  if position + size > len(data):
    raise WireError(f"field {number} runs past the end of its message")
  value = data[position:position + size]
  return number, wire, value if wire == LEN else bytes(value), position + size


def fields(data):
  """Yields (field number, wire type, value) of a serialized message (see `next_field`);
  length-delimited values are memoryviews, not copies."""
  data, position = memoryview(data), 0
  while position < len(data):
    number, wire, value, position = next_field(data, position)
    yield number, wire, value


def packed_varints(data):
  """The values of a packed repeated varint field."""
  values, position = [], 0
  while position < len(data):
    value, position = read_varint(data, position)
    values.append(value)
  return values
