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
import json
import multiprocessing
import os
import shutil
import time

import numpy as np
import tensorflow as tf
import tqdm

from flow_tools import encode
from flow_tools import flow as flow_lib
from flow_tools import records

WORK_DIR = ".incomplete"
_PLAN = "plan.json"
_SHARD_ORDER_SEED = 20140609  # arXiv 1406.2199


class ExtractionError(RuntimeError):
  """The output directory cannot be used for this extraction."""


@dataclasses.dataclass
class Summary:
  """What a run did; `failures` maps video id -> reason."""
  num_videos: int
  num_extracted: int
  failures: dict
  flow_pairs: int
  seconds: float
  output_dir: str


def plan_shards(video_ids, videos_per_shard):
  """Video ids grouped into shards: a fixed permutation, then consecutive chunks."""
  ids = sorted(video_ids)
  order = np.random.default_rng(_SHARD_ORDER_SEED).permutation(len(ids))
  shuffled = [ids[i] for i in order]
  return [shuffled[i:i + videos_per_shard] for i in range(0, len(shuffled), videos_per_shard)]


def _shard_name(dataset, index, count):
  return f"{dataset}-{index:05d}-of-{count:05d}.tfrecord"


class _Run:
  """File layout and bookkeeping of one output directory."""

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

  def prepare(self):
    """Creates or checks the work directory against this run's plan."""
    os.makedirs(self.work_dir, exist_ok=True)
    plan_path = os.path.join(self.work_dir, _PLAN)
    if os.path.exists(plan_path):
      with open(plan_path, encoding="utf-8") as f:
        previous = json.load(f)
      if previous != self.plan:
        differing = sorted(k for k in self.plan if previous.get(k) != self.plan[k])
        raise ExtractionError(
            f"{self.output_dir} holds an unfinished extraction with different "
            f"{', '.join(differing)}: use the same flags to resume, or another --output_dir")
    else:
      records.write_json(plan_path, self.plan)

  def status(self, video_id):
    """'done', 'failed' or None for a video of an unfinished shard."""
    if os.path.exists(self.work_file(video_id, "info")):  # Written last.
      return "done"
    if os.path.exists(self.work_file(video_id, "failed")):
      return "failed"
    return None

  def save_video(self, video_id, encoded):
    example = records.to_sequence_example(
        self.entries[video_id], self.index.name, encoded, self.config)

    def write(tmp):
      with tf.io.TFRecordWriter(tmp) as writer:
        writer.write(example.SerializeToString(deterministic=True))  # sorted map keys
    records.write_atomically(self.work_file(video_id, "tfrecord"), write)
    info = {"frames": encoded.num_frames, "flow_pairs": encoded.num_frames - 1}
    records.write_json(self.work_file(video_id, "info"), info)

  def save_failure(self, video_id, reason):
    records.write_json(self.work_file(video_id, "failed"), {"reason": reason})

  def assemble_shard(self, shard):
    """Concatenates the shard's finished videos (TFRecord files concatenate)."""
    def write(tmp):
      with open(tmp, "wb") as out:
        for video_id in self.shards[shard]:
          if self.status(video_id) == "done":
            with open(self.work_file(video_id, "tfrecord"), "rb") as f:
              shutil.copyfileobj(f, out)
    records.write_atomically(self.shard_path(shard), write)
    for video_id in self.shards[shard]:
      if os.path.exists(self.work_file(video_id, "tfrecord")):
        os.remove(self.work_file(video_id, "tfrecord"))

  def shard_summary(self, shard):
    """Manifest entries of a finished shard, from its work files."""
    videos, failures = {}, {}
    for video_id in self.shards[shard]:
      entry = self.entries[video_id]
      if self.status(video_id) == "failed":
        with open(self.work_file(video_id, "failed"), encoding="utf-8") as f:
          failures[video_id] = {"path": entry.path, **json.load(f)}
        continue
      with open(self.work_file(video_id, "info"), encoding="utf-8") as f:
        info = json.load(f)
      videos[video_id] = {"shard": self.shard_names[shard], "label": entry.label,
                          "class_name": entry.class_name, "splits": list(entry.splits),
                          **info}
    return videos, failures

  def manifest(self, videos, failures):
    return {
        "format": records.FORMAT,
        "dataset": self.index.name,
        "class_names": list(self.index.class_names),
        "num_splits": self.index.num_splits,
        "config": dataclasses.asdict(self.config),
        "shards": self.shard_names,
        "videos": videos,
        "failures": failures,
        "num_videos": len(videos),
        "num_flow_pairs": sum(v["flow_pairs"] for v in videos.values()),
    }


def _progress(total, enabled):
  return tqdm.tqdm(total=total, unit="video", disable=not enabled, dynamic_ncols=True,
                   desc="extract", mininterval=1.0)


def extract(index, output_dir, config, num_workers=2, videos_per_shard=32, progress=True):
  """Extracts every video of `index` into `output_dir`; resumes an unfinished run.

  Args:
    index: a `flow_tools.datasets.DatasetIndex`.
    output_dir: where shards, `manifest.json` and (while running) `.incomplete/` go.
    config: a `flow_tools.encode.ExtractionConfig`.
    num_workers: encoding processes.
    videos_per_shard: videos per TFRecord shard.
    progress: show a progress bar with videos/s and frame pairs/s.
  Returns:
    A `Summary`. Failed videos are listed in it and in the manifest; they do not stop the run.
  """
  if num_workers < 1 or videos_per_shard < 1:
    raise ValueError("num_workers and videos_per_shard must be at least 1")
  flow_lib.create(config.algorithm)  # Fails here, once, if the algorithm is unavailable.
  start = time.time()
  manifest_path = os.path.join(output_dir, records.MANIFEST)
  run = _Run(index, output_dir, config, videos_per_shard)
  if os.path.exists(manifest_path):
    manifest = records.read_manifest(output_dir)
    if (manifest["config"] != dataclasses.asdict(config) or manifest["shards"] != run.shard_names
        or sorted([*manifest["videos"], *manifest["failures"]]) != run.plan["videos"]):
      raise ExtractionError(f"{output_dir} already holds records made with other settings or "
                            "videos: choose another --output_dir")
    return Summary(len(run.entries), manifest["num_videos"], manifest["failures"],
                   manifest["num_flow_pairs"], time.time() - start, output_dir)

  run.prepare()
  pending_shards = [s for s in range(len(run.shards)) if not os.path.exists(run.shard_path(s))]
  remaining = {s: [v for v in run.shards[s] if run.status(v) is None] for s in pending_shards}
  tasks = [(v, run.entries[v].path, config) for s in pending_shards for v in remaining[s]]
  shard_of = {v: s for s, shard in enumerate(run.shards) for v in shard}
  for shard in pending_shards:
    if not remaining[shard]:
      run.assemble_shard(shard)

  bar = _progress(len(run.entries), progress)
  bar.update(len(run.entries) - len(tasks))
  pairs_done, pair_start = 0, time.time()
  if tasks:
    context = multiprocessing.get_context("spawn")
    with context.Pool(num_workers, initializer=encode.init_worker,
                      initargs=(config.algorithm,)) as pool:
      for video_id, encoded, reason in pool.imap_unordered(encode.encode_task, tasks):
        if encoded is None:
          run.save_failure(video_id, reason)
        else:
          run.save_video(video_id, encoded)
          pairs_done += encoded.num_frames - 1
        shard = shard_of[video_id]
        remaining[shard].remove(video_id)
        if not remaining[shard]:
          run.assemble_shard(shard)
        bar.update(1)
        bar.set_postfix(pairs_per_s=f"{pairs_done / max(time.time() - pair_start, 1e-9):.1f}",
                        refresh=False)
  bar.close()

  videos, failures = {}, {}
  for shard in range(len(run.shards)):
    shard_videos, shard_failures = run.shard_summary(shard)
    videos.update(shard_videos)
    failures.update(shard_failures)
  records.write_json(manifest_path, run.manifest(videos, failures))
  shutil.rmtree(run.work_dir)
  return Summary(len(run.entries), len(videos), failures,
                 sum(v["flow_pairs"] for v in videos.values()), time.time() - start, output_dir)
