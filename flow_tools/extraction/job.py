"""The extract app's job: a dataset opened and handed to a runner (local processes or Beam)."""

from flow_tools import datasets
from flow_tools.extraction import flow as flow_lib
from flow_tools.extraction import local_runner


def _runner(runner, output_dir, num_workers, progress, beam_pipeline_options, retry_failed):
  """(index, read_videos, config) -> Summary of `runner`; a missing apache-beam or a wrong
  Beam option fails here, before any data is read."""
  if runner == "local":
    return lambda index, read_videos, config: local_runner.extract(
        index, output_dir, config, num_workers, progress, read_videos, retry_failed)
  if runner != "beam":
    raise ValueError(f"unknown runner {runner!r}: 'local' or 'beam'")
  try:
    from flow_tools.extraction import beam_runner  # pylint: disable=import-outside-toplevel
  except ModuleNotFoundError as error:
    if error.name != "apache_beam":
      raise
    raise ValueError('--runner=beam needs apache-beam: pip install -e ".[beam]" '
                     "(or pip install 'apache-beam>=2.60,<3')") from error
  beam_runner.pipeline_options(beam_pipeline_options)
  return lambda index, read_videos, config: beam_runner.extract(
      index, output_dir, config, beam_pipeline_options, retry_failed)


def open_dataset(dataset, data_dir, splits_dir=None, tfds_name=None, tfds_download=True,
                 output_dir=None):
  """(`DatasetIndex`, its `read_videos` source): None for video files, TFDS's for
  `datasets.TFDS`; an `output_dir` inside `data_dir` is not read as a class folder."""
  if dataset != datasets.TFDS:
    return datasets.load_dataset(dataset, data_dir, splits_dir, output_dir=output_dir), None
  from flow_tools.datasets import tfds_videos  # pylint: disable=import-outside-toplevel
  source = tfds_videos.TfdsVideos(tfds_name, data_dir, tfds_download)
  return source.index(), source.read


def extract_dataset(dataset, data_dir, output_dir, config, *, splits_dir=None, tfds_name=None,
                    tfds_download=True, runner="local", num_workers=2, progress=True,
                    beam_pipeline_options="", retry_failed=False):
  """The extract app's job: a dataset as distributed (or from TFDS) into `output_dir`.

  The flow algorithm and the runner are checked before any data is read.
  Returns:
    (its `DatasetIndex`, the run's `Summary`).
  """
  flow_lib.create(config.algorithm)
  run = _runner(runner, output_dir, num_workers, progress, beam_pipeline_options, retry_failed)
  index, read_videos = open_dataset(dataset, data_dir, splits_dir, tfds_name, tfds_download,
                                    output_dir)
  return index, run(index, read_videos, config)
