"""Layout parsing of UCF-101, HMDB-51 and folder datasets, quirks and errors included."""

import os
import re

import pytest

from flow_tools import datasets
from tests.flow_tools import helpers


def _write(path, text, newline="\n"):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", newline="") as f:
    f.write(text.replace("\n", newline))


def _touch(path):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  open(path, "wb").close()


def test_ucf101_synthetic_layout_as_shipped(synthetic_dir):
  root = os.path.join(synthetic_dir, "ucf101")
  with open(os.path.join(root, "ucfTrainTestlist", "trainlist01.txt"), "rb") as f:
    assert b"\r\n" in f.read()  # the quirk under test really is there
  index = datasets.load_ucf101(root)
  assert index.name == "ucf101" and len(index.class_names) == 12 and index.num_splits == 3
  assert len(index.entries) == 12 * 6
  for entry in index.entries:
    group = int(re.search(r"_g(\d\d)_c\d\d$", entry.video_id).group(1))
    # UCF-101 rule used by the generator: split s tests on groups 2s-1 and 2s.
    expected = tuple(2 if group in (2 * s - 1, 2 * s) else 1 for s in (1, 2, 3))
    assert entry.splits == expected
    assert index.class_names[entry.label] == entry.class_name == entry.video_id.split("/")[0]
    assert os.path.isfile(entry.path)
  # The HandstandPushups quirk: folder and file names cased differently.
  miscased = [e for e in index.entries if e.class_name == "GreenDotsUp"]
  assert miscased and all("/v_GreenDotsUP_" in e.video_id for e in miscased)
  assert [e.video_id for e in index.select(1, "test")] == sorted(
      e.video_id for e in index.entries if re.search(r"_g0[12]_", e.video_id))


def test_hmdb51_synthetic_layout_as_shipped(synthetic_dir):
  index = datasets.load_hmdb51(os.path.join(synthetic_dir, "hmdb51", "hmdb51_org"))
  assert list(index.class_names) == sorted(index.class_names) and len(index.class_names) == 12
  assert len(index.entries) == 12 * 10  # every clip is used in some split
  for s in (1, 2, 3):
    assert len(index.select(s, "train")) == 12 * 6 and len(index.select(s, "test")) == 12 * 3
  odd = [e for e in index.entries if any(c in e.video_id for c in "#()[]&'!;+,")]
  assert len(odd) == 120
  for entry in index.entries:
    name = os.path.splitext(os.path.basename(entry.path))[0]
    assert entry.video_id == f"{entry.class_name}/{name}"


def test_ucf101_case_mismatch_between_list_and_disk_resolves(tmp_path):
  root = str(tmp_path)
  _touch(os.path.join(root, "UCF-101", "HandstandPushups", "v_HandStandPushups_g01_c01.avi"))
  _touch(os.path.join(root, "UCF-101", "ApplyLipstick", "v_ApplyLipstick_g01_c01.avi"))
  lists = os.path.join(root, "ucfTrainTestlist")
  _write(os.path.join(lists, "classInd.txt"), "1 ApplyLipstick\n2 HandstandPushups\n", "\r\n")
  for s in (1, 2, 3):
    _write(os.path.join(lists, f"trainlist0{s}.txt"),
           "HandstandPushups/v_HandstandPushups_g01_c01.avi 2\n", "\r\n")
    _write(os.path.join(lists, f"testlist0{s}.txt"), "ApplyLipstick/v_ApplyLipstick_g01_c01.avi\n",
           "\r\n")
  index = datasets.load_ucf101(os.path.join(root, "UCF-101"), lists)
  by_label = {e.label: e for e in index.entries}
  assert by_label[1].path.endswith("v_HandStandPushups_g01_c01.avi")
  assert by_label[1].splits == (1, 1, 1) and by_label[0].splits == (2, 2, 2)


def _ucf_tree(root, train_line="A/v_A_g01_c01.avi 1"):
  _touch(os.path.join(root, "UCF-101", "A", "v_A_g01_c01.avi"))
  lists = os.path.join(root, "ucfTrainTestlist")
  _write(os.path.join(lists, "classInd.txt"), "1 A\n")
  for s in (1, 2, 3):
    _write(os.path.join(lists, f"trainlist0{s}.txt"), train_line + "\n")
    _write(os.path.join(lists, f"testlist0{s}.txt"), "")
  return lists


@pytest.mark.parametrize("mutate, message", [
    (lambda root, lists: os.remove(os.path.join(lists, "testlist02.txt")), "testlist02.txt"),
    (lambda root, lists: _write(os.path.join(lists, "trainlist03.txt"), "A/v_A_g01_c01.avi 7\n"),
     "trainlist03.txt:1: label 7"),
    (lambda root, lists: _write(os.path.join(lists, "trainlist01.txt"), "A/v_A_g09_c01.avi 1\n"),
     "v_A_g09_c01.avi"),
    (lambda root, lists: _write(os.path.join(lists, "trainlist01.txt"), "B/v_B_g01_c01.avi 1\n"),
     "class folder 'B'"),
    (lambda root, lists: _write(os.path.join(lists, "classInd.txt"), "2 A\n"), "classInd.txt:1"),
])
def test_ucf101_errors_name_the_file(tmp_path, mutate, message):
  lists = _ucf_tree(str(tmp_path))
  mutate(str(tmp_path), lists)
  with pytest.raises(datasets.DatasetError, match=re.escape(message)) as error:
    datasets.load_ucf101(str(tmp_path))
  assert "\n" not in str(error.value)


def test_hmdb51_missing_split_file_is_named(tmp_path):
  splits = tmp_path / "testTrainMulti_7030_splits"
  _touch(str(tmp_path / "videos" / "run" / "a (1).avi"))
  for s in (1, 3):
    _write(str(splits / f"run_test_split{s}.txt"), "a (1).avi 1 \n")
  with pytest.raises(datasets.DatasetError, match="run_test_split2.txt"):
    datasets.load_hmdb51(str(tmp_path / "videos"), str(splits))


def test_folder_layout(tmp_path):
  for path in ("cats/x [1].mp4", "cats/y.mp4", "dogs/z.avi"):
    _touch(str(tmp_path / "videos" / path))
  _write(str(tmp_path / "lists" / "split1.txt"),
         "cats/x [1].mp4 train\ncats/y.mp4 test\ndogs/z.avi train\n", "\r\n")
  index = datasets.load_folder(str(tmp_path / "videos"), str(tmp_path / "lists"))
  assert index.class_names == ("cats", "dogs")
  assert [(e.video_id, e.label, e.splits) for e in index.entries] == [
      ("cats/x [1]", 0, (1,)), ("cats/y", 0, (2,)), ("dogs/z", 1, (1,))]
  with pytest.raises(datasets.DatasetError, match="unknown dataset layout"):
    datasets.load_dataset("kinetics", str(tmp_path))
  # An extraction's output inside the video folder, and a hidden folder, are no classes.
  _touch(str(tmp_path / "videos" / "records" / "manifest.json"))
  _touch(str(tmp_path / "videos" / ".thumbnails" / "a.png"))
  videos, lists = str(tmp_path / "videos"), str(tmp_path / "lists")
  for output_dir in (os.path.join(videos, "records"), os.path.join(videos, "records", "ucf")):
    index = datasets.load_dataset("folder", videos, lists, output_dir=output_dir)
    assert index.class_names == ("cats", "dogs")
  assert datasets.load_dataset("folder", videos, lists).class_names == (
      "cats", "dogs", "records")
  # Two files whose names differ only in their extension collide on one video id.
  _touch(str(tmp_path / "videos" / "dogs" / "z.mp4"))
  _write(str(tmp_path / "lists" / "split1.txt"), "dogs/z.avi train\ndogs/z.mp4 test\n")
  with pytest.raises(datasets.DatasetError,
                     match=r"split1\.txt:2: dogs/z\.mp4 and dogs/z\.avi have one video id "
                           r"'dogs/z' \(ids leave out the extension\): rename one of them"):
    datasets.load_folder(videos, lists)


@pytest.mark.parametrize("name, folder, videos", [("ucf101", "ucf101", ""),
                                                 ("hmdb51", "hmdb51", "hmdb51_org")])
def test_layouts_on_a_remote_filesystem_index_the_same_videos(synthetic_dir, name, folder,
                                                              videos):
  local_dir = os.path.join(synthetic_dir, folder)  # videos and split files, as shipped
  remote_dir = helpers.copy_to_remote(local_dir)
  local = datasets.load_dataset(name, os.path.join(local_dir, videos))
  remote = datasets.load_dataset(name, os.path.join(remote_dir, videos))
  assert (remote.name, remote.class_names) == (local.name, local.class_names)
  assert len(remote.entries) == len(local.entries)
  for here, there in zip(local.entries, remote.entries):
    assert (there.video_id, there.label, there.class_name, there.splits) == (
        here.video_id, here.label, here.class_name, here.splits)
    # The file as it is named in the store (the case quirk resolved there too).
    assert there.path == remote_dir + here.path[len(local_dir):]
