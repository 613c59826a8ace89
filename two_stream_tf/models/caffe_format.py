"""Reading Caffe's binary files (.caffemodel, .binaryproto) without Caffe, from the wire format.

Only what a weights conversion needs is decoded: a net's layers in both formats found in
the wild, V1 (`NetParameter.layers`, enum types: the 2014 model zoo, VGG's CNN-M releases)
and V2 (`NetParameter.layer`, string types), each with its name, type, blobs and the
parameters of convolution, pooling, LRN and inner-product layers. Field numbers are those
of Caffe's caffe.proto. Blob data is read as numpy arrays straight from the file's bytes,
packed or not; a blob's shape comes from `shape` or, in older files, from the legacy
num / channels / height / width fields.
"""

import dataclasses
import struct

import numpy as np

from flow_tools.common import protobuf_wire

# V1LayerParameter.LayerType values, by the V2 type string they became.
V1_TYPES = {1: "Accuracy", 3: "Concat", 4: "Convolution", 5: "Data", 6: "Dropout",
            8: "Flatten", 12: "ImageData", 14: "InnerProduct", 15: "LRN", 17: "Pooling",
            18: "ReLU", 19: "Sigmoid", 20: "Softmax", 21: "SoftmaxWithLoss", 22: "Split",
            23: "TanH", 24: "WindowData", 25: "Eltwise"}
POOL_METHODS = {0: "MAX", 1: "AVE", 2: "STOCHASTIC"}

# Field numbers: (V1LayerParameter, LayerParameter).
_NAME, _TYPE, _BLOBS = (4, 1), (5, 2), (6, 7)
_PARAMS = {"convolution": (10, 106), "inner_product": (17, 117), "lrn": (18, 118),
           "pooling": (19, 121)}
# Per parameter message: field number -> (name, kind); 'f' float, 'u' unsigned.
_PARAM_FIELDS = {
    "convolution": {1: ("num_output", "u"), 3: ("pad", "u"), 4: ("kernel_size", "u"),
                    5: ("group", "u"), 6: ("stride", "u"), 9: ("pad_h", "u"),
                    10: ("pad_w", "u"), 11: ("kernel_h", "u"), 12: ("kernel_w", "u"),
                    13: ("stride_h", "u"), 14: ("stride_w", "u")},
    "inner_product": {1: ("num_output", "u")},
    "lrn": {1: ("local_size", "u"), 2: ("alpha", "f"), 3: ("beta", "f"),
            4: ("norm_region", "u"), 5: ("k", "f")},
    "pooling": {1: ("pool", "u"), 2: ("kernel_size", "u"), 3: ("stride", "u"),
                4: ("pad", "u"), 5: ("kernel_h", "u"), 6: ("kernel_w", "u"),
                7: ("stride_h", "u"), 8: ("stride_w", "u"), 9: ("pad_h", "u"),
                10: ("pad_w", "u")},
}


class CaffeFormatError(ValueError):
  """A file is not a Caffe net or blob this reader understands."""


@dataclasses.dataclass
class Layer:
  """One layer of a net: `params` holds the decoded parameter messages, e.g.
  {'convolution': {'num_output': 96, 'kernel_size': [7], 'stride': [2]}} (repeated and
  optional fields alike as lists)."""
  name: str
  type: str
  blobs: list  # float32 arrays in Caffe's layout, shaped
  params: dict


_UNPACKED_DATA_TAG = (5 << 3) | protobuf_wire.FIXED32  # BlobProto.data, one float per field


def _unpacked_run(data, pos):
  """The floats of the run of unpacked `data` fields at `pos` (tag byte + 4 bytes each),
  read in one numpy view rather than field by field (a 4096 x 18432 layer is 75M)."""
  count = (len(data) - pos) // 5
  rows = np.frombuffer(data, np.uint8, count * 5, pos).reshape(count, 5)
  is_data = rows[:, 0] == _UNPACKED_DATA_TAG
  run = count if is_data.all() else int(np.argmin(is_data))
  if not run:
    raise CaffeFormatError("a blob's data is cut short")
  return rows[:run, 1:].copy().view("<f4").ravel(), pos + 5 * run


def parse_blob(message):
  """A BlobProto's data as a float32 array of its shape."""
  data, pos = memoryview(message), 0
  legacy, dims, floats, doubles = {}, None, [], []
  while pos < len(data):
    if data[pos] == _UNPACKED_DATA_TAG:
      values, pos = _unpacked_run(data, pos)
      floats.append(values)
      continue
    number, wire, value, pos = protobuf_wire.next_field(data, pos)
    if number in (1, 2, 3, 4) and wire == protobuf_wire.VARINT:
      legacy[number] = value
    elif number == 5 and wire == protobuf_wire.LEN:
      floats.append(np.frombuffer(value, "<f4"))
    elif number == 7 and wire == protobuf_wire.LEN:
      dims = []
      for field, field_wire, dim in protobuf_wire.fields(value):
        if field == 1:
          dims += protobuf_wire.packed_varints(dim) if field_wire == protobuf_wire.LEN else [dim]
    elif number == 8:
      doubles.append(np.frombuffer(value, "<f8"))
  values = np.concatenate(floats or doubles or [np.zeros(0, np.float32)]).astype(np.float32)
  if dims is None:
    dims = [legacy.get(n, 0) for n in (1, 2, 3, 4)]
    dims = [d for d in dims if d] if any(dims) else []
  if values.size != (int(np.prod(dims)) if dims else 0):
    raise CaffeFormatError(f"a blob of shape {tuple(dims)} holds {values.size} values")
  return values.reshape(dims)


def _params(kind, message):
  fields = _PARAM_FIELDS[kind]
  params = {}
  for number, wire, value in protobuf_wire.fields(message):
    if number not in fields:
      continue
    name, kind_of = fields[number]
    if kind_of == "f":
      values = [struct.unpack("<f", value)[0]] if wire == protobuf_wire.FIXED32 else list(
          np.frombuffer(value, "<f4"))
    else:
      values = protobuf_wire.packed_varints(value) if wire == protobuf_wire.LEN else [value]
    params.setdefault(name, []).extend(float(v) if kind_of == "f" else int(v) for v in values)
  return params


def _layer(message, version):
  """A V1LayerParameter (version 0) or LayerParameter (version 1) as a `Layer`."""
  name, type_name, blobs, params = "", "", [], {}
  for number, wire, value in protobuf_wire.fields(message):
    if number == _NAME[version] and wire == protobuf_wire.LEN:
      name = bytes(value).decode("utf-8", "replace")
    elif number == _TYPE[version]:
      type_name = (V1_TYPES.get(value, f"V1 type {value}") if version == 0
                   else bytes(value).decode("utf-8", "replace"))
    elif number == _BLOBS[version] and wire == protobuf_wire.LEN:
      blobs.append(parse_blob(value))
    elif version == 0 and number == 1 and wire == protobuf_wire.LEN:
      raise CaffeFormatError("a V0 net (2013): upgrade it first with Caffe's "
                             "upgrade_net_proto_binary")
    else:
      for kind, numbers in _PARAMS.items():
        if number == numbers[version] and wire == protobuf_wire.LEN:
          params[kind] = _params(kind, value)
  return Layer(name, type_name, blobs, params)


def parse_net(data):
  """(net name, [Layer]) of a serialized NetParameter (a .caffemodel's bytes)."""
  name, layers = "", []
  for number, wire, value in protobuf_wire.fields(data):
    if number == 1 and wire == protobuf_wire.LEN:
      name = bytes(value).decode("utf-8", "replace")
    elif number == 2 and wire == protobuf_wire.LEN:
      layers.append(_layer(value, 0))
    elif number == 100 and wire == protobuf_wire.LEN:
      layers.append(_layer(value, 1))
  if not layers:
    raise CaffeFormatError("no layers: not a Caffe net")
  return name, layers


def read_net(path):
  """`parse_net` of a .caffemodel file.

  Raises:
    CaffeFormatError: naming the file.
  """
  with open(path, "rb") as f:
    data = f.read()
  try:
    return parse_net(data)
  except ValueError as error:  # CaffeFormatError, or numpy on bytes that are no floats
    raise CaffeFormatError(f"{path}: {error}") from error


def read_blob(path):
  """The array of a .binaryproto file (a BlobProto, e.g. a mean image 1 x 3 x H x W)."""
  with open(path, "rb") as f:
    data = f.read()
  try:
    return parse_blob(data)
  except ValueError as error:
    raise CaffeFormatError(f"{path}: {error}") from error
