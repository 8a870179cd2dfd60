"""The one "map grid + PNG download" widget, shared by Grad-CAM, Gabor, Activations and Filters.

A grid of 2-D maps (feature maps, CAMs, filter responses, kernels) is drawn by
`cnnviz.grids.channel_grid`, and its PNG download is the same maps coloured the same way by
`cnnviz.grids.tile_maps`, with the same number of tiles per row. With `choose_cols=True` a
"Tiles per row" control lets a teacher choose fewer, larger tiles for a projector.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import streamlit as st

from cnnviz import grids
from cnnviz.ui.widgets import download_image

__all__ = ["COLS_CHOICES", "map_grid"]

# The same choices for every grid and every number of maps, so a remembered choice is always
# valid (a grid with fewer maps than the choice simply has one row).
COLS_CHOICES = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16)


def _count(maps: np.ndarray | Sequence[np.ndarray]) -> int:
    return int(maps.shape[0]) if isinstance(maps, np.ndarray) else len(maps)


def map_grid(
    maps: np.ndarray | Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    *,
    key: str,
    download_key: str,
    file_name: str,
    label: str = "Grid as PNG",
    cols: int = 8,
    choose_cols: bool = False,
    tiles: int | None = None,
    shared_scale: bool = False,
    marked: Sequence[bool] | None = None,
    highlight: int | None = None,
    zlimits: Sequence[tuple[float, float]] | None = None,
    colorscale: str | None = None,
    max_side: int = 48,
    cell_px: int = 110,
    title: str | None = None,
) -> int:
    """Draw `maps` as a grid of heat maps with a PNG download of exactly that grid.

    Args:
        maps, titles, shared_scale, marked, highlight, zlimits, colorscale, title: as in
            `cnnviz.grids.channel_grid`.
        key: the chart's widget key (page-prefixed, e.g. "gradcam.methods_fig"); the tiles
            control, when shown, is keyed `key + ".cols"`.
        download_key, file_name, label: the PNG download button.
        cols: tiles per row (the default of the control when `choose_cols`).
        choose_cols: show a "Tiles per row" control. Fewer tiles per row give larger tiles:
            the cells grow (and are shrunk less) in proportion, so they stay square.
        tiles: tiles per row chosen elsewhere (the value another `map_grid` returned), so two
            grids of the same items line up; sized like a choice.
        max_side, cell_px: cell sizes at `cols` tiles per row.

    Returns:
        The number of tiles per row used.
    """
    n = _count(maps)
    if tiles is not None:
        chosen = tiles
    elif choose_cols and n > 1:
        default = min(COLS_CHOICES, key=lambda c: abs(c - min(cols, n)))
        chosen = st.select_slider(
            "Tiles per row",
            COLS_CHOICES,
            value=default,
            key=f"{key}.cols",
            help="Fewer tiles per row make each one larger: easier to read on a projector.",
        )
    else:
        chosen = cols
    used = max(1, min(int(chosen), n))
    # Fewer tiles than the default spread over the same width: grow the cells to match.
    grow = max(1.0, min(cols, n) / used)
    fig = grids.channel_grid(
        maps,
        titles,
        shared_scale=shared_scale,
        cols=used,
        marked=marked,
        highlight=highlight,
        zlimits=zlimits,
        colorscale=colorscale,
        max_side=round(max_side * grow),
        cell_px=round(cell_px * grow),
        title=title,
    )
    st.plotly_chart(fig, key=key)
    download_image(
        label,
        lambda: grids.tile_maps(
            maps, used, shared_scale=shared_scale, zlimits=zlimits, colorscale=colorscale
        ),
        file_name,
        key=download_key,
    )
    return used
