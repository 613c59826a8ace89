"""What a video file was when it was extracted, and whether it has changed since.

A fingerprint is {'size', 'mtime_ns', 'sha256'} of the file, taken before it is decoded,
and stored with the video's manifest entry. A rerun asks `changed` of every video: one
stat each; the content is hashed again only when the size is the same but the
modification time is not (a copy, a touch, a re-download of the same bytes) or the
filesystem keeps no times (mtime 0). A modification time is a fact of one filesystem:
a copy of the videos elsewhere has the same size and hash, and other times.

A video stored as many files (frame folders, `flow_tools.rawframes.layouts`) has the same
fingerprint of all of them in order: their total size, latest time, count and one
SHA-256 over their contents.

Videos that are not files (TensorFlow Datasets' prepared data, which a dataset version
fixes) have no fingerprint (None) and never count as changed.
"""

import hashlib

from flow_tools.common import storage

_CHUNK = 1 << 20


def _sha256(path):
  digest = hashlib.sha256()
  with storage.open_file(path) as f:
    for chunk in iter(lambda: f.read(_CHUNK), b""):
      digest.update(chunk)
  return digest.hexdigest()


def fingerprint(source):
  """The fingerprint of a video file (any path `flow_tools.common.storage` reads); None for a source
  that is not a file, or a file that does not exist."""
  if not isinstance(source, str) or not storage.isfile(source):
    return None
  size, mtime_ns = storage.stat(source)
  return {"size": size, "mtime_ns": mtime_ns, "sha256": _sha256(source)}


def changed(recorded, path):
  """Whether the file at `path` differs from the one `recorded` was taken of (a file that
  appeared where there was none counts as changed; one that is gone does not: the dataset
  loader reports missing videos)."""
  if recorded is None:
    return isinstance(path, str) and storage.isfile(path)
  if not storage.isfile(path):
    return False
  size, mtime_ns = storage.stat(path)
  if size != recorded["size"]:
    return True
  if mtime_ns == recorded["mtime_ns"] and mtime_ns:
    return False
  return _sha256(path) != recorded["sha256"]


def _stats(paths):
  return _total(*zip(*(storage.stat(p) for p in paths)))


def _total(sizes, times):
  # A filesystem without times (0) for any file: none to trust.
  return sum(sizes), (max(times) if all(times) else 0)


def _contents_sha256(contents):
  digest = hashlib.sha256()
  for data in contents:
    digest.update(data)
  return digest.hexdigest()


def _read_all(paths):
  return [storage.read_with_stat(path)[0] for path in paths]


def read_files(paths):
  """(fingerprint, contents) of a video stored as the files `paths`, in order. Each file's
  time and size are taken before it is read, so a file changed meanwhile counts as
  changed on the next run."""
  contents, sizes, times = zip(*map(storage.read_with_stat, paths))
  size, mtime_ns = _total(sizes, times)
  return ({"size": size, "mtime_ns": mtime_ns, "files": len(paths),
           "sha256": _contents_sha256(contents)}, list(contents))


def files_changed(recorded, paths):
  """`changed` for a video stored as the files `paths`."""
  if recorded is None:
    return True
  size, mtime_ns = _stats(paths)
  if size != recorded["size"] or len(paths) != recorded.get("files"):
    return True
  if mtime_ns == recorded["mtime_ns"] and mtime_ns:
    return False
  return _contents_sha256(_read_all(paths)) != recorded["sha256"]
