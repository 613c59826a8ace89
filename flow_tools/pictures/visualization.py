"""Pictures of a video's records for checking an extraction by eye: RGB frames beside their
flow in colour coding and as x / y components, with the colour key.

A contact sheet is a figure (`contact_sheet`, a row per time step); a flow video
(`flow_video_frames`, `write_video`) shows every step as RGB | flow colour | key.
"""

import dataclasses
import os

import cv2
import numpy as np

from flow_tools import datasets
from flow_tools.common import storage
from flow_tools.extraction import local_runner
from flow_tools.pictures import figures
from flow_tools.pictures import flow_colors
from flow_tools.records import record_parsing

VIDEO_EXTENSIONS = {".mp4": "mp4v", ".avi": "MJPG"}
OUTPUTS = (".png", *VIDEO_EXTENSIONS)  # what `write` writes


def chosen_steps(num_fields, count):
  """`count` flow-field indices spread evenly over a video's `num_fields` (all if fewer)."""
  if num_fields < 1:
    raise ValueError("the video has no flow field (fewer than 2 frames)")
  return sorted(set(np.linspace(0, num_fields - 1, min(count, num_fields)).round().astype(int)))


def largest_magnitude(video, steps=None):
  """The largest flow magnitude (pixels) of the given steps' forward fields (all: None)."""
  flow = video.flow if steps is None else video.flow[list(steps)]
  return max(float(np.hypot(flow[..., 0], flow[..., 1]).max()), 1e-6)


def panels(video, step, max_magnitude):
  """One time step's pictures: {'rgb': frame `step`, 'flow_colour': the field from it to the
  next frame in the colour coding at `max_magnitude`, 'd_x', 'd_y': its components (px)},
  and 'backward_colour' if the video has backward flow."""
  out = {"rgb": video.frames[step],
         "flow_colour": flow_colors.flow_to_colour(video.flow[step], max_magnitude),
         "d_x": video.flow[step][..., 0], "d_y": video.flow[step][..., 1]}
  if video.backward_flow is not None:
    out["backward_colour"] = flow_colors.flow_to_colour(video.backward_flow[step],
                                                        max_magnitude)
  return out


_TITLES = {"rgb": "frame t (RGB)", "flow_colour": "flow t -> t+1", "d_x": "d_x (px, + right)",
           "d_y": "d_y (px, + down)", "backward_colour": "backward flow t+1 -> t"}


def contact_sheet(video, num_steps=6, max_magnitude=None):
  """A figure with a row per chosen time step (`chosen_steps`): its `panels`, components on
  a diverging scale of +-`max_magnitude` px (default: the largest magnitude shown), and
  the colour key at that magnitude."""
  steps = chosen_steps(len(video.flow), num_steps)
  magnitude = max_magnitude or largest_magnitude(video, steps)
  names = list(panels(video, steps[0], magnitude))
  height, width = video.frames.shape[1:3]
  panel = 2.2
  fig = figures.new_figure(panel * (len(names) + 1),
                           panel * height / width * len(steps) + 1.0)
  grid = fig.add_gridspec(len(steps), len(names) + 1)
  components, component_axes = None, []
  for row, step in enumerate(steps):
    pictures = panels(video, step, magnitude)
    for col, name in enumerate(names):
      ax = fig.add_subplot(grid[row, col])
      if name in ("d_x", "d_y"):
        components = ax.imshow(pictures[name], cmap="RdBu_r", vmin=-magnitude, vmax=magnitude)
        component_axes.append(ax)
      else:
        ax.imshow(pictures[name])
      ax.set_xticks([])
      ax.set_yticks([])
      if row == 0:
        ax.set_title(_TITLES[name], fontsize=9)
      if col == 0:
        ax.set_ylabel(f"t = {step}")
  figures.draw_colour_key(fig.add_subplot(grid[0, -1]), magnitude)
  fig.colorbar(components, ax=component_axes, location="bottom", shrink=0.8,
               label="d_x, d_y (px)")
  fig.suptitle(f"{_name(video)}: {len(video.frames)} frames, {len(video.flow)} flow fields",
               fontsize=10)
  return fig


def flow_video_frames(video, max_magnitude=None):
  """Per flow field, an RGB frame: the video frame | its flow colour | the colour key
  (at `max_magnitude` px, default the video's largest)."""
  magnitude = max_magnitude or largest_magnitude(video)
  height = video.frames.shape[1]
  key = flow_colors.colour_key(height)
  for step in range(len(video.flow)):
    pictures = panels(video, step, magnitude)
    yield np.concatenate([pictures["rgb"], pictures["flow_colour"], key], axis=1)


def write_video(frames, path, fps=10):
  """Writes RGB frames to a local .mp4 or .avi file, atomically (a kill leaves none)."""
  extension = os.path.splitext(path)[1].lower()
  if extension not in VIDEO_EXTENSIONS:
    raise ValueError(f"{path}: a video must end in one of {sorted(VIDEO_EXTENSIONS)}")

  def write(tmp):
    # OpenCV picks the container by the extension, so the temporary file keeps it.
    named = tmp + extension
    writer = None
    try:
      for frame in frames:
        if writer is None:
          writer = cv2.VideoWriter(named, cv2.VideoWriter_fourcc(*VIDEO_EXTENSIONS[extension]),
                                   fps, (frame.shape[1], frame.shape[0]))
          if not writer.isOpened():
            raise OSError(f"OpenCV cannot write {extension} videos here")
        writer.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))
    finally:
      if writer is not None:
        writer.release()
    os.replace(named, tmp)
  storage.write_atomically(path, write)


def write(video, output, steps=6, max_magnitude=None, fps=10):
  """Writes `video`'s contact sheet (.png) or flow video (.mp4, .avi) to `output`."""
  extension = os.path.splitext(output)[1].lower()
  if extension not in OUTPUTS:
    raise ValueError(f"{output}: the output must end in one of {OUTPUTS}")
  if extension == ".png":
    storage.write_bytes(output, figures.to_png(contact_sheet(video, steps, max_magnitude)))
  else:
    write_video(flow_video_frames(video, max_magnitude), output, fps)


FILE = ""  # the dataset of a video extracted from a file: it belongs to none


def _name(video):
  """How a sheet names its video: dataset, id and class, or a file's name alone."""
  if video.dataset == FILE:
    return video.video_id
  return f"{video.dataset} {video.video_id} ({video.class_name})"


def extracted_video(path, work_dir, config):
  """The `record_parsing.LoadedVideo` of a video file, extracted with `config` into `work_dir`,
  named by the file (its id is the file name, its dataset `FILE`)."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"no video file {path}")
  index, path_of = datasets.stage_files([path], work_dir)
  records_dir = os.path.join(work_dir, "records")
  summary = local_runner.extract(index, records_dir, config, num_workers=1, progress=False)
  for failure in summary.failures.values():
    raise ValueError(f"{path}: {failure['reason']}")
  (video_id,) = path_of
  return dataclasses.replace(record_parsing.load_video(records_dir, video_id),
                             video_id=os.path.basename(path), dataset=FILE, class_name="")
