"""Predictions for video files with an exported two-stream model.

Each video goes through exactly what the training data went through: flow_tools
extraction with the export's settings (frame size, algorithm, quantisation, JPEG
qualities) into temporary records, then the 25 x 10 test views of
`two_stream_tf.data.evaluation_views`, then the export's `serving_default`.
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from flow_tools import datasets
from flow_tools import records
from flow_tools.extraction import encoding
from two_stream_tf import data
from two_stream_tf import streams
from two_stream_tf.data import reading
from two_stream_tf.serving import export_metadata


@dataclasses.dataclass
class Prediction:
  path: str
  heads: dict    # head -> [(class name, probability)], best first
  error: str     # why there is no prediction, or None


def load_export(export_dir):
  """(the two-stream SavedModel, its metadata): `export_dir` is export's OUT or OUT/two_stream."""
  for path in (os.path.join(export_dir, "two_stream"), export_dir):
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
      try:
        model = tf.saved_model.load(path)
      except (OSError, ValueError, tf.errors.OpError) as e:  # damaged, cut short, not ours
        cause = getattr(e, "message", None) or str(e)
        raise ValueError(f"{path} is not a readable SavedModel ({cause.splitlines()[0]}): "
                         "run two_stream_tf.export again") from e
      info = export_metadata.read_saved(model, path)
      if info["model"] != "two_stream":
        raise ValueError(f"{path} is the {info['model']} stream's SavedModel: give the export "
                         "directory (OUT) or OUT/two_stream")
      return model, info
  raise FileNotFoundError(f"no two-stream SavedModel in {export_dir} (run two_stream_tf.export)")


def _views(records_dir, metadata, stream, video_ids):
  config = data.InputConfig(stream=stream, crop_size=metadata["crop_size"],
                            stack_length=metadata["stack_length"], stacking=metadata["stacking"],
                            mean_subtraction=False)  # the export subtracts the mean itself
  per_video = streams.NUM_POSITIONS * streams.VIEWS_PER_POSITION
  return data.evaluation_views(records_dir, 1, config, batch_size=per_video,
                               video_ids=video_ids)


def _too_small(records_dir, crop_size):
  """{video id: why} of the extracted videos whose frames cannot hold the crop."""
  videos = records.read_manifest(records_dir)["videos"]
  return {v: f"its frames are {info['width']}x{info['height']}, smaller than the export's "
             f"{crop_size}x{crop_size} crop" for v, info in videos.items()
          if not reading.holds_crop(info, crop_size)}


def predict_videos(export_dir, paths, work_dir, top_k=5, num_workers=2):
  """A `Prediction` per path, in order: top-k classes per head, or the reason there are none."""
  # pylint: disable=import-outside-toplevel
  from flow_tools.extraction import local_runner
  if os.path.isdir(work_dir) and os.listdir(work_dir):
    raise ValueError(f"--work_dir {work_dir} is not empty: give a new or empty directory")
  model, metadata = load_export(export_dir)
  index, path_of = datasets.stage_files(paths, work_dir)
  config = encoding.ExtractionConfig(**metadata["extraction"])
  records_dir = os.path.join(work_dir, "records")
  summary = local_runner.extract(index, records_dir, config, num_workers, progress=False)
  unusable = {v: f["reason"] for v, f in summary.failures.items()}
  if summary.num_extracted:
    unusable.update(_too_small(records_dir, metadata["crop_size"]))
  results = {path_of[v]: Prediction(path_of[v], {}, reason) for v, reason in unusable.items()}
  usable = [v for v in path_of if v not in unusable]
  if usable:
    heads = [(name, classes) for name, classes in metadata["heads"]]
    for rgb, flow in zip(_views(records_dir, metadata, "spatial", usable),
                         _views(records_dir, metadata, "temporal", usable)):
      video_id = rgb["video_id"][0].numpy().decode()
      if flow["video_id"][0].numpy().decode() != video_id:
        raise RuntimeError("spatial and temporal views came in different orders")
      outputs = model.signatures["serving_default"](rgb_views=rgb["views"],
                                                    flow_views=flow["views"])
      ranked = {}
      for head, classes in heads:
        probabilities = outputs[f"{head}_video_probabilities"].numpy()
        best = np.argsort(-probabilities)[:top_k]
        ranked[head] = [(classes[i], float(probabilities[i])) for i in best]
      results[path_of[video_id]] = Prediction(path_of[video_id], ranked, None)
  return [results[p] for p in paths]
