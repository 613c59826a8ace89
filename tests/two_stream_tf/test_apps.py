"""The train and evaluate apps as users run them: flagfiles, kill -9 and resume, bad flags,
and the distribution strategies (2 logical CPUs, 2 localhost workers)."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tensorflow as tf

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _env(**extra):
  """The apps' environment: this checkout, quiet TF, and no TF_CONFIG unless given."""
  env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
  env.update(PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2", **extra)
  return env


def _app(name, *args, env=None, **kwargs):
  return subprocess.Popen([sys.executable, "-m", f"two_stream_tf.{name}", *args], cwd=REPO,
                          env=env or _env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, **kwargs)


def _run(name, *args, timeout=300, env=None):
  process = _app(name, *args, env=env)
  out, err = process.communicate(timeout=timeout)
  return process.returncode, out, err


def _flagfile(tmp_path, records_dirs, **overrides):
  lines = {"stream": "temporal",
           "records_dirs": f"{records_dirs['ucf101']},{records_dirs['hmdb51']}",
           "crop_size": 48, "stack_length": 2, "batch_size": 8, "train_steps": 1000,
           "log_every": 2, "checkpoint_every": 2, "shuffle_buffer": 16,
           "initialization": "keras"}  # the paper's Caffe start diverges at lr 1e-2 here
  lines.update(overrides)
  path = tmp_path / "run.flags"
  path.write_text("# a comment line\n" + "".join(f"--{k}={v}\n" for k, v in lines.items()))
  return str(path)


def test_kill_9_then_rerun_resumes_and_later_flags_override_the_flagfile(records_dirs, tmp_path):
  """Also: a resume with other model flags is refused; evaluate needs a model_dir."""
  flagfile = _flagfile(tmp_path, records_dirs)
  model_dir = str(tmp_path / "model")
  args = [f"--flagfile={flagfile}", f"--model_dir={model_dir}", "--train_steps=24"]
  process = _app("train", *args)
  deadline = time.time() + 240
  while tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")) is None or \
      int(tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")).rsplit("-", 1)[1]) < 4:
    assert process.poll() is None, process.communicate()[1][-3000:]
    assert time.time() < deadline, "no checkpoint in time"
    time.sleep(0.2)
  process.send_signal(signal.SIGKILL)
  process.wait()
  latest = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
  killed_at = int(latest.rsplit("-", 1)[1])
  assert killed_at < 24

  code, out, err = _run("train", *args)
  assert code == 0, err[-3000:]
  assert f"resumed from {model_dir}/checkpoints/ckpt-{killed_at} at step {killed_at} of 24" in out
  assert "trained to step 24" in out
  # The command line's --train_steps=24 beat the flagfile's 1000, and the effective flags
  # of each run are kept.
  flags_text = open(os.path.join(model_dir, "flags.txt"), encoding="utf-8").read()
  assert "--train_steps=24\n" in flags_text and "--stack_length=2\n" in flags_text
  history = open(os.path.join(model_dir, "flags_history.txt"), encoding="utf-8").read()
  assert history.count("--train_steps=24\n") == 2
  assert os.listdir(os.path.join(model_dir, "train"))

  code, out, err = _run("evaluate", f"--model_dir={model_dir}", "--num_positions=2")
  assert code == 0, err[-3000:]
  scores = np.load(os.path.join(model_dir, "scores_test_split1.npz"))
  report = json.load(open(os.path.join(model_dir, "scores_test_split1.json"), encoding="utf-8"))
  assert report["step"] == 24 and report["views_per_video"] == 20
  for head in ("ucf101", "hmdb51"):
    assert len(scores[f"{head}/video_ids"]) == report["heads"][head]["videos"] > 0
    np.testing.assert_allclose(scores[f"{head}/scores"].sum(axis=1), 1.0, atol=1e-5)
    assert f"| {head} |" in out
  assert os.listdir(os.path.join(model_dir, "eval_test"))

  # Resuming into this model_dir with other model flags is refused, naming the difference.
  code, _, err = _run("train", *args, "--stack_length=4")
  assert code == 1 and "--stack_length=2 there, 4 now" in err.strip().splitlines()[-1]
  code, _, err = _run("evaluate", f"--model_dir={tmp_path / 'nothing'}")
  assert code == 1 and "no run_spec.json" in err


def test_a_second_run_on_a_model_dir_is_refused_and_ctrl_c_says_what_is_kept(records_dirs,
                                                                             tmp_path):
  flagfile = _flagfile(tmp_path, records_dirs)
  model_dir = str(tmp_path / "model")
  args = [f"--flagfile={flagfile}", f"--model_dir={model_dir}"]
  first = _app("train", *args, start_new_session=True)
  checkpoints = os.path.join(model_dir, "checkpoints")
  deadline = time.time() + 240
  while tf.train.latest_checkpoint(checkpoints) is None:
    assert first.poll() is None, first.communicate()[1][-3000:]
    assert time.time() < deadline, "no checkpoint in time"
    time.sleep(0.2)
  code, _, err = _run("train", *args, "--learning_rate=0.1")
  last = err.strip().splitlines()[-1]
  assert code == 1, last
  assert last.startswith(f"error: {model_dir} is in use by process {first.pid} "), last
  assert "--learning_rate=0.1" not in open(os.path.join(model_dir, "flags.txt"),
                                           encoding="utf-8").read()
  os.killpg(first.pid, signal.SIGINT)  # as Ctrl-C in its terminal
  _, err = first.communicate(timeout=120)
  newest = tf.train.latest_checkpoint(checkpoints)
  assert first.returncode == 130 and "Traceback" not in err, err[-3000:]
  assert err.strip().splitlines()[-1] == (
      f"interrupted: the checkpoints in {checkpoints} are kept (newest: {newest}); run the "
      "same command again to resume")
  assert not os.path.exists(os.path.join(model_dir, ".lock"))


_BAD_FLAGS = [
    (["--stacking=bidirectional", "--stack_length=3"], "even stack_length"),
    (["--last_layer_only"], "--last_layer_only needs --weights"),
    (["--weights=imagenet"], "CNN-M-2048 has no Keras download"),
    (["--weights=/nonexistent.npz"], "no file /nonexistent.npz"),
    (["--distribution=multi_worker"], "needs the TF_CONFIG"),
    (["--lr_boundaries=10,x"], "must be integers"),
    (["--crop_size=32"], "cnn_m_2048 needs crops of at least 41 pixels, got 32"),
    (["--add_classes_from=/records/ucf101"],
     "adds classes to the head of one --records_dirs dataset, got 2 directories"),
    (["--overlapping_classes=list.txt"], "--overlapping_classes needs --add_classes_from"),
    (["--partial_bn"], "--partial_bn: cnn_m_2048 has no batch normalisation"),
    (["--trunk=resnet50", "--partial_bn"], "--partial_bn keeps pre-trained batch statistics"),
    (["--num_segments=0"], "--num_segments"),
]
# Parses and checks each argument list of argv[1] as the train app does before any work, in
# one process (one TensorFlow import): the error each gives, or "" if none.
_PARSE = textwrap.dedent("""
    import json, sys
    from absl import flags
    import two_stream_tf.train
    errors = []
    for args in json.loads(sys.argv[1]):
      flags.FLAGS.unparse_flags()
      try:
        flags.FLAGS(["train"] + args)
        two_stream_tf.train.checked_run(two_stream_tf.train.flag_values())
        errors.append("")
      except (flags.Error, ValueError, FileNotFoundError) as e:
        errors.append(str(e))
    print(json.dumps(errors))
""")


def test_bad_flags_fail_in_one_line_before_any_work(records_dirs, tmp_path):
  model_dir = tmp_path / "model"
  common = [f"--flagfile={_flagfile(tmp_path, records_dirs)}", f"--model_dir={model_dir}"]
  # Two as a user meets them: a flag's own check and a check across flags.
  for args, message in (_BAD_FLAGS[0], _BAD_FLAGS[-2]):
    code, _, err = _run("train", *common, *args)
    assert code != 0 and message in err
  # Every check's message, and the good flags without the bad ones pass.
  process = subprocess.run(
      [sys.executable, "-c", _PARSE, json.dumps([common + a for a, _ in _BAD_FLAGS] + [common])],
      cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300, check=False)
  assert process.returncode == 0, process.stderr[-3000:]
  errors = json.loads(process.stdout.strip().splitlines()[-1])
  for (args, message), error in zip(_BAD_FLAGS, errors):
    assert message in error and "\n" not in error, (args, error)
  assert errors[-1] == ""
  assert not model_dir.exists()


@pytest.mark.slow
def test_records_of_the_old_format_are_refused_with_how_to_make_new_ones(tmp_path):
  old = tmp_path / "records_v1"
  old.mkdir()
  (old / "manifest.json").write_text(json.dumps({"format": "two_stream_tf.records/1",
                                                 "dataset": "ucf101", "shards": []}))
  model_dir = tmp_path / "model"
  code, _, err = _run("train", "--stream=temporal", f"--records_dirs={old}",
                      f"--model_dir={model_dir}")
  named = [line for line in err.splitlines() if "two_stream_tf.records/1" in line]
  assert code != 0 and len(named) == 1 and "python -m flow_tools.extract" in named[0]
  assert not model_dir.exists()


_MIRRORED = textwrap.dedent("""
    import json, sys
    import keras, numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from two_stream_tf import data, model_dirs, training

    dirs = sys.argv[1:3]
    spec = model_dirs.RunSpec.of_records(dirs, 1, data.InputConfig(
        stream="temporal", crop_size=48, stack_length=2), dropout=0.0)
    results = {}
    for segments, clip in ((1, None), (3, None), (1, 0.05)):
      x, labels, weights = next(iter(data.training_dataset(
          dirs, 1, spec.input, 16, augmentation=data.Augmentation(num_segments=segments))))
      # Replica 0 gets the first 8 samples, replica 1 the last 8: give them different head mixes.
      order = tf.argsort(weights["ucf101"], direction="DESCENDING", stable=True)
      x, labels, weights = [tf.nest.map_structure(lambda t: tf.gather(t, order), s)
                            for s in (x, labels, weights)]

      def make_dataset(batch_size, seed):
        return tf.data.Dataset.from_tensor_slices((x, labels, weights)).batch(batch_size).repeat()

      def build():
        keras.utils.set_random_seed(0)
        return model_dirs.build(spec)

      # Clipped: to a norm below the step's, with biases at twice the rate, so that the norm
      # must be the replicas' summed gradient's.
      config = training.TrainConfig(schedule=training.Schedule(0.01, (), 0.1, 1), batch_size=16,
                                    log_every=1, checkpoint_every=1, clip_global_norm=clip,
                                    bias_lr_multiplier=2.0 if clip else 1.0)
      case = f"{segments}" + ("/clipped" if clip else "")
      for name, strategy in (("single", tf.distribute.get_strategy()),
                             ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))):
        result = training.train(build, make_dataset, f"{sys.argv[3]}/{name}{case}", config,
                                "temporal", strategy, num_segments=segments)
        kernel = tf.train.load_variable(
            result.checkpoint, "optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE")
        results[f"{name}/{case}"] = {"replicas": strategy.num_replicas_in_sync,
                                         "metrics": result.metrics,
                                         "conv1": kernel.ravel()[:500].tolist()}
    print(json.dumps(results))
""")


def test_mirrored_on_two_logical_cpus_equals_one_device(records_dirs, tmp_path):
  """One step on the same 16 samples (of one snippet, of TSN's 3, and with the gradient
  clipped): as one batch on one device, and split 8 + 8 over two replicas; the masked
  losses and the updated weights agree."""
  process = subprocess.run(
      [sys.executable, "-c", _MIRRORED, records_dirs["ucf101"], records_dirs["hmdb51"],
       str(tmp_path)], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300,
      check=False)
  assert process.returncode == 0, process.stderr[-3000:]
  results = json.loads(process.stdout.strip().splitlines()[-1])
  for case in ("1", "3", "1/clipped"):
    single, mirrored = results[f"single/{case}"], results[f"mirrored/{case}"]
    assert single["replicas"] == 1 and mirrored["replicas"] == 2
    for key, value in single["metrics"].items():
      if key == "examples_per_second":
        continue
      assert mirrored["metrics"][key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    np.testing.assert_allclose(mirrored["conv1"], single["conv1"], rtol=1e-4, atol=1e-7)
  assert results["single/3"]["metrics"] != results["single/1"]["metrics"]
  assert results["single/1/clipped"]["conv1"] != results["single/1"]["conv1"]


def _free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(("localhost", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def test_multi_worker_on_two_localhost_processes(records_dirs, tmp_path):
  workers = [f"localhost:{p}" for p in _free_ports(2)]
  model_dir = str(tmp_path / "model")
  args = [f"--flagfile={_flagfile(tmp_path, records_dirs)}", f"--model_dir={model_dir}",
          "--distribution=multi_worker", "--train_steps=4"]
  processes = [_app("train", *args, env=_env(TF_CONFIG=json.dumps(
      {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})))
               for i in range(2)]
  outputs = [p.communicate(timeout=400) for p in processes]
  for process, (out, err) in zip(processes, outputs):
    assert process.returncode == 0, err[-3000:]
    assert "trained to step 4" in out
  assert "worker 0 of" in outputs[0][0] and "2 replica" not in outputs[0][0]
  assert tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")).endswith("ckpt-4")
  assert not os.path.exists(os.path.join(model_dir, "workers", "worker_1"))
