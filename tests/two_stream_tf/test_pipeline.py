"""The README's main job, reduced in size: every stage runs and leaves its outputs."""

import os
import subprocess
import sys

from flow_tools import records

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_quickstart_flagfile_runs_end_to_end(tmp_path):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  result = subprocess.run(
      [sys.executable, "-m", "two_stream_tf.pipeline", "--flagfile=experiments/quickstart.flags",
       f"--work_dir={tmp_path}", "--width=48", "--height=32", "--min_frames=4", "--max_frames=5",
       "--ucf_clips_per_group=1", "--hmdb_videos_per_class=10"],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  for dataset, videos in (("ucf101", 72), ("hmdb51", 120)):
    manifest = records.read_manifest(os.path.join(tmp_path, "records", dataset))
    assert manifest["num_videos"] == videos and not manifest["failures"]
    assert f"| {dataset} | 12 | {videos} | {videos} | 0 |" in result.stdout
