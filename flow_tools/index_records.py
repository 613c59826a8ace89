"""Writes the record index of every video of records made before indexes existed.

  python -m flow_tools.index_records --records_dir=records/ucf101

Readers find a sample's steps through its video's index (`<n>.index` beside the video's
`<n>.<modality>.tfrecord` files, `flow_tools.records`), which extraction writes after the
files. This finds the offsets of older files by walking their length fields and writes
only the missing indexes, each whole; the record files are only read. Run it again at
any time: what is there is kept. (Records indexed by an earlier version, one
`<n>.<modality>.index` per file, get theirs too; those older files are no longer read.)
"""

import sys
import time

from absl import app
from absl import flags

from flow_tools import records
from flow_tools.common import storage

flags.DEFINE_multi_string("records_dir", None, "A finished records directory (repeat the flag "
                          "for several).")
flags.DEFINE_integer("num_threads", 16, "Videos indexed at once.", lower_bound=1)
flags.mark_flags_as_required(["records_dir"])

FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  for records_dir in FLAGS.records_dir:
    start = time.time()
    try:
      written, kept = records.index_directory(records_dir, FLAGS.num_threads)
    except (records.RecordsError, storage.OutputError, OSError) as error:
      sys.exit(f"error: {error}")
    print(f"{records_dir}: wrote {written} indexes, kept {kept} already there, in "
          f"{time.time() - start:.1f} s")


if __name__ == "__main__":
  app.run(main)
