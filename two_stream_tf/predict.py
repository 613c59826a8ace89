"""Predicts the action in video files with an exported two-stream model.

  python -m two_stream_tf.predict --export_dir=OUT VIDEO [VIDEO ...] [--json]

Decodes each video, computes its flow exactly as the export's metadata says, builds the
paper's 25 x 10 views and prints the top-5 classes of each head with probabilities.
A video that cannot be read (or is too short for flow) gets a one-line error; the others
still get answers. Exit status 3 when some video failed.
"""

import json
import sys
import tempfile

from absl import app
from absl import flags

EXIT_SOME_FAILED = 3

flags.DEFINE_string("export_dir", None, "Output of two_stream_tf.export (or its two_stream/).")
flags.DEFINE_integer("top_k", 5, "Classes shown per head.", lower_bound=1)
flags.DEFINE_bool("json", False, "Print one JSON document instead of text.")
flags.DEFINE_integer("num_workers", 2, "Flow extraction processes.", lower_bound=1)
flags.DEFINE_string("work_dir", None, "Keep the extracted records here (default: a temporary "
                    "directory, removed afterwards).")
flags.mark_flags_as_required(["export_dir"])

FLAGS = flags.FLAGS


def _text(prediction):
  if prediction.error:
    return f"error: {prediction.path}: {prediction.error}"
  lines = [prediction.path]
  for head, ranked in prediction.heads.items():
    lines.append(f"  {head}: " + ", ".join(f"{name} {p:.3f}" for name, p in ranked))
  return "\n".join(lines)


def main(argv):
  videos = argv[1:]
  if not videos:
    raise app.UsageError("give one or more video files")
  # pylint: disable=import-outside-toplevel
  from two_stream_tf.serving import prediction
  try:
    with tempfile.TemporaryDirectory() as scratch:
      results = prediction.predict_videos(FLAGS.export_dir, videos, FLAGS.work_dir or scratch,
                                          FLAGS.top_k, FLAGS.num_workers)
  except (ValueError, FileNotFoundError) as e:
    sys.exit(f"error: {e}")
  if FLAGS.json:
    print(json.dumps([{"video": r.path, "error": r.error,
                       "heads": {h: [{"class": c, "probability": p} for c, p in ranked]
                                 for h, ranked in r.heads.items()}} for r in results], indent=1))
  else:
    for result in results:
      print(_text(result), file=sys.stderr if result.error else sys.stdout)
  if any(r.error for r in results):
    sys.exit(EXIT_SOME_FAILED)


if __name__ == "__main__":
  app.run(main)
