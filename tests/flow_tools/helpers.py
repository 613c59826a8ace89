"""Test helpers: folder datasets with broken clips, a remote filesystem, and running or
killing the extract app."""

import os
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import time
import uuid

import numpy as np

from flow_tools.datasets import synthetic

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BROKEN = ("things/truncated", "things/garbage", "things/empty", "things/one_frame")


def copy_to_remote(local_dir):
  """Copies a directory tree to TensorFlow's in-memory filesystem (how gs:// is reached,
  but in this process only); returns its new path, ending with the same name."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  remote_dir = f"ram://test-{uuid.uuid4().hex}/{os.path.basename(local_dir)}"
  for folder, _, names in os.walk(local_dir):
    relative = os.path.relpath(folder, local_dir)
    target = remote_dir if relative == "." else f"{remote_dir}/{relative}"
    tf.io.gfile.makedirs(target)
    for name in names:
      tf.io.gfile.copy(os.path.join(folder, name), f"{target}/{name}")
  return remote_dir


def write_folder_dataset(root, clips, with_broken=False):
  """A folder-layout dataset under `root`: (data_dir, splits_dir).

  Args:
    clips: (video id 'Class/name', source video file, 'train' or 'test') triples.
    with_broken: also the clips of `BROKEN` (train): the first clip cut to two
      thirds, random bytes, an empty file and a one-frame video.
  """
  videos = os.path.join(root, "videos")
  lines = []
  for video_id, source, subset in clips:
    os.makedirs(os.path.dirname(os.path.join(videos, video_id)), exist_ok=True)
    shutil.copy(source, os.path.join(videos, f"{video_id}.avi"))
    lines.append(f"{video_id}.avi {subset}\n")
  if with_broken:
    os.makedirs(os.path.join(videos, "things"), exist_ok=True)
    with open(clips[0][1], "rb") as f:
      data = f.read()
    with open(os.path.join(videos, "things", "truncated.avi"), "wb") as f:
      f.write(data[:len(data) * 2 // 3])
    with open(os.path.join(videos, "things", "garbage.avi"), "wb") as f:
      f.write(np.random.default_rng(0).bytes(4000))
    open(os.path.join(videos, "things", "empty.avi"), "wb").close()
    scene = synthetic.Scene(synthetic.UCF_APPEARANCES[0], synthetic.Motion((1, 0)), 1, 64, 48, 0)
    synthetic.write_video(os.path.join(videos, "things", "one_frame.avi"), synthetic.render(scene))
    lines += [f"{video_id}.avi train\n" for video_id in BROKEN]
  os.makedirs(os.path.join(root, "lists"))
  with open(os.path.join(root, "lists", "split1.txt"), "w", encoding="utf-8") as f:
    f.write("".join(lines))
  return videos, os.path.join(root, "lists")


def run_extract(args, script=None, max_file_bytes=None, module="flow_tools.extract"):
  """Runs `python -m MODULE ARGS` (or `python SCRIPT ARGS`) to completion; with
  `max_file_bytes`, a write past that size fails as on a full disk (RLIMIT_FSIZE: it holds for
  root too, whom a read-only mode does not stop)."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  command = [script] if script else ["-m", module]

  def limit_file_size():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write (EFBIG), do not kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))
  return subprocess.run([sys.executable, *command, *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=300,
                        preexec_fn=limit_file_size if max_file_bytes else None)


def tree_files(root):
  """Paths of every file under `root`, relative to it, sorted (any filesystem TF reads)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  found = []
  for folder, _, names in tf.io.gfile.walk(root):
    relative = folder[len(root):].lstrip("/")
    found += [f"{relative}/{name}" if relative else name for name in names]
  return sorted(found)


def assert_same_files(expected_dir, actual_dir, rename=None, same_source_times=True):
  """Both directory trees hold the same files with the same bytes; `rename` (old, new)
  is applied to the expected bytes of `manifest.json` (paths of videos that moved), and
  without `same_source_times` the videos' modification times there are not compared
  (copies of the videos on another filesystem have other times)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  names = tree_files(expected_dir)
  assert names == tree_files(actual_dir)
  for name in names:
    with tf.io.gfile.GFile(f"{expected_dir}/{name}", "rb") as f:
      expected = f.read()
    with tf.io.gfile.GFile(f"{actual_dir}/{name}", "rb") as f:
      actual = f.read()
    if name == "manifest.json":
      if rename:
        expected = expected.replace(*rename)
      if not same_source_times:
        expected, actual = (_without_times(m) for m in (expected, actual))
    if name.endswith(".index") and not same_source_times:
      expected, actual = (_index_without_times(m) for m in (expected, actual))
    assert actual == expected, name


def _without_times(text):
  return re.sub(rb'"mtime_ns": \d+', b'"mtime_ns": 0', text)


def _index_without_times(data):
  """An index (8-byte magic, uint32 LE JSON length, JSON, offsets) with its source's
  modification time zeroed and the JSON length rewritten to match."""
  (length,) = struct.unpack_from("<I", data, 8)
  meta = _without_times(data[12:12 + length])
  return data[:8] + struct.pack("<I", len(meta)) + meta + data[12 + length:]


def kill_extract_midway(args, output_dir, sig=signal.SIGKILL):
  """Starts the extract app and sends `sig` to its process group (as a terminal's Ctrl-C
  reaches every process of the job) once two videos are written and more are under way.

  Returns:
    (exit status, standard error).
  """
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  process = subprocess.Popen([sys.executable, "-m", "flow_tools.extract", *args,
                              f"--output_dir={output_dir}"], cwd=REPO, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
  deadline = time.time() + 120
  while time.time() < deadline and process.poll() is None:
    folder = os.path.join(output_dir, "videos", "00000")
    names = os.listdir(folder) if os.path.isdir(folder) else []
    if sum(n.endswith(".index") for n in names) >= 2:
      time.sleep(0.7)
      break
    time.sleep(0.02)
  os.killpg(process.pid, sig)
  _, err = process.communicate(timeout=120)
  return process.returncode, err


def worker_pids(pid):
  """The spawned worker processes of process `pid` (not its resource tracker), from /proc."""
  found = []
  for name in os.listdir("/proc"):
    try:
      with open(f"/proc/{name}/stat", encoding="utf-8") as f:
        parent = int(f.read().rsplit(")", 1)[1].split()[1])
      with open(f"/proc/{name}/cmdline", "rb") as f:
        command = f.read()
    except (OSError, ValueError, IndexError):
      continue
    if parent == pid and b"spawn_main" in command:
      found.append(int(name))
  return found


def killable_extraction_args(root, entries):
  """Extract-app flags for 16 of `entries` as a folder dataset under `root`, with TV-L1
  (~17 pairs/s on 2 cores) and one worker: slow enough that a kill lands mid-run."""
  clips = [(e.video_id, e.path, "train" if e.splits[0] == 1 else "test") for e in entries[:16]]
  data_dir, splits_dir = write_folder_dataset(root, clips)
  return ["--dataset=folder", f"--data_dir={data_dir}", f"--splits_dir={splits_dir}",
          "--algorithm=tvl1", "--short_side=0", "--num_workers=1", "--noprogress"]
