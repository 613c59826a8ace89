"""The main job on the embedded data, end to end, with the apps and flagfiles a user runs.

Generates the synthetic UCF-101 and HMDB-51 layouts, extracts their frames and optical flow into
records, then runs, each as its own app with the stream flagfiles: two_stream_tf.train (spatial,
temporal; multi-task over both datasets), two_stream_tf.evaluate (25 x 10 views, test and train
videos), two_stream_tf.fuse (averaging, SVM), two_stream_tf.export (SVM fusion in the graph) and
two_stream_tf.predict (one test video per dataset), and flow_tools.visualize writes a contact sheet
of one test video's frames and flow (flow_sheet.png). Every stage's output goes to a log in
<work_dir>/logs; a rerun resumes training from the checkpoints and redoes the rest. The app is
two_stream_tf.run_pipeline.
"""

import dataclasses
import json
import os
import re
import subprocess
import sys
import time

from flow_tools import datasets
from flow_tools import records
from flow_tools.common import storage
from flow_tools.datasets import synthetic
from flow_tools.extraction import encoding
from two_stream_tf import fusion
from two_stream_tf import streams
from two_stream_tf.evaluation import score_files

FLOW_SHEET = "flow_sheet.png"  # a test video's frames and flow (flow_tools.visualize)
# Where each synthetic layout puts its videos, relative to its dataset folder.
_VIDEO_DIRS = {"ucf101": "", "hmdb51": "hmdb51_org"}


@dataclasses.dataclass(frozen=True)
class JobSettings:
  """The job's settings (the quickstart's defaults).

  Attributes:
    seed: seeds the synthetic data and training.
    width, height, min_frames, max_frames, ucf_clips_per_group, hmdb_videos_per_class:
      the synthetic datasets (6 UCF-101 groups).
    algorithm, short_side, num_workers: flow extraction.
    spatial_flagfile, temporal_flagfile: the two_stream_tf.train flagfile of each stream.
    train_steps: overrides the flagfiles' --train_steps (None: theirs).
    num_positions: frames or stacks per test video (x 10 crops).
  """
  seed: int = 0
  width: int = 96
  height: int = 72
  min_frames: int = 16
  max_frames: int = 24
  ucf_clips_per_group: int = 2
  hmdb_videos_per_class: int = 10
  algorithm: str = "dis"
  short_side: int = 0
  num_workers: int = 2
  spatial_flagfile: str = "experiments/quickstart_spatial.flags"
  temporal_flagfile: str = "experiments/quickstart_temporal.flags"
  train_steps: int = None
  num_positions: int = streams.NUM_POSITIONS


class StageError(RuntimeError):
  """An app of the job failed; the message names it and its log."""


@dataclasses.dataclass(frozen=True)
class WorkDir:
  """Where the job puts everything under its work_dir."""
  root: str

  def path(self, *parts):
    return os.path.join(self.root, *parts)

  def records_dir(self, dataset):
    return self.path("records", dataset)

  def model_dir(self, stream):
    return self.path(stream)

  def scores(self, stream, subset, split):
    return score_files.path(self.model_dir(stream), subset, split)


def run_app(module, args, log_path, output_path=None):
  """Runs `python -m module args`, its output into log_path; StageError if it fails.

  With output_path, its standard output goes there instead (stderr still to the log).
  """
  os.makedirs(os.path.dirname(log_path), exist_ok=True)
  command = [sys.executable, "-m", module, *args]
  with open(log_path, "w", encoding="utf-8") as log:
    log.write(" ".join(command) + "\n")
    log.flush()
    if output_path:
      with open(output_path, "w", encoding="utf-8") as output:
        code = subprocess.run(command, stdout=output, stderr=log, check=False).returncode
    else:
      code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT,
                            check=False).returncode
  if code:
    with open(log_path, encoding="utf-8") as log:
      raise StageError(f"{module} exited with {code} (log: {log_path}): {_cause(log)}")


def _cause(log_lines):
  """The line of a failed app's log that says why: its last error line (absl ends a flag
  error with a hint to --helpshort, which says nothing of the cause)."""
  lines = [line.rstrip() for line in log_lines if line.strip()]
  errors = [line for line in lines if re.match(r"(error:|FATAL|\w+(Error|Exception)\b)", line)]
  return (errors or lines or [""])[-1]


def _stage(name, step):
  start = time.time()
  result = step()
  print(f"[{name}] {time.time() - start:.0f} s", flush=True)
  return result


def _directory_megabytes(path):
  return sum(os.path.getsize(os.path.join(folder, name))
             for folder, _, names in os.walk(path) for name in names) / 1e6


def make_records(work, settings):
  """Synthetic datasets and their records; returns {dataset: DatasetIndex}."""
  from flow_tools.extraction import local_runner  # pylint: disable=import-outside-toplevel
  data_dir = work.path("data")
  generated = {"seed": settings.seed, "width": settings.width, "height": settings.height,
               "frames_range": [settings.min_frames, settings.max_frames], "ucf_groups": 6,
               "ucf_clips_per_group": settings.ucf_clips_per_group,
               "hmdb_videos_per_class": settings.hmdb_videos_per_class, "motions":
               sorted(synthetic.UCF_MOTIONS) + sorted(synthetic.HMDB_MOTIONS)}
  settings_path = os.path.join(data_dir, "synthetic.json")
  if os.path.isfile(settings_path):
    with open(settings_path, encoding="utf-8") as f:
      made_with = json.load(f)
    if made_with != generated:
      differing = sorted(k for k in generated if made_with.get(k) != generated[k])
      raise StageError(f"{work.root} holds data made with other settings "
                       f"({', '.join(differing)}): use another --work_dir or remove it")
  elif os.path.isdir(work.path("records")):
    raise StageError(f"{work.root} holds records of unknown data (made by an older "
                     "version?): use another --work_dir or remove it")
  for name in _VIDEO_DIRS:
    manifest = os.path.join(work.records_dir(name), records.MANIFEST)
    found = storage.read_json(manifest).get("format") if os.path.isfile(manifest) else None
    if found not in (None, records.FORMAT):
      raise StageError(f"{work.root} holds records of another format ({found}): use "
                       "another --work_dir or remove it")
  synthetic.generate(data_dir, seed=settings.seed, width=settings.width, height=settings.height,
                     frames_range=(settings.min_frames, settings.max_frames), ucf_groups=6,
                     ucf_clips_per_group=settings.ucf_clips_per_group,
                     hmdb_videos_per_class=settings.hmdb_videos_per_class)
  storage.write_json(settings_path, generated)
  config = encoding.ExtractionConfig(algorithm=settings.algorithm,
                                     short_side=settings.short_side)
  indexes, rows = {}, []
  for name, video_dir in _VIDEO_DIRS.items():
    index = datasets.load_dataset(name, os.path.join(data_dir, name, video_dir))
    out = work.records_dir(name)
    summary = local_runner.extract(index, out, config, settings.num_workers, progress=False)
    if summary.failures:
      raise StageError(f"{len(summary.failures)} {name} videos failed extraction: see "
                       f"{os.path.join(out, 'manifest.json')}")
    indexes[name] = index
    rows.append(f"{name}: {len(index.class_names)} classes, {summary.num_videos} videos, "
                f"{summary.flow_pairs} flow pairs, {_directory_megabytes(out):.1f} MB in {out}")
  print("\n".join(rows))
  return indexes


def train_and_score(work, settings, stream, split):
  """Trains one stream with its flagfile, then scores its test and train videos."""
  flagfile = getattr(settings, f"{stream}_flagfile")
  model_dir = work.model_dir(stream)
  args = [f"--flagfile={flagfile}", f"--model_dir={model_dir}", f"--seed={settings.seed}",
          f"--split={split}",
          "--records_dirs=" + ",".join(work.records_dir(d) for d in _VIDEO_DIRS)]
  if settings.train_steps:
    args.append(f"--train_steps={settings.train_steps}")
  _stage(f"train {stream}", lambda: run_app("two_stream_tf.train", args,
                                             work.path("logs", f"train_{stream}.log")))
  for subset in ("test", "train"):
    _stage(f"evaluate {stream} {subset}", lambda subset=subset: run_app(
        "two_stream_tf.evaluate",
        [f"--model_dir={model_dir}", f"--subset={subset}",
         f"--num_positions={settings.num_positions}"],
        work.path("logs", f"evaluate_{stream}_{subset}.log")))


def fuse_export_predict(work, settings, split, videos):
  """Fusion report, the two-stream export and its predictions for `videos`."""
  scores = {f"--{stream}{suffix}_scores": work.scores(stream, subset, split)
            for stream in streams.STREAMS for suffix, subset in (("", "test"), ("_train", "train"))}
  fusion_dir = work.path("fusion")
  _stage("fuse", lambda: run_app(
      "two_stream_tf.fuse", [f"{k}={v}" for k, v in scores.items()] +
      [f"--output_dir={fusion_dir}"], work.path("logs", "fuse.log")))
  export_dir = work.path("export")
  _stage("export", lambda: run_app(
      "two_stream_tf.export", [f"--spatial_model_dir={work.model_dir('spatial')}",
                               f"--temporal_model_dir={work.model_dir('temporal')}",
                               f"--export_dir={export_dir}", "--fusion=svm",
                               f"--svm_dir={fusion_dir}"], work.path("logs", "export.log")))
  predictions_path = work.path("predictions.json")

  def predict():
    run_app("two_stream_tf.predict", [f"--export_dir={export_dir}", "--json",
                                      f"--num_workers={settings.num_workers}", *videos],
            work.path("logs", "predict.log"), predictions_path)
    with open(predictions_path, encoding="utf-8") as f:
      return json.load(f)

  answers = _stage("predict", predict)
  return fusion.read_report(fusion_dir)["heads"], answers, export_dir


def results_table(report, predicted):
  """Markdown: accuracy of each method per dataset, and the prediction of one video each."""
  methods = ("spatial", "temporal", "averaging", "svm")
  lines = ["| dataset | test videos | " + " | ".join(methods) + " | fusion beats both streams |",
           "|---" * (len(methods) + 3) + "|"]
  for head in sorted(report, key=list(_VIDEO_DIRS).index):
    rows = report[head]
    best_stream = max(rows["spatial"]["accuracy"], rows["temporal"]["accuracy"])
    fused = min(rows["averaging"]["accuracy"], rows["svm"]["accuracy"])
    lines.append(f"| {head} | {rows['videos']} | " +
                 " | ".join(f"{100 * rows[m]['accuracy']:.1f}%" for m in methods) +
                 f" | {'yes' if fused > best_stream else 'NO'} |")
  lines += ["", "| video | true class | predicted (two-stream export) | probability |",
            "|---|---|---|---|"]
  for (dataset, entry), answer in predicted:
    name, probability = (answer["heads"][dataset][0]["class"],
                         answer["heads"][dataset][0]["probability"]) if not answer["error"] else (
                             answer["error"], 0.0)
    lines.append(f"| {entry.video_id} | {entry.class_name} | {name} | {probability:.3f} |")
  return "\n".join(lines)


def run(work_dir, settings):
  """The whole job in `work_dir`; returns the results table (markdown).

  Raises:
    StageError: an app failed (named, with its log), or `work_dir` holds other data.
  """
  work = WorkDir(work_dir)
  split = 1
  indexes = _stage("data + flow", lambda: make_records(work, settings))
  for stream in streams.STREAMS:
    train_and_score(work, settings, stream, split)
  # The last test video of each dataset: its class is the prediction's ground truth.
  samples = [(name, index.select(split, "test")[-1]) for name, index in indexes.items()]
  dataset, entry = samples[0]
  _stage("flow sheet", lambda: run_app(
      "flow_tools.visualize", [f"--records_dir={work.records_dir(dataset)}",
                               f"--video_id={entry.video_id}",
                               f"--output={work.path(FLOW_SHEET)}"],
      work.path("logs", "visualize.log")))
  report, answers, _ = fuse_export_predict(work, settings, split,
                                           [entry.path for _, entry in samples])
  return results_table(report, list(zip(samples, answers)))
