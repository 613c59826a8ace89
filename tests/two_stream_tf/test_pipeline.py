"""The README's main job, reduced in size (few steps, one position): every stage runs,
leaves its outputs, and the exported two-stream model predicts."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from flow_tools import records
from two_stream_tf import pipeline
from two_stream_tf.evaluation import score_files

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEADS = ["ucf101", "hmdb51"]


@pytest.mark.slow
def test_quickstart_flagfile_runs_every_stage(tmp_path):
  """From another directory than the repository's: the stream flagfiles the quickstart
  flagfile names are found all the same."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
  elsewhere = tmp_path / "elsewhere"
  elsewhere.mkdir()
  result = subprocess.run(
      [sys.executable, "-m", "two_stream_tf.run_pipeline",
       f"--flagfile={REPO}/experiments/quickstart.flags",
       f"--work_dir={tmp_path}", "--width=80", "--height=64", "--min_frames=6", "--max_frames=7",
       "--ucf_clips_per_group=1", "--train_steps=2", "--num_positions=1"],
      cwd=elsewhere, env=env, capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  for dataset, videos in (("ucf101", 72), ("hmdb51", 120)):
    manifest = records.read_manifest(os.path.join(tmp_path, "records", dataset))
    assert manifest["num_videos"] == videos and not manifest["failures"]
  for stream in ("spatial", "temporal"):
    model_dir = os.path.join(tmp_path, stream)
    assert tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")).endswith("ckpt-2")
    assert glob.glob(os.path.join(model_dir, "train", "events.out.tfevents.*"))
    for subset, videos in (("test", {"ucf101": 24, "hmdb51": 36}),
                           ("train", {"ucf101": 48, "hmdb51": 72})):
      scores = score_files.load(os.path.join(model_dir, f"scores_{subset}_split1.npz"))
      assert {h: len(s.video_ids) for h, s in scores.heads.items()} == videos
      assert (scores.source["stream"], scores.source["subset"], scores.source["step"],
              scores.source["split"]) == (stream, subset, 2, 1)
      assert [r["extraction"]["algorithm"] for r in scores.source["records"]] == ["dis"] * 2
  with open(os.path.join(tmp_path, "fusion", "fusion_report.json"), encoding="utf-8") as f:
    report = json.load(f)["heads"]
  assert sorted(report) == sorted(HEADS)
  assert all(set(rows) == {"videos", "spatial", "temporal", "averaging", "svm"}
             for rows in report.values())
  assert all(os.path.isfile(os.path.join(tmp_path, "fusion", f"svm_{h}.npz")) for h in HEADS)
  for name in ("spatial", "temporal", "two_stream"):
    assert os.path.isfile(os.path.join(tmp_path, "export", name, "saved_model.pb"))
  for name in ("fusion_report.png", "per_class_accuracy_ucf101.png"):
    assert os.path.getsize(os.path.join(tmp_path, "fusion", name)) > 1000
  sheet = tf.io.decode_png(open(os.path.join(tmp_path, "flow_sheet.png"), "rb").read())
  assert sheet.shape[0] > 64 and sheet.shape[1] > 5 * 80  # RGB, flow, d_x, d_y, key
  with open(os.path.join(tmp_path, "predictions.json"), encoding="utf-8") as f:
    answers = json.load(f)
  assert len(answers) == 2 and not any(a["error"] for a in answers)
  for answer in answers:
    assert list(answer["heads"]) == HEADS
    for ranked in answer["heads"].values():
      probabilities = [r["probability"] for r in ranked]
      assert len(ranked) == 5 and probabilities == sorted(probabilities, reverse=True)
      assert 0 < sum(probabilities) <= 1 + 1e-5
  assert "| dataset | test videos | spatial | temporal | averaging | svm |" in result.stdout
  assert "| video | true class | predicted (two-stream export) | probability |" in result.stdout


@pytest.mark.slow
def test_a_work_dir_of_other_data_is_refused_untouched(tmp_path):
  (tmp_path / "records").mkdir()
  older = tmp_path / "older"
  (older / "data").mkdir(parents=True)
  (older / "data" / "synthetic.json").write_text('{"width": 160}')
  for work_dir, message in ((tmp_path, "holds records of unknown data"),
                            (older, "holds data made with other settings (")):
    before = sorted(str(p) for p in work_dir.rglob("*"))
    result = subprocess.run(
        [sys.executable, "-m", "two_stream_tf.run_pipeline",
         "--flagfile=experiments/quickstart.flags", f"--work_dir={work_dir}"],
        cwd=REPO, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), capture_output=True,
        text=True, timeout=300)
    assert result.returncode != 0 and message in result.stderr
    assert sorted(str(p) for p in work_dir.rglob("*")) == before


@pytest.mark.slow
def test_ctrl_c_in_the_job_says_what_is_kept(tmp_path):
  process = subprocess.Popen(
      [sys.executable, "-m", "two_stream_tf.run_pipeline",
       "--flagfile=experiments/quickstart.flags", f"--work_dir={tmp_path}", "--width=80",
       "--height=64", "--min_frames=6", "--max_frames=7", "--ucf_clips_per_group=1",
       "--hmdb_videos_per_class=2", "--train_steps=1000"],
      cwd=REPO, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True, start_new_session=True)
  videos = os.path.join(tmp_path, "records", "ucf101", "videos")
  deadline = time.time() + 300
  while not os.path.isdir(videos):  # extracting the first dataset
    assert process.poll() is None, process.communicate()[1][-3000:]
    assert time.time() < deadline, "extraction did not start in time"
    time.sleep(0.05)
  os.killpg(process.pid, signal.SIGINT)  # as Ctrl-C in its terminal
  _, err = process.communicate(timeout=120)
  assert process.returncode == 130 and "Traceback" not in err, err[-3000:]
  assert err.strip().splitlines()[-1] == (
      f"interrupted: what is done is kept in {tmp_path}; run the same command again: the "
      "records and checkpoints are reused, training resumes, the later stages are redone")
  assert not os.path.exists(os.path.join(tmp_path, "records", "ucf101", ".lock"))


def test_a_failed_stage_shows_the_line_that_says_why():
  """absl ends a flag error with a hint to --helpshort; the cause is the line before."""
  log = ["python -m two_stream_tf.train --flagfile=x.flags\n",
         "I0000 cudart_stub.cc:31] Could not find cuda drivers on your machine\n",
         "FATAL Flags parsing error: ERROR:: Unable to open flagfile: [Errno 2] No such file or "
         "directory: 'x.flags'\n",
         "Pass --helpshort or --helpfull to see help on flags.\n"]
  assert pipeline._cause(log).startswith("FATAL Flags parsing error: ERROR:: Unable to open")
  assert pipeline._cause(log[:2] + ["error: --records_dirs: no manifest.json in r\n"]) == (
      "error: --records_dirs: no manifest.json in r")
  assert pipeline._cause(["a\n", "the last line\n"]) == "the last line"
