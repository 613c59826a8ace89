"""Exported models: one SavedModel per stream, and a two-stream SavedModel with fusion inside.

Each SavedModel has one serving signature, `serving_default`, and a `metadata` signature
whose output `metadata_json` says what the inputs hold and what each output is (the same
JSON is `metadata.json` in the export directory). Inputs are views (`streams`: the leading
axis counts views, e.g. a video's 25 x 10), as float32: `rgb_views` (V x crop x crop x 3,
RGB 0..255) and `flow_views` (V x crop x crop x 2L, flow in pixels as `flow_tools.records`
decodes it, x then y per field, before mean subtraction).

- A stream's model returns `<head>_view_probabilities` (V x classes): its softmax per view.
- The two-stream model takes one video's views of both streams (the same V) and returns
  per head `<head>_video_probabilities` (the fused class probabilities of the video) and
  `<head>_spatial_video_probabilities`, `<head>_temporal_video_probabilities` (each
  stream's softmax averaged over the views). Views of different counts are refused in
  the graph.

Mean flow subtraction, each trunk's input normalisation and the fusion (averaging, or the
SVM's weights on the L2-normalised scores, turned into probabilities by a softmax over its
class scores) are in the graph.
"""

import os

import keras
import tensorflow as tf

from flow_tools.common import storage
from two_stream_tf import fusion as fusion_lib
from two_stream_tf import model_dirs
from two_stream_tf import streams
from two_stream_tf.data import stacking
from two_stream_tf.serving import export_metadata

FUSIONS = ("average", "svm")
_MODELS = (*streams.STREAMS, "two_stream")  # the SavedModels of an export directory


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


def _view_probabilities(model, spec):
  """views -> {head: softmax per view} of one stream, its input preparation in the graph."""
  subtract_mean = spec.stream == "temporal" and spec.input.mean_subtraction

  def forward(views):
    if subtract_mean:
      views = stacking.subtract_mean_flow(views)
    return model(views, training=False)
  return forward


def _input_spec(spec):
  size = spec.input.crop_size
  return tf.TensorSpec([None, size, size, spec.input.channels], tf.float32,
                       name=export_metadata.INPUT_NAMES[spec.stream])


def _write(export_dir, models, serve, input_signature, info):
  """A SavedModel of `serve` (the only serving signature) and of its metadata."""
  info_json = export_metadata.as_json(info)
  archive = keras.export.ExportArchive()
  for model in models:
    archive.track(model)
  # Named serving_default: Keras would otherwise add that name as a second alias.
  archive.add_endpoint("serving_default", serve, input_signature=input_signature)
  archive.add_endpoint(export_metadata.SIGNATURE,
                       lambda: {export_metadata.OUTPUT: tf.constant(info_json)},
                       input_signature=[])
  archive.write_out(export_dir, verbose=False)
  export_metadata.write_file(export_dir, info)
  return info


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
  spatial_views = _view_probabilities(spatial, spatial_spec)
  temporal_views = _view_probabilities(temporal, temporal_spec)

  def serve(rgb_views, flow_views):
    views = tf.shape(rgb_views)[0]
    checks = [
        tf.debugging.assert_positive(views, message="rgb_views holds no views"),
        tf.debugging.assert_equal(
            views, tf.shape(flow_views)[0],
            message="rgb_views and flow_views must hold the same views of one video "
                    "(as many of each); got these counts")]
    with tf.control_dependencies(checks):
      spatial_out = spatial_views(tf.identity(rgb_views))
      temporal_out = temporal_views(tf.identity(flow_views))
    outputs = {}
    for head in temporal_spec.head_names:
      s = tf.reduce_mean(spatial_out[head], axis=0)
      t = tf.reduce_mean(temporal_out[head], axis=0)
      fused, spatial_name, temporal_name = export_metadata.output_names(head, "two_stream")
      outputs[fused] = _fused(head, s, t, fusion, temporal_weight, svms)
      outputs[spatial_name], outputs[temporal_name] = s, t
    return outputs

  return _write(export_dir, (spatial, temporal), serve,
                [_input_spec(spatial_spec), _input_spec(temporal_spec)],
                export_metadata.describe((spatial_spec, temporal_spec), "two_stream", fusion,
                                         temporal_weight))


def export_stream(export_dir, model, spec):
  """One stream's SavedModel: `serving_default` maps views to each head's softmax per view."""
  views = _view_probabilities(model, spec)

  def serve(inputs):
    out = views(inputs)
    return {name: out[head] for head in spec.head_names
            for name in export_metadata.output_names(head, spec.stream)}

  return _write(export_dir, (model,), serve, [_input_spec(spec)],
                export_metadata.describe((spec,), spec.stream))


def is_export(directory):
  """Whether `directory` holds only SavedModels this module wrote (of any version since
  metadata.json: an earlier export that `export` may replace)."""
  for name in storage.listdir(directory):
    try:
      info = export_metadata.read_file(os.path.join(directory, name))
      if name not in _MODELS or info.get("model") != name:
        return False
    except (OSError, ValueError, AttributeError):
      return False
  return True


def export(spatial_model_dir, temporal_model_dir, export_dir, fusion="average",
           temporal_weight=0.5, svm_dir=None):
  """Exports `export_dir`/spatial, /temporal and /two_stream from two trained model_dirs.

  Everything is checked, then written beside `export_dir`, which it replaces only when
  complete: a failed export leaves the previous one whole. `export_dir` must be new, empty
  or an earlier export (`is_export`); a file or a folder of other files is refused, before
  any work, as are a read-only disk and one without room for the SavedModels.

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
      svms[head] = fusion_lib.load_svm(path)
  _check_fusion(temporal_spec, fusion, svms)
  # Each stream's weights are written twice (its own SavedModel and the two-stream one).
  needed = 2 * 4 * (spatial.count_params() + temporal.count_params()) + 2**20

  def write(staging):
    for model, spec in ((spatial, spatial_spec), (temporal, temporal_spec)):
      export_stream(os.path.join(staging, spec.stream), model, spec)
    export_two_stream(os.path.join(staging, "two_stream"), spatial, temporal, spatial_spec,
                      temporal_spec, fusion=fusion, temporal_weight=temporal_weight, svms=svms)
  storage.write_directory(export_dir, write, is_export, needed_bytes=needed,
                          errors=(OSError, tf.errors.OpError))
  return spatial_step, temporal_step
