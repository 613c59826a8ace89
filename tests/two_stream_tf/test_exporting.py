"""Exported models: the two-stream SavedModel loaded in a fresh process, without project
code, equals the Python streams and fusion; predict on video files."""

import dataclasses
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from scipy import special

from flow_tools import datasets
from flow_tools import records
from flow_tools.common import storage
from flow_tools.datasets import synthetic
from flow_tools.extraction import encoding
from flow_tools.extraction import local_runner
from flow_tools.records import record_parsing
from tests.two_stream_tf import common
from tests.two_stream_tf import reference
from two_stream_tf import data
from two_stream_tf import fusion
from two_stream_tf import model_dirs
from two_stream_tf import training
from two_stream_tf.serving import exporting
from two_stream_tf.serving import prediction

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CROP, STACK = 48, 2

_FRESH_PROCESS = """
import json, sys
import numpy as np
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
assert not [m for m in sys.modules if m.startswith(("two_stream_tf", "flow_tools"))]
views = np.load(sys.argv[2])
out = model.signatures["serving_default"](rgb_views=tf.constant(views["rgb"]),
                                          flow_views=tf.constant(views["flow"]))
try:  # one RGB view with all the flow views: refused by the graph
  model.signatures["serving_default"](rgb_views=tf.constant(views["rgb"][:1]),
                                      flow_views=tf.constant(views["flow"]))
  refused = None
except tf.errors.InvalidArgumentError as e:
  refused = e.message
print(json.dumps({"metadata": json.loads(model.metadata()["metadata_json"].numpy()),
                  "signatures": sorted(model.signatures), "refused": refused,
                  "outputs": {k: v.numpy().tolist() for k, v in out.items()}}))
"""


@pytest.fixture(scope="module")
def streams(records_dirs, tmp_path_factory):
  """A spatial and a temporal model_dir (a few steps each), multi-task on both datasets."""
  root = tmp_path_factory.mktemp("streams")
  dirs = (records_dirs["ucf101"], records_dirs["hmdb51"])
  out = {}
  for stream in ("spatial", "temporal"):
    spec = model_dirs.RunSpec.of_records(dirs, 1, data.InputConfig(
        stream=stream, crop_size=CROP, stack_length=STACK), dropout=0.0)
    out[stream] = str(root / stream)
    model_dirs.save_spec(out[stream], spec)
    training.train(common.builder(spec), common.fixed_batch_dataset(spec), out[stream],
                   common.train_config(2), stream)
  return out


def _svms(spec):
  rng = np.random.default_rng(0)
  return {head: fusion.SvmFusion(rng.normal(size=(len(c), 2 * len(c))), rng.normal(size=len(c)),
                                 c, 1.0, float("nan")) for head, c in spec.heads}


@pytest.mark.parametrize("fusion_kind", ["average", "svm"])
def test_fresh_process_export_equals_python_fusion(streams, records_dirs, tmp_path, fusion_kind):
  spatial, spatial_spec, _ = model_dirs.load(streams["spatial"])
  temporal, temporal_spec, _ = model_dirs.load(streams["temporal"])
  svms = _svms(temporal_spec) if fusion_kind == "svm" else None
  export_dir = str(tmp_path / "two_stream")
  exporting.export_two_stream(export_dir, spatial, temporal, spatial_spec, temporal_spec,
                            fusion_kind, 0.3, svms)

  video_id = sorted(records.read_manifest(records_dirs["ucf101"])["videos"])[4]
  video = record_parsing.load_video(records_dirs["ucf101"], video_id)
  raw_flow = data.InputConfig(stream="temporal", crop_size=CROP, stack_length=STACK,
                              mean_subtraction=False)
  rgb = reference.views(video, spatial_spec.input).astype(np.float32)
  flow = reference.views(video, raw_flow).astype(np.float32)
  views_path = str(tmp_path / "views.npz")
  np.savez(views_path, rgb=rgb, flow=flow)
  process = subprocess.run([sys.executable, "-c", _FRESH_PROCESS, export_dir, views_path],
                           capture_output=True, text=True, check=False, cwd=str(tmp_path),
                           env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert process.returncode == 0, process.stderr[-3000:]
  exported = json.loads(process.stdout.strip().splitlines()[-1])

  # Python: each stream on its views (mean subtraction done here, by the reference), averaged
  # over the 250 views, then fused.
  mean_subtracted = reference.views(video, temporal_spec.input).astype(np.float32)
  s = {k: v.mean(axis=0) for k, v in spatial.predict(rgb, batch_size=50, verbose=0).items()}
  t = {k: v.mean(axis=0) for k, v in temporal.predict(mean_subtracted, batch_size=50,
                                                      verbose=0).items()}
  for head in temporal_spec.head_names:
    if fusion_kind == "average":
      expected = fusion.average(s[head], t[head], 0.3)
    else:
      expected = special.softmax(svms[head].decision(s[head][None], t[head][None])[0])
    np.testing.assert_allclose(exported["outputs"][f"{head}_video_probabilities"], expected,
                               atol=1e-5)
    np.testing.assert_allclose(exported["outputs"][f"{head}_spatial_video_probabilities"],
                               s[head], atol=1e-5)
    np.testing.assert_allclose(exported["outputs"][f"{head}_temporal_video_probabilities"],
                               t[head], atol=1e-5)
  assert len(exported["outputs"]) == 3 * len(temporal_spec.head_names)
  assert exported["signatures"] == ["metadata", "serving_default"]  # one serving endpoint
  assert "rgb_views and flow_views must hold the same views" in exported["refused"]
  assert "[1]" in exported["refused"] and "[250]" in exported["refused"]
  metadata = exported["metadata"]
  assert metadata["model"] == "two_stream"
  assert set(metadata["inputs"]) == {"rgb_views", "flow_views"}
  assert set(metadata["outputs"]) == set(exported["outputs"])
  assert metadata["stack_length"] == STACK and metadata["crop_size"] == CROP
  assert metadata["extraction"]["algorithm"] == "dis" and metadata["fusion"] == fusion_kind
  assert [h for h, _ in metadata["heads"]] == ["ucf101", "hmdb51"]


def test_export_refuses_streams_that_do_not_fit(streams):
  spatial, spatial_spec, _ = model_dirs.load(streams["spatial"])
  temporal, temporal_spec, _ = model_dirs.load(streams["temporal"])
  with pytest.raises(exporting.ExportError, match="expected a spatial and a temporal"):
    exporting.export_two_stream("/nonexistent", temporal, spatial, temporal_spec, spatial_spec)
  with pytest.raises(exporting.ExportError, match="SVM fusion needs a fitted SVM"):
    exporting.export_two_stream("/nonexistent", spatial, temporal, spatial_spec, temporal_spec,
                              "svm", 0.5, {})


def test_saved_model_cli_runs_a_stream_export_on_npy_views(streams, records_dirs, tmp_path):
  """TensorFlow's own tool, as docs/evaluation_fusion_export.md shows it: one signature, named
  inputs, and the stream's softmax per view with mean flow subtraction in the graph."""
  temporal, spec, _ = model_dirs.load(streams["temporal"])
  export_dir = str(tmp_path / "temporal")
  exporting.export_stream(export_dir, temporal, spec)
  video = record_parsing.load_video(records_dirs["hmdb51"],
                             sorted(records.read_manifest(records_dirs["hmdb51"])["videos"])[3])
  raw = reference.views(video, dataclasses.replace(spec.input, mean_subtraction=False))[:20]
  np.save(tmp_path / "flow_views.npy", raw.astype(np.float32))
  cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  shown = subprocess.run([cli, "show", "--all", "--dir", export_dir], env=env,
                         capture_output=True, text=True, check=True).stdout
  signatures = sorted(set(re.findall(r"signature_def\['(\w+)'\]", shown)))
  assert signatures == ["__saved_model_init_op", "metadata", "serving_default"]
  assert "inputs['flow_views']" in shown and "shape: (-1, 48, 48, 4)" in shown
  out_dir = tmp_path / "outputs"
  subprocess.run([cli, "run", "--dir", export_dir, "--tag_set", "serve", "--signature_def",
                  "serving_default", "--inputs", f"flow_views={tmp_path / 'flow_views.npy'}",
                  "--outdir", str(out_dir)], env=env, capture_output=True, check=True)
  expected = temporal.predict(reference.views(video, spec.input)[:20].astype(np.float32),
                              verbose=0)
  assert sorted(os.listdir(out_dir)) == sorted(f"{h}_view_probabilities.npy"
                                               for h in spec.head_names)
  for head in spec.head_names:
    np.testing.assert_allclose(np.load(out_dir / f"{head}_view_probabilities.npy"),
                               expected[head], atol=1e-5)


def test_predict_on_video_files_with_per_file_errors(streams, synthetic_dir, records_dirs,
                                                    tmp_path, monkeypatch):
  export_dir = str(tmp_path / "export")
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
  process = subprocess.run(
      [sys.executable, "-m", "two_stream_tf.export", f"--spatial_model_dir={streams['spatial']}",
       f"--temporal_model_dir={streams['temporal']}", f"--export_dir={export_dir}"],
      env=env, capture_output=True, text=True, check=False)
  assert process.returncode == 0, process.stderr[-3000:]
  assert {"spatial", "temporal", "two_stream"} <= set(os.listdir(export_dir))

  good = os.path.join(synthetic_dir, "ucf101", "UCF-101", "BlueRingsDown",
                      "v_BlueRingsDown_g01_c01.avi")
  broken = tmp_path / "broken.avi"
  broken.write_bytes(b"not a video")
  small = str(tmp_path / "small.avi")  # decodes, but its frames cannot hold the crop
  synthetic.write_video(small, np.random.default_rng(0).integers(0, 255, (8, 24, 32, 3),
                                                                np.uint8))
  process = subprocess.run(
      [sys.executable, "-m", "two_stream_tf.predict", f"--export_dir={export_dir}", "--json",
       "--top_k=3", good, str(broken), small], env=env, capture_output=True, text=True,
      check=False)
  assert process.returncode == 3, process.stderr[-3000:]
  answers = json.loads(process.stdout)
  assert answers[0]["video"] == good and answers[0]["error"] is None
  ranked = answers[0]["heads"]["ucf101"]
  assert len(ranked) == 3 and ranked[0]["probability"] >= ranked[1]["probability"]
  assert answers[1]["error"] and not answers[1]["heads"]
  assert answers[2]["video"] == small and not answers[2]["heads"]
  assert answers[2]["error"] == "its frames are 32x24, smaller than the export's 48x48 crop"

  # One stream's SavedModel, or a --work_dir in use, is refused in one line.
  with pytest.raises(ValueError, match="is the spatial stream's SavedModel: give the export"):
    prediction.load_export(os.path.join(export_dir, "spatial"))
  with pytest.raises(ValueError, match="is not empty: give a new or empty directory"):
    prediction.predict_videos(export_dir, [good], str(tmp_path))

  # A re-export that fails (SVMs of other classes) leaves the previous export whole.
  def tree():
    return {os.path.relpath(os.path.join(folder, name), export_dir):
            os.path.getmtime(os.path.join(folder, name))
            for folder, _, names in os.walk(export_dir) for name in names}
  before, svm_dir = tree(), tmp_path / "svms"
  svm_dir.mkdir()
  for head, svm in _svms(model_dirs.load_spec(streams["temporal"])).items():
    fusion.save_svm(fusion.svm_path(str(svm_dir), head),
                    dataclasses.replace(svm, class_names=svm.class_names[::-1]))
  with pytest.raises(exporting.ExportError, match="the SVM's classes differ"):
    exporting.export(streams["spatial"], streams["temporal"], export_dir, fusion="svm",
                     svm_dir=str(svm_dir))
  assert tree() == before
  # ... and so does one that fails while writing (here: after the two stream SavedModels).
  def fail(*args, **kwargs):
    raise OSError("disk full")
  monkeypatch.setattr(exporting, "export_two_stream", fail)
  with pytest.raises(storage.OutputError,
                     match=f"^cannot write {re.escape(export_dir)}: disk full$"):
    exporting.export(streams["spatial"], streams["temporal"], export_dir)
  assert tree() == before
  assert sorted(os.listdir(tmp_path)) == ["broken.avi", "export", "small.avi", "svms"]

  # The answer is the export's output on the video's 25 x 10 views, built by the reference
  # from the video's record (extracted with the same settings the export names).
  model, metadata = prediction.load_export(export_dir)
  video = record_parsing.load_video(records_dirs["ucf101"], "BlueRingsDown/v_BlueRingsDown_g01_c01")
  rgb = reference.views(video, data.InputConfig(stream="spatial", crop_size=CROP))
  flow = reference.views(video, data.InputConfig(stream="temporal", crop_size=CROP,
                                                 stack_length=STACK, mean_subtraction=False))
  expected = model.signatures["serving_default"](
      rgb_views=rgb.astype(np.float32),
      flow_views=flow.astype(np.float32))["ucf101_video_probabilities"].numpy()
  classes = dict(metadata["heads"])["ucf101"]
  for answer in ranked:
    assert answer["probability"] == pytest.approx(expected[classes.index(answer["class"])],
                                                  abs=1e-5)


def _toy_dataset(root):
  """Two classes that differ in both appearance and motion, 16 train and 2 test videos each."""
  classes = {"RedCheckerUp": (synthetic.UCF_APPEARANCES[0], synthetic.Motion((0, -1))),
             "BlueRingsDown": (synthetic.UCF_APPEARANCES[2], synthetic.Motion((0, 1)))}
  lines, test_videos = [], []
  for label, (name, (appearance, motion)) in enumerate(classes.items()):
    for k in range(18):
      path = os.path.join(root, "toy", name, f"{name}_{k}.avi")
      synthetic.write_video(path, synthetic.render(synthetic.Scene(
          appearance, motion, 12, 64, 48, seed=100 * label + k)))
      lines.append(f"{name}/{name}_{k}.avi {'test' if k >= 16 else 'train'}")
      if k >= 16:
        test_videos.append((path, name))
  os.makedirs(os.path.join(root, "splits"))
  with open(os.path.join(root, "splits", "split1.txt"), "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")
  return datasets.load_dataset("folder", os.path.join(root, "toy"),
                               os.path.join(root, "splits")), test_videos


@pytest.mark.slow
def test_predict_with_briefly_trained_streams_returns_the_true_class(tmp_path):
  index, test_videos = _toy_dataset(str(tmp_path))
  records_dir = str(tmp_path / "records")
  assert not local_runner.extract(index, records_dir, encoding.ExtractionConfig(short_side=0),
                                  num_workers=1, progress=False).failures
  specs, models = {}, {}
  for stream, learning_rate in (("spatial", 1e-3), ("temporal", 1e-2)):
    spec = model_dirs.RunSpec.of_records([records_dir], 1, data.InputConfig(
        stream=stream, crop_size=CROP, stack_length=STACK), dropout=0.0)
    model_dir = str(tmp_path / stream)
    model_dirs.save_spec(model_dir, spec)
    schedule = training.Schedule(learning_rate, (), 0.1, 60)
    training.train(common.builder(spec), lambda batch, seed, spec=spec: data.training_dataset(
        [records_dir], 1, spec.input, batch, seed=seed, deterministic=True),
                   model_dir, common.train_config(60, schedule=schedule), stream)
    models[stream], specs[stream], _ = model_dirs.load(model_dir)
  export_dir = str(tmp_path / "export")
  exporting.export_two_stream(export_dir, models["spatial"], models["temporal"], specs["spatial"],
                            specs["temporal"])
  answers = prediction.predict_videos(export_dir, [p for p, _ in test_videos],
                                      str(tmp_path / "work"), top_k=2, num_workers=1)
  for answer, (path, true_class) in zip(answers, test_videos):
    assert answer.error is None, path
    (ranked,) = answer.heads.values()
    assert ranked[0][0] == true_class and ranked[0][1] > 0.5, (path, ranked)
