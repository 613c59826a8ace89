"""File access for local paths and for remote filesystems (gs://, s3://, hdfs://, ...).

A path with a scheme goes through TensorFlow's filesystems (`tf.io.gfile`), which is
how Dataflow and other cluster workers reach videos and write records; any other
path goes through `os`, so a process that only touches local files (the encoding
workers, the apps' --help) never imports TensorFlow. Files are opened in binary.
Every file the tools write goes through `write_atomically`: readers never see half of one.
"""

import contextlib
import io
import json
import os
import shutil
import tempfile
import uuid

import numpy as np

_READ_CHUNK = 1 << 20


class OutputError(ValueError):
  """An output path that cannot be written (a file where a directory goes, a read-only or
  full disk, a folder of someone else's files): one line naming the path and the cause."""


def is_remote(path):
  """True for a path with a filesystem scheme, e.g. gs://bucket/videos."""
  return "://" in path


def _gfile():
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return tf.io.gfile


def exists(path):
  return _gfile().exists(path) if is_remote(path) else os.path.exists(path)


def isdir(path):
  return _gfile().isdir(path) if is_remote(path) else os.path.isdir(path)


def isfile(path):
  return exists(path) and not isdir(path)


def stat(path):
  """(size in bytes, modification time in ns): the time is 0 where the filesystem keeps none."""
  if is_remote(path):
    found = _gfile().stat(path)
    return found.length, found.mtime_nsec
  found = os.stat(path)
  return found.st_size, found.st_mtime_ns


def read_with_stat(path):
  """(contents, size in bytes, modification time in ns) of a file, the size and time taken
  before the read (locally, of the very file opened: one open and no separate stat)."""
  if is_remote(path):
    size, mtime_ns = stat(path)
    with open_file(path) as f:
      return f.read(), size, mtime_ns
  fd = os.open(path, os.O_RDONLY)
  try:
    found = os.fstat(fd)
    chunks = [os.read(fd, found.st_size + 1)]
    while chunks[-1]:  # a file that grew since the fstat is read whole
      chunks.append(os.read(fd, _READ_CHUNK))
  finally:
    os.close(fd)
  return b"".join(chunks) if len(chunks) > 2 else chunks[0], found.st_size, found.st_mtime_ns


def listdir(path):
  """Names in a directory (object stores list sub-folders with a trailing '/': dropped)."""
  if is_remote(path):
    return [name.rstrip("/") for name in _gfile().listdir(path)]
  return os.listdir(path)


def makedirs(path):
  """Creates `path` and its parents; an existing directory is fine."""
  if is_remote(path):
    _gfile().makedirs(path)
  else:
    os.makedirs(path, exist_ok=True)


def remove(path):
  if is_remote(path):
    _gfile().remove(path)
  else:
    os.remove(path)


def rmtree(path):
  if is_remote(path):
    _gfile().rmtree(path)
  else:
    shutil.rmtree(path)


def replace(source, target):
  """Renames `source` to `target`, replacing it (atomic on local filesystems; an object
  store copies, and the copy appears whole)."""
  if is_remote(source) or is_remote(target):
    _gfile().rename(source, target, overwrite=True)
  else:
    os.replace(source, target)


def open_file(path, mode="rb"):
  """`path` opened in binary `mode` ('rb' or 'wb')."""
  if mode not in ("rb", "wb"):
    raise ValueError(f"binary modes only, got {mode!r}")
  return _gfile().GFile(path, mode) if is_remote(path) else open(path, mode)  # pylint: disable=consider-using-with


def absolute(path):
  """`os.path.abspath` for local paths; remote paths are absolute already."""
  return path if is_remote(path) else os.path.abspath(path)


@contextlib.contextmanager
def local_copy(path):
  """Yields a local path with the content of `path`: itself if local, else a temporary copy
  (for libraries such as OpenCV that read local files only), removed afterwards."""
  if not is_remote(path):
    yield path
    return
  handle, local = tempfile.mkstemp(suffix=os.path.splitext(path)[1], prefix="flow_tools-copy-")
  os.close(handle)
  try:
    _gfile().copy(path, local, overwrite=True)
    yield local
  finally:
    os.remove(local)


def write_atomically(path, write, tmp_dir=None):
  """Calls `write(tmp_path)`, then renames tmp to `path`: readers never see a partial file.

  The temporary file goes beside `path`, or into `tmp_dir` (on the same filesystem) so
  that a writer killed mid-write leaves nothing where readers look.
  """
  # Unique per writer: retried or speculative Beam workers may write the same path at once.
  name = f"{os.path.basename(path)}.tmp-{uuid.uuid4().hex}"
  tmp = os.path.join(tmp_dir if tmp_dir else os.path.dirname(path), name)
  try:
    write(tmp)
    replace(tmp, path)
  except OSError as error:  # a full disk, a read-only or vanished directory: name the file
    named = OSError(f"cannot write {path}: {error.strerror or error}")
    named.errno = error.errno
    raise named from error
  finally:
    if exists(tmp):
      remove(tmp)


def _first_existing(path):
  """`path` or its nearest ancestor that exists."""
  path = os.path.abspath(path)
  while not os.path.lexists(path) and os.path.dirname(path) != path:
    path = os.path.dirname(path)
  return path


def _megabytes(count):
  return f"{count / 1e6:.1f} MB"


def check_writable(path, *, directory=True, needed_bytes=0):
  """Raises OutputError unless `path` can be written as a directory (or, with
  `directory=False`, as a file) holding about `needed_bytes`, so that a long job finds out
  before its work, not after it.

  Checked on local paths: not a file where a directory goes (nor the reverse), no file
  among its parents, a writable disk and, if `needed_bytes`, that much free space. Remote
  paths are not checked (object stores tell only by a write).
  """
  if is_remote(path):
    return
  full = os.path.abspath(path)
  if os.path.exists(full) and os.path.isdir(full) != directory:
    raise OutputError(f"{path} is {'a file' if directory else 'a directory'}, not "
                      f"{'a directory' if directory else 'a file'}")
  existing = full if directory and os.path.isdir(full) else _first_existing(
      os.path.dirname(full))
  if not os.path.isdir(existing):
    raise OutputError(f"cannot write {path}: {existing} is a file, not a directory")
  if os.statvfs(existing).f_flag & os.ST_RDONLY:
    raise OutputError(f"cannot write {path}: {existing} is on a read-only filesystem")
  if not os.access(existing, os.W_OK | os.X_OK):
    raise OutputError(f"cannot write {path}: no permission to write in {existing}")
  free = shutil.disk_usage(existing).free
  if free < needed_bytes:
    raise OutputError(f"cannot write {path}: {_megabytes(free)} free on its disk, about "
                      f"{_megabytes(needed_bytes)} needed")


def write_error(path, error):
  """`error`, a failed write of `path` (OSError, or a TensorFlow error), as an OutputError
  naming `path` and the cause in one line."""
  while getattr(error, "strerror", None) is None and error.__cause__ is not None:
    error = error.__cause__  # our own one-line errors wrap the OSError that says why
  cause = getattr(error, "strerror", None) or getattr(error, "message", None) or str(error)
  return OutputError(f"cannot write {path}: {cause.strip().splitlines()[0]}")


def staging_path(path):
  """A unique path beside `path` to build a replacement of it in (`replace_directory`)."""
  return f"{path.rstrip('/')}.tmp-{uuid.uuid4().hex}"


def replace_directory(source, target):
  """Moves the finished directory `source` to `target`, replacing what `target` held.

  `target` is at every moment either its old content or `source`'s, whole (on an object
  store, where directories are prefixes, briefly neither), never a mix of the two.
  """
  if exists(target):
    old = staging_path(target)
    replace(target, old)
    replace(source, target)
    rmtree(old)
  else:
    replace(source, target)


def write_directory(path, write, owned, *, needed_bytes=0, errors=(OSError,)):
  """Writes the directory `path` whole: `write(staging)` fills a new directory beside it,
  which then replaces `path` (`replace_directory`); a failure leaves `path` as it was.

  `path` may be new, empty, or hold an earlier output of the same kind: `owned(path)` says
  whether it does. Anything else (a file, someone's folder) is refused before `write` runs,
  as are the failures `check_writable` foresees.

  Raises:
    OutputError: one line naming `path` and the cause; also for `errors` raised by `write`.
  """
  check_writable(path, needed_bytes=needed_bytes)
  if exists(path) and listdir(path) and not owned(path):
    names = sorted(listdir(path))
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    raise OutputError(f"{path} holds files this app did not write ({shown}): give a new or "
                      "empty directory (nothing was changed)")
  staging = staging_path(path)
  try:
    makedirs(os.path.dirname(staging) or ".")
    write(staging)
    replace_directory(staging, path)
  except errors as error:
    raise write_error(path, error) from error
  finally:
    if exists(staging):
      rmtree(staging)


def write_bytes(path, data, tmp_dir=None):
  """Writes `data` to `path`, atomically (`write_atomically`)."""
  def write(tmp):
    with open_file(tmp, "wb") as f:
      f.write(data)
  write_atomically(path, write, tmp_dir)


def write_text(path, text):
  """Writes `text` as UTF-8, atomically."""
  write_bytes(path, text.encode("utf-8"))


def write_json(path, value):
  """Writes `value` as JSON (keys sorted: the same bytes on every run), atomically."""
  write_text(path, json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def read_json(path):
  with open_file(path) as f:
    return json.loads(f.read().decode("utf-8"))


def write_npz(path, arrays):
  """Writes {name: array} as an uncompressed .npz (plain arrays, no pickle), atomically."""
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  write_bytes(path, buffer.getvalue())
