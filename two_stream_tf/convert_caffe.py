"""Converts the VGG group's Caffe release of CNN-M-2048 into the .npz that train --weights reads.

  python -m two_stream_tf.convert_caffe --caffemodel=VGG_CNN_M_2048.caffemodel \\
      --mean=VGG_mean.binaryproto --output=cnn_m_2048_imagenet.npz

Caffe is not needed. The .npz holds the trunk (conv1-conv5, full6, full7 in Keras layout,
RGB input), the ImageNet classifier fc8 (unless --noinclude_classifier) and, with --mean,
the per-channel RGB mean the spatial network then subtracts (see
two_stream_tf/models/caffe_conversion.py for why not the mean image).
"""

import sys

from absl import app
from absl import flags

from flow_tools.common import storage
from two_stream_tf.models import caffe_conversion

flags.DEFINE_string("caffemodel", None, "VGG_CNN_M_2048.caffemodel (V1 or V2 format).")
flags.DEFINE_string("mean", None, "VGG_mean.binaryproto: the BGR mean image the weights were "
                    "trained with (without it the model subtracts Caffe's ImageNet mean).")
flags.DEFINE_string("output", None, "The .npz to write.")
flags.DEFINE_bool("include_classifier", True, "Also write fc8, the 1000-class ImageNet "
                  "classifier (for checking the conversion; training does not use it).")
flags.mark_flags_as_required(["caffemodel", "output"])
flags.register_validator("output", lambda path: path.endswith(".npz"),
                         "--output must name a .npz file")

FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  try:
    arrays, spread = caffe_conversion.convert(FLAGS.caffemodel, FLAGS.mean,
                                              FLAGS.include_classifier)
    storage.write_npz(FLAGS.output, arrays)
  except (ValueError, OSError) as error:
    sys.exit(f"error: {error}")
  for name in sorted(arrays):
    print(f"{name:14s} {' x '.join(str(d) for d in arrays[name].shape)}")
  if spread is not None:
    mean = ", ".join(f"{v:.3f}" for v in arrays["mean/rgb"])
    print(f"mean (R, G, B): {mean}; the mean image's standard deviation around it: "
          f"{', '.join(f'{v:.2f}' for v in spread)} grey levels")
  print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
  app.run(main)
