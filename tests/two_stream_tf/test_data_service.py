"""Training input on tf.data service: a dispatcher and workers on localhost, in the test."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from two_stream_tf import data

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
service = tf.data.experimental.service


@pytest.fixture
def dispatcher(tmp_path):
  """A dispatcher (journal in tmp_path/dispatcher) with two workers."""
  server = service.DispatchServer(service.DispatcherConfig(
      port=0, work_dir=str(tmp_path / "dispatcher"), fault_tolerant_mode=True))
  address = server.target.split("://")[1]
  workers = [service.WorkerServer(service.WorkerConfig(dispatcher_address=address))
             for _ in range(2)]
  yield server
  for worker in workers:
    worker.stop()
  server.stop()


def _dirs(records_dirs):
  return [records_dirs["ucf101"], records_dirs["hmdb51"]]


@pytest.mark.parametrize("input_cache", ["memory", "disk"])
def test_each_worker_draws_its_own_samples(records_dirs, dispatcher, input_cache):
  """Each worker reads the records itself, into its own memory or through the indexes."""
  config = data.InputConfig(stream="temporal", crop_size=32, stack_length=2)
  dataset = data.service.distribute(
      data.training_dataset(_dirs(records_dirs), 1, config, 4, seed=None,
                            input_cache=input_cache), dispatcher.target)
  batches = [inputs["quantized_flow"].numpy() for inputs, _, _ in dataset.take(8)]
  # Two workers with the same seed would send every batch twice.
  assert not any(np.array_equal(a, b) for i, a in enumerate(batches) for b in batches[i + 1:])
  seeded = [next(iter(data.training_dataset(_dirs(records_dirs), 1, config, 4, seed=3,
                                                deterministic=True)))[0]["quantized_flow"]
            for _ in range(2)]
  np.testing.assert_array_equal(*seeded)


def test_train_app_reads_its_input_from_the_service(records_dirs, dispatcher, tmp_path):
  """With TSN's segments too: the service's workers read the K snippets of each sample."""
  model_dir = tmp_path / "run"
  process = subprocess.run(
      [sys.executable, "-m", "two_stream_tf.train", "--stream=temporal",
       f"--records_dirs={','.join(_dirs(records_dirs))}", f"--model_dir={model_dir}",
       "--crop_size=48", "--stack_length=2", "--batch_size=8", "--train_steps=3",
       "--shuffle_buffer=16", "--num_segments=3", f"--tf_data_service={dispatcher.target}"],
      cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2"),
      capture_output=True, text=True, timeout=300, check=False)
  assert process.returncode == 0, process.stderr[-3000:]
  assert tf.train.latest_checkpoint(os.path.join(str(model_dir), "checkpoints")).endswith("ckpt-3")
  # The dispatcher holds the app's input pipeline, which reads these records.
  registered = tmp_path / "dispatcher" / "datasets"
  graphs = [(registered / name).read_bytes() for name in os.listdir(registered)]
  assert len(graphs) == 1 and records_dirs["hmdb51"].encode() in graphs[0]


@pytest.mark.parametrize("args, message", [
    (["--tf_data_service=localhost:5000"], "must look like grpc://HOST:PORT"),
    (["--tf_data_service=grpc://localhost:5000", "--deterministic_input"],
     "--deterministic_input cannot hold with --tf_data_service")])
def test_service_flag_errors(records_dirs, tmp_path, args, message):
  process = subprocess.run(
      [sys.executable, "-m", "two_stream_tf.train", "--stream=temporal",
       f"--records_dirs={records_dirs['ucf101']}", f"--model_dir={tmp_path}", *args],
      cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2"),
      capture_output=True, text=True, timeout=120, check=False)
  assert process.returncode != 0 and message in process.stderr
  assert not os.listdir(tmp_path)
