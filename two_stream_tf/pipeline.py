"""The main job on the embedded data, end to end, with the apps and flagfiles a user runs.

  python -m two_stream_tf.pipeline --flagfile=experiments/quickstart.flags

Generates the synthetic UCF-101 and HMDB-51 layouts, extracts their frames and optical
flow into records, then runs, each as its own app with the stream flagfiles:
two_stream_tf.train (spatial, temporal; multi-task over both datasets),
two_stream_tf.evaluate (25 x 10 views, test and train videos), two_stream_tf.fuse
(averaging, SVM), two_stream_tf.export (SVM fusion in the graph) and
two_stream_tf.predict (one test video per dataset). Prints a results table.
Every stage's output goes to a log in <work_dir>/logs; a rerun resumes training from the
checkpoints and redoes the rest.
"""

import dataclasses
import json
import os
import subprocess
import sys
import time

from absl import app
from absl import flags

from flow_tools import datasets
from flow_tools import encode
from flow_tools import flow
from flow_tools import records
from flow_tools import synthetic

flags.DEFINE_string("work_dir", "runs/quickstart", "Where data, records, models and results go.")
flags.DEFINE_integer("seed", 0, "Seed of the synthetic data and of training.")
flags.DEFINE_integer("width", 96, "Synthetic frame width.")
flags.DEFINE_integer("height", 72, "Synthetic frame height.")
flags.DEFINE_integer("min_frames", 16, "Fewest frames of a synthetic clip.")
flags.DEFINE_integer("max_frames", 24, "Most frames of a synthetic clip.")
flags.DEFINE_integer("ucf_clips_per_group", 2, "Synthetic UCF-101 clips per group (6 groups).")
flags.DEFINE_integer("hmdb_videos_per_class", 10, "Synthetic HMDB-51 videos per class.")
flags.DEFINE_enum("algorithm", "dis", sorted(flow.ALGORITHMS), "Optical flow algorithm.")
flags.DEFINE_integer("short_side", 0, "Rescale frames to this smaller side (0: keep).")
flags.DEFINE_integer("num_workers", 2, "Extraction processes.", lower_bound=1)
flags.DEFINE_string("spatial_flagfile", "experiments/quickstart_spatial.flags",
                    "two_stream_tf.train flagfile of the spatial stream.")
flags.DEFINE_string("temporal_flagfile", "experiments/quickstart_temporal.flags",
                    "two_stream_tf.train flagfile of the temporal stream.")
flags.DEFINE_integer("train_steps", None, "Overrides the flagfiles' --train_steps (a quick run).",
                     lower_bound=1)
flags.DEFINE_integer("num_positions", 25, "Frames or stacks per test video (x 10 crops).",
                     lower_bound=1)

FLAGS = flags.FLAGS

STREAMS = ("spatial", "temporal")
# Where each synthetic layout puts its videos, relative to its dataset folder.
_VIDEO_DIRS = {"ucf101": "", "hmdb51": "hmdb51_org"}


class StageError(RuntimeError):
  """An app of the job failed; the message names it and its log."""


@dataclasses.dataclass(frozen=True)
class Layout:
  """Where the job puts everything under its work_dir."""
  root: str

  def path(self, *parts):
    return os.path.join(self.root, *parts)

  def records_dir(self, dataset):
    return self.path("records", dataset)

  def model_dir(self, stream):
    return self.path(stream)

  def scores(self, stream, subset, split):
    return self.path(stream, f"scores_{subset}_split{split}.npz")


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
      tail = [line.rstrip() for line in log if line.strip()][-1:]
    raise StageError(f"{module} exited with {code} (log: {log_path}): {' '.join(tail)}")


def _stage(name, work):
  start = time.time()
  result = work()
  print(f"[{name}] {time.time() - start:.0f} s", flush=True)
  return result


def _directory_megabytes(path):
  return sum(os.path.getsize(os.path.join(folder, name))
             for folder, _, names in os.walk(path) for name in names) / 1e6


def make_records(layout):
  """Synthetic datasets and their records; returns {dataset: DatasetIndex}."""
  from flow_tools import extraction  # pylint: disable=import-outside-toplevel
  data_dir = layout.path("data")
  settings = {"seed": FLAGS.seed, "width": FLAGS.width, "height": FLAGS.height,
              "frames_range": [FLAGS.min_frames, FLAGS.max_frames], "ucf_groups": 6,
              "ucf_clips_per_group": FLAGS.ucf_clips_per_group,
              "hmdb_videos_per_class": FLAGS.hmdb_videos_per_class, "motions":
              sorted(synthetic.UCF_MOTIONS) + sorted(synthetic.HMDB_MOTIONS)}
  settings_path = os.path.join(data_dir, "synthetic.json")
  if os.path.isfile(settings_path):
    with open(settings_path, encoding="utf-8") as f:
      made_with = json.load(f)
    if made_with != settings:
      differing = sorted(k for k in settings if made_with.get(k) != settings[k])
      raise StageError(f"{FLAGS.work_dir} holds data made with other settings "
                       f"({', '.join(differing)}): use another --work_dir or remove it")
  elif os.path.isdir(layout.path("records")):
    raise StageError(f"{FLAGS.work_dir} holds records of unknown data (made by an older "
                     "version?): use another --work_dir or remove it")
  for name in _VIDEO_DIRS:
    manifest = os.path.join(layout.records_dir(name), records.MANIFEST)
    found = records.read_json(manifest).get("format") if os.path.isfile(manifest) else None
    if found not in (None, records.FORMAT):
      raise StageError(f"{FLAGS.work_dir} holds records of another format ({found}): use "
                       "another --work_dir or remove it")
  synthetic.generate(data_dir, FLAGS.seed, FLAGS.width, FLAGS.height,
                     (FLAGS.min_frames, FLAGS.max_frames), 6, FLAGS.ucf_clips_per_group,
                     FLAGS.hmdb_videos_per_class)
  records.write_json(settings_path, settings)
  config = encode.ExtractionConfig(algorithm=FLAGS.algorithm, short_side=FLAGS.short_side)
  indexes, rows = {}, []
  for name, video_dir in _VIDEO_DIRS.items():
    index = datasets.load_dataset(name, os.path.join(data_dir, name, video_dir))
    out = layout.records_dir(name)
    summary = extraction.extract(index, out, config, FLAGS.num_workers, progress=False)
    if summary.failures:
      raise StageError(f"{len(summary.failures)} {name} videos failed extraction: see "
                       f"{os.path.join(out, 'manifest.json')}")
    indexes[name] = index
    rows.append(f"{name}: {len(index.class_names)} classes, {summary.num_videos} videos, "
                f"{summary.flow_pairs} flow pairs, {_directory_megabytes(out):.1f} MB in {out}")
  print("\n".join(rows))
  return indexes


def train_and_score(layout, stream, split):
  """Trains one stream with its flagfile, then scores its test and train videos."""
  flagfile = getattr(FLAGS, f"{stream}_flagfile")
  model_dir = layout.model_dir(stream)
  args = [f"--flagfile={flagfile}", f"--model_dir={model_dir}", f"--seed={FLAGS.seed}",
          f"--split={split}",
          "--records_dirs=" + ",".join(layout.records_dir(d) for d in _VIDEO_DIRS)]
  if FLAGS.train_steps:
    args.append(f"--train_steps={FLAGS.train_steps}")
  _stage(f"train {stream}", lambda: run_app("two_stream_tf.train", args,
                                             layout.path("logs", f"train_{stream}.log")))
  for subset in ("test", "train"):
    _stage(f"evaluate {stream} {subset}", lambda subset=subset: run_app(
        "two_stream_tf.evaluate",
        [f"--model_dir={model_dir}", f"--subset={subset}", f"--num_positions={FLAGS.num_positions}"],
        layout.path("logs", f"evaluate_{stream}_{subset}.log")))


def fuse_export_predict(layout, split, videos):
  """Fusion report, the two-stream export and its predictions for `videos`."""
  scores = {f"--{stream}{suffix}_scores": layout.scores(stream, subset, split)
            for stream in STREAMS for suffix, subset in (("", "test"), ("_train", "train"))}
  fusion_dir = layout.path("fusion")
  _stage("fuse", lambda: run_app(
      "two_stream_tf.fuse", [f"{k}={v}" for k, v in scores.items()] +
      [f"--output_dir={fusion_dir}"], layout.path("logs", "fuse.log")))
  export_dir = layout.path("export")
  _stage("export", lambda: run_app(
      "two_stream_tf.export", [f"--spatial_model_dir={layout.model_dir('spatial')}",
                               f"--temporal_model_dir={layout.model_dir('temporal')}",
                               f"--export_dir={export_dir}", "--fusion=svm",
                               f"--svm_dir={fusion_dir}"], layout.path("logs", "export.log")))
  predictions_path = layout.path("predictions.json")

  def predict():
    run_app("two_stream_tf.predict", [f"--export_dir={export_dir}", "--json",
                                      f"--num_workers={FLAGS.num_workers}", *videos],
            layout.path("logs", "predict.log"), predictions_path)
    with open(predictions_path, encoding="utf-8") as f:
      return json.load(f)

  answers = _stage("predict", predict)
  with open(os.path.join(fusion_dir, "fusion_report.json"), encoding="utf-8") as f:
    return json.load(f)["heads"], answers, export_dir


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


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  layout = Layout(FLAGS.work_dir)
  split = 1
  start = time.time()
  try:
    indexes = _stage("data + flow", lambda: make_records(layout))
    for stream in STREAMS:
      train_and_score(layout, stream, split)
    # The last test video of each dataset: its class is the prediction's ground truth.
    samples = [(name, index.select(split, "test")[-1]) for name, index in indexes.items()]
    report, answers, export_dir = fuse_export_predict(layout, split,
                                                      [entry.path for _, entry in samples])
  except (StageError, datasets.DatasetError) as e:
    sys.exit(f"error: {e}")
  print("\n" + results_table(report, list(zip(samples, answers))))
  print(f"\ndone in {time.time() - start:.0f} s. Outputs under {FLAGS.work_dir}: records/, "
        f"spatial/ and temporal/ (checkpoints, scores), fusion/, {os.path.basename(export_dir)}/ "
        f"(SavedModels), logs/, predictions.json. TensorBoard: "
        f"tensorboard --logdir {FLAGS.work_dir}")


if __name__ == "__main__":
  app.run(main)
