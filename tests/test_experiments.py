"""Every flagfile in experiments/ names only flags and values its app accepts."""

import glob
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LIST_FLAGS = """
import json, sys
from absl import flags
import two_stream_tf.{app}
known = {{}}
for flag in flags.FLAGS.get_key_flags_for_module(sys.modules["two_stream_tf.{app}"]):
  known[flag.name] = {{"bool": flag.flag_type() == "bool",
                      "enum": sorted(getattr(flag.parser, "enum_values", []) or [])}}
print(json.dumps(known))
"""


def _known_flags(app):
  out = subprocess.run([sys.executable, "-c", _LIST_FLAGS.format(app=app)], cwd=REPO,
                       env=dict(os.environ, PYTHONPATH=REPO), capture_output=True, text=True,
                       check=True).stdout
  return json.loads(out.strip().splitlines()[-1])


def _tokens(path):
  """The flags of a flagfile, nested flagfiles expanded (paths relative to the repo)."""
  for line in open(path, encoding="utf-8"):
    line = line.strip()
    if not line or line.startswith(("#", "//")):
      continue
    assert line.startswith("--"), f"{path}: {line}"
    name, _, value = line[2:].partition("=")
    if name == "flagfile":
      assert os.path.isfile(os.path.join(REPO, value)), f"{path}: no {value}"
      yield from _tokens(os.path.join(REPO, value))
    else:
      yield path, name, value


@pytest.mark.slow
@pytest.mark.parametrize("app, pattern", [("train", "experiments/*_*.flags"),
                                          ("run_pipeline", "experiments/quickstart.flags")])
def test_flagfiles_use_known_flags_and_values(app, pattern):
  known = _known_flags(app)
  paths = [p for p in glob.glob(os.path.join(REPO, pattern))
           if app != "train" or not p.endswith("quickstart.flags")]
  assert paths
  for path in paths:
    for source, name, value in _tokens(path):
      bare = name[2:] if name.startswith("no") and name[2:] in known else name
      assert bare in known, f"{source}: unknown flag --{name}"
      if known[bare]["enum"]:
        assert value in known[bare]["enum"], f"{source}: --{name}={value}"
