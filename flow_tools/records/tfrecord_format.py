"""`tf.train.Example` and TFRecord files, written without TensorFlow.

Extraction workers write their own record files and never import TensorFlow, so the
Example encoding (the protocol buffer wire format of example.proto and feature.proto)
and the TFRecord framing are done here: the bytes are those of
`tf.train.Example(...).SerializeToString(deterministic=True)` and `tf.io.TFRecordWriter`
for the same features (tested against both).

A TFRecord file is a sequence of records, each
    uint64 length, uint32 masked CRC-32C of the length's 8 bytes, data, uint32 masked CRC-32C
    of the data
little-endian; so a record of n bytes takes n + FRAMING bytes of the file.
"""

import functools
import struct

import google_crc32c

from flow_tools.common import protobuf_wire

FRAMING = 16  # a record's length (8 bytes), the length's CRC and the data's CRC (4 each)
LENGTH_BYTES = 12  # the length and its CRC, before the data

# Wire types of the protocol buffer encoding.
_VARINT, _LEN = protobuf_wire.VARINT, protobuf_wire.LEN
# Field numbers: Example.features, Features.feature (a map: entry key 1, value 2),
# Feature.{bytes_list, float_list, int64_list}, and each list's repeated `value`.
_KINDS = {"bytes": 1, "float": 2, "int64": 3}


def bytes_feature(*values):
  """A BytesList feature of `values` (str as UTF-8, or bytes)."""
  return "bytes", [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in values]


def int64_feature(*values):
  """An Int64List feature of `values`."""
  return "int64", [int(v) for v in values]


def float_feature(values):
  """A FloatList feature of an iterable of numbers (stored as float32)."""
  return "float", [float(v) for v in values]


_ONE_BYTE = [bytes((i,)) for i in range(0x80)]


def _varint(value):
  if 0 <= value < 0x80:
    return _ONE_BYTE[value]
  if 0 < value < 0x200000:  # lengths of JPEGs and records: two or three bytes, unrolled
    if value < 0x4000:
      return bytes((value & 0x7F | 0x80, value >> 7))
    return bytes((value & 0x7F | 0x80, (value >> 7) & 0x7F | 0x80, value >> 14))
  value &= 0xFFFFFFFFFFFFFFFF  # negative int64: two's complement, ten bytes
  out = bytearray()
  while value > 0x7F:
    out.append((value & 0x7F) | 0x80)
    value >>= 7
  out.append(value)
  return bytes(out)


def _tag(field, wire_type):
  return _varint(field << 3 | wire_type)


def _length_delimited(field, payload):
  return _tag(field, _LEN) + _varint(len(payload)) + payload


def _list(kind, values):
  """(pieces, byte count) of a BytesList, FloatList or Int64List message (numbers packed,
  as proto3 does); bytes values are pieces of their own, never copied."""
  if kind == "bytes":
    pieces = []
    for value in values:
      pieces += (_BYTES_VALUE, _varint(len(value)), value)
    return pieces, sum(map(len, pieces))
  if not values:
    return [], 0
  if kind == "float":
    listed = _length_delimited(1, struct.pack(f"<{len(values)}f", *values))
  else:
    listed = _length_delimited(1, b"".join([_varint(v) for v in values]))
  return [listed], len(listed)


_BYTES_VALUE = _tag(1, _LEN)
_EXAMPLE_TAG = _tag(1, _LEN)


def _key_order(a, b):
  """Deterministic serialization's order of map keys (protobuf's upb, which TensorFlow's
  Python uses): bytewise over the common length, then the longer key first."""
  common = min(len(a), len(b))
  if a[:common] != b[:common]:
    return -1 if a[:common] < b[:common] else 1
  return len(b) - len(a)


@functools.lru_cache(maxsize=64)
def _entry_keys(names):
  """(name, its map entry's key field) of a feature set's names, in serialization order
  (the same few sets are encoded over and over: computed once each)."""
  keys = {name.encode("utf-8"): name for name in names}
  return tuple((keys[key], _length_delimited(1, key))
               for key in sorted(keys, key=functools.cmp_to_key(_key_order)))


_FEATURE_TAGS = {kind: _tag(number, _LEN) for kind, number in _KINDS.items()}
_VALUE_TAG = _tag(2, _LEN)


def encode_example(features):
  """The serialized `tf.train.Example` of {name: feature} (`bytes_feature`,
  `int64_feature`, `float_feature`), its map entries in the order deterministic
  serialization writes them."""
  # Lengths are worked out from the inside out and the pieces joined once: a JPEG's bytes
  # are copied once, not once per level of nesting.
  pieces, size = [], 0
  for name, key in _entry_keys(tuple(features)):
    kind, values = features[name]
    listed, listed_size = _list(kind, values)
    feature_head = _FEATURE_TAGS[kind] + _varint(listed_size)
    entry_head = key + _VALUE_TAG + _varint(len(feature_head) + listed_size)
    entry_size = len(entry_head) + len(feature_head) + listed_size
    head = _BYTES_VALUE + _varint(entry_size) + entry_head + feature_head
    pieces += (head, *listed)
    size += len(head) + listed_size
  return b"".join([_EXAMPLE_TAG, _varint(size), *pieces])


def masked_crc(data):
  """TFRecord's checksum of `data`: CRC-32C, rotated right by 15 bits plus a constant."""
  crc = google_crc32c.value(data)
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _framed(record):
  """The pieces of one record as it is stored in a TFRecord file."""
  length = struct.pack("<Q", len(record))
  return (length, struct.pack("<I", masked_crc(length)), record,
          struct.pack("<I", masked_crc(record)))


def write_records(f, serialized):
  """Writes `serialized` records to the binary file `f`; returns the byte offset of each
  record's start and, last, the end of the file (len(serialized) + 1 offsets)."""
  offsets, pieces = [0], []
  for record in serialized:
    offsets.append(offsets[-1] + len(record) + FRAMING)
    pieces += _framed(record)
  f.write(b"".join(pieces))  # one copy and one write: few system calls
  return offsets


def read_length(head):
  """The data length of a record from its first LENGTH_BYTES bytes; None if its checksum
  fails (the length field is damaged)."""
  length, crc = struct.unpack("<QI", head)
  return length if masked_crc(head[:8]) == crc else None


def _signed(value):
  return value - (1 << 64) if value >= 1 << 63 else value


def _list_values(kind, data):
  values = []
  for _, wire_type, value in protobuf_wire.fields(data):
    if kind == "bytes":
      values.append(bytes(value))
    elif kind == "float":
      values += struct.unpack(f"<{len(value) // 4}f", value)
    elif wire_type == protobuf_wire.VARINT:
      values.append(_signed(value))
    else:  # packed
      values += [_signed(number) for number in protobuf_wire.packed_varints(value)]
  return values


def decode_example(data):
  """A serialized `tf.train.Example` -> {name: (kind, [values])}, `encode_example`'s
  inverse (for any valid encoding: packed or not, in any field order)."""
  kinds = {number: kind for kind, number in _KINDS.items()}
  features = {}
  for _, _, entries in protobuf_wire.fields(data):
    for _, _, entry in protobuf_wire.fields(entries):
      name, feature = b"", b""
      for field, _, value in protobuf_wire.fields(entry):
        if field == 1:
          name = bytes(value)
        else:
          feature = value
      kind, values = "bytes", []
      for number, _, value in protobuf_wire.fields(feature):
        kind, values = kinds[number], _list_values(kinds[number], value)
      features[name.decode("utf-8")] = (kind, values)
  return features
