"""Ctrl-C in an app: one line saying what is kept and how to go on, instead of a traceback."""

import contextlib
import sys

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a job stopped by Ctrl-C


@contextlib.contextmanager
def one_line_on_interrupt(kept):
  """Runs the block; a KeyboardInterrupt in it prints `interrupted: <kept()>` to stderr and
  exits with `EXIT_INTERRUPTED`.

  Args:
    kept: () -> str, what the interrupted work left and how to resume it (called at the
      interrupt, so that it can say how far the work got).
  """
  try:
    yield
  except KeyboardInterrupt:
    print(f"interrupted: {kept()}", file=sys.stderr, flush=True)
    sys.exit(EXIT_INTERRUPTED)
