"""Writes the embedded default data: small seeded UCF-101- and HMDB-51-style datasets.

  python -m flow_tools.synthesize --output_dir=DIR [--seed=0]

See flow_tools.datasets.synthetic for the layouts and what the classes are.
"""

import inspect

from absl import app
from absl import flags

from flow_tools.datasets import synthetic

# The defaults are generate()'s own.
_DEFAULTS = {name: parameter.default
             for name, parameter in inspect.signature(synthetic.generate).parameters.items()}

flags.DEFINE_string("output_dir", "data/synthetic", "Where to write both datasets.")
flags.DEFINE_integer("seed", _DEFAULTS["seed"], "Random seed: the same seed gives the same videos.")
flags.DEFINE_integer("width", _DEFAULTS["width"], "Frame width.")
flags.DEFINE_integer("height", _DEFAULTS["height"], "Frame height.")
flags.DEFINE_integer("min_frames", _DEFAULTS["frames_range"][0], "Fewest frames of a clip (one "
                     f"clip per dataset is {synthetic.SHORT_CLIP_FRAMES} frames).")
flags.DEFINE_integer("max_frames", _DEFAULTS["frames_range"][1], "Most frames of a clip.")
flags.DEFINE_integer("ucf_groups", _DEFAULTS["ucf_groups"],
                     "UCF-101-style groups per class (6: two per split).")
flags.DEFINE_integer("ucf_clips_per_group", _DEFAULTS["ucf_clips_per_group"], "Clips per group.")
flags.DEFINE_integer("hmdb_videos_per_class", _DEFAULTS["hmdb_videos_per_class"],
                     "HMDB-51-style videos per class.")

FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  synthetic.generate(FLAGS.output_dir, seed=FLAGS.seed, width=FLAGS.width, height=FLAGS.height,
                     frames_range=(FLAGS.min_frames, FLAGS.max_frames),
                     ucf_groups=FLAGS.ucf_groups, ucf_clips_per_group=FLAGS.ucf_clips_per_group,
                     hmdb_videos_per_class=FLAGS.hmdb_videos_per_class)
  print(f"wrote synthetic UCF-101 and HMDB-51 layouts under {FLAGS.output_dir}")


if __name__ == "__main__":
  app.run(main)
