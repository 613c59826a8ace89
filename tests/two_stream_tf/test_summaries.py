"""What TensorBoard shows, read back from the event files: input pictures with tags and
descriptions that say what they are, the flow colour key, confusion matrices with class
names, HParams beside the evaluation metrics, fusion results; no checkpoint where
TensorBoard's projector would look."""

import glob
import os

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator
import tensorflow as tf

from flow_tools.pictures import flow_colors
from tests.two_stream_tf import common
from two_stream_tf import data
from two_stream_tf import evaluation
from two_stream_tf import fusion
from two_stream_tf import model_dirs
from two_stream_tf import training
from two_stream_tf.evaluation import score_files
from two_stream_tf.reporting import summaries

CROP, STACK = 48, 2


def _events(log_dir):
  """{tag: [(step, value or PNG bytes, description)]} of one log directory's event files."""
  out = {}
  for path in sorted(glob.glob(os.path.join(log_dir, "events.out.tfevents.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        tensor = tf.make_ndarray(value.tensor) if value.HasField("tensor") else None
        out.setdefault(value.tag, []).append((event.step, tensor, value.metadata))
  return out


def _images(entry):
  """The decoded images of an image summary (its tensor: width, height, PNGs...)."""
  _, tensor, _ = entry
  return [tf.io.decode_png(png).numpy() for png in tensor[2:]]


@pytest.fixture(scope="module", name="run")
def _run(records_dirs, tmp_path_factory):
  """A temporal run of 2 steps with HParams, evaluated on 1 position per test video."""
  model_dir = str(tmp_path_factory.mktemp("summaries") / "temporal")
  spec = model_dirs.RunSpec.of_records([records_dirs["ucf101"]], 1, data.InputConfig(
      stream="temporal", crop_size=CROP, stack_length=STACK), dropout=0.0)
  model_dirs.save_spec(model_dir, spec)
  training.train(common.builder(spec), common.fixed_batch_dataset(spec), model_dir,
                 common.train_config(2), "temporal",
                 hparams={"stack_length": STACK, "learning_rate": 0.01})
  report = evaluation.evaluate(model_dir, num_positions=1)
  return model_dir, spec, report


def test_pictures_say_what_they_show_and_the_flow_key_is_beside_them(run):
  model_dir, spec, _ = run
  for group, log_dir in (("training_inputs", "train"), ("evaluation_views", "eval_test")):
    events = _events(os.path.join(model_dir, log_dir))
    assert f"{group}/rgb" not in events  # a temporal run shows flow only
    flow = events[f"{group}/flow_colour"][0]
    pictures = _images(flow)
    assert 1 <= len(pictures) <= summaries.MAX_IMAGES
    assert pictures[0].shape == (CROP, CROP, 3)
    description = flow[2].summary_description
    assert "Middlebury colour coding" in description and f"{group}/flow_colour_key" in description
    (key,) = _images(events[f"{group}/flow_colour_key"][0])
    assert key.shape[0] > 200 and key.shape[1] > 200
    # The key's colours are the coding's: its brightest red sits right of its centre (+x).
    red = (key[..., 0].astype(int) - key[..., 1] - key[..., 2])
    row, col = np.unravel_index(np.argmax(red), red.shape)
    assert col > key.shape[1] / 2 and abs(row - key.shape[0] / 2) < key.shape[0] / 4


def test_confusion_matrices_are_figures_with_class_names_and_scalars_match_the_report(run):
  model_dir, spec, report = run
  events = _events(os.path.join(model_dir, "eval_test"))
  _, value, _ = events["accuracy/ucf101"][-1]
  assert float(value) == pytest.approx(report["heads"]["ucf101"]["accuracy"])
  entry = events["confusion_matrix/ucf101"][-1]
  (picture,) = _images(entry)
  # A figure with tick labels and a colour bar, not a bare 12 x 12 heat map of cells.
  assert picture.shape[0] >= 400 and picture.shape[1] >= 500
  assert "Rows: true classes" in entry[2].summary_description


def test_hparams_sit_above_the_evaluation_and_no_checkpoint_where_the_projector_looks(run):
  model_dir, _, _ = run
  root_events = _events(model_dir)
  assert "_hparams_/session_start_info" in root_events
  # The HParams tab takes a metric from every log directory below the session's.
  assert os.path.isdir(os.path.join(model_dir, "eval_test"))
  assert "accuracy/ucf101" in _events(os.path.join(model_dir, "eval_test"))
  log_dirs = {os.path.dirname(p) for p in glob.glob(os.path.join(model_dir, "**",
                                                                 "events.out.tfevents.*"),
                                                    recursive=True)}
  assert log_dirs == {model_dir, os.path.join(model_dir, "train"),
                      os.path.join(model_dir, "eval_test")}
  for log_dir in log_dirs:  # TensorBoard's projector checks each and its parent
    assert tf.train.latest_checkpoint(log_dir) is None
    assert tf.train.latest_checkpoint(os.path.dirname(log_dir)) is None
  assert tf.train.latest_checkpoint(model_dirs.checkpoints_dir(model_dir)) is not None


@pytest.mark.slow
def test_fusion_report_in_tensorboard_and_as_pngs(tmp_path):
  files = common.write_score_files(tmp_path)
  out = str(tmp_path / "fusion")
  for _ in range(2):  # a rerun replaces the earlier summaries
    report = fusion.fuse(files["spatial", "test"], files["temporal", "test"], out,
                         files["spatial", "train"], files["temporal", "train"])
  events = _events(out)
  assert len(glob.glob(os.path.join(out, "events.out.tfevents.*"))) == 1
  heads = report["heads"]
  (text,) = [t for _, t, _ in events["fusion/report"]]
  assert text.item().decode() == fusion.report_table(heads)
  for method in ("spatial", "temporal", "averaging", "svm"):
    (entry,) = events[f"fusion/ucf101/{method}"]
    assert float(entry[1]) == pytest.approx(heads["ucf101"][method]["accuracy"])
  (bars,) = _images(events["fusion/accuracy"][0])
  (per_class,) = _images(events["fusion/per_class_accuracy/ucf101"][0])
  png = tf.io.decode_png(open(os.path.join(out, fusion.ACCURACY_FIGURE), "rb").read()).numpy()
  np.testing.assert_array_equal(png[..., :3], bars)
  saved = tf.io.decode_png(open(fusion.per_class_figure_path(out, "ucf101"), "rb").read())
  assert saved.shape[:2] == per_class.shape[:2]
  # per-class accuracies: a numpy count from the score files
  test_s = score_files.load(files["spatial", "test"]).heads["ucf101"]
  for c, name in enumerate(test_s.class_names):
    videos = test_s.labels == c
    expected = float(np.mean(np.argmax(test_s.scores[videos], axis=1) == c))
    assert heads["ucf101"]["spatial"]["per_class_accuracy"][name] == pytest.approx(expected)


def test_the_colour_key_maps_each_offset_to_its_flows_colour():
  key = flow_colors.colour_key(33)
  for dx, dy in ((16, 0), (0, 16), (-11, -11), (5, -3)):
    np.testing.assert_array_equal(
        key[16 + dy, 16 + dx], flow_colors.flow_to_colour(np.array([[[dx, dy]]]), 16)[0, 0])
  assert (key[0, 0] == 255).all()  # outside the disc
  # Middlebury: +x is red, still is white.
  right = key[16, 32].astype(int)
  assert right[0] == 255 and right[1] < 64 and right[2] < 64
  assert tuple(key[16, 16]) == (255, 255, 255)


def test_event_accumulator_reads_the_images_as_tensorboard_does(run):
  """TensorBoard's own reader finds the tags (what its Images tab lists)."""
  model_dir, _, _ = run
  accumulator = event_accumulator.EventAccumulator(
      os.path.join(model_dir, "eval_test"), size_guidance={event_accumulator.TENSORS: 0})
  accumulator.Reload()
  tags = set(accumulator.Tags()["tensors"])
  assert {"confusion_matrix/ucf101", "evaluation_views/flow_colour",
          "evaluation_views/flow_colour_key", "accuracy/ucf101"} <= tags
