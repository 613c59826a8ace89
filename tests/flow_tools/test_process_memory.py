"""Freed large buffers are reused, not returned to the system and faulted back in."""

import subprocess
import sys

_PROBE = """
import resource
import numpy as np
from flow_tools.common import process_memory

def page_faults():  # allocating and freeing a 40 MB buffer, as a batch of input would
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  for _ in range(10):
    buffer = np.ones(40 << 20, np.uint8)
    del buffer
  return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

default = page_faults()
assert process_memory.keep_freed_memory(*process_memory.INPUT_PIPELINE)
print(default, page_faults())
"""


def test_freed_buffers_are_reused():
  # A fresh process: glibc's default settings first, then ours.
  output = subprocess.run([sys.executable, "-c", _PROBE], check=True, capture_output=True,
                          text=True).stdout
  default, kept = map(int, output.split())
  # Beyond glibc's 32 MB limit every buffer is mmapped anew (10 x 40 MB: thousands of faults);
  # kept, only the first allocation faults its pages in.
  assert kept * 4 < default, (default, kept)
