"""Extracts RGB frames and optical flow of a dataset into sharded TFRecords.

  python -m flow_tools.extract --dataset=ucf101 --data_dir=DIR --output_dir=OUT [--flagfile=F]

Resumable: run the same command again after an interruption. Exit status: 0 when
every video was extracted, 3 when the run finished but some videos failed (they
are listed in OUT/manifest.json and printed), 1 on an error that stopped the run.
"""

import sys

from absl import app
from absl import flags

from flow_tools import datasets
from flow_tools import encode
from flow_tools import flow
from flow_tools import quantize

EXIT_SOME_FAILED = 3

_DEFAULTS = encode.ExtractionConfig()

flags.DEFINE_enum("dataset", None, sorted(datasets.LOADERS), "Dataset layout.")
flags.DEFINE_string("data_dir", None, "Videos as distributed (e.g. the UCF-101 folder).")
flags.DEFINE_string("splits_dir", None, "Official split files (default: found beside data_dir).")
flags.DEFINE_string("output_dir", None, "Where the records and manifest.json go.")
flags.DEFINE_enum("algorithm", _DEFAULTS.algorithm, sorted(flow.ALGORITHMS), "Optical flow algorithm.")
flags.DEFINE_integer("short_side", _DEFAULTS.short_side,
                     "Rescale frames so the smaller side has this many pixels (0: keep).")
flags.DEFINE_enum("quantization", _DEFAULTS.quantization, list(quantize.SCHEMES),
                  "minmax: per-field linear rescale (the paper); bound: clip to +-flow_bound (TSN).")
flags.DEFINE_float("flow_bound", _DEFAULTS.bound, "Clipping bound in pixels for --quantization=bound.")
flags.DEFINE_integer("jpeg_quality", _DEFAULTS.jpeg_quality, "JPEG quality of the flow images.")
flags.DEFINE_integer("rgb_jpeg_quality", _DEFAULTS.rgb_jpeg_quality, "JPEG quality of the RGB frames.")
flags.DEFINE_bool("backward", _DEFAULTS.backward, "Also store backward flow (bi-directional stacking).")
flags.DEFINE_integer("num_workers", 2, "Encoding processes.", lower_bound=1)
flags.DEFINE_integer("videos_per_shard", 32, "Videos per TFRecord shard.", lower_bound=1)
flags.DEFINE_bool("progress", True, "Show a progress bar.")
flags.mark_flags_as_required(["dataset", "data_dir", "output_dir"])

FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  # Imported here so that --help and flag errors do not wait for TensorFlow.
  from flow_tools import extraction  # pylint: disable=import-outside-toplevel
  try:
    config = encode.ExtractionConfig(
        algorithm=FLAGS.algorithm, short_side=FLAGS.short_side, quantization=FLAGS.quantization,
        bound=FLAGS.flow_bound, jpeg_quality=FLAGS.jpeg_quality,
        rgb_jpeg_quality=FLAGS.rgb_jpeg_quality, backward=FLAGS.backward)
    flow.create(FLAGS.algorithm)  # Unavailable algorithms fail before any work.
    index = datasets.load_dataset(FLAGS.dataset, FLAGS.data_dir, FLAGS.splits_dir)
    summary = extraction.extract(index, FLAGS.output_dir, config, FLAGS.num_workers,
                                 FLAGS.videos_per_shard, FLAGS.progress)
  except (ValueError, flow.FlowAlgorithmError, extraction.ExtractionError) as error:
    sys.exit(f"error: {error}")
  print(f"{index.name}: {summary.num_extracted} of {summary.num_videos} videos, "
        f"{summary.flow_pairs} flow pairs in {summary.seconds:.1f} s -> {summary.output_dir}")
  for video_id, failure in sorted(summary.failures.items()):
    print(f"failed: {video_id}: {failure['reason']}")
  if summary.failures:
    sys.exit(EXIT_SOME_FAILED)


if __name__ == "__main__":
  app.run(main)
