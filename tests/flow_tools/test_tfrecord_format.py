"""Records written without TensorFlow: the bytes TensorFlow writes, the index beside each
file, the app that indexes older records, and workers that never import TensorFlow."""

import io
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from flow_tools import datasets
from flow_tools import records
from flow_tools.extraction import encoding
from flow_tools.records import tfrecord_format
from tests.flow_tools import helpers

# Keys that are prefixes of others (their order is protobuf's own), non-ASCII, empty.
_FEATURES = {
    "a": tfrecord_format.int64_feature(-1, 0, 1, 127, 128, 2**14 - 1, 2**14, 2**21 - 1,
                                       2**21, 2**40, -2**63, 2**63 - 1),
    "ab": tfrecord_format.bytes_feature("héllo", b"\x00\xff", b""),
    "abc": tfrecord_format.float_feature([0.0, -0.1, 1.5, 3e38, -1e-40]),
    "b/empty_ints": tfrecord_format.int64_feature(),
    "b/empty_bytes": tfrecord_format.bytes_feature(),
    "b/empty_floats": tfrecord_format.float_feature([]),
    "ü": tfrecord_format.bytes_feature(b"x" * 300, b"y" * 20000),
    "": tfrecord_format.int64_feature(5),
}


def _tf_example(features):
  """The same features built and serialized by TensorFlow's own protocol buffers."""
  def feature(kind, values):
    if kind == "bytes":
      return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    if kind == "int64":
      return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))
  return tf.train.Example(features=tf.train.Features(
      feature={name: feature(*f) for name, f in features.items()})).SerializeToString(
          deterministic=True)


def test_examples_and_files_are_the_bytes_tensorflow_writes(tmp_path):
  ours = tfrecord_format.encode_example(_FEATURES)
  assert ours == _tf_example(_FEATURES)
  decoded = tfrecord_format.decode_example(_tf_example(_FEATURES))
  assert decoded["a"] == _FEATURES["a"] and decoded["ab"] == _FEATURES["ab"]
  np.testing.assert_array_equal(decoded["abc"][1],
                                np.float32(_FEATURES["abc"][1]).astype(np.float64))
  assert decoded["b/empty_floats"] == ("float", []) and decoded[""] == ("int64", [5])
  # Numbers written one by one (not packed: Int64List {value: 150}) read the same.
  assert tfrecord_format.decode_example(b"\n\x0c\n\n\n\x01n\x12\x05\x1a\x03\x08\x96\x01") == {
      "n": ("int64", [150])}

  serialized = [ours, b"", b"\x01" * 70000, _tf_example({"k": _FEATURES["a"]})]
  reference = str(tmp_path / "reference.tfrecord")
  with tf.io.TFRecordWriter(reference) as writer:
    for record in serialized:
      writer.write(record)
  buffer = io.BytesIO()
  offsets = tfrecord_format.write_records(buffer, serialized)
  with open(reference, "rb") as f:
    assert buffer.getvalue() == f.read()
  assert offsets == list(np.cumsum([0] + [len(r) + 16 for r in serialized]))
  assert [r.numpy() for r in tf.data.TFRecordDataset(reference)] == serialized


def _tf_video_records(entry, dataset, encoded, config):
  """`records.video_records` as TensorFlow's protocol buffers build it from the schema in
  the records module's docstring."""
  example = _tf_example
  b, i = tfrecord_format.bytes_feature, tfrecord_format.int64_feature
  header = {"record/format": b("two_stream_tf.records/2"), "clip/media_id": b(entry.video_id),
            "clip/label/index": i(entry.label), "clip/label/string": b(entry.class_name),
            "clip/dataset": b(dataset), "clip/split_membership": i(*entry.splits),
            "clip/frame_count": i(encoded.num_frames),
            "clip/flow_count": i(encoded.num_frames - 1), "image/height": i(encoded.height),
            "image/width": i(encoded.width), "image/jpeg_quality": i(config.rgb_jpeg_quality),
            "video/short_side": i(config.short_side), "flow/algorithm": b(config.algorithm),
            "flow/quantization": b(config.quantization),
            "flow/bound": ("float", [config.bound]), "flow/jpeg_quality": i(config.jpeg_quality),
            "flow/has_backward": i(encoded.backward is not None)}
  files = {"rgb": [example({"image/encoded": b(j)}) for j in encoded.frames]}
  for kind, flow in (("flow", encoded.forward), ("flow_backward", encoded.backward)):
    if flow is not None:
      files[kind] = [example({"flow/x/encoded": b(x), "flow/y/encoded": b(y),
                              "flow/range": ("float", [float(v) for v in np.float32(r)])})
                     for x, y, r in zip(flow.x, flow.y, flow.ranges)]
  return {m: [example({**header, "record/modality": b(m)}), *steps]
          for m, steps in files.items()}


def test_a_videos_records_are_those_tensorflow_builds(tmp_path):
  rng = np.random.default_rng(0)
  flow = lambda: encoding.EncodedFlow(  # noqa: E731
      [rng.bytes(50) for _ in range(3)], [rng.bytes(40) for _ in range(3)],
      rng.normal(size=(3, 4)).astype(np.float32))
  encoded = encoding.EncodedVideo([rng.bytes(100) for _ in range(4)], 48, 64, flow(), flow())
  entry = datasets.VideoEntry("Class/v_Ü 1", "x.avi", 3, "Class", (1, 2, 0))
  config = encoding.ExtractionConfig(algorithm="dis", backward=True)
  ours = records.video_records(entry, "ucf101", encoded, config)
  assert ours == _tf_video_records(entry, "ucf101", encoded, config)
  header = records.parse_header(ours["flow_backward"][0])
  assert (header["clip/media_id"], header["clip/split_membership"], header["flow/bound"],
          header["record/modality"]) == ("Class/v_Ü 1", [1, 2, 0], 20.0, "flow_backward")
  folder = tmp_path / "videos" / "00000"
  paths = {m: str(folder / f"0000000.{m}.tfrecord") for m in ("flow", "flow_backward")}
  os.makedirs(folder)
  source = {"size": 3, "mtime_ns": 4, "sha256": "ab"}
  index = str(folder / "0000000.index")
  assert records.index_path(str(tmp_path), {"number": 0}) == index
  sizes = records.write_video_files(paths, index, ours, source)
  files = {m: (4, sizes[m]) for m in paths}
  offsets = records.read_index(index, files)
  for m, path in paths.items():
    assert [r.numpy() for r in tf.data.TFRecordDataset(path)] == ours[m]
    expected = np.cumsum([0] + [len(r) + 16 for r in ours[m]])
    np.testing.assert_array_equal(offsets[m], expected)
    assert records.scan_offsets(path) == expected.tolist() and sizes[m] == expected[-1]
  assert records.read_source(index) == source
  assert list(records.read_index(index, {"flow_backward": files["flow_backward"]})) == [
      "flow_backward"]
  for wrong in ({"flow": (5, sizes["flow"])}, {"rgb": (4, None)},
                {"flow": (4, sizes["flow"] + 1)}):
    with pytest.raises(records.RecordsError, match=r"0000000\.index is not the index of the "
                       r"\w+ file \(\d+ records, \w+ bytes\): remove it and run python -m "
                       r"flow_tools\.index_records --records_dir=" + str(tmp_path)):
      records.read_index(index, wrong)
  with open(index, "r+b") as f:
    f.truncate(os.path.getsize(index) - 8)
  with pytest.raises(records.RecordsError, match=r"0000000\.index is not an index of these "
                     r"records \(cut short\): remove it"):
    records.read_index(index, files)
  os.remove(index)
  with pytest.raises(records.RecordsError, match=r"0000000\.index is missing: these "
                     r"records were made before indexes; run python -m "
                     r"flow_tools\.index_records --records_dir=" + str(tmp_path)):
    records.read_index(index, files)


def test_the_index_app_writes_what_extraction_writes_and_nothing_else(records_dirs, tmp_path):
  old = str(tmp_path / "old")
  shutil.copytree(records_dirs["ucf101"], old)
  indexes = sorted(f for f in helpers.tree_files(old) if f.endswith(".index"))
  for name in indexes[::2]:  # as records made before indexes, half of them
    os.remove(os.path.join(old, name))
  before = {f: os.path.getmtime(os.path.join(old, f)) for f in helpers.tree_files(old)}
  run = helpers.run_extract([f"--records_dir={old}"], module="flow_tools.index_records")
  assert run.returncode == 0, run.stderr[-2000:]
  assert run.stdout.startswith(f"{old}: wrote {len(indexes[::2])} indexes, kept "
                               f"{len(indexes) - len(indexes[::2])} already there")
  helpers.assert_same_files(records_dirs["ucf101"], old)
  assert all(os.path.getmtime(os.path.join(old, f)) == t for f, t in before.items())
  again = helpers.run_extract([f"--records_dir={old}"], module="flow_tools.index_records")
  assert again.stdout.startswith(f"{old}: wrote 0 indexes, kept {len(indexes)}")

  # A file cut short is named; nothing is written for it.
  victim = os.path.join(old, indexes[0].replace(".index", ".rgb.tfrecord"))
  os.remove(os.path.join(old, indexes[0]))
  with open(victim, "r+b") as f:
    f.truncate(100)
  cut = helpers.run_extract([f"--records_dir={old}"], module="flow_tools.index_records")
  assert cut.returncode == 1 and cut.stderr.strip().splitlines()[-1].startswith(
      f"error: {victim} holds 100 of its ")
  assert not os.path.exists(os.path.join(old, indexes[0]))
  wrong = helpers.run_extract(["--records_dir=" + str(tmp_path / "nothing")],
                              module="flow_tools.index_records")
  assert wrong.returncode == 1 and "no manifest.json in" in wrong.stderr


def test_extraction_workers_never_import_tensorflow():
  """What the worker processes import (encoding, the output bookkeeping that writes the
  files, the record schema and format, the rawframes import) leaves TensorFlow out."""
  code = ("import sys\n"
          "from flow_tools.extraction import encoding, local_runner, output_directory\n"
          "from flow_tools.rawframes import layouts, rawframes_import\n"
          "from flow_tools.records import tfrecord_format\n"
          "print(sorted(m for m in sys.modules if m.split('.')[0] in "
          "('tensorflow', 'keras', 'tensorflow_datasets')))")
  out = subprocess.run([sys.executable, "-c", code], cwd=helpers.REPO, capture_output=True,
                       text=True, timeout=120, check=True)
  assert out.stdout.strip() == "[]"
