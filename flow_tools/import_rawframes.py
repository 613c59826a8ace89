"""Imports frames and flow that denseflow, TSN, MMAction2 or Feichtenhofer's download wrote.

  python -m flow_tools.import_rawframes --layout=denseflow --frames_dir=rawframes \\
      --dataset=ucf101 --splits_dir=ucfTrainTestlist --output_dir=OUT
  python -m flow_tools.import_rawframes --layout=denseflow --frames_dir=rawframes \\
      --dataset=mmaction2_lists --splits_dir=data/ucf101 --output_dir=OUT

The layouts and their conventions are in `flow_tools.rawframes.layouts`; the flags below
override a layout's names, numbering and bound. The JPEG files go into the records as
they are. A video whose files are not what the layout says (numbering, counts, a
missing file) is reported and left out, not shifted. Resumable, like
`flow_tools.extract`, with the same exit status: 0 when every video was imported, 3 when
some failed (listed in OUT/manifest.json and printed), 1 on an error that stopped the run.
"""

import sys

from absl import app
from absl import flags

from flow_tools import datasets
from flow_tools.common import interrupts
from flow_tools.common import locks
from flow_tools.extraction import flow
from flow_tools.rawframes import layouts
from flow_tools.rawframes import rawframes_import

flags.DEFINE_enum("layout", None, sorted(layouts.LAYOUTS),
                  "How the frame folders are laid out and numbered (flow_tools.rawframes.layouts).")
flags.DEFINE_string("frames_dir", None, "The layout's root folder (local or gs://...).")
flags.DEFINE_enum("dataset", None, sorted(datasets.LOADERS) + [rawframes_import.MMACTION2_LISTS],
                  "Where the classes and splits come from: a dataset's official split files "
                  "(ucf101, hmdb51, folder), or MMAction2's annotation lists.")
flags.DEFINE_string("splits_dir", None, "The split files (default: beside --frames_dir, as for "
                    "videos), or the folder of MMAction2's <dataset>_{train,val}_split_<N>_"
                    "layouts.txt.")
flags.DEFINE_string("output_dir", None, "Where the records and manifest.json go.")
flags.DEFINE_enum("algorithm", "tvl1", sorted(flow.ALGORITHMS),
                  "The algorithm the flow was computed with, or the closest one here: what "
                  "two_stream_tf.predict computes on new videos for a model trained on these.")
flags.DEFINE_integer("short_side", 256, "The smaller side every video's frames must have (a "
                     "video of another size fails; 0: any size), what predict resizes to.")
flags.DEFINE_integer("jpeg_quality", 95, "Recorded as the flow's JPEG quality, what predict "
                     "encodes with (95: OpenCV's default, which denseflow writes with).")
flags.DEFINE_integer("rgb_jpeg_quality", 95, "Recorded as the frames' JPEG quality.")
flags.DEFINE_float("flow_bound", None, "The quantisation bound in pixels (default: the layout's, "
                   "20).")
flags.DEFINE_string("rgb_prefix", None, "Frame file prefix (default: the layout's, e.g. img_).")
flags.DEFINE_string("flow_x_prefix", None, "Flow x file prefix (default: the layout's).")
flags.DEFINE_string("flow_y_prefix", None, "Flow y file prefix (default: the layout's).")
flags.DEFINE_integer("first_frame", None, "Number of the first frame file (default: the "
                     "layout's; denseflow: 0 or 1, read from each video's files).",
                     lower_bound=0)
flags.DEFINE_integer("first_flow", None, "Number of the first flow file (default: the "
                     "layout's: 0 for denseflow, 1 for the others).", lower_bound=0)
flags.DEFINE_enum("flow_count", None, list(layouts.FLOW_COUNTS),
                  "frames_minus_1: T - 1 fields, field k from frame k to k + 1; frames: as "
                  "many as frames, field k ending at frame k (TSN's dense_flow). Default: the "
                  "layout's.")
flags.DEFINE_integer("num_workers", 2, "Reading processes.", lower_bound=1)
flags.DEFINE_bool("retry_failed", False, "Try again the videos an earlier run found unusable "
                  "although their files have not changed.")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
flags.mark_flags_as_required(["layout", "frames_dir", "dataset", "output_dir"])

FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  # Imported late so that --help and flag errors do not wait for TensorFlow.
  from flow_tools.extraction import output_directory  # pylint: disable=import-outside-toplevel
  def kept():
    return (f"the videos finished are kept in {FLAGS.output_dir}; run the same "
            "command again to resume")
  try:
    with interrupts.one_line_on_interrupt(kept):
      layout = layouts.layout_named(
          FLAGS.layout, bound=FLAGS.flow_bound, rgb_prefix=FLAGS.rgb_prefix,
          flow_x_prefix=FLAGS.flow_x_prefix, flow_y_prefix=FLAGS.flow_y_prefix,
          first_frame=FLAGS.first_frame, first_flow=FLAGS.first_flow, flow_count=FLAGS.flow_count)
      config = rawframes_import.import_config(layout, FLAGS.algorithm, FLAGS.short_side,
                                              FLAGS.jpeg_quality, FLAGS.rgb_jpeg_quality)
      index, summary = rawframes_import.import_frames(
          layout, FLAGS.frames_dir, FLAGS.dataset, FLAGS.output_dir, config,
          splits_dir=FLAGS.splits_dir, num_workers=FLAGS.num_workers, progress=FLAGS.progress,
          retry_failed=FLAGS.retry_failed)
  except (ValueError, OSError, output_directory.ExtractionError, locks.LockedError) as error:
    sys.exit(f"error: {error}")
  print(f"{index.name}: imported {summary.num_extracted} of {summary.num_videos} videos "
        f"({summary.flow_pairs} flow fields) in {summary.seconds:.1f} s -> {summary.output_dir}")
  print(summary.run_report("imported", "imported"))
  for video_id, failure in sorted(summary.failures.items()):
    print(f"failed: {video_id}: {failure['reason']}")
  if summary.failures:
    sys.exit(output_directory.EXIT_SOME_FAILED)


if __name__ == "__main__":
  app.run(main)
