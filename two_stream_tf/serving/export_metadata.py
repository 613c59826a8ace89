"""What an exported SavedModel says about itself: the meaning of its inputs and outputs, its
heads and classes, and the settings its inputs must be made with.

`exporting` writes it twice, as the SavedModel's `metadata` signature (output
`metadata_json`, so that `tf.saved_model.load` alone reads it) and as `metadata.json`
beside the model; `prediction` and `exporting.is_export` read it; versioned here (FORMAT).
"""

import json
import os

from flow_tools.common import storage
from two_stream_tf import streams

FORMAT = "two_stream_tf.export/1"  # exports from before `format` was stored are format 1 too
FILE = "metadata.json"
SIGNATURE, OUTPUT = "metadata", "metadata_json"
INPUT_NAMES = {"spatial": "rgb_views", "temporal": "flow_views"}
_INPUT_MEANINGS = {
    "spatial": "V x crop x crop x 3 float32: V views (crops, flips) of RGB frames, 0..255",
    "temporal": "V x crop x crop x 2L float32: V views of flow stacks, pixels as the records "
                "decode them, d_x then d_y per field, before mean subtraction"}


class MetadataError(ValueError):
  """An export without metadata, or with metadata of another version: one line naming it."""


def output_names(head, model):
  """{output: meaning} of one head in the SavedModel `model` ('spatial', 'temporal' or
  'two_stream')."""
  if model != "two_stream":
    return {f"{head}_view_probabilities": f"V x classes: {model} softmax of each view"}
  return {f"{head}_video_probabilities": "classes: the fused probabilities of the video",
          **{f"{head}_{s}_video_probabilities": f"classes: {s} softmax averaged over the views"
             for s in streams.STREAMS}}


def describe(specs, model, fusion=None, temporal_weight=None):
  """What a caller of the SavedModel `model` needs to build its inputs and read its outputs,
  as plain JSON values.

  Args:
    specs: the `RunSpec` of each stream in the model (spatial first).
    model: 'spatial', 'temporal' or 'two_stream'.
  """
  heads = specs[0].heads
  info = {"format": FORMAT, "model": model,
          "heads": [[name, list(classes)] for name, classes in heads],
          "crop_size": specs[0].input.crop_size,
          "inputs": {INPUT_NAMES[s.stream]: _INPUT_MEANINGS[s.stream] for s in specs},
          "outputs": {k: v for head, _ in heads for k, v in output_names(head, model).items()},
          "views_per_position": streams.VIEWS_PER_POSITION, "positions": streams.NUM_POSITIONS}
  for spec in specs:
    if spec.stream == "temporal":
      info.update(extraction=spec.extraction[0],
                  stack_length=spec.input.stack_length, stacking=spec.input.stacking,
                  mean_subtraction=spec.input.mean_subtraction)
  if model == "two_stream":
    info.update(fusion=fusion, temporal_weight=temporal_weight)
  return info


def as_json(info):
  """The text of the `metadata` signature's output."""
  return json.dumps(info, sort_keys=True)


def write_file(export_dir, info):
  """Writes `metadata.json` beside the SavedModel in `export_dir` (atomically)."""
  storage.write_json(os.path.join(export_dir, FILE), info)


def _checked(info, where):
  found = info.get("format", FORMAT) if isinstance(info, dict) else None
  if found != FORMAT:
    raise MetadataError(f"{where} was exported by another version of two_stream_tf (metadata "
                        f"format {found}, this reads {FORMAT}): run two_stream_tf.export again")
  return info


def read_file(export_dir):
  """The metadata in `export_dir`/metadata.json, of any version (OSError, ValueError if none
  or unreadable): what a directory holds, not how to call it (that is `read_saved`'s)."""
  return storage.read_json(os.path.join(export_dir, FILE))


def read_saved(model, path):
  """The metadata of the loaded SavedModel `model` (from `path`), from its signature."""
  signature = getattr(model, SIGNATURE, None)
  info = signature() if signature is not None else None
  if not isinstance(info, dict) or OUTPUT not in info:
    raise MetadataError(f"{path} was exported by an older version of two_stream_tf: run "
                        "two_stream_tf.export again")
  return _checked(json.loads(info[OUTPUT].numpy()), path)
