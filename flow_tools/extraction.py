"""Parallel, resumable extraction of a dataset into records (flow_tools.records, v2).

Worker processes (spawned, OpenCV and numpy only: no TensorFlow) encode videos and write
each finished video's files (one per modality, then its index holding its source's
fingerprint; each written to `<output_dir>/.incomplete/` and then renamed into place), so
a video whose index exists is finished, and nothing partial is ever where readers look;
the main process gathers their facts for the manifest. A run killed at any point, even by
SIGKILL, is finished by running it again: finished videos are kept, and the result
is byte-identical to an uninterrupted run. Every run, finished or not, redoes the videos
whose file changed since it was encoded (a re-download, a repaired clip: size, time and
content hash, `flow_tools.sources`); a lock file keeps a second run out meanwhile
(`flow_tools.locks`).
"""

import concurrent.futures
import dataclasses
import itertools
import multiprocessing
import os
import signal
import tempfile
import time

import tqdm

from flow_tools import datasets
from flow_tools import encoding
from flow_tools import flow as flow_lib
from flow_tools import locks
from flow_tools import records
from flow_tools import sources
from flow_tools import storage

WORK_DIR = ".incomplete"
_PLAN = "plan.json"
_FAILED = "failed"
_PREVIOUS = "previous_manifest.json"
_TMP = "tmp"
# Threads reading finished videos' headers and checking sources: an object store answers
# each request in tens of ms.
_READERS = 16
EXIT_SOME_FAILED = 3  # the apps' exit status when a run finished without some videos


class ExtractionError(RuntimeError):
  """The output directory cannot be used for this extraction."""


@dataclasses.dataclass
class Summary:
  """What a run did; `failures` maps video id -> {'path', 'reason', 'source'}.

  Of the `num_videos`, this run encoded `num_new` never done before and `num_redone`:
  `changed` (ids), whose source changed since an earlier run did them, and `retried`
  (ids, with `retry_failed`), that an earlier run found unusable; `failed` (ids) are those
  of this run that it found unusable. It kept `num_kept` an earlier run finished and skipped
  `num_skipped` an earlier run found unusable, both unchanged.
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
  num_new: int = 0
  changed: tuple = ()
  retried: tuple = ()
  failed: tuple = ()
  num_kept: int = 0
  num_skipped: int = 0
  worker_seconds: float = None
  flow_seconds: float = None

  @property
  def num_redone(self):
    return len(self.changed) + len(self.retried)

  def run_report(self, verb="encoded", done="extracted"):
    """One line: what this run did with each video (`verb`: what it did to a new one,
    `done`: what earlier runs did to those kept), naming a few of those redone or failed."""
    failed = set(self.failed)
    new_failed = len(failed - set(self.changed) - set(self.retried))
    parts = []
    if self.num_new - new_failed:
      parts.append(f"{verb} {self.num_new - new_failed} new")
    if new_failed:
      parts.append(f"{new_failed} new failed")
    if self.changed:
      parts.append(f"redid {len(self.changed)} whose files changed ({_some(self.changed)})")
    if self.retried:
      again = [v for v in self.retried if v in failed]
      parts.append(f"retried {len(self.retried)} that failed before" + (
          f", {len(again)} failed again ({_some(again)})" if again else ""))
    parts = parts or ["nothing to do: no video changed"]
    if self.num_kept:
      parts.append(f"kept {self.num_kept} {done} before")
    if self.num_skipped:
      parts.append(f"skipped {self.num_skipped} that failed before (unchanged; "
                   "--retry_failed tries them again)")
    return "this run: " + ", ".join(parts)


def _some(video_ids, shown=3):
  """The first few of `video_ids`, for a line of a report."""
  return ", ".join(video_ids[:shown]) + (f" and {len(video_ids) - shown} more"
                                         if len(video_ids) > shown else "")


@dataclasses.dataclass
class RunPlan:
  """What a run has to do: `to_encode` (sorted ids), of which `changed` and `retried` (sorted
  ids, as `Summary`) were done before; `finished` is the manifest when the directory is
  finished and nothing has changed."""
  to_encode: list
  changed: list
  retried: list
  num_kept: int
  num_skipped: int
  finished: dict = None


def _facts(num_frames, height, width, file_bytes, source):
  """The manifest's per-video facts that only the encoded video knows."""
  return {"frames": num_frames, "flow_pairs": num_frames - 1, "height": height, "width": width,
          "bytes": file_bytes, "source": source}


_FACT_KEYS = tuple(_facts(0, 0, 0, None, None))


def _removed(path):
  if storage.exists(path):
    storage.remove(path)


class OutputLayout:
  """Files and bookkeeping of one output directory, whichever runner fills it.

  Videos are numbered by their position among the sorted ids (`records.video_file`).
  A video is finished when its index exists (written, whole by rename, after its files);
  the index holds its source's fingerprint (`flow_tools.sources`), so that every run can
  tell which finished videos' sources have changed since. A video that cannot be used
  leaves `.incomplete/failed/<number>.json` with its reason and fingerprint. The manifest
  is written last, from the dataset index and each finished video's facts (from the
  encoding, or from its files when a previous run finished it).
  """

  def __init__(self, index, output_dir, config, origin=None, changed=None):
    """`origin`: what the records were made from when not from video files (JSON, kept in
    the manifest, e.g. an import's layout); `changed`: (video id, recorded fingerprint)
    -> whether its source changed since, when it is not the entry's file
    (`sources.changed`)."""
    self.index = index
    self.output_dir = output_dir
    self.work_dir = os.path.join(output_dir, WORK_DIR)
    self.config = config
    self.origin = origin
    self.entries = {e.video_id: e for e in index.entries}
    self.video_ids = sorted(self.entries)
    self.number = {v: n for n, v in enumerate(self.video_ids)}
    self.modalities = records.modalities(config.backward)
    self.plan = {"format": records.FORMAT, "dataset": index.name,
                 "config": dataclasses.asdict(config), "videos": self.video_ids}
    if origin is not None:
      self.plan["origin"] = origin
    self._source_changed = changed or (
        lambda video_id, recorded: sources.changed(recorded, self.entries[video_id].path))
    self._folders_made = set()  # a request each on an object store: once per folder

  def __getstate__(self):
    # Workers get a copy to write videos with; only the launching process checks sources,
    # and its function may be a closure, which does not pickle.
    return dict(self.__dict__, _source_changed=None)

  def path(self, video_id, modality):
    return os.path.join(self.output_dir, records.video_file(self.number[video_id], modality))

  def paths(self, video_id):
    """{modality: path} of a video's files."""
    return {m: self.path(video_id, m) for m in self.modalities}

  def index_path(self, video_id):
    return records.index_path(self.path(video_id, records.RGB))

  def _failure_path(self, video_id):
    return os.path.join(self.work_dir, _FAILED, f"{self.number[video_id]:07d}.json")

  def _failures(self):
    """{video id: {'reason', 'source'}} of the failure notes."""
    names = set(storage.listdir(os.path.join(self.work_dir, _FAILED)))
    ids = [v for v in self.video_ids if os.path.basename(self._failure_path(v)) in names]
    with concurrent.futures.ThreadPoolExecutor(_READERS) as pool:
      return dict(zip(ids, pool.map(storage.read_json, map(self._failure_path, ids))))

  def _finished_manifest(self):
    """The manifest if `output_dir` is finished (checked against this run), else None.

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
        or manifest.get("origin") != self.origin
        or sorted([*manifest["videos"], *manifest["failures"]]) != self.video_ids):
      raise ExtractionError(f"{self.output_dir} already holds records made with other settings "
                            "or videos: choose another --output_dir")
    return manifest

  def _prepare(self):
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

  def _previous(self):
    """The manifest of the finished run this unfinished one redoes part of, or None."""
    path = os.path.join(self.work_dir, _PREVIOUS)
    return storage.read_json(path) if storage.exists(path) else None

  def _reopen(self, manifest):
    """Turns a finished directory back into an unfinished one, losing nothing: its videos
    made before indexes get theirs, its manifest moves into the work directory (readers now
    see an unfinished directory), and its failures become failure notes again."""
    with concurrent.futures.ThreadPoolExecutor(_READERS) as pool:
      list(pool.map(lambda v: records.write_missing_index(self.paths(v),
                                                          manifest["videos"][v].get("source")),
                    manifest["videos"]))
    if storage.exists(self.work_dir):
      storage.rmtree(self.work_dir)  # a finished run's leftovers: the manifest says it all
    self._prepare()
    for video_id, failure in manifest["failures"].items():
      storage.write_json(self._failure_path(video_id),
                         {"reason": failure["reason"], "source": failure.get("source")})
    storage.write_json(os.path.join(self.work_dir, _PREVIOUS), manifest)
    storage.remove(os.path.join(self.output_dir, records.MANIFEST))

  def _forget_previous(self, video_ids):
    """Drops `video_ids` from the previous manifest: their facts are this run's to find."""
    previous = self._previous()
    if previous is not None and not video_ids.isdisjoint(previous["videos"]):
      storage.write_json(os.path.join(self.work_dir, _PREVIOUS), dict(
          previous, videos={v: i for v, i in previous["videos"].items() if v not in video_ids}))

  def _done_videos(self, failed):
    """Ids of videos finished by earlier runs (from one listing per folder of videos), and
    of those in `failed`."""
    listings = {}
    done = set(failed)
    for video_id in self.video_ids:
      folder = os.path.join(self.output_dir, records.video_folder(self.number[video_id]))
      if folder not in listings:
        listings[folder] = set(storage.listdir(folder)) if storage.isdir(folder) else set()
      if os.path.basename(self.index_path(video_id)) in listings[folder]:
        done.add(video_id)
    return done

  def _recorded_sources(self, done, failed):
    """{video id: fingerprint} of the videos `done`: from the failure notes `failed`, the
    previous manifest (videos a reopened directory kept), or the videos' indexes."""
    recorded = {v: note.get("source") for v, note in failed.items()}
    previous = (self._previous() or {"videos": {}})["videos"]
    recorded.update((v, previous[v].get("source")) for v in done
                    if v not in recorded and v in previous)
    unread = sorted(v for v in done if v not in recorded)
    with concurrent.futures.ThreadPoolExecutor(_READERS) as pool:
      recorded.update(zip(unread, pool.map(lambda v: records.read_source(self.index_path(v)),
                                           unread)))
    return recorded

  def _changed(self, recorded, done):
    """The videos of `done` whose source is not what `recorded` says it was."""
    done = sorted(done)
    with concurrent.futures.ThreadPoolExecutor(_READERS) as pool:
      flags = pool.map(lambda v: self._source_changed(v, recorded.get(v)), done)
      return {v for v, changed in zip(done, flags) if changed}

  def _discard(self, video_id):
    """Removes what a run left of a video; its index first, so that a run killed meanwhile
    finds the video unfinished."""
    _removed(self.index_path(video_id))
    for path in self.paths(video_id).values():
      _removed(path)
    _removed(self._failure_path(video_id))

  def open_run(self, retry_failed=False):
    """Plans this run and readies the directory for it.

    Videos an earlier run finished, or found unusable, are kept, or skipped, while their
    source is unchanged; changed ones (and with `retry_failed` unusable ones) are
    removed and encoded again, with the rest. A finished directory is left untouched
    when nothing changed; otherwise it is reopened (`_reopen`) for the run.
    """
    manifest = self._finished_manifest()
    if manifest is None:
      self._prepare()
      notes = self._failures()
      failed = set(notes)
      done = self._done_videos(failed)
      recorded = self._recorded_sources(done, notes)
    else:
      failed, done = set(manifest["failures"]), set(self.video_ids)
      recorded = {v: e.get("source") for v, e in (*manifest["videos"].items(),
                                              *manifest["failures"].items())}
    changed = self._changed(recorded, done)
    retried = (failed - changed) if retry_failed else set()
    redo = changed | retried
    kept, skipped = len(done - failed - redo), len(failed - redo)
    if manifest is not None:
      if not redo:
        if storage.exists(self.work_dir):
          storage.rmtree(self.work_dir)
        return RunPlan([], [], [], kept, skipped, finished=manifest)
      self._reopen(manifest)
    self._forget_previous(redo)
    for video_id in sorted(redo):
      self._discard(video_id)
    return RunPlan([v for v in self.video_ids if v not in done or v in redo], sorted(changed),
                   sorted(retried), kept, skipped)

  def finished_summary(self, plan, start):
    """The `Summary` of a run whose `plan` found the directory finished and unchanged."""
    manifest = plan.finished
    return Summary(len(self.entries), manifest["num_videos"], manifest["failures"],
                   manifest["num_flow_pairs"], time.time() - start, self.output_dir,
                   num_kept=plan.num_kept, num_skipped=plan.num_skipped)

  def save_failure(self, video_id, reason, fingerprint):
    storage.write_json(self._failure_path(video_id),
                       {"reason": reason, "source": fingerprint})

  def save(self, video_id, fingerprint, encoded, reason):
    """Writes a video's files (`save_video`), or its failure if `encoded` is None; returns
    its manifest facts (None for a failure)."""
    if encoded is None:
      self.save_failure(video_id, reason, fingerprint)
      return None
    return self.save_video(video_id, encoded, fingerprint)

  def save_video(self, video_id, encoded, fingerprint):
    """Writes a video's files, in `self.modalities` order, then its index; returns its
    manifest facts."""
    files = records.video_records(self.entries[video_id], self.index.name, encoded, self.config)
    folder = os.path.dirname(self.index_path(video_id))
    if folder not in self._folders_made:
      storage.makedirs(folder)
      self._folders_made.add(folder)
    sizes = records.write_video_files(self.paths(video_id), files, fingerprint,
                                      os.path.join(self.work_dir, _TMP))
    return _facts(encoded.num_frames, encoded.height, encoded.width, sizes, fingerprint)

  def _read_facts(self, video_id):
    header = records.read_header(self.path(video_id, records.RGB))
    return _facts(header["clip/frame_count"], header["image/height"], header["image/width"],
                  {m: storage.stat(p)[0] for m, p in self.paths(video_id).items()},
                  records.read_source(self.index_path(video_id)))

  def finish(self, start, plan, facts=None):
    """Writes `manifest.json`, removes the work directory.

    Args:
      start: the run's start time.
      plan: the run's `RunPlan`.
      facts: video id -> facts of the videos this run encoded; the others' are read
        from their files' headers.
    """
    failed = self._failures()
    failures = {v: {"path": self.entries[v].path, "reason": failed[v]["reason"],
                    "source": failed[v].get("source")} for v in self.video_ids if v in failed}
    facts = dict(facts or {})
    # Videos a reopened directory kept (the others are forgotten when redone): their facts
    # are in the previous manifest, not worth a header read each on an object store.
    previous = self._previous()
    if previous is not None:
      facts.update((v, {k: info.get(k) for k in _FACT_KEYS})
                   for v, info in previous["videos"].items()
                   if v not in facts and v not in failures and "bytes" in info)
    unknown = [v for v in self.video_ids if v not in failures and v not in facts]
    with concurrent.futures.ThreadPoolExecutor(_READERS) as pool:
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
        **({} if self.origin is None else {"origin": self.origin}),
        "modalities": list(self.modalities),
        "videos": videos,
        "failures": failures,
        "num_videos": len(videos),
        "num_flow_pairs": num_flow_pairs,
    })
    storage.rmtree(self.work_dir)
    return Summary(len(self.entries), len(videos), failures, num_flow_pairs,
                   time.time() - start, self.output_dir,
                   num_new=len(plan.to_encode) - len(plan.changed) - len(plan.retried),
                   changed=tuple(plan.changed), retried=tuple(plan.retried),
                   failed=tuple(v for v in plan.to_encode if v in failures),
                   num_kept=plan.num_kept, num_skipped=plan.num_skipped)


def _progress(total, enabled):
  return tqdm.tqdm(total=total, unit="video", disable=not enabled, dynamic_ncols=True,
                   desc="extract", mininterval=1.0)


def file_sources(index):
  """`read_videos` of file layouts: each video is its file path."""
  paths = {e.video_id: e.path for e in index.entries}
  return lambda video_ids: ((v, paths[v]) for v in video_ids)


def _submit_blocking_interrupts(executor, function, task):
  """`executor.submit`, with SIGINT blocked in this thread meanwhile: a worker process it
  starts inherits the block, so a Ctrl-C that arrives while the worker is still starting
  (before `encoding.init_worker` ignores it) cannot end the worker with a traceback; the
  main process gets the Ctrl-C as soon as the submit returns."""
  blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
  try:
    return executor.submit(function, task)
  finally:
    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _unordered_results(executor, function, tasks, limit):
  """`function`'s results on `tasks` as they finish, taking the next task only while fewer
  than `limit` are in flight: a source that yields decoded videos is not read ahead."""
  in_flight = set()
  tasks = iter(tasks)
  while True:
    for task in itertools.islice(tasks, limit - len(in_flight)):
      in_flight.add(_submit_blocking_interrupts(executor, function, task))
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


def extract(index, output_dir, config, num_workers=2, progress=True, read_videos=None,
            retry_failed=False, task=None, origin=None, changed=None):
  """Extracts every video of `index` into `output_dir`; resumes an unfinished run and redoes
  the videos whose source changed since (`OutputLayout.open_run`).

  Args:
    index: a `flow_tools.datasets.DatasetIndex`.
    output_dir: where `videos/`, `manifest.json` and (while running) `.incomplete/` go.
    config: a `flow_tools.encoding.ExtractionConfig`.
    num_workers: encoding processes.
    progress: show a progress bar with videos/s and frame pairs/s.
    read_videos: function from a list of video ids to (video id, source) pairs, a
      source being what `flow_tools.video.iter_frames` takes; default: the
      entries' file paths.
    retry_failed: encode again the videos an earlier run found unusable.
    task: what the worker processes run on each (video id, source, config) instead of
      `encoding.encode_task` (which decodes and computes flow): a function of the same
      contract that computes no flow, e.g. `flow_tools.rawframes.import_task`.
    origin, changed: see `OutputLayout`.
  Returns:
    A `Summary`. Failed videos are listed in it and in the manifest; they do not stop the run.
  Raises:
    ExtractionError: an unusable `output_dir`, a dead worker, a source that did not yield
      every video.
    flow_tools.locks.LockedError: another extraction is writing `output_dir`.
  """
  if num_workers < 1:
    raise ValueError("num_workers must be at least 1")
  if storage.exists(output_dir) and not storage.isdir(output_dir):
    raise ExtractionError(f"the output directory {output_dir} is a file")
  algorithm = None if task else config.algorithm  # the flow the workers compute
  if algorithm:
    flow_lib.create(algorithm)  # Fails here, once, if the algorithm is unavailable.
  start = time.time()
  layout = OutputLayout(index, output_dir, config, origin, changed)
  with locks.hold(output_dir, "an extraction"):
    plan = layout.open_run(retry_failed)
    if plan.finished is not None:
      return dataclasses.replace(layout.finished_summary(plan, start), worker_seconds=0.0,
                                 flow_seconds=0.0)
    bar = _progress(len(layout.entries), progress)
    bar.update(len(layout.entries) - len(plan.to_encode))
    pairs_done, pair_start = 0, time.time()
    worker_seconds = flow_seconds = 0.0
    facts, handled = {}, set()
    if plan.to_encode:
      read_videos = read_videos or file_sources(index)
      tasks = ((v, source, config) for v, source in read_videos(plan.to_encode))
      context = multiprocessing.get_context("spawn")
      # A pool that notices a dead worker (multiprocessing.Pool would wait for it forever).
      with tempfile.TemporaryDirectory(prefix="flow_tools-workers-") as notes_dir, \
          concurrent.futures.ProcessPoolExecutor(
              num_workers, mp_context=context, initializer=encoding.init_worker,
              initargs=(algorithm, layout.save, notes_dir)) as executor:
        try:
          for outcome in _unordered_results(executor, task or encoding.encode_task, tasks,
                                            2 * num_workers):
            worker_seconds += outcome.seconds
            if outcome.facts is not None:
              facts[outcome.key] = outcome.facts
              pairs_done += outcome.flow_pairs
              flow_seconds += outcome.flow_seconds
            handled.add(outcome.key)
            bar.update(1)
            rate = pairs_done / max(time.time() - pair_start, 1e-9)
            bar.set_postfix(pairs_per_s=f"{rate:.1f}", refresh=False)
        except concurrent.futures.BrokenExecutor as error:
          raise _dead_worker_error(notes_dir, handled) from error
        except KeyboardInterrupt:
          executor.shutdown(cancel_futures=True)  # the videos under way finish, no others
          raise
    bar.close()
    unread = [v for v in plan.to_encode if v not in handled]
    if unread:
      raise ExtractionError(f"the video source did not yield {len(unread)} videos of the "
                            f"index, e.g. {unread[0]!r}; rerun to resume")
    return dataclasses.replace(layout.finish(start, plan, facts), worker_seconds=worker_seconds,
                               flow_seconds=flow_seconds)


def _runner(runner, output_dir, num_workers, progress, beam_pipeline_options, retry_failed):
  """(index, read_videos, config) -> Summary of `runner`; a missing apache-beam or a wrong
  Beam option fails here, before any data is read."""
  if runner == "local":
    return lambda index, read_videos, config: extract(index, output_dir, config, num_workers,
                                                       progress, read_videos, retry_failed)
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
      index, output_dir, config, beam_pipeline_options, retry_failed)


def open_dataset(dataset, data_dir, splits_dir=None, tfds_name=None, tfds_download=True,
                 output_dir=None):
  """(`DatasetIndex`, its `read_videos` source): None for video files, TFDS's for
  `datasets.TFDS`; an `output_dir` inside `data_dir` is not read as a class folder."""
  if dataset != datasets.TFDS:
    return datasets.load_dataset(dataset, data_dir, splits_dir, output_dir=output_dir), None
  from flow_tools import tfds_videos  # pylint: disable=import-outside-toplevel
  source = tfds_videos.TfdsVideos(tfds_name, data_dir, tfds_download)
  return source.index(), source.read


def extract_dataset(dataset, data_dir, output_dir, config, *, splits_dir=None, tfds_name=None,
                    tfds_download=True, runner="local", num_workers=2, progress=True,
                    beam_pipeline_options="", retry_failed=False):
  """The extract app's job: a dataset as distributed (or from TFDS) into `output_dir`.

  The flow algorithm and the runner are checked before any data is read.
  Returns:
    (its `DatasetIndex`, the run's `Summary`).
  """
  flow_lib.create(config.algorithm)
  run = _runner(runner, output_dir, num_workers, progress, beam_pipeline_options, retry_failed)
  index, read_videos = open_dataset(dataset, data_dir, splits_dir, tfds_name, tfds_download,
                                    output_dir)
  return index, run(index, read_videos, config)
