"""Frame folders that other tools wrote (`flow_tools.rawframes.layouts`) into records, as they are.

The JPEG bytes go into the records unchanged (nothing is decoded or encoded: the import
is lossless and bound by reading files), the flow as the 'bound' scheme with the
layout's bound. The run is an extraction in all else (`flow_tools.extraction`):
parallel, resumable, failures in the manifest, videos whose files changed redone.
"""

import dataclasses

from flow_tools import datasets
from flow_tools.extraction import encoding
from flow_tools.extraction import local_runner
from flow_tools.rawframes import annotation_lists
from flow_tools.rawframes import layouts

MMACTION2_LISTS = "mmaction2_lists"  # a dataset given by MMAction2's annotation lists


def import_config(layout, algorithm="tvl1", short_side=256, jpeg_quality=95,
                  rgb_jpeg_quality=95):
  """The `ExtractionConfig` records imported in `layout` are stored with.

  Args:
    algorithm: the flow algorithm the files were computed with (or the closest of
      `flow_tools.extraction.flow`): what `two_stream_tf.predict` computes on new videos.
    short_side: the smaller side every video must have (0: any), what predict resizes to.
    jpeg_quality, rgb_jpeg_quality: what predict encodes new videos with; 95 is OpenCV's
      default, which denseflow and dense_flow write with.
  """
  return encoding.ExtractionConfig(algorithm=algorithm, short_side=short_side,
                                   quantization="bound", bound=layout.bound,
                                   jpeg_quality=jpeg_quality, rgb_jpeg_quality=rgb_jpeg_quality)


def open_frames(layout, frames_dir, dataset, splits_dir=None):
  """The dataset of frame folders: (`DatasetIndex`, {video id: `layouts.VideoFolders`}).

  Args:
    layout: a `layouts.FolderLayout`.
    frames_dir: its root.
    dataset: 'ucf101', 'hmdb51' or 'folder' (the official split files, or split<N>.txt,
      in `splits_dir`; default beside `frames_dir` as for videos), or MMACTION2_LISTS
      (MMAction2's annotation lists in `splits_dir`).
  Raises:
    datasets.DatasetError: bad split files or lists; two videos that the layout puts in
      one folder (Feichtenhofer's has no class folders).
  """
  resolver = datasets.FileResolver(frames_dir)
  folders = {}

  def found(video_id, flat):
    return [resolver.find(r.replace("\\", "/")) for r in layout.folders("", video_id, flat)]

  def locate(video_id, listed_in):
    del listed_in  # a missing folder is the video's failure, found when it is read
    in_class, flat = found(video_id, False), found(video_id, True)
    # In its class folder, else in a flat tree of video folders; if neither, where the
    # layout says (its failure names that).
    chosen, expected = ((in_class, False) if in_class[0] or not flat[0] else (flat, True))
    folders[video_id] = tuple(f or path for f, path in
                              zip(chosen, layout.folders(frames_dir, video_id, expected)))
    return folders[video_id][0]

  counts = {}
  if dataset == MMACTION2_LISTS:
    if not splits_dir:
      raise datasets.DatasetError("MMAction2's lists need their folder (--splits_dir)")
    index, counts = annotation_lists.load_lists(splits_dir, locate)
  else:
    def by_id(relpath, where):
      return locate(datasets.id_of(relpath), where)
    # A frame tree's top folders may be its videos (TSN's build_of.py): the folder
    # layout's classes are then those its lists name.
    index = (datasets.load_folder(frames_dir, splits_dir, by_id, classes_from_lists=True)
             if dataset == "folder" else
             datasets.load_dataset(dataset, frames_dir, splits_dir, by_id))
  owners = {}
  for entry in index.entries:
    other = owners.setdefault(folders[entry.video_id], entry.video_id)
    if other != entry.video_id:
      raise datasets.DatasetError(
          f"{other} and {entry.video_id} are both in {entry.path} in layout {layout.name!r}")
  return index, {e.video_id: layouts.VideoFolders(folders[e.video_id], layout,
                                                     counts.get(e.video_id))
                 for e in index.entries}


def import_frames(layout, frames_dir, dataset, output_dir, config, *, splits_dir=None,
                  num_workers=2, progress=True, retry_failed=False):
  """The import app's job: frame folders into records in `output_dir`.

  Args:
    config: from `import_config` (its bound must be the layout's).
  Returns:
    (the `DatasetIndex`, the run's `output_directory.Summary`).
  """
  if config.quantization != "bound" or config.bound != layout.bound or config.backward:
    raise ValueError("the config of an import comes from import_config(layout)")
  index, videos = open_frames(layout, frames_dir, dataset, splits_dir)
  summary = local_runner.extract(
      index, output_dir, config, num_workers, progress,
      read_videos=lambda ids: ((v, videos[v]) for v in ids), retry_failed=retry_failed,
      task=layouts.import_task, origin={"rawframes": dataclasses.asdict(layout)},
      changed=lambda video_id, recorded: layouts.changed(recorded, videos[video_id]))
  return index, summary
