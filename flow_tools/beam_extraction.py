"""Extraction as an Apache Beam pipeline: the same records and manifest as the local runner.

Each video is encoded (decode, flow, quantise, JPEG) on a Beam worker, the
results are grouped by shard, and each shard file is written whole by one worker;
the launching process then writes the manifest. The shard plan, the bytes of every
shard and the manifest are those of `flow_tools.extraction.extract`, and a run
that stopped resumes from the shard files already written (Beam itself retries
failed bundles). Unreadable videos are recorded as failures, as locally.

The same pipeline runs on DirectRunner, Dataflow, Flink or Spark through Beam's
own pipeline options. Videos and `output_dir` may be local (one machine, or a
filesystem every worker mounts) or on a remote filesystem TensorFlow reads, such as
gs:// for Dataflow (`flow_tools.storage`).

Needs apache-beam (`pip install -e ".[beam]"`).
"""

import shlex
import time

import apache_beam as beam
from apache_beam.options import pipeline_options as beam_options
import tensorflow as tf

from flow_tools import encode
from flow_tools import extraction
from flow_tools import flow as flow_lib

_NAMESPACE = "flow_tools"


class _EncodeVideo(beam.DoFn):
  """(shard, video id, path) -> (shard, (video id, serialized record or None, frames or reason))."""

  def __init__(self, layout):
    super().__init__()
    self._layout = layout
    self._flow = None
    self._videos = beam.metrics.Metrics.counter(_NAMESPACE, "videos_extracted")
    self._failures = beam.metrics.Metrics.counter(_NAMESPACE, "videos_failed")
    self._pairs = beam.metrics.Metrics.counter(_NAMESPACE, "flow_pairs")

  def setup(self):
    encode.configure_worker_process()
    self._flow = flow_lib.create(self._layout.config.algorithm)  # One per DoFn: not shared.

  def process(self, task):
    shard, video_id, source = task
    encoded, reason = encode.encode_or_explain(source, self._layout.config, self._flow)
    if encoded is None:
      self._failures.inc()
      yield shard, (video_id, None, reason)
    else:
      self._videos.inc()
      self._pairs.inc(encoded.num_frames - 1)
      yield shard, (video_id, self._layout.serialize(video_id, encoded), encoded.num_frames)


def _write_shard(shard_results, layout):
  """Writes a shard's manifest entries, then the shard file (the layout's contract)."""
  shard, results = shard_results
  outcomes, serialized = {}, {}
  for video_id, record, detail in results:
    outcomes[video_id] = detail
    if record is not None:
      serialized[video_id] = record

  def write(tmp):
    with tf.io.TFRecordWriter(tmp) as writer:
      for video_id in layout.shards[shard]:
        if video_id in serialized:
          writer.write(serialized[video_id])
  layout.write_shard(shard, outcomes, write)


def pipeline_options(options):
  """Beam `PipelineOptions` from a command-line string; unknown options are an error.

  Raises:
    ValueError: naming the options Beam does not know (a typo would otherwise
      silently run on the default runner).
  """
  argv = shlex.split(options)
  parsed = beam_options.PipelineOptions(argv)
  unknown = [a for a in parsed.get_all_options(retain_unknown_options=True, drop_default=True)
             if a not in parsed.get_all_options()]
  if unknown:
    raise ValueError(f"unknown Beam pipeline options: {', '.join(sorted(unknown))}")
  return parsed


def extract(index, output_dir, config, videos_per_shard=32, options=""):
  """Extracts every video of `index` into `output_dir` with a Beam pipeline.

  Args:
    index: a `flow_tools.datasets.DatasetIndex` of video files.
    output_dir: where shards, `manifest.json` and (while running) `.incomplete/` go.
    config: a `flow_tools.encode.ExtractionConfig`.
    videos_per_shard: videos per TFRecord shard.
    options: Beam pipeline options as on a command line, e.g.
      "--runner=DirectRunner --direct_num_workers=2 --direct_running_mode=multi_processing".
  Returns:
    A `flow_tools.extraction.Summary`, as the local runner's.
  """
  if videos_per_shard < 1:
    raise ValueError("videos_per_shard must be at least 1")
  flow_lib.create(config.algorithm)  # Fails here, once, if the algorithm is unavailable.
  parsed_options = pipeline_options(options)
  start = time.time()
  layout = extraction.OutputLayout(index, output_dir, config, videos_per_shard)
  finished = layout.finished_summary(start)
  if finished is not None:
    return finished
  layout.prepare()
  tasks = [(shard, video_id, layout.entries[video_id].path)
           for shard in layout.pending_shards() for video_id in layout.shards[shard]]
  if tasks:
    with beam.Pipeline(options=parsed_options) as pipeline:
      _ = (pipeline
           | "Videos" >> beam.Create(tasks, reshuffle=False)
           | "Spread" >> beam.Reshuffle()
           | "Encode" >> beam.ParDo(_EncodeVideo(layout))
           | "ByShard" >> beam.GroupByKey()
           | "WriteShard" >> beam.Map(_write_shard, layout))
  return layout.finish(start)
