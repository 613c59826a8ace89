"""Extraction as an Apache Beam pipeline: the same records and manifest as the local runner.

Each video is encoded (decode, flow, quantise, JPEG) on a Beam worker, which writes the video's
files itself (`flow_tools.extraction.output_directory.OutputDirectory`: each file written aside,
then renamed into place); the launching process then writes the manifest. The bytes of every file
and of the manifest are those of `flow_tools.extraction.local_runner.extract`, and a run that
stopped resumes from the videos already finished (Beam itself retries failed bundles; a retried
video writes the same bytes again). Unreadable videos are recorded as failures, as locally.

The same pipeline runs on DirectRunner, Dataflow, Flink or Spark through Beam's
own pipeline options. Videos and `output_dir` may be local (one machine, or a
filesystem every worker mounts) or on a remote filesystem TensorFlow reads, such as
gs:// for Dataflow (`flow_tools.common.storage`).

Needs apache-beam (`pip install -e ".[beam]"`).
"""

import shlex
import time

import apache_beam as beam
from apache_beam.options import pipeline_options as beam_options

from flow_tools.common import locks
from flow_tools.extraction import encoding
from flow_tools.extraction import flow as flow_lib
from flow_tools.extraction import output_directory

_NAMESPACE = "flow_tools"


class _EncodeVideo(beam.DoFn):
  """(video id, path) -> the video's files, or its failure, in the output directory."""

  def __init__(self, layout):
    super().__init__()
    self._layout = layout
    self._flow = None
    self._videos = beam.metrics.Metrics.counter(_NAMESPACE, "videos_extracted")
    self._failures = beam.metrics.Metrics.counter(_NAMESPACE, "videos_failed")
    self._pairs = beam.metrics.Metrics.counter(_NAMESPACE, "flow_pairs")

  def setup(self):
    encoding.configure_worker_process()
    self._flow = flow_lib.create(self._layout.config.algorithm)  # One per DoFn: not shared.

  def process(self, task):
    video_id, source = task
    fingerprint, encoded, reason = encoding.encode_or_explain(source, self._layout.config,
                                                              self._flow)
    if encoded is None:
      self._failures.inc()
      self._layout.save_failure(video_id, reason, fingerprint)
    else:
      self._videos.inc()
      self._pairs.inc(encoded.num_frames - 1)
      self._layout.save_video(video_id, encoded, fingerprint)


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


def extract(index, output_dir, config, options="", retry_failed=False):
  """Extracts every video of `index` into `output_dir` with a Beam pipeline.

  Args:
    index: a `flow_tools.datasets.DatasetIndex` of video files.
    output_dir: where `videos/`, `manifest.json` and (while running) `.incomplete/` go.
    config: a `flow_tools.extraction.encoding.ExtractionConfig`.
    options: Beam pipeline options as on a command line, e.g.
      "--runner=DirectRunner --direct_num_workers=2 --direct_running_mode=multi_processing".
    retry_failed: encode again the videos an earlier run found unusable.
  Returns:
    A `flow_tools.extraction.output_directory.Summary`, as the local runner's. The launching process
    holds the output directory's lock (`flow_tools.common.locks`) while the pipeline runs.
  """
  flow_lib.create(config.algorithm)  # Fails here, once, if the algorithm is unavailable.
  parsed_options = pipeline_options(options)
  start = time.time()
  layout = output_directory.OutputDirectory(index, output_dir, config)
  with locks.hold(output_dir, "an extraction"):
    plan = layout.open_run(retry_failed)
    if plan.finished is not None:
      return layout.finished_summary(plan, start)
    if plan.to_encode:
      tasks = [(v, layout.entries[v].path) for v in plan.to_encode]
      with beam.Pipeline(options=parsed_options) as pipeline:
        _ = (pipeline
             | "Videos" >> beam.Create(tasks, reshuffle=False)
             | "Spread" >> beam.Reshuffle()
             | "Encode" >> beam.ParDo(_EncodeVideo(layout)))
    return layout.finish(start, plan)
