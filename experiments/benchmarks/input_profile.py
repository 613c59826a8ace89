"""Where a training sample's time goes: the input pipeline built up stage by stage, one core.

  python experiments/benchmarks/input_profile.py

The same records as input_pipeline.py (copies of a real 340x256 clip, 181 frames, DIS
flow). For each stream (224 crops, L = 10, batch 64) the cost per sample of, cumulatively:
  plan: choose videos and every sample's position, crop and flip from the manifest, and
    mix them in the shuffle buffer (nothing read);
  + read: take the sample's steps and parse them, from memory (the records read into
    memory once: a gather) or from disk (a byte range per file through its index); as
    the pipeline reads them: a temporal sample's alone, a batch of RGB frames at once;
  + decode: decode the crop window of the sample's JPEGs and pack them (the whole pipeline,
    `training_dataset` with that `input_cache`);
and, apart, decoding the same JPEGs full-frame and nothing else (the decode bound).
Each stage runs in a fresh process pinned to one core; medians of interleaved rounds.
"""

import multiprocessing
import os
import tempfile
import time

from absl import app
from absl import flags
import clip_records
import numpy as np

flags.DEFINE_integer("videos", 8, "Copies of the clip in the records.")
flags.DEFINE_integer("frames", 181, "Frames per video.")
flags.DEFINE_integer("batches", 12, "Timed batches of 64 per temporal measurement (6x for "
                     "spatial, whose samples are ~6x quicker).")
flags.DEFINE_integer("rounds", 3, "Rounds; the table shows medians.")
FLAGS = flags.FLAGS

STACK, CROP, BATCH = 10, 224, 64
STAGES = ("plan", "read memory", "read disk", "decode memory", "decode disk")


def _one_core():
  """TensorFlow confined to core 0, as the train app configures an input process."""
  # pylint: disable=import-outside-toplevel
  os.sched_setaffinity(0, {0})
  import tensorflow as tf

  from two_stream_tf import data
  data.configure_input_process()
  tf.config.threading.set_inter_op_parallelism_threads(1)
  tf.config.threading.set_intra_op_parallelism_threads(1)
  options = tf.data.Options()
  options.threading.private_threadpool_size = 1
  return tf, options


def _per_sample(dataset, batches):
  """Microseconds per sample of `dataset`'s batches of BATCH, after 3 warm-up batches."""
  iterator = iter(dataset)
  for _ in range(3):
    next(iterator)
  start = time.perf_counter()
  for _ in range(batches):
    next(iterator)
  return (time.perf_counter() - start) / (batches * BATCH) * 1e6


def _microseconds_per_sample(records_dir, stream, stage, batches):
  # pylint: disable=import-outside-toplevel,protected-access
  tf, options = _one_core()
  from two_stream_tf import data
  from two_stream_tf.data import batches as batches_lib
  from two_stream_tf.data import reading
  from two_stream_tf.data import selection
  config = data.InputConfig(stream=stream, crop_size=CROP, stack_length=STACK)
  augmentation = data.Augmentation()
  if stage.startswith("decode"):
    dataset = data.training_dataset(records_dir, 1, config, BATCH, seed=0,
                                    input_cache=stage.split()[1])
  else:
    sources = selection.open_sources(records_dir)
    selections = selection.check_selection(sources, 1, "train")
    count = batches_lib._visit_counts(sources, selections, augmentation, 0)
    table = reading.video_table(sources, selections, config)

    def pipeline(reader):
      samples = (reading.selected_videos(table, True, 0)
                 .batch(batches_lib._PLAN_BATCH).enumerate()
                 .map(batches_lib._plan(config, augmentation, count, 0)).unbatch()
                 .shuffle(1024, seed=0))
      if reader is None:
        return samples.batch(BATCH)
      if stream == "spatial":  # read as the pipeline reads RGB: a batch at once
        return samples.batch(BATCH).map(
            lambda s: reader.rgb_jpegs_of_each(s["video"], s["position"]),
            num_parallel_calls=tf.data.AUTOTUNE)
      return samples.map(lambda s: reader.stack_jpegs(s["video"], config, s["position"]),
                         num_parallel_calls=tf.data.AUTOTUNE).batch(BATCH)
    dataset = (pipeline(None) if stage == "plan"
               else reading.with_reader(table, stage.split()[1], pipeline))
  return _per_sample(dataset.with_options(options), batches)


def _bound_microseconds_per_sample(records_dir, stream, batches):
  tf, options = _one_core()
  samples = clip_records.sample_jpegs(clip_records.video_steps(records_dir), stream, STACK,
                                      BATCH * 8)
  channels = 3 if stream == "spatial" else 1
  dataset = (tf.data.Dataset.from_tensor_slices(samples).repeat()
             .map(lambda j: tf.stack([tf.io.decode_jpeg(j[i], channels=channels)
                                      for i in range(len(samples[0]))]),
                  num_parallel_calls=tf.data.AUTOTUNE)
             .batch(BATCH).with_options(options))
  return _per_sample(dataset, batches)


def _in_process(function, *args):
  with multiprocessing.get_context("spawn").Pool(1) as pool:
    return pool.apply(function, args)


def main(argv):
  del argv
  with tempfile.TemporaryDirectory() as root:
    records_dir = clip_records.make_records(root, FLAGS.frames, FLAGS.videos)
    print(f"one core, {CROP} crops, temporal L={STACK}, batch {BATCH}; microseconds per "
          f"sample, medians of {FLAGS.rounds} rounds\n")
    print("| stream | plan | read from memory | read from disk | decode + pack "
          "| pipeline from memory | pipeline from disk | decode bound (full frames) |")
    print("|---|---|---|---|---|---|---|---|")
    for stream in ("temporal", "spatial"):
      batches = FLAGS.batches * (6 if stream == "spatial" else 1)
      rounds = []
      for _ in range(FLAGS.rounds):
        rounds.append([_in_process(_microseconds_per_sample, records_dir, stream, stage,
                                   batches) for stage in STAGES]
                      + [_in_process(_bound_microseconds_per_sample, records_dir, stream,
                                     batches)])
      plan, memory, disk, pipeline_memory, pipeline_disk, bound = np.median(rounds, axis=0)
      print(f"| {stream} | {plan:.0f} | {memory - plan:.0f} | {disk - plan:.0f} "
            f"| {pipeline_memory - memory:.0f} | {pipeline_memory:.0f} | {pipeline_disk:.0f} "
            f"| {bound:.0f} |", flush=True)


if __name__ == "__main__":
  app.run(main)
