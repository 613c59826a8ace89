"""Parallel, resumable extraction of a dataset into records (flow_tools.records, v2).

Worker processes (spawned, OpenCV only) encode videos; the main process writes each
finished video's files (one per modality, each written to `<output_dir>/.incomplete/`
and then renamed into place), so a video whose files all exist is finished, and
nothing partial is ever where readers look. A run killed at any point, even by
SIGKILL, is finished by running it again: finished videos are kept, and the result
is byte-identical to an uninterrupted run.
"""

import concurrent.futures
import dataclasses
import itertools
import multiprocessing
import os
import tempfile
import time

import tqdm

from flow_tools import datasets
from flow_tools import encoding
from flow_tools import flow as flow_lib
from flow_tools import records
from flow_tools import storage

WORK_DIR = ".incomplete"
_PLAN = "plan.json"
_FAILED = "failed"
_TMP = "tmp"
# Threads reading finished videos' headers: an object store answers each read in tens of ms.
_HEADER_READERS = 16


class ExtractionError(RuntimeError):
  """The output directory cannot be used for this extraction."""


@dataclasses.dataclass
class Summary:
  """What a run did; `failures` maps video id -> {'path', 'reason'}.

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


def _facts(num_frames, height, width):
  """The manifest's per-video facts that only the encoded video knows."""
  return {"frames": num_frames, "flow_pairs": num_frames - 1, "height": height, "width": width}


class OutputLayout:
  """Files and bookkeeping of one output directory, whichever runner fills it.

  Videos are numbered by their position among the sorted ids (`records.video_file`).
  A video is finished when all its files exist (each appears whole, by rename); a
  video that cannot be used leaves `.incomplete/failed/<number>.json`. The manifest
  is written last, from the dataset index and each finished video's facts (from the
  encoding, or from its file's header when a previous run finished it).
  """

  def __init__(self, index, output_dir, config):
    self.index = index
    self.output_dir = output_dir
    self.work_dir = os.path.join(output_dir, WORK_DIR)
    self.config = config
    self.entries = {e.video_id: e for e in index.entries}
    self.video_ids = sorted(self.entries)
    self.number = {v: n for n, v in enumerate(self.video_ids)}
    self.modalities = records.modalities(config.backward)
    self.plan = {"format": records.FORMAT, "dataset": index.name,
                 "config": dataclasses.asdict(config), "videos": self.video_ids}
    self._folders_made = set()  # a request each on an object store: once per folder

  def path(self, video_id, modality):
    return os.path.join(self.output_dir, records.video_file(self.number[video_id], modality))

  def _failure_path(self, video_id):
    return os.path.join(self.work_dir, _FAILED, f"{self.number[video_id]:07d}.json")

  def finished_summary(self, start):
    """The `Summary` of this extraction if `output_dir` already holds it finished, else None.

    Raises:
      ExtractionError: `output_dir` holds records made with other settings or videos.
    """
    if not storage.exists(os.path.join(self.output_dir, records.MANIFEST)):
      return None
    try:
      manifest = records.read_manifest(self.output_dir)
    except records.RecordsError as error:
      raise ExtractionError(str(error)) from error
    if (manifest["config"] != dataclasses.asdict(self.config)
        or sorted([*manifest["videos"], *manifest["failures"]]) != self.video_ids):
      raise ExtractionError(f"{self.output_dir} already holds records made with other settings "
                            "or videos: choose another --output_dir")
    return Summary(len(self.entries), manifest["num_videos"], manifest["failures"],
                   manifest["num_flow_pairs"], time.time() - start, self.output_dir)

  def prepare(self):
    """Creates or checks the work directory against this run's plan."""
    for folder in (_FAILED, _TMP):
      storage.makedirs(os.path.join(self.work_dir, folder))
    plan_path = os.path.join(self.work_dir, _PLAN)
    if storage.exists(plan_path):
      previous = storage.read_json(plan_path)
      if previous.get("format") != records.FORMAT:
        raise ExtractionError(
            f"{self.output_dir} holds an unfinished extraction into another records format "
            f"({previous.get('format', 'two_stream_tf.records/1')}): choose another --output_dir")
      if previous != self.plan:
        differing = sorted(k for k in self.plan if previous.get(k) != self.plan[k])
        raise ExtractionError(
            f"{self.output_dir} holds an unfinished extraction with different "
            f"{', '.join(differing)}: use the same flags to resume, or another --output_dir")
    else:
      storage.write_json(plan_path, self.plan)

  def done_videos(self):
    """Ids of videos finished or found unusable by earlier runs, from one listing per
    folder of videos (and one of the failures)."""
    failed = set(storage.listdir(os.path.join(self.work_dir, _FAILED)))
    listings = {}
    done = set()
    for video_id in self.video_ids:
      folder = os.path.join(self.output_dir, records.video_folder(self.number[video_id]))
      if folder not in listings:
        listings[folder] = set(storage.listdir(folder)) if storage.isdir(folder) else set()
      names = {os.path.basename(self.path(video_id, m)) for m in self.modalities}
      if names <= listings[folder] or os.path.basename(self._failure_path(video_id)) in failed:
        done.add(video_id)
    return done

  def save_failure(self, video_id, reason):
    storage.write_json(self._failure_path(video_id), {"reason": reason})

  def save_video(self, video_id, encoded):
    """Writes a video's files, in `self.modalities` order; returns its manifest facts."""
    files = records.video_records(self.entries[video_id], self.index.name, encoded, self.config)
    folder = os.path.dirname(self.path(video_id, records.RGB))
    if folder not in self._folders_made:
      storage.makedirs(folder)
      self._folders_made.add(folder)
    for modality in self.modalities:
      records.write_tfrecords(self.path(video_id, modality), files[modality],
                              os.path.join(self.work_dir, _TMP))
    return _facts(encoded.num_frames, encoded.height, encoded.width)

  def _read_facts(self, video_id):
    header = records.read_header(self.path(video_id, records.RGB))
    return _facts(header["clip/frame_count"], header["image/height"], header["image/width"])

  def finish(self, start, facts=None):
    """Writes `manifest.json`, removes the work directory.

    Args:
      start: the run's start time.
      facts: video id -> facts of the videos this run encoded; the others' are read
        from their files' headers.
    """
    failed = set(storage.listdir(os.path.join(self.work_dir, _FAILED)))
    failures = {}
    for video_id in self.video_ids:
      if os.path.basename(self._failure_path(video_id)) in failed:
        reason = storage.read_json(self._failure_path(video_id))["reason"]
        failures[video_id] = {"path": self.entries[video_id].path, "reason": reason}
    facts = dict(facts or {})
    unknown = [v for v in self.video_ids if v not in failures and v not in facts]
    with concurrent.futures.ThreadPoolExecutor(_HEADER_READERS) as pool:
      facts.update(zip(unknown, pool.map(self._read_facts, unknown)))
    videos = {}
    for video_id in self.video_ids:
      if video_id not in failures:
        entry = self.entries[video_id]
        videos[video_id] = {"number": self.number[video_id], "label": entry.label,
                            "class_name": entry.class_name, "splits": list(entry.splits),
                            **facts[video_id]}
    num_flow_pairs = sum(v["flow_pairs"] for v in videos.values())
    storage.write_json(os.path.join(self.output_dir, records.MANIFEST), {
        "format": records.FORMAT,
        "dataset": self.index.name,
        "class_names": list(self.index.class_names),
        "num_splits": self.index.num_splits,
        "config": dataclasses.asdict(self.config),
        "modalities": list(self.modalities),
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


def _unordered_results(executor, function, tasks, limit):
  """`function`'s results on `tasks` as they finish, taking the next task only while fewer
  than `limit` are in flight: a source that yields decoded videos is not read ahead."""
  in_flight = set()
  tasks = iter(tasks)
  while True:
    for task in itertools.islice(tasks, limit - len(in_flight)):
      in_flight.add(executor.submit(function, task))
    if not in_flight:
      return
    done, in_flight = concurrent.futures.wait(in_flight,
                                              return_when=concurrent.futures.FIRST_COMPLETED)
    for future in done:
      yield future.result()


def _dead_worker_error(notes_dir, finished):
  """What to tell when a worker process died: the videos that were being encoded."""
  under_way = set()
  for name in os.listdir(notes_dir):
    with open(os.path.join(notes_dir, name), encoding="utf-8") as f:
      under_way.add(f.read())
  under_way = sorted(under_way - set(finished))
  return ExtractionError(
      f"a worker process died (killed, out of memory, or a crash in a decoder) while "
      f"encoding {' or '.join(repr(v) for v in under_way) or 'a video'}; the "
      f"{len(finished)} videos this run finished are kept: rerun to resume "
      "(a video that kills its worker again can be left out of the split files)")


def extract(index, output_dir, config, num_workers=2, progress=True, read_videos=None):
  """Extracts every video of `index` into `output_dir`; resumes an unfinished run.

  Args:
    index: a `flow_tools.datasets.DatasetIndex`.
    output_dir: where `videos/`, `manifest.json` and (while running) `.incomplete/` go.
    config: a `flow_tools.encoding.ExtractionConfig`.
    num_workers: encoding processes.
    progress: show a progress bar with videos/s and frame pairs/s.
    read_videos: function from a list of video ids to (video id, source) pairs, a
      source being what `flow_tools.video.iter_frames` takes; default: the
      entries' file paths.
  Returns:
    A `Summary`. Failed videos are listed in it and in the manifest; they do not stop the run.
  """
  if num_workers < 1:
    raise ValueError("num_workers must be at least 1")
  if storage.exists(output_dir) and not storage.isdir(output_dir):
    raise ExtractionError(f"the output directory {output_dir} is a file")
  flow_lib.create(config.algorithm)  # Fails here, once, if the algorithm is unavailable.
  start = time.time()
  layout = OutputLayout(index, output_dir, config)
  finished = layout.finished_summary(start)
  if finished is not None:
    return dataclasses.replace(finished, worker_seconds=0.0, flow_seconds=0.0)

  layout.prepare()
  done_before = layout.done_videos()
  to_encode = [v for v in layout.video_ids if v not in done_before]
  bar = _progress(len(layout.entries), progress)
  bar.update(len(done_before))
  pairs_done, pair_start = 0, time.time()
  worker_seconds = flow_seconds = 0.0
  facts = {}
  if to_encode:
    read_videos = read_videos or file_sources(index)
    tasks = ((v, source, config) for v, source in read_videos(to_encode))
    context = multiprocessing.get_context("spawn")
    # A pool that notices a dead worker (multiprocessing.Pool would wait for it forever).
    with tempfile.TemporaryDirectory(prefix="flow_tools-workers-") as notes_dir, \
        concurrent.futures.ProcessPoolExecutor(
            num_workers, mp_context=context, initializer=encoding.init_worker,
            initargs=(config.algorithm, notes_dir)) as executor:
      try:
        for video_id, encoded, reason, seconds in _unordered_results(
            executor, encoding.encode_task, tasks, 2 * num_workers):
          worker_seconds += seconds
          if encoded is None:
            layout.save_failure(video_id, reason)
            facts[video_id] = None
          else:
            facts[video_id] = layout.save_video(video_id, encoded)
            pairs_done += encoded.num_frames - 1
            flow_seconds += encoded.flow_seconds
          bar.update(1)
          rate = pairs_done / max(time.time() - pair_start, 1e-9)
          bar.set_postfix(pairs_per_s=f"{rate:.1f}", refresh=False)
      except concurrent.futures.BrokenExecutor as error:
        raise _dead_worker_error(notes_dir, facts) from error
  bar.close()
  unread = [v for v in to_encode if v not in facts]
  if unread:
    raise ExtractionError(f"the video source did not yield {len(unread)} videos of the "
                          f"index, e.g. {unread[0]!r}; rerun to resume")
  encoded_facts = {v: f for v, f in facts.items() if f is not None}
  return dataclasses.replace(layout.finish(start, encoded_facts), worker_seconds=worker_seconds,
                             flow_seconds=flow_seconds)


def _runner(runner, output_dir, num_workers, progress, beam_pipeline_options):
  """(index, read_videos, config) -> Summary of `runner`; a missing apache-beam or a wrong
  Beam option fails here, before any data is read."""
  if runner == "local":
    return lambda index, read_videos, config: extract(index, output_dir, config, num_workers,
                                                       progress, read_videos)
  if runner != "beam":
    raise ValueError(f"unknown runner {runner!r}: 'local' or 'beam'")
  try:
    from flow_tools import beam_extraction  # pylint: disable=import-outside-toplevel
  except ModuleNotFoundError as error:
    if error.name != "apache_beam":
      raise
    raise ValueError('--runner=beam needs apache-beam: pip install -e ".[beam]" '
                     "(or pip install 'apache-beam>=2.60,<3')") from error
  beam_extraction.pipeline_options(beam_pipeline_options)
  return lambda index, read_videos, config: beam_extraction.extract(
      index, output_dir, config, beam_pipeline_options)


def open_dataset(dataset, data_dir, splits_dir=None, tfds_name=None, tfds_download=True):
  """(`DatasetIndex`, its `read_videos` source): None for video files, TFDS's for
  `datasets.TFDS`."""
  if dataset != datasets.TFDS:
    return datasets.load_dataset(dataset, data_dir, splits_dir), None
  from flow_tools import tfds_videos  # pylint: disable=import-outside-toplevel
  source = tfds_videos.TfdsVideos(tfds_name, data_dir, tfds_download)
  return source.index(), source.read


def extract_dataset(dataset, data_dir, output_dir, config, *, splits_dir=None, tfds_name=None,
                    tfds_download=True, runner="local", num_workers=2, progress=True,
                    beam_pipeline_options=""):
  """The extract app's job: a dataset as distributed (or from TFDS) into `output_dir`.

  The flow algorithm and the runner are checked before any data is read.
  Returns:
    (its `DatasetIndex`, the run's `Summary`).
  """
  flow_lib.create(config.algorithm)
  run = _runner(runner, output_dir, num_workers, progress, beam_pipeline_options)
  index, read_videos = open_dataset(dataset, data_dir, splits_dir, tfds_name, tfds_download)
  return index, run(index, read_videos, config)
