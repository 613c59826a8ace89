"""glibc malloc settings for processes that allocate and free large buffers over and over.

By default glibc serves blocks above a dynamic threshold (at most 32 MB) with their own
mmap and hands them back to the system when freed, and returns the heap's free top
above 128 KB; the next buffer of the same size is then taken back page by page, each page
a fault the kernel zeroes. Flow fields, video records and input batches are exactly such
buffers. Other C libraries than glibc are left as they are.
"""

import ctypes

# glibc's mallopt parameter numbers.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3

# (mmap_above_bytes, kept_free_bytes) of the processes that use this.
EXTRACTION_WORKER = (64 << 20, 256 << 20)  # flow fields of a few MB
INPUT_PIPELINE = (512 << 20, 1 << 30)  # records of ~5 MB, batches up to a few hundred MB


def keep_freed_memory(mmap_above_bytes, kept_free_bytes):
  """Serve blocks below `mmap_above_bytes` from the heap and keep up to `kept_free_bytes`
  of freed heap for reuse; returns whether glibc took the settings."""
  try:
    libc = ctypes.CDLL("libc.so.6")
  except OSError:
    return False
  return bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap_above_bytes)
              and libc.mallopt(_M_TRIM_THRESHOLD, kept_free_bytes))
