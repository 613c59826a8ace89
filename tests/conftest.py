"""Shared fixtures: tiny synthetic datasets, generated once per test session."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # pylint: disable=wrong-import-position

from flow_tools.datasets import synthetic  # pylint: disable=wrong-import-position

TINY = dict(width=64, height=48, frames_range=(8, 11), ucf_groups=6, ucf_clips_per_group=1,
            hmdb_videos_per_class=10)


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory):
  """Both synthetic layouts at 64x48 (72 UCF-101-style and 120 HMDB-51-style clips)."""
  root = str(tmp_path_factory.mktemp("synthetic"))
  synthetic.generate(root, seed=7, **TINY)
  return root


@pytest.fixture(scope="session")
def records_dirs(synthetic_dir, tmp_path_factory):
  """{dataset: records dir} of both synthetic layouts, DIS flow forward and backward."""
  # Imported here: the flow_tools tests above need no TensorFlow at collection time.
  from flow_tools import datasets  # pylint: disable=import-outside-toplevel
  from flow_tools.extraction import encoding  # pylint: disable=import-outside-toplevel
  from flow_tools.extraction import local_runner  # pylint: disable=import-outside-toplevel
  config = encoding.ExtractionConfig(algorithm="dis", short_side=0, backward=True)
  out = {}
  for name, video_dir in (("ucf101", "ucf101"), ("hmdb51", "hmdb51/hmdb51_org")):
    index = datasets.load_dataset(name, os.path.join(synthetic_dir, video_dir))
    out[name] = str(tmp_path_factory.mktemp(f"records_{name}"))
    summary = local_runner.extract(index, out[name], config, num_workers=2, progress=False)
    assert not summary.failures
  return out


# Fixtures that extract synthetic videos (seconds to build, shared by a file's tests): a test
# that needs one is an integration test, marked slow without a mark of its own.
_RECORDS_FIXTURES = frozenset({"synthetic_dir", "records_dirs"})


def pytest_collection_modifyitems(items):
  for item in items:
    if _RECORDS_FIXTURES.intersection(item.fixturenames):
      item.add_marker(pytest.mark.slow)
