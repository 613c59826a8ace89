"""Figures of flow (matplotlib, no screen): the colour key, and rendering helpers.

Figures are `matplotlib.figure.Figure`s drawn on the Agg canvas, never through pyplot, so
they work in worker threads and on machines without a display.
"""

import io

from matplotlib import figure as figure_lib
from matplotlib.backends import backend_agg
import numpy as np

from flow_tools.pictures import flow_colors

DPI = 100


def new_figure(width, height):
  """An empty figure of width x height inches at `DPI`."""
  fig = figure_lib.Figure(figsize=(width, height), dpi=DPI, layout="constrained")
  backend_agg.FigureCanvasAgg(fig)
  return fig


def to_rgb(fig):
  """The figure as an H x W x 3 uint8 RGB array."""
  fig.canvas.draw()
  return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def to_png(fig):
  """The figure as PNG bytes."""
  out = io.BytesIO()
  fig.savefig(out, format="png", dpi=DPI)
  return out.getvalue()


def draw_colour_key(ax, max_magnitude):
  """The key to `flow_colors.flow_to_colour` at `max_magnitude` pixels on `ax`: the
  colour at (d_x, d_y) is that displacement's (image axes: +y points down)."""
  ax.imshow(flow_colors.colour_key(129), extent=(-max_magnitude, max_magnitude,
                                                  max_magnitude, -max_magnitude))
  ax.set_xlabel("d_x (px), + right")
  ax.set_ylabel("d_y (px), + down")
  ax.set_title(f"flow colours (full at {max_magnitude:.3g} px)", fontsize=9)


def colour_key_figure(max_magnitude):
  """A figure of `draw_colour_key` alone."""
  fig = new_figure(3.2, 3.2)
  draw_colour_key(fig.add_subplot(), max_magnitude)
  return fig
