"""Exported models: one SavedModel per stream, and a two-stream SavedModel with fusion inside.

The two-stream `serving_default` takes one video's views, `rgb` (V x crop x crop x 3, RGB
0..255) and `flow` (V x crop x crop x 2L, flow in pixels as `flow_tools.records` decodes it,
before mean subtraction), and returns per head `<head>` (fused class probabilities),
`<head>_spatial` and `<head>_temporal` (each stream's softmax averaged over the views).
Mean flow subtraction, each trunk's input normalisation and the fusion (averaging, or the
SVM's weights on the L2-normalised scores, turned into probabilities by a softmax over its
class scores) are in the graph. The `metadata` signature returns JSON with what a caller
needs to prepare inputs (class names, crop size, stacking, stack length, the flow
extraction settings); the same JSON is `metadata.json` in the export directory.
"""

import json
import os

import keras
import tensorflow as tf

from flow_tools import records
from flow_tools import storage
from two_stream_tf import fusion as fusion_lib
from two_stream_tf import model_dirs
from two_stream_tf import streams
from two_stream_tf.data import stacking

METADATA_FILE = "metadata.json"
FUSIONS = ("average", "svm")


class ExportError(ValueError):
  """Streams that cannot be exported together, or fusion settings that do not fit them."""


def check_compatible(spatial_spec, temporal_spec):
  if spatial_spec.stream != "spatial" or temporal_spec.stream != "temporal":
    raise ExportError(f"expected a spatial and a temporal model, got {spatial_spec.stream} and "
                      f"{temporal_spec.stream}")
  if spatial_spec.heads != temporal_spec.heads:
    raise ExportError(f"the streams' heads differ: spatial {spatial_spec.head_names}, temporal "
                      f"{temporal_spec.head_names} (or their class lists)")
  if spatial_spec.input.crop_size != temporal_spec.input.crop_size:
    raise ExportError(f"crop sizes differ: spatial {spatial_spec.input.crop_size}, temporal "
                      f"{temporal_spec.input.crop_size}")


def metadata(spatial_spec, temporal_spec, fusion, temporal_weight):
  """What a caller of the export needs to build its inputs, as plain JSON values."""
  # Model_dirs of older versions do not hold their records' extraction settings.
  extraction = (temporal_spec.extraction[0] if temporal_spec.extraction
                else records.read_manifest(temporal_spec.records_dirs[0])["config"])
  temporal_input = temporal_spec.input
  return {"heads": [[name, list(classes)] for name, classes in temporal_spec.heads],
          "crop_size": temporal_input.crop_size, "stack_length": temporal_input.stack_length,
          "stacking": temporal_input.stacking, "mean_subtraction": temporal_input.mean_subtraction,
          "extraction": extraction, "fusion": fusion, "temporal_weight": temporal_weight,
          "views_per_position": streams.VIEWS_PER_POSITION, "positions": streams.NUM_POSITIONS,
          "inputs": {
              "rgb": "V x crop x crop x 3 float32, RGB 0..255",
              "flow": "V x crop x crop x 2L float32, pixels, d_x then d_y per field"}}


def _fused(head, spatial, temporal, fusion, temporal_weight, svms):
  if fusion == "average":
    return (1.0 - temporal_weight) * spatial + temporal_weight * temporal
  svm = svms[head]
  features = tf.concat([tf.math.l2_normalize(spatial, axis=-1),
                        tf.math.l2_normalize(temporal, axis=-1)], axis=-1)
  decision = tf.linalg.matvec(tf.constant(svm.weights, tf.float32), features) + \
      tf.constant(svm.bias, tf.float32)
  return tf.nn.softmax(decision)


def _check_fusion(spec, fusion, svms):
  if fusion not in FUSIONS:
    raise ExportError(f"unknown fusion {fusion!r}; choose from {FUSIONS}")
  if fusion == "svm":
    for head, classes in spec.heads:
      if svms is None or head not in svms:
        raise ExportError(f"SVM fusion needs a fitted SVM for head {head!r}")
      if tuple(svms[head].class_names) != tuple(classes):
        raise ExportError(f"{head}: the SVM's classes differ from the models'")


def export_two_stream(export_dir, spatial, temporal, spatial_spec, temporal_spec,
                      fusion="average", temporal_weight=0.5, svms=None):
  """Writes the two-stream SavedModel (see the module docstring) to `export_dir`."""
  check_compatible(spatial_spec, temporal_spec)
  _check_fusion(temporal_spec, fusion, svms)
  info = metadata(spatial_spec, temporal_spec, fusion, temporal_weight)
  info_json = json.dumps(info, sort_keys=True)
  size = temporal_spec.input.crop_size
  channels = temporal_spec.input.channels
  subtract_mean = temporal_spec.input.mean_subtraction

  def serve(rgb, flow):
    if subtract_mean:
      flow = stacking.subtract_mean_flow(flow)
    spatial_out, temporal_out = spatial(rgb, training=False), temporal(flow, training=False)
    outputs = {}
    for head in temporal_spec.head_names:
      s = tf.reduce_mean(spatial_out[head], axis=0)
      t = tf.reduce_mean(temporal_out[head], axis=0)
      outputs[head] = _fused(head, s, t, fusion, temporal_weight, svms)
      outputs[f"{head}_spatial"], outputs[f"{head}_temporal"] = s, t
    return outputs

  archive = keras.export.ExportArchive()
  archive.track(spatial)
  archive.track(temporal)
  archive.add_endpoint("serve", serve, input_signature=[
      tf.TensorSpec([None, size, size, 3], tf.float32, name="rgb"),
      tf.TensorSpec([None, size, size, channels], tf.float32, name="flow")])
  archive.add_endpoint("metadata", lambda: tf.constant(info_json), input_signature=[])
  archive.write_out(export_dir, verbose=False)
  storage.write_json(os.path.join(export_dir, METADATA_FILE), info)
  return info


def export_stream(export_dir, model):
  """One stream's SavedModel: `serve` maps a batch of views to {head: softmax per view}."""
  model.export(export_dir, verbose=False)


def export(spatial_model_dir, temporal_model_dir, export_dir, fusion="average",
           temporal_weight=0.5, svm_dir=None):
  """Exports `export_dir`/spatial, /temporal and /two_stream from two trained model_dirs.

  Everything is checked, then written beside `export_dir`, which it replaces only when
  complete: a failed export leaves the previous one whole.

  Args:
    fusion: 'average' (weighted by `temporal_weight`) or 'svm' (the SVMs `svm_dir` holds,
      as `two_stream_tf.fusion.fuse` wrote them).
  Returns:
    (spatial step, temporal step): the checkpoints exported.
  """
  spatial, spatial_spec, spatial_step = model_dirs.load(spatial_model_dir)
  temporal, temporal_spec, temporal_step = model_dirs.load(temporal_model_dir)
  check_compatible(spatial_spec, temporal_spec)
  svms = None
  if fusion == "svm":
    svms = {}
    for head in temporal_spec.head_names:
      path = fusion_lib.svm_path(svm_dir, head)
      if not os.path.isfile(path):
        raise ExportError(f"no {path}: run two_stream_tf.fuse with train scores first")
      svms[head] = fusion_lib.SvmFusion.load(path)
  _check_fusion(temporal_spec, fusion, svms)
  staging = storage.staging_path(export_dir)
  try:
    for name, model in (("spatial", spatial), ("temporal", temporal)):
      export_stream(os.path.join(staging, name), model)
    export_two_stream(os.path.join(staging, "two_stream"), spatial, temporal, spatial_spec,
                      temporal_spec, fusion=fusion, temporal_weight=temporal_weight, svms=svms)
    storage.replace_directory(staging, export_dir)
  finally:
    if storage.exists(staging):
      storage.rmtree(staging)
  return spatial_step, temporal_step
