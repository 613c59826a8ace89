"""Shared fixtures: tiny synthetic datasets, generated once per test session."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # pylint: disable=wrong-import-position

from flow_tools import synthetic  # pylint: disable=wrong-import-position

TINY = dict(width=64, height=48, frames_range=(8, 11), ucf_groups=6, ucf_clips_per_group=1,
            hmdb_videos_per_class=10)


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory):
  """Both synthetic layouts at 64x48 (72 UCF-101-style and 120 HMDB-51-style clips)."""
  root = str(tmp_path_factory.mktemp("synthetic"))
  synthetic.generate(root, seed=7, **TINY)
  return root
