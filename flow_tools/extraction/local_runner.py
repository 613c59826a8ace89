"""Extraction by local worker processes.

Worker processes (spawned, OpenCV and numpy only: no TensorFlow) encode videos and write
each finished video's files (`output_directory.OutputDirectory.save`); the main process
gathers their facts for the manifest. A lock file keeps a second run out meanwhile
(`flow_tools.common.locks`).
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

from flow_tools.common import locks
from flow_tools.common import storage
from flow_tools.extraction import encoding
from flow_tools.extraction import flow as flow_lib
from flow_tools.extraction.output_directory import ExtractionError
from flow_tools.extraction.output_directory import OutputDirectory


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
  the videos whose source changed since (`OutputDirectory.open_run`).

  Args:
    index: a `flow_tools.datasets.DatasetIndex`.
    output_dir: where `videos/`, `manifest.json` and (while running) `.incomplete/` go.
    config: a `flow_tools.extraction.encoding.ExtractionConfig`.
    num_workers: encoding processes.
    progress: show a progress bar with videos/s and frame pairs/s.
    read_videos: function from a list of video ids to (video id, source) pairs, a
      source being what `flow_tools.extraction.video.iter_frames` takes; default: the
      entries' file paths.
    retry_failed: encode again the videos an earlier run found unusable.
    task: what the worker processes run on each (video id, source, config) instead of
      `encoding.encode_task` (which decodes and computes flow): a function of the same
      contract that computes no flow, e.g. `flow_tools.rawframes.layouts.import_task`.
    origin, changed: see `OutputDirectory`.
  Returns:
    A `Summary`. Failed videos are listed in it and in the manifest; they do not stop the run.
  Raises:
    ExtractionError: an unusable `output_dir`, a dead worker, a source that did not yield
      every video.
    flow_tools.common.locks.LockedError: another extraction is writing `output_dir`.
  """
  if num_workers < 1:
    raise ValueError("num_workers must be at least 1")
  if storage.exists(output_dir) and not storage.isdir(output_dir):
    raise ExtractionError(f"the output directory {output_dir} is a file")
  algorithm = None if task else config.algorithm  # the flow the workers compute
  if algorithm:
    flow_lib.create(algorithm)  # Fails here, once, if the algorithm is unavailable.
  start = time.time()
  layout = OutputDirectory(index, output_dir, config, origin, changed)
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
