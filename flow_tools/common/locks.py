"""A lock file that keeps two extractions out of one output directory, naming the holder.

The lock is `<directory>/.lock`, JSON {'host', 'pid', 'started'} of the process that holds
it, removed when it lets go. A lock left by a process that was killed is taken over when
that process was on this machine and is gone; otherwise the error names the holder and
the file to remove once the user knows it has stopped. On a local filesystem the file is
created exclusively (O_EXCL); object stores have no exclusive create, so there the lock is
written, read back, and a writer that reads another's content backs off: it catches runs
started seconds apart, not ones started within the same instant.
"""

import contextlib
import json
import os
import socket
import time

from flow_tools.common import storage

LOCK_FILE = ".lock"


class LockedError(RuntimeError):
  """Another process holds the directory."""


def _holder_gone(holder):
  """Whether the process that wrote `holder` is known to have ended (same host only)."""
  if holder.get("host") != socket.gethostname():
    return False
  try:
    os.kill(int(holder["pid"]), 0)
  except ProcessLookupError:
    return True
  except (PermissionError, KeyError, TypeError, ValueError):
    return False
  return False


def _read(path):
  try:
    with storage.open_file(path) as f:
      return json.loads(f.read().decode("utf-8"))
  except (OSError, ValueError):
    return {}  # cut short by a kill while it was written: no holder to name


def _create(path, content):
  """Writes `content` to `path` if no file is there; returns whether it did."""
  if storage.is_remote(path):
    if storage.exists(path):
      return False
    storage.write_bytes(path, content)
    with storage.open_file(path) as f:
      return f.read() == content
  try:
    handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
  except FileExistsError:
    return False
  with os.fdopen(handle, "wb") as f:
    f.write(content)
  return True


@contextlib.contextmanager
def hold(directory, purpose):
  """Holds the lock of `directory` (created if needed) while the block runs.

  Raises:
    LockedError: another live (or unknown) process holds it; one line naming the process
      and the lock file.
  """
  storage.makedirs(directory)
  path = os.path.join(directory, LOCK_FILE)
  me = {"host": socket.gethostname(), "pid": os.getpid(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
  content = (json.dumps(me, sort_keys=True) + "\n").encode("utf-8")
  while not _create(path, content):
    if not storage.exists(path):
      continue  # let go of in the meantime
    holder = _read(path)
    if not (holder and _holder_gone(holder)):
      who = (f"process {holder.get('pid')} on {holder.get('host')} since {holder.get('started')}"
             if holder else "another process")
      raise LockedError(f"{directory} is in use by {who} ({purpose}): wait for it to end, or "
                        f"remove {path} if it is no longer running")
    storage.remove(path)  # left by a process of this machine that was killed
  try:
    yield
  finally:
    if storage.exists(path) and _read(path) == me:
      storage.remove(path)
