"""Exports trained streams as SavedModels: one per stream and one two-stream model with fusion.

  python -m two_stream_tf.export --spatial_model_dir=S --temporal_model_dir=T \
      --export_dir=OUT [--fusion=average|svm --svm_dir=FUSE_OUTPUT_DIR]

Writes OUT/spatial and OUT/temporal (`serving_default`: `rgb_views` or `flow_views` ->
`<head>_view_probabilities`) and OUT/two_stream (`serving_default`: one video's
`rgb_views` and `flow_views` -> `<head>_video_probabilities`, fused). Each has a
`metadata` signature (`metadata_json`: what the inputs hold and the outputs mean; also
metadata.json beside it) and loads with `tf.saved_model.load` alone, no project code needed.
"""

import sys

from absl import app
from absl import flags

from flow_tools.common import interrupts
from two_stream_tf.serving import exporting

flags.DEFINE_string("spatial_model_dir", None, "Trained spatial stream (two_stream_tf.train).")
flags.DEFINE_string("temporal_model_dir", None, "Trained temporal stream.")
flags.DEFINE_string("export_dir", None, "Where the SavedModels go.")
flags.DEFINE_enum("fusion", "average", list(exporting.FUSIONS),
                  "Fusion inside the two-stream model.")
flags.DEFINE_float("temporal_weight", 0.5, "Averaging weight of the temporal stream.",
                   lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_string("svm_dir", None, "For --fusion=svm: the two_stream_tf.fuse output "
                    "directory holding svm_<head>.npz.")
flags.mark_flags_as_required(["spatial_model_dir", "temporal_model_dir", "export_dir"])
flags.register_multi_flags_validator(
    ["fusion", "svm_dir"], lambda v: v["fusion"] != "svm" or v["svm_dir"] is not None,
    "--fusion=svm needs --svm_dir (the output directory of two_stream_tf.fuse)")

FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  def kept():
    return (f"{FLAGS.export_dir} is as it was (an export is moved in only when "
            "whole); run the same command again")
  try:
    with interrupts.one_line_on_interrupt(kept):
      spatial_step, temporal_step = exporting.export(
          FLAGS.spatial_model_dir, FLAGS.temporal_model_dir, FLAGS.export_dir, FLAGS.fusion,
          FLAGS.temporal_weight, FLAGS.svm_dir)
  except (ValueError, FileNotFoundError) as e:
    sys.exit(f"error: {e}")
  print(f"exported spatial (step {spatial_step}), temporal (step {temporal_step}) and the "
        f"two-stream model ({FLAGS.fusion} fusion) to {FLAGS.export_dir}")


if __name__ == "__main__":
  app.run(main)
