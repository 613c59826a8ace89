"""Frame folders of other tools: import (each layout as its tool writes it), export, round trip.

The trees are written here with cv2.imwrite, following each tool's documented names and
numbering, not with flow_tools.rawframes.layouts; what the records hold is checked against the
written files decoded by TensorFlow and dequantised by hand.
"""

import os
import shutil

import cv2
import numpy as np
import pytest
import tensorflow as tf

from flow_tools import datasets
from flow_tools import records
from flow_tools.extraction import encoding
from flow_tools.extraction import local_runner
from flow_tools.extraction import quantization
from flow_tools.rawframes import annotation_lists
from flow_tools.rawframes import layouts
from flow_tools.rawframes import rawframes_export
from flow_tools.rawframes import rawframes_import
from flow_tools.records import record_parsing
from tests.flow_tools import helpers

BOUND = 20.0
H, W = 24, 32
# (video id, number of video frames, subset of split 1)
VIDEOS = (("Jump/v_Jump_g01_c01", 6, "train"), ("Jump/v_Jump_g02_c01", 5, "test"),
          ("Run/v_Run_g01_c01", 7, "train"), ("Run/v_Run_g02_c01", 5, "test"))


def _video(seed, num_frames):
  """Random RGB frames (BGR for cv2) and flow fields beyond the bound, of one video."""
  rng = np.random.default_rng(seed)
  frames = rng.integers(0, 256, (num_frames, H, W, 3), dtype=np.uint8)
  flow = rng.uniform(-1.3 * BOUND, 1.3 * BOUND, (num_frames - 1, H, W, 2)).astype(np.float32)
  return frames, flow


def _q(component):
  """denseflow's and dense_flow's quantisation, by hand."""
  return np.clip(np.round(255.0 * (component + BOUND) / (2 * BOUND)), 0, 255).astype(np.uint8)


def _imwrite(path, image):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  assert cv2.imwrite(path, image)


def write_tree(root, layout, videos=VIDEOS, first_image=1):
  """A frame tree as `layout`'s tool writes it (denseflow's and MMAction2's images numbered
  from `first_image`); returns {video id: (frame files, x files, y files)} of what the
  record of each video must hold, in time order."""
  expected = {}
  for seed, (video_id, n, _) in enumerate(videos):
    frames, flow = _video(seed, n)
    name = video_id.split("/")[1]
    if layout == "feichtenhofer":  # frame000001.jpg .. for T frames, u/v 1..T-1: k -> k+1
      rgb = [os.path.join(root, "jpegs_256", name, f"frame{i:06d}.jpg") for i in range(1, n + 1)]
      xs = [os.path.join(root, "tvl1_flow", "u", name, f"frame{k:06d}.jpg") for k in range(1, n)]
      ys = [os.path.join(root, "tvl1_flow", "v", name, f"frame{k:06d}.jpg") for k in range(1, n)]
      files = rgb, xs, ys
    else:
      folder = os.path.join(root, video_id)
      if layout == "tsn":  # img_i = video frame i + 1, flow_i: frame i -> i + 1, i = 1..n-1
        rgb = [os.path.join(folder, f"img_{i:05d}.jpg") for i in range(1, n)]
        xs = [os.path.join(folder, f"flow_x_{i:05d}.jpg") for i in range(1, n)]
        ys = [os.path.join(folder, f"flow_y_{i:05d}.jpg") for i in range(1, n)]
        frames = frames[1:]  # the first video frame has no image
        files = rgb, xs[1:], ys[1:]  # flow_1 starts at that frame: not in the record
      else:  # img_00001.. ; denseflow: flow_x_00000.. ; MMAction2's loader: flow_x_00001..
        first = 0 if layout == "denseflow" else 1
        rgb = [os.path.join(folder, f"img_{i + first_image:05d}.jpg") for i in range(n)]
        xs = [os.path.join(folder, f"flow_x_{k + first:05d}.jpg") for k in range(n - 1)]
        ys = [os.path.join(folder, f"flow_y_{k + first:05d}.jpg") for k in range(n - 1)]
        files = rgb, xs, ys
    for path, frame in zip(rgb, frames):
      _imwrite(path, frame)
    for x, y, field in zip(xs, ys, flow):
      _imwrite(x, _q(field[..., 0]))
      _imwrite(y, _q(field[..., 1]))
    expected[video_id] = files
  return expected


def write_splits(root, videos=VIDEOS):
  """The folder layout's split1.txt of `videos`."""
  os.makedirs(root)
  with open(os.path.join(root, "split1.txt"), "w", encoding="utf-8") as f:
    f.writelines(f"{v}.avi {subset}\n" for v, _, subset in videos)
  return root


def write_ucf101_splits(root, videos=VIDEOS):
  """UCF-101's classInd.txt and three splits' lists of `videos` (the same in each)."""
  os.makedirs(root)
  classes = sorted({v.split("/")[0] for v, _, _ in videos})
  with open(os.path.join(root, "classInd.txt"), "w", encoding="utf-8") as f:
    f.writelines(f"{i + 1} {c}\n" for i, c in enumerate(classes))
  for split in (1, 2, 3):
    for subset in ("train", "test"):
      with open(os.path.join(root, f"{subset}list{split:02d}.txt"), "w", encoding="utf-8") as f:
        f.writelines(f"{v}.avi\n" for v, _, s in videos if s == subset)
  return root


def _read_file(path):
  with open(path, "rb") as f:
    return f.read()


def _dequantised(path):
  """A written flow JPEG decoded by TensorFlow and dequantised by the tools' formula."""
  q = tf.io.decode_jpeg(_read_file(path), channels=1).numpy()[..., 0].astype(np.float32)
  return q * np.float32(2 * BOUND / 255) - np.float32(BOUND)


def _import(tmp_path, layout_name, frames_dir, dataset="folder", splits_dir=None, **overrides):
  layout = layouts.layout_named(layout_name, **overrides)
  out = str(tmp_path / f"records_{layout_name}")
  config = rawframes_import.import_config(layout, algorithm="dis", short_side=0)
  _, summary = rawframes_import.import_frames(layout, frames_dir, dataset, out, config,
                                              splits_dir=splits_dir, num_workers=1, progress=False)
  return out, summary


def _step_bytes(records_dir, info, modality, key):
  path = records.video_path(records_dir, info, modality)
  return record_parsing.read_steps(path, modality)[key].numpy().tolist()


@pytest.fixture(scope="module")
def small_records(synthetic_dir, tmp_path_factory):
  """{quantisation: records dir} of four synthetic UCF-101 videos, DIS flow."""
  index = datasets.load_ucf101(os.path.join(synthetic_dir, "ucf101"))
  index = datasets.DatasetIndex(index.name, index.class_names, index.entries[:4])
  out = {}
  for scheme in quantization.SCHEMES:
    config = encoding.ExtractionConfig(algorithm="dis", short_side=0, quantization=scheme,
                                       bound=BOUND)
    out[scheme] = str(tmp_path_factory.mktemp(f"records_{scheme}"))
    assert not local_runner.extract(index, out[scheme], config, num_workers=1,
                                    progress=False).failures
  return out


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["denseflow", "mmaction2", "tsn", "feichtenhofer"])
def test_each_layout_is_imported_as_its_tool_wrote_it(tmp_path, layout):
  frames_dir = str(tmp_path / "rawframes")
  expected = write_tree(frames_dir, layout)
  if layout == "feichtenhofer":  # no class folders: the classes come from UCF-101's lists
    dataset, splits = "ucf101", write_ucf101_splits(str(tmp_path / "ucfTrainTestlist"))
  else:
    dataset, splits = "folder", write_splits(str(tmp_path / "splits"))
  out, summary = _import(tmp_path, layout, frames_dir, dataset, splits)
  assert not summary.failures and summary.num_extracted == len(VIDEOS)
  manifest = records.read_manifest(out)
  assert manifest["config"]["quantization"] == "bound" and manifest["config"]["bound"] == BOUND
  assert manifest["origin"]["rawframes"]["name"] == layout
  for video_id, (rgb, xs, ys) in expected.items():
    video = record_parsing.load_video(out, video_id)
    info = manifest["videos"][video_id]
    assert video.frames.shape == (len(rgb), H, W, 3) and video.flow.shape[0] == len(rgb) - 1
    assert (info["height"], info["width"], info["frames"]) == (H, W, len(rgb))
    # The bytes as written, and what a reader decodes from them.
    assert _step_bytes(out, info, records.RGB, "image/encoded") == [_read_file(p) for p in rgb]
    assert _step_bytes(out, info, records.FLOW, "flow/x/encoded") == [_read_file(p) for p in xs]
    assert _step_bytes(out, info, records.FLOW, "flow/y/encoded") == [_read_file(p) for p in ys]
    np.testing.assert_array_equal(
        video.frames, np.stack([tf.io.decode_jpeg(_read_file(p), channels=3) for p in rgb]))
    np.testing.assert_allclose(video.flow[..., 0], np.stack([_dequantised(p) for p in xs]),
                               atol=1e-4)
    np.testing.assert_allclose(video.flow[..., 1], np.stack([_dequantised(p) for p in ys]),
                               atol=1e-4)
    assert video.class_name == video_id.split("/")[0]


@pytest.mark.slow
def test_denseflow_frames_numbered_from_0_or_1_are_read_and_the_number_recorded(tmp_path):
  """denseflow's current source writes img_00000.., older builds and MMAction2's
  build_rawframes --use-opencv img_00001..: both import, in time order; 2.. is refused."""
  for first in (0, 1, 2):
    root = tmp_path / f"from_{first}"
    frames_dir = str(root / "rawframes")
    expected = write_tree(frames_dir, "denseflow", first_image=first)
    out, summary = _import(root, "denseflow", frames_dir, splits_dir=write_splits(
        str(root / "splits")))
    if first == 2:
      assert summary.num_extracted == 0 and all(
          "frame (img_*) files are numbered from 2" in f["reason"] and "0 or 1" in f["reason"]
          for f in summary.failures.values())
      continue
    assert not summary.failures
    manifest = records.read_manifest(out)
    for video_id, (rgb, _, _) in expected.items():
      info = manifest["videos"][video_id]
      assert info["source"]["first_frame"] == first
      assert _step_bytes(out, info, records.RGB, "image/encoded") == [_read_file(p) for p in rgb]


@pytest.mark.slow
def test_off_by_one_trees_and_missing_files_are_failures_not_shifts(tmp_path):
  frames_dir = str(tmp_path / "rawframes")
  write_tree(frames_dir, "denseflow")
  splits = write_splits(str(tmp_path / "splits"))
  # denseflow's 0-based flow read as MMAction2's 1-based: every video is named, none shifted.
  _, summary = _import(tmp_path, "mmaction2", frames_dir, splits_dir=splits)
  assert summary.num_extracted == 0
  assert all("numbered from 0" in f["reason"] and "--first_flow" in f["reason"]
             for f in summary.failures.values())
  # TSN's equal counts read with T - 1 expected, and the other way round.
  tsn_dir = str(tmp_path / "tsn")
  write_tree(tsn_dir, "tsn")
  _, summary = _import(tmp_path, "mmaction2", tsn_dir, splits_dir=splits)
  reason = summary.failures["Jump/v_Jump_g01_c01"]["reason"]
  assert "5 frames and 5 flow fields" in reason and "expects 4" in reason
  _, summary = _import(tmp_path, "tsn", frames_dir, splits_dir=splits, first_flow=0)
  assert "6 frames and 5 flow fields" in summary.failures["Jump/v_Jump_g01_c01"]["reason"]
  # One video each: a flow y file gone, a frame gone in the middle, the folder gone.
  os.remove(os.path.join(frames_dir, "Jump/v_Jump_g01_c01/flow_y_00002.jpg"))
  os.remove(os.path.join(frames_dir, "Jump/v_Jump_g02_c01/img_00003.jpg"))
  shutil.rmtree(os.path.join(frames_dir, "Run/v_Run_g01_c01"))
  out, summary = _import(tmp_path, "denseflow", frames_dir, splits_dir=splits)
  failures = {v: f["reason"] for v, f in summary.failures.items()}
  assert failures["Jump/v_Jump_g01_c01"].startswith("flow number 2 has x but no y component")
  assert failures["Jump/v_Jump_g02_c01"].startswith("frame (img_*) number 3 is missing")
  assert failures["Run/v_Run_g01_c01"].startswith("missing folder")
  assert sorted(records.read_manifest(out)["videos"]) == ["Run/v_Run_g02_c01"]


def test_mmaction2_lists_give_classes_splits_and_checked_counts(tmp_path):
  frames_dir = str(tmp_path / "rawframes")
  write_tree(frames_dir, "denseflow")
  lists = tmp_path / "lists"
  lists.mkdir()
  # Run is label 0, Jump label 1: class names come from the folders of each label.
  labels = {"Run": 0, "Jump": 1}
  for split in (1, 2):  # split 2 swaps split 1's train and test videos
    for subset in ("train", "val"):
      lines = [f"{v} {n + (v == 'Run/v_Run_g02_c01')} {labels[v.split('/')[0]]}\n"
               for v, n, s in VIDEOS if ((s == "train") == (subset == "train")) == (split == 1)]
      (lists / f"ucf101_{subset}_split_{split}_rawframes.txt").write_text("".join(lines))
  out, summary = _import(tmp_path, "denseflow", frames_dir, rawframes_import.MMACTION2_LISTS,
                         str(lists))
  manifest = records.read_manifest(out)
  assert manifest["dataset"] == "ucf101" and manifest["class_names"] == ["Run", "Jump"]
  assert manifest["num_splits"] == 2
  assert manifest["videos"]["Jump/v_Jump_g02_c01"]["splits"] == [2, 1]
  assert manifest["videos"]["Run/v_Run_g01_c01"]["label"] == 0
  assert list(summary.failures) == ["Run/v_Run_g02_c01"]  # its lists say 6 frames, it has 5
  assert "the annotation list says 6 frames" in summary.failures["Run/v_Run_g02_c01"]["reason"]


def _flatten(frames_dir):
  """Moves every <class>/<video> folder to <video>, as TSN's build_of.py writes them."""
  for video_id, _, _ in VIDEOS:
    shutil.move(os.path.join(frames_dir, video_id),
                os.path.join(frames_dir, video_id.split("/")[1]))
  for class_name in {v.split("/")[0] for v, _, _ in VIDEOS}:
    os.rmdir(os.path.join(frames_dir, class_name))


@pytest.mark.parametrize("layout", ["tsn", "denseflow", "mmaction2"])
def test_flat_video_folders_are_found_in_every_layout(tmp_path, layout):
  """<out>/<video>/ with no class folders: the class comes from the split files."""
  frames_dir = str(tmp_path / "rawframes")
  expected = write_tree(frames_dir, layout)
  _flatten(frames_dir)
  out, summary = _import(tmp_path, layout, frames_dir,
                         splits_dir=write_splits(str(tmp_path / "splits")))
  assert not summary.failures and summary.num_extracted == len(VIDEOS)
  manifest = records.read_manifest(out)
  for video_id, (rgb, xs, _) in expected.items():
    info = manifest["videos"][video_id]
    flat = [p.replace(f"/{video_id.split('/')[0]}/", "/") for p in rgb]
    assert _step_bytes(out, info, records.RGB, "image/encoded") == [_read_file(p) for p in flat]
    assert len(_step_bytes(out, info, records.FLOW, "flow/x/encoded")) == len(xs)
    assert manifest["class_names"][info["label"]] == video_id.split("/")[0]


def test_mmaction2_lists_of_videos_without_class_folders(tmp_path):
  """As MMAction2's own test data lists them ('imgs 5 127'): names from classInd.txt."""
  frames_dir = str(tmp_path / "rawframes")
  write_tree(frames_dir, "denseflow")
  _flatten(frames_dir)
  lists = tmp_path / "lists"
  lists.mkdir()
  labels = {"Jump": 0, "Run": 1}
  for subset in ("train", "val"):
    (lists / f"ucf101_{subset}_split_1_rawframes.txt").write_text("".join(
        f"{v.split('/')[1]} {n} {labels[v.split('/')[0]]}\n" for v, n, s in VIDEOS
        if (s == "train") == (subset == "train")))
  with pytest.raises(datasets.DatasetError,
                     match="the videos of label 0 are in no class folder and there is no "
                           "classInd.txt"):
    _import(tmp_path, "denseflow", frames_dir, rawframes_import.MMACTION2_LISTS, str(lists))
  (lists / "classInd.txt").write_text("1 Jump\n2 Run\n")
  out, summary = _import(tmp_path, "denseflow", frames_dir, rawframes_import.MMACTION2_LISTS,
                         str(lists))
  assert not summary.failures and summary.num_extracted == len(VIDEOS)
  manifest = records.read_manifest(out)
  assert manifest["class_names"] == ["Jump", "Run"]
  assert {v: manifest["class_names"][i["label"]] for v, i in manifest["videos"].items()} == {
      v.split("/")[1]: v.split("/")[0] for v, _, _ in VIDEOS}


def test_a_rerun_keeps_unchanged_videos_and_redoes_a_changed_one(tmp_path):
  frames_dir = str(tmp_path / "rawframes")
  write_tree(frames_dir, "mmaction2")
  splits = write_splits(str(tmp_path / "splits"))
  out, _ = _import(tmp_path, "mmaction2", frames_dir, splits_dir=splits)
  _, summary = _import(tmp_path, "mmaction2", frames_dir, splits_dir=splits)
  assert (summary.num_new, summary.num_redone, summary.num_kept) == (0, 0, len(VIDEOS))
  changed = os.path.join(frames_dir, "Run/v_Run_g01_c01/img_00002.jpg")
  _imwrite(changed, np.zeros((H, W, 3), np.uint8))
  _, summary = _import(tmp_path, "mmaction2", frames_dir, splits_dir=splits)
  assert (summary.num_redone, summary.num_kept) == (1, len(VIDEOS) - 1)
  assert summary.run_report("imported", "imported") == (
      "this run: redid 1 whose files changed (Run/v_Run_g01_c01), kept 3 imported before")
  video = record_parsing.load_video(out, "Run/v_Run_g01_c01")
  np.testing.assert_array_equal(video.frames[1],
                                tf.io.decode_jpeg(_read_file(changed), channels=3))


def test_export_then_import_is_byte_identical(tmp_path, small_records):
  source = small_records["bound"]
  config = encoding.ExtractionConfig(**records.read_manifest(source)["config"])
  frames_dir = str(tmp_path / "data" / "ucf101" / "rawframes")
  summary = rawframes_export.export_records(source, frames_dir)
  assert summary.byte_for_byte and summary.num_written == 4
  manifest = records.read_manifest(source)
  # MMAction2's lists, by hand from the manifest.
  lists_dir = str(tmp_path / "data" / "ucf101")
  for split in range(1, manifest["num_splits"] + 1):
    for subset, code in (("train", 1), ("test", 2)):
      path = os.path.join(lists_dir, annotation_lists.list_name("ucf101", subset, split))
      want = "".join(f"{v} {info['frames']} {info['label']}\n"
                     for v, info in sorted(manifest["videos"].items())
                     if info["splits"][split - 1] == code)
      assert _read_file(path).decode() == want
  video_id, info = sorted(manifest["videos"].items())[0]
  names = sorted(os.listdir(os.path.join(frames_dir, video_id)))
  t = info["frames"]
  assert names == sorted([f"img_{i:05d}.jpg" for i in range(1, t + 1)]
                         + [f"flow_{a}_{k:05d}.jpg" for a in "xy" for k in range(1, t)])
  layout = layouts.LAYOUTS["mmaction2"]
  out = str(tmp_path / "reimported")
  _, again = rawframes_import.import_frames(layout, frames_dir, rawframes_import.MMACTION2_LISTS,
                                            out, config, splits_dir=lists_dir, num_workers=1,
                                            progress=False)
  assert not again.failures
  for video_id, info in manifest["videos"].items():
    for modality in manifest["modalities"]:
      assert (_read_file(records.video_path(out, info, modality))
              == _read_file(records.video_path(source, info, modality))), (video_id, modality)
  # A second export keeps what the first wrote.
  assert rawframes_export.export_records(source, frames_dir).num_kept == 4


def _mmaction2_frame_indices(total, clip_len, num_clips, test_mode, rng):
  """MMAction2's `SampleFrames` (frame_interval 1, out_of_bound_opt 'loop', start_index 1)
  as its documentation describes it: the 1-based file numbers it asks for."""
  if test_mode:  # clips evenly spaced, each at the middle of its share
    interval = (total - clip_len + 1) / num_clips
    offsets = ((np.arange(num_clips) * interval + interval / 2).astype(int)
               if total > clip_len - 1 else np.zeros(num_clips, int))
  else:  # one random offset in each of num_clips shares, fallbacks for short videos
    interval = (total - clip_len + 1) // num_clips
    if interval > 0:
      offsets = np.arange(num_clips) * interval + rng.integers(interval, size=num_clips)
    elif total > max(num_clips, clip_len):
      offsets = np.sort(rng.integers(total - clip_len + 1, size=num_clips))
    elif interval == 0:
      offsets = np.around(np.arange(num_clips) * (total - clip_len + 1.0) / num_clips)
    else:
      offsets = np.zeros(num_clips, int)
  indices = offsets.astype(int)[:, None] + np.arange(clip_len)[None, :]
  return (np.mod(indices, total) + 1).ravel()


def _mmaction2_paths(root, line, modality, indices):
  """`RawFrameDecode`'s files for one list line: img_{:05d}.jpg, or flow_{x,y}_{:05d}.jpg."""
  folder = os.path.join(root, line.split()[0])
  if modality == "RGB":
    return [os.path.join(folder, f"img_{i:05d}.jpg") for i in indices]
  return [os.path.join(folder, f"flow_{a}_{i:05d}.jpg") for i in indices for a in "xy"]


def test_exported_lists_give_mmaction2_only_files_that_exist(tmp_path, small_records):
  """RGB lists (T) for RGB configs, Flow lists (T - 1) for Flow configs, both sampling modes;
  the RGB list read by a Flow config asks for a field that does not exist."""
  frames_dir = str(tmp_path / "ucf101" / "rawframes")
  summary = rawframes_export.export_records(small_records["bound"], frames_dir)
  lists_dir = str(tmp_path / "ucf101")
  assert os.path.join(lists_dir, "ucf101_flow_val_split_1_rawframes.txt") in summary.lists
  rng = np.random.default_rng(0)

  def asked_for(list_flow, modality, clip_len):
    paths = []
    for subset in ("train", "test"):
      name = annotation_lists.list_name("ucf101", subset, 1, flow=list_flow)
      for line in _read_file(os.path.join(lists_dir, name)).decode().splitlines():
        total = int(line.split()[1])
        for test_mode in (True, False):
          for num_clips in (1, 3, 25):
            for _ in range(1 if test_mode else 20):
              indices = _mmaction2_frame_indices(total, clip_len, num_clips, test_mode, rng)
              paths += _mmaction2_paths(frames_dir, line, modality, indices)
    return paths
  for list_flow, modality, clip_len in ((False, "RGB", 1), (True, "Flow", 5),
                                        (True, "Flow", 1)):
    missing = [p for p in asked_for(list_flow, modality, clip_len) if not os.path.isfile(p)]
    assert not missing, missing[:3]
  assert [p for p in asked_for(False, "Flow", 5) if not os.path.isfile(p)]  # the peers' trap
  # The Flow lists are not read back as another dataset's.
  index, counts = annotation_lists.load_lists(lists_dir, lambda video_id, where: video_id)
  assert index.name == "ucf101" and len(counts) == 4


def test_minmax_records_are_requantised_with_the_error_measured(tmp_path, small_records):
  source = small_records["minmax"]
  frames_dir = str(tmp_path / "rawframes")
  summary = rawframes_export.export_records(source, frames_dir, bound=BOUND, num_threads=2)
  assert not summary.byte_for_byte
  manifest = records.read_manifest(source)
  # The error by hand over every field, decoded as MMAction2 decodes (OpenCV): the stored
  # field with its own range, and the written one with the bound.
  errors, clipped, count = [], 0, 0
  for video_id, info in manifest["videos"].items():
    steps = record_parsing.read_steps(records.video_path(source, info, records.FLOW), records.FLOW)
    for k, ranges in enumerate(steps["flow/range"].numpy()):
      for axis, name in enumerate("xy"):
        q = cv2.imdecode(np.frombuffer(steps[f"flow/{name}/encoded"].numpy()[k], np.uint8),
                         cv2.IMREAD_GRAYSCALE).astype(np.float64)
        lo, hi = ranges[2 * axis], ranges[2 * axis + 1]
        stored = q * (hi - lo) / 255 + lo
        path = os.path.join(frames_dir, video_id, f"flow_{name}_{k + 1:05d}.jpg")
        written = cv2.imread(path, cv2.IMREAD_GRAYSCALE) * (2 * BOUND / 255) - BOUND
        within = np.abs(stored) <= BOUND
        errors.append(np.abs(written - stored)[within])
        clipped += int((~within).sum())
        count += within.size
  errors = np.concatenate(errors)
  assert summary.error.max_abs_within_bound == pytest.approx(errors.max(), abs=1e-4)
  assert summary.error.clipped == pytest.approx(clipped / count)
  assert summary.error.mean_abs > 0 and errors.max() < 0.5  # JPEG at 85 on steps of 0.16 px


def test_the_apps_report_failures_and_what_they_wrote(tmp_path, small_records):
  frames_dir = str(tmp_path / "rawframes")
  write_tree(frames_dir, "denseflow")
  os.remove(os.path.join(frames_dir, "Run/v_Run_g02_c01/flow_x_00000.jpg"))
  splits = write_splits(str(tmp_path / "splits"))
  out = str(tmp_path / "records")
  result = helpers.run_extract(
      ["--layout=denseflow", f"--frames_dir={frames_dir}", "--dataset=folder",
       f"--splits_dir={splits}", f"--output_dir={out}", "--short_side=0", "--progress=false"],
      module="flow_tools.import_rawframes")
  assert result.returncode == 3, result.stderr
  lines = result.stdout.splitlines()
  assert lines[0].startswith("rawframes: imported 3 of 4 videos (15 flow fields)")
  assert lines[1] == "this run: imported 3 new, 1 new failed"  # not "imported 4 new"
  assert lines[2].startswith("failed: Run/v_Run_g02_c01: flow x (flow_x_*) files are numbered "
                             "from 1")
  args = ["--layout=denseflow", f"--frames_dir={frames_dir}", "--dataset=folder",
          f"--splits_dir={splits}", f"--output_dir={out}", "--short_side=0", "--progress=false"]
  rerun = helpers.run_extract(args, module="flow_tools.import_rawframes")
  assert rerun.stdout.splitlines()[1] == (
      "this run: nothing to do: no video changed, kept 3 imported before, skipped 1 that "
      "failed before (unchanged; --retry_failed tries them again)"), rerun.stdout
  retried = helpers.run_extract([*args, "--retry_failed"], module="flow_tools.import_rawframes")
  assert retried.stdout.splitlines()[1] == (
      "this run: retried 1 that failed before, 1 failed again (Run/v_Run_g02_c01), kept 3 "
      "imported before"), retried.stdout
  result = helpers.run_extract(
      ["--layout=denseflow", f"--frames_dir={frames_dir}", "--dataset=folder",
       f"--splits_dir={splits}", f"--output_dir={out}", "--progress=false"],
      module="flow_tools.import_rawframes")
  assert result.returncode == 1
  assert "already holds records made with other settings" in result.stderr.splitlines()[-1]
  result = helpers.run_extract(
      [f"--records_dir={small_records['bound']}", f"--output_dir={tmp_path}/export/rawframes"],
      module="flow_tools.export_rawframes")
  assert result.returncode == 0, result.stderr
  assert "wrote 4 of 4 videos" in result.stdout
  assert "flow written byte for byte" in result.stdout
