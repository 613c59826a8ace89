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
  handle, local = tempfile.mkstemp(suffix=os.path.splitext(path)[1], prefix="flow_tools-")
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


def write_bytes(path, data):
  """Writes `data` to `path`, atomically."""
  def write(tmp):
    with open_file(tmp, "wb") as f:
      f.write(data)
  write_atomically(path, write)


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
