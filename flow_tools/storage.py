"""File access for local paths and for remote filesystems (gs://, s3://, hdfs://, ...).

A path with a scheme goes through TensorFlow's filesystems (`tf.io.gfile`), which is
how Dataflow and other cluster workers reach videos and write records; any other
path goes through `os`, so a process that only touches local files (the encoding
workers, the apps' --help) never imports TensorFlow. Files are opened in binary.
"""

import contextlib
import os
import shutil
import tempfile


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
