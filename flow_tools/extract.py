"""Extracts RGB frames and optical flow of a dataset into records (one file per video and modality).

  python -m flow_tools.extract --dataset=ucf101 --data_dir=DIR --output_dir=OUT [--flagfile=F]
  python -m flow_tools.extract --dataset=tfds --tfds_name=ucf101/ucf101_1 --output_dir=OUT
  python -m flow_tools.extract ... --runner=beam --beam_pipeline_options="--runner=FlinkRunner ..."

Resumable: run the same command again after an interruption. A rerun also redoes the
videos whose files changed since they were extracted (re-downloaded, repaired) and says
how many it redid, kept and skipped. Exit status: 0 when
every video was extracted, 3 when the run finished but some videos failed (they
are listed in OUT/manifest.json and printed), 1 on an error that stopped the run.
"""

import sys

from absl import app
from absl import flags

from flow_tools import datasets
from flow_tools.common import interrupts
from flow_tools.common import locks
from flow_tools.extraction import encoding
from flow_tools.extraction import flow
from flow_tools.extraction import quantization

_DEFAULTS = encoding.ExtractionConfig()

RUNNERS = ("local", "beam")

flags.DEFINE_enum("dataset", None, sorted(datasets.LOADERS) + [datasets.TFDS],
                  "Dataset layout, or tfds: a TensorFlow Datasets video dataset (--tfds_name).")
flags.DEFINE_string("data_dir", None, "Videos as distributed (e.g. the UCF-101 folder; local or "
                    "gs://...); with --dataset=tfds the TFDS data directory (default: TFDS's own).")
flags.DEFINE_string("splits_dir", None, "Official split files (default: found beside data_dir).")
flags.DEFINE_string("tfds_name", None, "With --dataset=tfds: dataset/config, e.g. ucf101/ucf101_1 "
                    "(its split N is split N of the records).")
flags.DEFINE_bool("tfds_download", True, "With --dataset=tfds: let TFDS download and prepare "
                  "the dataset if it is not in --data_dir yet.")
flags.DEFINE_enum("runner", "local", RUNNERS, "local: processes on this machine (--num_workers); "
                  "beam: an Apache Beam pipeline (--beam_pipeline_options).")
flags.DEFINE_string("beam_pipeline_options", "", "With --runner=beam: Beam's options as on its "
                    "command line, e.g. \"--runner=DirectRunner --direct_num_workers=2 "
                    "--direct_running_mode=multi_processing\" (default: DirectRunner, one worker).")
flags.DEFINE_string("output_dir", None, "Where the records and manifest.json go (local or gs://...).")
flags.DEFINE_enum("algorithm", _DEFAULTS.algorithm, sorted(flow.ALGORITHMS),
                  "Optical flow algorithm.")
flags.DEFINE_integer("short_side", _DEFAULTS.short_side,
                     "Rescale frames so the smaller side has this many pixels (0: keep).")
flags.DEFINE_enum("quantization", _DEFAULTS.quantization, list(quantization.SCHEMES),
                  "minmax: per-field linear rescale (the paper); "
                  "bound: clip to +-flow_bound (TSN).")
flags.DEFINE_float("flow_bound", _DEFAULTS.bound,
                   "Clipping bound in pixels for --quantization=bound.")
flags.DEFINE_integer("jpeg_quality", _DEFAULTS.jpeg_quality, "JPEG quality of the flow images.")
flags.DEFINE_integer("rgb_jpeg_quality", _DEFAULTS.rgb_jpeg_quality,
                     "JPEG quality of the RGB frames.")
flags.DEFINE_bool("backward", _DEFAULTS.backward,
                  "Also store backward flow (bi-directional stacking).")
flags.DEFINE_integer("num_workers", 2, "Encoding processes (--runner=local).", lower_bound=1)
flags.DEFINE_bool("retry_failed", False, "Try again the videos an earlier run found unusable "
                  "although their files have not changed (changed ones are always redone).")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
flags.mark_flags_as_required(["dataset", "output_dir"])
flags.register_multi_flags_validator(
    ["dataset", "data_dir"],
    lambda f: f["dataset"] == datasets.TFDS or f["data_dir"] is not None,
    "--data_dir is required (the videos as distributed)")
flags.register_multi_flags_validator(
    ["dataset", "tfds_name"],
    lambda f: (f["dataset"] == datasets.TFDS) == (f["tfds_name"] is not None),
    "--tfds_name goes with --dataset=tfds, and --dataset=tfds needs it")
flags.register_multi_flags_validator(
    ["dataset", "runner"],
    lambda f: not (f["dataset"] == datasets.TFDS and f["runner"] == "beam"),
    "--runner=beam reads video files: with --dataset=tfds use --runner=local")
flags.register_multi_flags_validator(
    ["runner", "beam_pipeline_options"],
    lambda f: f["runner"] == "beam" or not f["beam_pipeline_options"],
    "--beam_pipeline_options needs --runner=beam")

FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  # extraction is imported late so that --help and flag errors do not wait for TensorFlow.
  from flow_tools.extraction import job  # pylint: disable=import-outside-toplevel
  from flow_tools.extraction import output_directory  # pylint: disable=import-outside-toplevel
  def kept():
    return (f"the videos finished are kept in {FLAGS.output_dir}; run the same "
            "command again to resume")
  try:
    with interrupts.one_line_on_interrupt(kept):
      config = encoding.ExtractionConfig(
          algorithm=FLAGS.algorithm, short_side=FLAGS.short_side, quantization=FLAGS.quantization,
          bound=FLAGS.flow_bound, jpeg_quality=FLAGS.jpeg_quality,
          rgb_jpeg_quality=FLAGS.rgb_jpeg_quality, backward=FLAGS.backward)
      index, summary = job.extract_dataset(
          FLAGS.dataset, FLAGS.data_dir, FLAGS.output_dir, config, splits_dir=FLAGS.splits_dir,
          tfds_name=FLAGS.tfds_name, tfds_download=FLAGS.tfds_download, runner=FLAGS.runner,
          num_workers=FLAGS.num_workers, progress=FLAGS.progress,
          beam_pipeline_options=FLAGS.beam_pipeline_options, retry_failed=FLAGS.retry_failed)
  except (ValueError, OSError, flow.FlowAlgorithmError, output_directory.ExtractionError,
          locks.LockedError) as error:
    # OSError: an output directory that cannot be written (read-only, a full disk).
    sys.exit(f"error: {error}")
  print(f"{index.name}: {summary.num_extracted} of {summary.num_videos} videos, "
        f"{summary.flow_pairs} flow pairs in {summary.seconds:.1f} s -> {summary.output_dir}")
  print(summary.run_report())
  if summary.worker_seconds:  # where the time went: the algorithm, or the pipeline around it
    print(f"workers: {summary.worker_seconds:.1f} s encoding, "
          f"{100 * summary.flow_seconds / summary.worker_seconds:.0f}% of it in {config.algorithm}")
  for video_id, failure in sorted(summary.failures.items()):
    print(f"failed: {video_id}: {failure['reason']}")
  if summary.failures:
    sys.exit(output_directory.EXIT_SOME_FAILED)


if __name__ == "__main__":
  app.run(main)
