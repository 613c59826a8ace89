"""Every command the README and docs/ show (fenced blocks and inline code) runs: each app they
call answers --help, every flag they pass is one of its flags, every flagfile they name is
there."""

import functools
import glob
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = [os.path.join(REPO, "README.md")] + sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))
_ABSL_FLAGS = {"flagfile", "verbosity", "v", "logtostderr", "alsologtostderr", "help",
               "helpfull", "only_check_args"}


def _commands():
  """[(page, module, [flag names])] of each `python -m` command in a fenced block or inline
  code span (lines continued with a backslash joined; commands split at && | ;)."""
  found = []
  for page in PAGES:
    text = open(page, encoding="utf-8").read()
    fenced = re.findall(r"^```[a-z]*\n(.*?)^```", text, re.S | re.M)
    prose = re.sub(r"^```[a-z]*\n.*?^```", "", text, flags=re.S | re.M)
    inline = re.findall(r"`(python3? -m [^`]+)`", prose.replace("\n", " "))
    for block in fenced + inline:
      for line in block.replace("\\\n", " ").splitlines():
        line = line.split(" #")[0]
        for command in re.split(r"&&|\||;", line):
          match = re.search(r"python3? -m ([a-z_]+\.[a-z_.]+)(.*)", command)
          if match:
            # Quoted values hold another tool's options (Beam's), not this app's flags.
            unquoted = re.sub(r'"[^"]*"', '""', match.group(2))
            names = re.findall(r"(?:^|\s)--([a-z_0-9]+)", unquoted)
            found.append((os.path.relpath(page, REPO), match.group(1), names))
  return found


COMMANDS = _commands()
APPS = sorted({module for _, module, _ in COMMANDS if module.split(".")[0] in
               ("flow_tools", "two_stream_tf")})


@functools.lru_cache(maxsize=None)
def _help(module):
  process = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO,
                           env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2"),
                           capture_output=True, text=True, timeout=300, check=False)
  return process.returncode, process.stdout + process.stderr


def test_the_docs_show_commands_of_every_app():
  assert len(COMMANDS) > 30
  for app in ("flow_tools.extract", "flow_tools.import_rawframes", "two_stream_tf.train",
              "two_stream_tf.evaluate", "two_stream_tf.fuse", "two_stream_tf.export",
              "two_stream_tf.predict", "two_stream_tf.run_pipeline"):
    assert app in APPS


@pytest.mark.slow
@pytest.mark.parametrize("module", APPS)
def test_each_app_the_docs_call_answers_help_and_has_their_flags(module):
  code, text = _help(module)
  # absl prints the help and exits 1, as it does for any --help.
  assert code == 1 and "Try --helpfull" in text and "Traceback" not in text, text[-2000:]
  known = set(re.findall(r"^\s+--(?:\[no\])?([a-z_0-9]+)", text, re.M)) | _ABSL_FLAGS
  for page, called, names in COMMANDS:
    if called != module:
      continue
    for name in names:
      bare = name[2:] if name.startswith("no") and name[2:] in known else name
      assert bare in known, f"{page}: python -m {module} ... --{name}: no such flag"


def test_the_flagfiles_the_docs_name_are_there():
  named = set()
  for page in PAGES:
    text = open(page, encoding="utf-8").read()
    named |= {(os.path.relpath(page, REPO), path)
              for path in re.findall(r"--flagfile=(experiments/[A-Za-z0-9_./]+\.flags)", text)}
  assert named
  for page, path in sorted(named):
    assert os.path.isfile(os.path.join(REPO, path)), f"{page}: no {path}"
