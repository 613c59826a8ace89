"""Export metadata: the one version check, on stand-ins for loaded SavedModels."""

import json

import pytest
import tensorflow as tf

from two_stream_tf.serving import export_metadata


class _Loaded:
  """What `tf.saved_model.load` returns, as far as the metadata goes."""

  def __init__(self, info):
    self.metadata = lambda: {"metadata_json": tf.constant(json.dumps(info))}


def test_the_metadata_signature_is_read_and_other_versions_are_refused_in_one_line():
  info = {"format": export_metadata.FORMAT, "model": "two_stream"}
  assert export_metadata.read_saved(_Loaded(info), "/export") == info
  assert export_metadata.read_saved(_Loaded({"model": "spatial"}), "/old")["model"] == "spatial"
  with pytest.raises(export_metadata.MetadataError,
                     match=r"^/new was exported by another version of two_stream_tf \(metadata "
                           r"format two_stream_tf.export/9, this reads two_stream_tf.export/1\)"):
    export_metadata.read_saved(_Loaded({"format": "two_stream_tf.export/9"}), "/new")
  with pytest.raises(export_metadata.MetadataError,
                     match="^/older was exported by an older version of two_stream_tf: run "):
    export_metadata.read_saved(object(), "/older")
