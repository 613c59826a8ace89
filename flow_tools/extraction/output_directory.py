"""An extraction's output directory, whichever runner fills it: what is finished, what a
run must do, each video's files as its worker writes them, and the manifest at the end.

Each finished video's files (one per modality, then its index holding its source's
fingerprint) are written to `<output_dir>/.incomplete/` and then renamed into place, so a
video whose index exists is finished, and nothing partial is ever where readers look. A
run killed at any point, even by SIGKILL, is finished by running it again: finished videos
are kept, and the result is byte-identical to an uninterrupted run. Every run, finished or
not, redoes the videos whose file changed since it was encoded (a re-download, a repaired
clip: size, time and content hash, `flow_tools.extraction.output_directory.sources`).
"""

import concurrent.futures
import dataclasses
import os
import time

from flow_tools import records
from flow_tools.common import storage
from flow_tools.extraction import sources

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


class OutputDirectory:
  """Files and bookkeeping of one output directory, whichever runner fills it.

  Videos are numbered by their position among the sorted ids (`records.video_file`).
  A video is finished when its index exists (written, whole by rename, after its files);
  the index holds its source's fingerprint (`flow_tools.extraction.sources`), so that every run can
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
    return os.path.join(self.output_dir, records.index_file(self.number[video_id]))

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
      list(pool.map(lambda v: records.write_missing_index(self.paths(v), self.index_path(v),
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
    sizes = records.write_video_files(self.paths(video_id), self.index_path(video_id), files,
                                      fingerprint,
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
