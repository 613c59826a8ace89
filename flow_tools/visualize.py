"""Shows a video's frames and flow as extracted: a contact sheet (PNG) or a flow video.

  python -m flow_tools.visualize --records_dir=OUT --video_id=ApplyEyeMakeup/v_..._g01_c01 \
      --output=sheet.png
  python -m flow_tools.visualize --video=my_video.avi --output=flow.mp4 [--algorithm=tvl1]

With --records_dir, the video is read from records written by flow_tools.extract (what the
networks are trained on); with --video, the file is extracted first, into a temporary
directory, with --algorithm and --short_side. A .png --output is a contact sheet
(a row per time step: RGB frame, flow colour, d_x, d_y, backward flow if stored; the colour
key); a .mp4 or .avi --output is a video of RGB | flow colour | key per frame pair.
"""

import os
import sys
import tempfile

from absl import app
from absl import flags

from flow_tools.extraction import encoding
from flow_tools.extraction import flow
from flow_tools.pictures import visualization
from flow_tools.records import record_parsing

_DEFAULTS = encoding.ExtractionConfig()

flags.DEFINE_string("records_dir", None, "Records written by flow_tools.extract.")
flags.DEFINE_string("video_id", None, "With --records_dir: the video (as in its manifest.json).")
flags.DEFINE_string("video", None, "A video file to extract and show instead.")
flags.DEFINE_enum("algorithm", _DEFAULTS.algorithm, sorted(flow.ALGORITHMS),
                  "With --video: the optical flow algorithm.")
flags.DEFINE_integer("short_side", _DEFAULTS.short_side,
                     "With --video: rescale frames so the smaller side has this many pixels "
                     "(0: keep).", lower_bound=0)
flags.DEFINE_string("output", None, "A .png contact sheet or a .mp4/.avi flow video.")
flags.DEFINE_integer("steps", 6, "Time steps (rows) of a contact sheet.", lower_bound=1)
flags.DEFINE_float("max_magnitude", 0.0, "Flow magnitude (px) of full colour saturation "
                   "(0: the largest shown).", lower_bound=0.0)
flags.DEFINE_integer("fps", 10, "Frames per second of a flow video.", lower_bound=1)
flags.mark_flag_as_required("output")
flags.register_multi_flags_validator(
    ["records_dir", "video_id", "video"],
    lambda v: (v["video"] is None) == (v["records_dir"] is not None and v["video_id"] is not None)
    and (v["video"] is None or (v["records_dir"] is None and v["video_id"] is None)),
    "give --records_dir and --video_id, or --video")
flags.register_validator(
    "output", lambda v: v is None or os.path.splitext(v)[1].lower() in visualization.OUTPUTS,
    f"--output must end in one of {visualization.OUTPUTS}")

FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  try:
    if FLAGS.video:
      with tempfile.TemporaryDirectory() as work_dir:
        config = encoding.ExtractionConfig(algorithm=FLAGS.algorithm,
                                           short_side=FLAGS.short_side)
        video = visualization.extracted_video(FLAGS.video, work_dir, config)
    else:
      video = record_parsing.load_video(FLAGS.records_dir, FLAGS.video_id)
    visualization.write(video, FLAGS.output, FLAGS.steps, FLAGS.max_magnitude or None, FLAGS.fps)
  except (OSError, ValueError) as e:
    sys.exit(f"error: {e}")
  print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
  app.run(main)
