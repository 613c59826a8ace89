"""Extraction on Apache Beam (DirectRunner): the local runner's records and failures (resuming
a killed run: test_extraction)."""

import os
import re
import tempfile

import numpy as np
import pytest

from flow_tools import datasets
from flow_tools import records
from flow_tools.extraction import beam_runner
from flow_tools.extraction import encoding
from flow_tools.extraction import local_runner
from flow_tools.extraction import output_directory
from flow_tools.records import record_parsing
from tests.flow_tools import helpers

DIS = encoding.ExtractionConfig(algorithm="dis", short_side=0)
MULTI_PROCESS = "--direct_num_workers=2 --direct_running_mode=multi_processing"


@pytest.fixture(scope="module")
def broken_dataset(synthetic_dir, tmp_path_factory):
  """11 synthetic UCF-101 clips of several classes plus the four broken clips, folder layout."""
  index = datasets.load_ucf101(os.path.join(synthetic_dir, "ucf101"))
  clips = [(e.video_id, e.path, "train" if e.splits[0] == 1 else "test")
           for e in index.entries[::7]]
  return helpers.write_folder_dataset(str(tmp_path_factory.mktemp("broken")), clips,
                                      with_broken=True)


@pytest.fixture(scope="module")
def local_records(broken_dataset, tmp_path_factory):
  index = datasets.load_folder(*broken_dataset)
  out = str(tmp_path_factory.mktemp("local"))
  local_runner.extract(index, out, DIS, num_workers=2, progress=False)
  return out


def test_direct_runner_writes_the_local_runners_records(broken_dataset, local_records, tmp_path):
  index = datasets.load_folder(*broken_dataset)
  out = str(tmp_path / "beam")
  summary = beam_runner.extract(index, out, DIS)
  assert summary.num_videos == 15 and summary.num_extracted == 11
  assert sorted(summary.failures) == sorted(helpers.BROKEN)  # reported, not fatal
  assert "one frame" in summary.failures["things/one_frame"]["reason"]
  helpers.assert_same_files(local_records, out)
  manifest = records.read_manifest(out)
  assert not os.path.exists(os.path.join(out, ".incomplete"))
  for video_id in manifest["videos"]:
    local = record_parsing.load_video(local_records, video_id)
    beam = record_parsing.load_video(out, video_id)
    np.testing.assert_array_equal(beam.frames, local.frames)
    np.testing.assert_array_equal(beam.flow, local.flow)
    assert (beam.label, beam.class_name, beam.video_id) == (local.label, local.class_name,
                                                            video_id)
  # A finished directory is left alone; other settings are refused.
  again = beam_runner.extract(index, out, DIS)
  assert again.num_extracted == 11
  with pytest.raises(output_directory.ExtractionError, match="other settings"):
    beam_runner.extract(index, out, encoding.ExtractionConfig(algorithm="farneback"))


def test_app_on_multi_process_direct_runner(broken_dataset, local_records, tmp_path):
  data_dir, splits_dir = broken_dataset
  out = str(tmp_path / "beam")
  result = helpers.run_extract([
      "--dataset=folder", f"--data_dir={data_dir}", f"--splits_dir={splits_dir}",
      f"--output_dir={out}", "--algorithm=dis", "--short_side=0",
      "--runner=beam", f"--beam_pipeline_options={MULTI_PROCESS}"])
  assert result.returncode == 3, result.stderr[-3000:]  # finished, some videos failed
  assert "videos: 11 of 15 videos" in result.stdout
  for video_id in helpers.BROKEN:
    assert f"failed: {video_id}" in result.stdout
  helpers.assert_same_files(local_records, out)


@pytest.mark.slow
def test_beam_flag_errors_are_one_line(tmp_path):
  common = ["--dataset=folder", f"--data_dir={tmp_path}", f"--output_dir={tmp_path / 'o'}"]
  result = helpers.run_extract([*common, "--runner=beam",
                                "--beam_pipeline_options=--runnr=DirectRunner"])
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1] == "error: unknown Beam pipeline options: runnr"
  result = helpers.run_extract([*common, "--beam_pipeline_options=--runner=DirectRunner"])
  assert result.returncode == 1 and "--beam_pipeline_options needs --runner=beam" in result.stderr


def test_the_readmes_beam_options_pass_the_option_check():
  with open(os.path.join(helpers.REPO, "docs", "scaling_out.md"), encoding="utf-8") as f:
    documented = re.findall(r'--beam_pipeline_options="([^"]+)"', f.read())
  assert len(documented) >= 3  # DirectRunner, Dataflow, Flink
  for options in documented:
    beam_runner.pipeline_options(options.replace("\\\n", " "))


def test_without_apache_beam_the_app_says_how_to_install_it(broken_dataset, tmp_path):
  # The app as run where apache-beam is not installed: importing it fails.
  script = tmp_path / "no_beam.py"
  script.write_text("import sys\nsys.modules['apache_beam'] = None\n"
                    "from absl import app\nfrom flow_tools import extract\n"
                    "if __name__ == '__main__':\n  app.run(extract.main)\n")
  data_dir, splits_dir = broken_dataset
  result = helpers.run_extract(
      ["--dataset=folder", f"--data_dir={data_dir}", f"--splits_dir={splits_dir}",
       f"--output_dir={tmp_path / 'o'}", "--runner=beam"], script=str(script))
  assert result.returncode == 1
  assert 'pip install -e ".[beam]"' in result.stderr.strip().splitlines()[-1]
  assert not os.path.exists(tmp_path / "o")


def test_direct_runner_reads_and_writes_a_remote_filesystem(broken_dataset, local_records,
                                                             tmp_path, monkeypatch):
  """Videos and records on an object store, as on Dataflow (here TF's in-memory ram://)."""
  data_dir, splits_dir = broken_dataset
  remote_data = helpers.copy_to_remote(os.path.dirname(data_dir))
  remote_root = os.path.dirname(remote_data)
  index = datasets.load_folder(f"{remote_data}/{os.path.basename(data_dir)}",
                               f"{remote_data}/{os.path.basename(splits_dir)}")
  assert all(e.path.startswith("ram://") for e in index.entries)
  out = f"{remote_root}/records"
  # This test's own temporary directory: other tests' files come and go in the shared one.
  temporary = tmp_path / "temporary"
  temporary.mkdir()
  monkeypatch.setattr(tempfile, "tempdir", str(temporary))
  summary = beam_runner.extract(index, out, DIS)
  assert summary.num_extracted == 11 and sorted(summary.failures) == sorted(helpers.BROKEN)
  assert not list(temporary.glob("flow_tools-copy-*"))  # the local copies OpenCV read are gone
  # The same files, no .incomplete left; the failures name their files where they are.
  helpers.assert_same_files(local_records, out,
                            (os.path.dirname(data_dir).encode(), remote_data.encode()),
                            same_source_times=False)
  video_id = sorted(records.read_manifest(out)["videos"])[0]
  np.testing.assert_array_equal(record_parsing.load_video(out, video_id).flow,
                                record_parsing.load_video(local_records, video_id).flow)
