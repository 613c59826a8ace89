"""Writes records as the frame folders MMAction2 (or denseflow, or Feichtenhofer's layout) reads.

  python -m flow_tools.export_rawframes --records_dir=records/ucf101 \\
      --output_dir=data/ucf101/rawframes

writes `data/ucf101/rawframes/<class>/<video>/img_00001.jpg, flow_x_00001.jpg, ...` and
`data/ucf101/ucf101_{train,val}_split_<N>_rawframes.txt`, what MMAction2's
RawframeDataset reads (data_prefix=data/ucf101/rawframes, filename_tmpl 'img_{:05}.jpg'
or 'flow_{}_{:05d}.jpg', start_index 1). Records whose flow was quantised to the same
bound are written byte for byte; others are re-quantised, and the error it adds printed.
Resumable: run it again after an interruption.
"""

import sys

from absl import app
from absl import flags

from flow_tools.rawframes import layouts

_WRITTEN = sorted(name for name, layout in layouts.LAYOUTS.items()
                  if layout.flow_count == layouts.FRAMES_MINUS_ONE)

flags.DEFINE_string("records_dir", None, "A finished records directory.")
flags.DEFINE_string("output_dir", None, "The root of the frame folders.")
flags.DEFINE_enum("layout", "mmaction2", _WRITTEN,
                  "The layout to write (flow_tools.rawframes.layouts).")
flags.DEFINE_float("flow_bound", None, "Quantisation bound in pixels (default: the records' "
                   "for bound-quantised records, else 20).")
flags.DEFINE_string("lists_dir", None, "Where the annotation lists go (default: the parent of "
                    "--output_dir, as MMAction2's data/<dataset>/).")
flags.DEFINE_integer("num_threads", 8, "Videos written at once.", lower_bound=1)
flags.mark_flags_as_required(["records_dir", "output_dir"])

FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  # Imported late so that --help and flag errors do not wait for TensorFlow.
  from flow_tools import records  # pylint: disable=import-outside-toplevel
  from flow_tools.rawframes import rawframes_export  # pylint: disable=import-outside-toplevel
  try:
    summary = rawframes_export.export_records(
        FLAGS.records_dir, FLAGS.output_dir, layouts.LAYOUTS[FLAGS.layout], FLAGS.flow_bound,
        FLAGS.lists_dir, FLAGS.num_threads)
  except (ValueError, OSError, records.RecordsError) as error:
    sys.exit(f"error: {error}")
  print(f"wrote {summary.num_written} of {summary.num_videos} videos (kept "
        f"{summary.num_kept} written before) in {summary.seconds:.1f} s -> {FLAGS.output_dir}")
  print("lists: " + ", ".join(summary.lists))
  if summary.byte_for_byte:
    print("flow written byte for byte (the records' bound)")
  elif summary.error is not None:
    e = summary.error
    print(f"flow re-quantised to the bound: mean |error| {e.mean_abs:.4f} px, at most "
          f"{e.max_abs_within_bound:.4f} px within the bound, {100 * e.clipped:.3f}% of "
          "values beyond it clipped")


if __name__ == "__main__":
  app.run(main)
