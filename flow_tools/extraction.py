"""Parallel, resumable extraction of a dataset into sharded records.

Videos are assigned to shards by a fixed permutation of their ids, so shards mix
classes and the same flags always give the same files. Worker processes (spawned,
OpenCV only) encode videos; the main process writes each finished video to
`<output_dir>/.incomplete/` (write, then rename), and once every video of a shard
is done it concatenates them into the shard file (write, then rename). A run
killed at any point, even by SIGKILL, is finished by running it again: done videos
and shards are kept, and the result is byte-identical to an uninterrupted run.
"""

import dataclasses
import itertools
import multiprocessing
import os
import queue
import shutil
import time

import numpy as np
import tensorflow as tf
import tqdm

from flow_tools import encode
from flow_tools import flow as flow_lib
from flow_tools import records
from flow_tools import storage

WORK_DIR = ".incomplete"
_PLAN = "plan.json"
_SHARD_ORDER_SEED = 20140609  # arXiv 1406.2199


class ExtractionError(RuntimeError):
  """The output directory cannot be used for this extraction."""


@dataclasses.dataclass
class Summary:
  """What a run did; `failures` maps video id -> reason.

  `worker_seconds` is the time this run's workers spent encoding videos (summed over
  workers) and `flow_seconds` the part of it inside the flow algorithm: their ratio says
  how much the pipeline around the algorithm costs. None where the runner does not
  measure them (Beam).
  """
  num_videos: int
  num_extracted: int
  failures: dict
  flow_pairs: int
  seconds: float
  output_dir: str
  worker_seconds: float = None
  flow_seconds: float = None


def plan_shards(video_ids, videos_per_shard):
  """Video ids grouped into shards: a fixed permutation, then consecutive chunks."""
  ids = sorted(video_ids)
  order = np.random.default_rng(_SHARD_ORDER_SEED).permutation(len(ids))
  shuffled = [ids[i] for i in order]
  return [shuffled[i:i + videos_per_shard] for i in range(0, len(shuffled), videos_per_shard)]


def _shard_name(dataset, index, count):
  return f"{dataset}-{index:05d}-of-{count:05d}.tfrecord"


class OutputLayout:
  """Files and bookkeeping of one output directory, whichever runner fills it.

  Each shard is finished in one step: its manifest entries go to the work
  directory, then its file appears (atomically), so an existing shard file means a
  finished shard, and the manifest is assembled from one small file per shard
  (a few hundred reads on an object store, not one per video). The local runner
  also keeps each encoded video in the work directory until its shard is complete.
  """

  def __init__(self, index, output_dir, config, videos_per_shard):
    self.index = index
    self.output_dir = output_dir
    self.work_dir = os.path.join(output_dir, WORK_DIR)
    self.config = config
    self.entries = {e.video_id: e for e in index.entries}
    self.shards = plan_shards(self.entries, videos_per_shard)
    self.shard_names = [_shard_name(index.name, i, len(self.shards))
                        for i in range(len(self.shards))]
    # Positions in plan order name the work files: safe for any video id.
    self.position = {v: p for p, v in enumerate(v for shard in self.shards for v in shard)}
    self.plan = {"dataset": index.name, "config": dataclasses.asdict(config),
                 "videos_per_shard": videos_per_shard, "videos": sorted(self.entries)}

  def work_file(self, video_id, suffix):
    return os.path.join(self.work_dir, f"{self.position[video_id]:07d}.{suffix}")

  def shard_path(self, shard):
    return os.path.join(self.output_dir, self.shard_names[shard])

  def _shard_entries_path(self, shard):
    return os.path.join(self.work_dir, f"shard-{shard:05d}.json")

  def finished_summary(self, start):
    """The `Summary` of this extraction if `output_dir` already holds it finished, else None.

    Raises:
      ExtractionError: `output_dir` holds records made with other settings or videos.
    """
    if not storage.exists(os.path.join(self.output_dir, records.MANIFEST)):
      return None
    manifest = records.read_manifest(self.output_dir)
    if (manifest["config"] != dataclasses.asdict(self.config)
        or manifest["shards"] != self.shard_names
        or sorted([*manifest["videos"], *manifest["failures"]]) != self.plan["videos"]):
      raise ExtractionError(f"{self.output_dir} already holds records made with other settings "
                            "or videos: choose another --output_dir")
    return Summary(len(self.entries), manifest["num_videos"], manifest["failures"],
                   manifest["num_flow_pairs"], time.time() - start, self.output_dir)

  def prepare(self):
    """Creates or checks the work directory against this run's plan."""
    storage.makedirs(self.work_dir)
    plan_path = os.path.join(self.work_dir, _PLAN)
    if storage.exists(plan_path):
      previous = records.read_json(plan_path)
      if previous != self.plan:
        differing = sorted(k for k in self.plan if previous.get(k) != self.plan[k])
        raise ExtractionError(
            f"{self.output_dir} holds an unfinished extraction with different "
            f"{', '.join(differing)}: use the same flags to resume, or another --output_dir")
    else:
      records.write_json(plan_path, self.plan)

  def pending_shards(self):
    """Shards without their file yet, in plan order."""
    return [s for s in range(len(self.shards)) if not storage.exists(self.shard_path(s))]

  def encoded_videos(self):
    """Ids of videos the local runner has encoded (or found unusable) in unfinished
    shards, from one listing of the work directory."""
    names = set(storage.listdir(self.work_dir))
    return {v for v, p in self.position.items()
            if f"{p:07d}.info" in names or f"{p:07d}.failed" in names}

  def serialize(self, video_id, encoded):
    """The record of one video, as bytes (map keys sorted: the same bytes on every run)."""
    example = records.to_sequence_example(
        self.entries[video_id], self.index.name, encoded, self.config)
    return example.SerializeToString(deterministic=True)

  def save_failure(self, video_id, reason):
    records.write_json(self.work_file(video_id, "failed"), {"reason": reason})

  def save_video(self, video_id, encoded):
    """Keeps a finished video's record in the work directory until its shard is complete."""
    serialized = self.serialize(video_id, encoded)

    def write(tmp):
      with tf.io.TFRecordWriter(tmp) as writer:
        writer.write(serialized)
    records.write_atomically(self.work_file(video_id, "tfrecord"), write)
    records.write_json(self.work_file(video_id, "info"), {"frames": encoded.num_frames})

  def write_shard(self, shard, outcomes, write_records):
    """Finishes a shard: its manifest entries, then its file.

    Args:
      shard: the shard's number in the plan.
      outcomes: video id -> number of frames, or the reason it failed (str), for
        every video of the shard.
      write_records: function writing the shard's records, in plan order, to a path.
    """
    videos, failures = {}, {}
    for video_id in self.shards[shard]:
      entry, outcome = self.entries[video_id], outcomes[video_id]
      if isinstance(outcome, str):
        failures[video_id] = {"path": entry.path, "reason": outcome}
      else:
        videos[video_id] = {"shard": self.shard_names[shard], "label": entry.label,
                            "class_name": entry.class_name, "splits": list(entry.splits),
                            "frames": outcome, "flow_pairs": outcome - 1}
    records.write_json(self._shard_entries_path(shard), {"videos": videos, "failures": failures})
    records.write_atomically(self.shard_path(shard), write_records)

  def assemble_shard(self, shard):
    """Writes a shard from its videos' work files (local runner), then drops those."""
    outcomes, done = {}, []
    for video_id in self.shards[shard]:
      if storage.exists(self.work_file(video_id, "failed")):
        outcomes[video_id] = records.read_json(self.work_file(video_id, "failed"))["reason"]
      else:
        outcomes[video_id] = records.read_json(self.work_file(video_id, "info"))["frames"]
        done.append(video_id)

    def write(tmp):  # TFRecord files concatenate.
      with storage.open_file(tmp, "wb") as out:
        for video_id in done:
          with storage.open_file(self.work_file(video_id, "tfrecord")) as f:
            shutil.copyfileobj(f, out)
    self.write_shard(shard, outcomes, write)
    for video_id in self.shards[shard]:
      for suffix in ("tfrecord", "info", "failed"):
        if storage.exists(self.work_file(video_id, suffix)):
          storage.remove(self.work_file(video_id, suffix))

  def finish(self, start):
    """Writes `manifest.json` from the finished shards, removes the work directory."""
    videos, failures = {}, {}
    for shard in range(len(self.shards)):
      entries = records.read_json(self._shard_entries_path(shard))
      videos.update(entries["videos"])
      failures.update(entries["failures"])
    num_flow_pairs = sum(v["flow_pairs"] for v in videos.values())
    records.write_json(os.path.join(self.output_dir, records.MANIFEST), {
        "format": records.FORMAT,
        "dataset": self.index.name,
        "class_names": list(self.index.class_names),
        "num_splits": self.index.num_splits,
        "config": dataclasses.asdict(self.config),
        "shards": self.shard_names,
        "videos": videos,
        "failures": failures,
        "num_videos": len(videos),
        "num_flow_pairs": num_flow_pairs,
    })
    storage.rmtree(self.work_dir)
    return Summary(len(self.entries), len(videos), failures, num_flow_pairs,
                   time.time() - start, self.output_dir)


def _progress(total, enabled):
  return tqdm.tqdm(total=total, unit="video", disable=not enabled, dynamic_ncols=True,
                   desc="extract", mininterval=1.0)


def file_sources(index):
  """`read_videos` of file layouts: each video is its file path."""
  paths = {e.video_id: e.path for e in index.entries}
  return lambda video_ids: ((v, paths[v]) for v in video_ids)


def _unordered_results(pool, function, tasks, limit):
  """Like `pool.imap_unordered`, but takes the next task from `tasks` only while fewer
  than `limit` are in flight: a source that yields decoded videos is not read ahead."""
  results = queue.SimpleQueue()
  in_flight = 0
  tasks = iter(tasks)
  while True:
    for task in itertools.islice(tasks, limit - in_flight):
      pool.apply_async(function, (task,), callback=results.put, error_callback=results.put)
      in_flight += 1
    if not in_flight:
      return
    result = results.get()
    in_flight -= 1
    if isinstance(result, BaseException):
      raise result
    yield result


def extract(index, output_dir, config, num_workers=2, videos_per_shard=32, progress=True,
            read_videos=None):
  """Extracts every video of `index` into `output_dir`; resumes an unfinished run.

  Args:
    index: a `flow_tools.datasets.DatasetIndex`.
    output_dir: where shards, `manifest.json` and (while running) `.incomplete/` go.
    config: a `flow_tools.encode.ExtractionConfig`.
    num_workers: encoding processes.
    videos_per_shard: videos per TFRecord shard.
    progress: show a progress bar with videos/s and frame pairs/s.
    read_videos: function from a list of video ids to (video id, source) pairs, a
      source being what `flow_tools.video.iter_frames` takes; default: the
      entries' file paths.
  Returns:
    A `Summary`. Failed videos are listed in it and in the manifest; they do not stop the run.
  """
  if num_workers < 1 or videos_per_shard < 1:
    raise ValueError("num_workers and videos_per_shard must be at least 1")
  flow_lib.create(config.algorithm)  # Fails here, once, if the algorithm is unavailable.
  start = time.time()
  layout = OutputLayout(index, output_dir, config, videos_per_shard)
  finished = layout.finished_summary(start)
  if finished is not None:
    return dataclasses.replace(finished, worker_seconds=0.0, flow_seconds=0.0)

  layout.prepare()
  pending_shards = layout.pending_shards()
  encoded_before = layout.encoded_videos()
  remaining = {s: [v for v in layout.shards[s] if v not in encoded_before]
               for s in pending_shards}
  to_encode = [v for s in pending_shards for v in remaining[s]]
  shard_of = {v: s for s, shard in enumerate(layout.shards) for v in shard}
  for shard in pending_shards:
    if not remaining[shard]:
      layout.assemble_shard(shard)

  bar = _progress(len(layout.entries), progress)
  bar.update(len(layout.entries) - len(to_encode))
  pairs_done, pair_start = 0, time.time()
  worker_seconds = flow_seconds = 0.0
  if to_encode:
    read_videos = read_videos or file_sources(index)
    tasks = ((v, source, config) for v, source in read_videos(to_encode))
    context = multiprocessing.get_context("spawn")
    with context.Pool(num_workers, initializer=encode.init_worker,
                      initargs=(config.algorithm,)) as pool:
      for video_id, encoded, reason, seconds in _unordered_results(
          pool, encode.encode_task, tasks, 2 * num_workers):
        worker_seconds += seconds
        if encoded is None:
          layout.save_failure(video_id, reason)
        else:
          layout.save_video(video_id, encoded)
          pairs_done += encoded.num_frames - 1
          flow_seconds += encoded.flow_seconds
        shard = shard_of[video_id]
        remaining[shard].remove(video_id)
        if not remaining[shard]:
          layout.assemble_shard(shard)
        bar.update(1)
        bar.set_postfix(pairs_per_s=f"{pairs_done / max(time.time() - pair_start, 1e-9):.1f}",
                        refresh=False)
  bar.close()
  unread = sorted(v for s in pending_shards for v in remaining[s])
  if unread:
    raise ExtractionError(f"the video source did not yield {len(unread)} videos of the "
                          f"index, e.g. {unread[0]!r}; rerun to resume")
  return dataclasses.replace(layout.finish(start), worker_seconds=worker_seconds,
                             flow_seconds=flow_seconds)
