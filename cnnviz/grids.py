"""Grids of small maps: channels of a layer, filters, CAMs. Figures for the screen, arrays for PNGs.

`channel_grid` draws n 2-D maps as a plotly facet grid (one heat map per cell, square pixels,
a title over each, optional outlines for cells to point out). `tile_maps` and `tile_images`
make the same grid as one picture for a PNG download. Any page that shows many small maps
(Activations, Filters, Grad-CAM) uses these, so the grids look and behave alike.

Like `cnnviz.figures`, nothing here computes beyond scaling for display.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from cnnviz import figures, images

__all__ = [
    "GridError",
    "channel_grid",
    "orientation_picture",
    "network_overview",
    "paired_scatter",
    "tile_images",
    "tile_maps",
    "shrink",
    "outlined",
]

# Cell outlines: "marked" cells (e.g. empty channels) and the one highlighted cell.
_MARK_COLOUR = "#d62728"
_HIGHLIGHT_COLOUR = "#ff7f0e"
_POINT_COLOUR = "#1f77b4"


class GridError(ValueError):
    """Maps that cannot be drawn as a grid; the message says what was expected."""


def _as_maps(maps: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """(n, h, w) array or a list of 2-D arrays -> list of float32 2-D arrays, NaN-free."""
    seq = list(maps) if not isinstance(maps, np.ndarray) or maps.ndim == 3 else None
    if seq is None or not seq:
        shape = getattr(maps, "shape", None)
        raise GridError(
            f"Expected an (n, h, w) array or a non-empty list of 2-D maps. Received shape {shape}."
        )
    out = []
    for i, m in enumerate(seq):
        a = np.asarray(m)
        if a.ndim != 2 or 0 in a.shape:
            raise GridError(f"Expected 2-D maps. Map {i} has shape {a.shape}.")
        out.append(np.nan_to_num(a.astype(np.float32)))
    return out


def shrink(m: np.ndarray, max_side: int) -> np.ndarray:
    """A 2-D map resized (antialiased) so that its longer side is at most `max_side`."""
    h, w = m.shape
    if max(h, w) <= max_side:
        return m
    scale = max_side / max(h, w)
    return images.resize(m.astype(np.float32), (max(1, round(h * scale)), max(1, round(w * scale))))


def _limits(a: np.ndarray, signed: bool) -> tuple[float, float]:
    """Colour limits for a map: symmetric around 0 for signed data; never an empty range."""
    lo, hi = float(a.min()), float(a.max())
    if signed:
        bound = max(abs(lo), abs(hi)) or 1.0
        return -bound, bound
    return lo, hi if hi > lo else lo + 1.0


def channel_grid(
    maps: np.ndarray | Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    *,
    shared_scale: bool = False,
    cols: int = 8,
    marked: Sequence[bool] | None = None,
    highlight: int | None = None,
    zlimits: Sequence[tuple[float, float]] | None = None,
    colorscale: str | None = None,
    max_side: int = 48,
    cell_px: int = 110,
    title: str | None = None,
) -> go.Figure:
    """Maps as a facet grid of heat maps, row 0 of each map at the top.

    Args:
        maps: (n, h, w), or a list of n 2-D arrays whose sizes may differ (one row per layer).
        titles: n short labels, one over each cell (escaped here; may be user text).
        shared_scale: one colour scale for all cells (compare strengths across channels) or
            one per cell (see the pattern of each, however weak).
        cols: cells per row.
        marked: n flags; flagged cells get a red dashed outline (e.g. empty channels).
        highlight: index of one cell to outline in orange (the channel shown large).
        zlimits: n (low, high) colour limits, one per cell, overriding the automatic ones
            (e.g. one scale per channel across two images being compared).
        colorscale: plotly colour scale; default viridis, or blue-red centred on 0 when
            any map has negative values.
        max_side: cells larger than this are shrunk for display (hover coordinates still
            refer to the full-size map). Keeps a page of 64 VGG maps a few hundred kB.
        cell_px: height of one row in pixels.
        title: figure title.

    Returns:
        A plotly figure with n Heatmap traces; trace i is map i (`fig.data[i].z`).
    """
    arrs = _as_maps(maps)
    n = len(arrs)
    if titles is not None and len(titles) != n:
        raise GridError(f"Expected {n} titles, one per map. Received {len(titles)}.")
    if marked is not None and len(marked) != n:
        raise GridError(f"Expected {n} marked flags, one per map. Received {len(marked)}.")
    if zlimits is not None and len(zlimits) != n:
        raise GridError(f"Expected {n} colour limits, one per map. Received {len(zlimits)}.")
    if cols < 1:
        raise GridError(f"Expected cols >= 1. Received cols={cols}.")
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    lo = min(float(a.min()) for a in arrs)
    hi = max(float(a.max()) for a in arrs)
    signed = lo < 0
    scale = colorscale or (figures.DIVERGING if signed else figures.SEQUENTIAL)

    # Cell geometry in paper coordinates: a small gap between columns, room for a title above.
    big = figures.projector_mode()
    title_px = 0 if titles is None else (26 if big else 18)
    row_px = cell_px + title_px
    top_px = 40 if title else 8
    height = rows * row_px + top_px + 8
    xgap = 0.012
    width_frac = (1.0 - xgap * (cols - 1)) / cols

    traces: list[dict] = []
    layout: dict = {"annotations": [], "shapes": []}
    for i, a in enumerate(arrs):
        r, c = divmod(i, cols)
        k = "" if i == 0 else str(i + 1)
        x0 = c * (width_frac + xgap)
        x1 = x0 + width_frac
        y1 = 1.0 - (r * row_px + title_px) / (rows * row_px)
        y0 = 1.0 - ((r + 1) * row_px) / (rows * row_px)
        small = shrink(a, max_side)
        h, w = a.shape
        sh, sw = small.shape
        label = html.escape(str(titles[i])) if titles is not None else f"#{i}"
        trace = {
            "type": "heatmap",
            "z": small,
            # Pixel centres in the full map's coordinates, so hover tells the true position.
            # (x0/dx rather than coordinate arrays: plotly checks every array it is given,
            # which costs more than the heat map itself.)
            "x0": 0.5 * w / sw - 0.5,
            "dx": w / sw,
            "y0": 0.5 * h / sh - 0.5,
            "dy": h / sh,
            "xaxis": f"x{k}",
            "yaxis": f"y{k}",
            "hovertemplate": f"{label}<br>x=%{{x:.0f}}, y=%{{y:.0f}}<br>value=%{{z:.4g}}<extra></extra>",
        }
        if shared_scale and zlimits is None:
            trace["coloraxis"] = "coloraxis"
        else:
            zmin, zmax = _limits(a, signed) if zlimits is None else zlimits[i]
            trace.update(colorscale=scale, showscale=False, zmin=zmin, zmax=zmax)
        traces.append(trace)
        axis = {"showticklabels": False, "showgrid": False, "zeroline": False, "ticks": ""}
        layout[f"xaxis{k}"] = {
            **axis,
            "domain": [x0, x1],
            "anchor": f"y{k}",
            "constrain": "domain",
        }
        layout[f"yaxis{k}"] = {
            **axis,
            "domain": [y0, y1],
            "anchor": f"x{k}",
            "autorange": "reversed",
            "scaleanchor": f"x{k}",
            "constrain": "domain",
        }
        if titles is not None:
            layout["annotations"].append(
                {
                    "text": label,
                    "x": (x0 + x1) / 2,
                    "y": y1,
                    "xref": "paper",
                    "yref": "paper",
                    "xanchor": "center",
                    "yanchor": "bottom",
                    "showarrow": False,
                    "font": {
                        "size": 16 if big else 11,
                        "color": _MARK_COLOUR if marked is not None and marked[i] else None,
                    },
                }
            )
        outline = None
        if highlight is not None and i == highlight:
            outline = {"color": _HIGHLIGHT_COLOUR, "width": 3}
        elif marked is not None and marked[i]:
            outline = {"color": _MARK_COLOUR, "width": 2, "dash": "dot"}
        if outline is not None:
            layout["shapes"].append(
                {
                    "type": "rect",
                    "xref": f"x{k} domain",
                    "yref": f"y{k} domain",
                    "x0": 0,
                    "x1": 1,
                    "y0": 0,
                    "y1": 1,
                    "line": outline,
                }
            )
    if shared_scale and zlimits is None:
        cmin, cmax = _limits(np.array([lo, hi]), signed)
        layout["coloraxis"] = {
            "colorscale": scale,
            "cmin": cmin,
            "cmax": cmax,
            "colorbar": {"thickness": 12, "len": min(1.0, 400 / height)},
        }
    # A hand-built layout, not plotly.subplots.make_subplots: make_subplots validates every
    # axis one by one and takes ~10× longer (0.33 s vs 0.04 s for 64 cells), and this figure
    # is rebuilt on every click in a lesson.
    fig = go.Figure(data=traces, layout=layout)
    figures.style(fig, title=title, height=height)
    fig.update_layout(margin={"t": top_px, "b": 8})
    return fig


def tile_images(
    images_: np.ndarray | Sequence[np.ndarray], cols: int, *, gap: int = 2, fill: float = 255
) -> np.ndarray:
    """Images of one size laid out in a grid, as one array (for a PNG download).

    Args:
        images_: (n, h, w) or (n, h, w, c).
        cols: images per row.
        gap: pixels between images (and none around the edge).
        fill: value of the gap pixels.

    Returns:
        (rows·h + (rows−1)·gap, cols·w + (cols−1)·gap[, c]) with the input's dtype; image i
        sits at row i // cols, column i % cols.
    """
    arr = np.asarray(images_)
    if arr.ndim not in (3, 4) or arr.shape[0] == 0:
        raise GridError(
            f"Expected a non-empty stack (n, h, w) or (n, h, w, c). Received shape {arr.shape}."
        )
    if cols < 1 or gap < 0:
        raise GridError(f"Expected cols >= 1 and gap >= 0. Received cols={cols}, gap={gap}.")
    n, h, w = arr.shape[:3]
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    out = np.full(
        (rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, *arr.shape[3:]),
        fill,
        dtype=arr.dtype,
    )
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = arr[i]
    return out


def tile_maps(
    maps: np.ndarray | Sequence[np.ndarray],
    cols: int,
    *,
    shared_scale: bool = False,
    zlimits: Sequence[tuple[float, float]] | None = None,
    colorscale: str | None = None,
    gap: int = 2,
) -> np.ndarray:
    """Maps coloured as `channel_grid` colours them, tiled into one RGB picture.

    Args:
        maps: (n, h, w), or a list of 2-D maps; maps smaller than the largest are enlarged to
            its size by nearest neighbour, so each pixel of a small map stays a crisp block.
        cols, gap: as in `tile_images`; gaps are white.
        shared_scale, zlimits, colorscale: as in `channel_grid`.

    Returns:
        (H, W, 3) uint8.
    """
    arrs = _as_maps(maps)
    if zlimits is not None and len(zlimits) != len(arrs):
        raise GridError(
            f"Expected {len(arrs)} colour limits, one per map. Received {len(zlimits)}."
        )
    lo = min(float(a.min()) for a in arrs)
    hi = max(float(a.max()) for a in arrs)
    signed = lo < 0
    cmap = colorscale or (figures.DIVERGING if signed else figures.SEQUENTIAL)
    shared = _limits(np.array([lo, hi]), signed)
    height = max(a.shape[0] for a in arrs)
    width = max(a.shape[1] for a in arrs)
    coloured = []
    for i, a in enumerate(arrs):
        # The same limits the figure uses, then the colour map.
        if zlimits is not None:
            vmin, vmax = zlimits[i]
        else:
            vmin, vmax = shared if shared_scale else _limits(a, signed)
        rgb = images.colorize(a, cmap=cmap, vmin=vmin, vmax=vmax)
        if rgb.shape[:2] != (height, width):
            # Pillow's nearest-neighbour resize: enlarge without blurring the cells.
            rgb = np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.NEAREST))
        coloured.append(rgb)
    return tile_images(np.stack(coloured), cols, gap=gap, fill=255)


def orientation_picture(theta_deg: np.ndarray, hidden: np.ndarray | None = None) -> np.ndarray:
    """An orientation map (degrees in [0, 180]) coloured as `figures.orientation_figure`
    colours it, as (H, W, 3) uint8; `hidden` pixels are white."""
    rgb = images.colorize(
        np.asarray(theta_deg, dtype=np.float64), cmap=figures.ORIENTATION_SCALE, vmin=0, vmax=180
    )
    if hidden is not None:
        rgb[np.asarray(hidden, dtype=bool)] = 255
    return rgb


def paired_scatter(
    x: np.ndarray,
    y: np.ndarray,
    labels: Sequence[str],
    *,
    x_title: str,
    y_title: str,
    marked: Sequence[bool] | None = None,
    title: str | None = None,
    height: int | None = 420,
) -> go.Figure:
    """One point per channel: a statistic for one input against the same for another.

    Points on the dashed diagonal respond equally to both; far above it, much more to the
    second. Marked points (e.g. empty for either input) are drawn as crosses.

    Args:
        x, y: (n,) values for the first and second input.
        labels: n hover labels (escaped here).
        x_title, y_title: axis titles (escaped here).
        marked: n flags.
    """
    xs = np.asarray(x, dtype=np.float64).ravel()
    ys = np.asarray(y, dtype=np.float64).ravel()
    if xs.shape != ys.shape or len(labels) != xs.size:
        raise GridError(
            f"Expected x, y and labels of one length. Received {xs.size}, {ys.size}, {len(labels)}."
        )
    flags = np.zeros(xs.size, bool) if marked is None else np.asarray(marked, bool)
    safe = [html.escape(str(t)) for t in labels]
    lo = float(min(xs.min(), ys.min(), 0.0))
    hi = float(max(xs.max(), ys.max())) or 1.0
    fig = go.Figure(
        [
            go.Scatter(
                x=[lo, hi],
                y=[lo, hi],
                mode="lines",
                line={"dash": "dash", "color": "gray"},
                hoverinfo="skip",
                showlegend=False,
            ),
            go.Scatter(
                x=xs,
                y=ys,
                mode="markers",
                text=safe,
                marker={
                    "symbol": np.where(flags, "x", "circle").tolist(),
                    "color": np.where(flags, _MARK_COLOUR, _POINT_COLOUR).tolist(),
                    "size": 9,
                },
                hovertemplate="%{text}<br>x=%{x:.4g}<br>y=%{y:.4g}<extra></extra>",
                showlegend=False,
            ),
        ]
    )
    # The same range on both axes, so the diagonal is the 45° line of "equal response".
    pad = 0.05 * (hi - lo)
    fig.update_xaxes(title=html.escape(x_title), range=[lo - pad, hi + pad])
    fig.update_yaxes(title=html.escape(y_title), range=[lo - pad, hi + pad])
    return figures.style(fig, title=title, height=height)


def outlined(
    image: np.ndarray,
    box: Sequence[int] | None,
    *,
    scale: int = 4,
    colour: tuple[int, int, int] = (255, 127, 14),
    width: int = 2,
) -> np.ndarray:
    """An image enlarged `scale`× (nearest neighbour, pixels stay sharp) with a box drawn on it.

    Args:
        image: (H, W) or (H, W, 3) uint8.
        box: (top, left, bottom, right) in the image's pixels, bottom/right exclusive (as
            `cnnviz.neurons.Examples.boxes`); None only enlarges.

    Returns:
        (H·scale, W·scale, 3) uint8 with a `width`-pixel outline just inside the box.
    """
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    big = np.kron(img, np.ones((scale, scale, 1), img.dtype)).astype(np.uint8)
    if box is None:
        return big
    h, w = big.shape[:2]
    top, left, bottom, right = (int(v) * scale for v in box)
    top, left = max(0, min(top, h - 1)), max(0, min(left, w - 1))
    bottom, right = max(top + 1, min(bottom, h)), max(left + 1, min(right, w))
    c = np.array(colour, np.uint8)
    big[top : min(top + width, bottom), left:right] = c
    big[max(bottom - width, top) : bottom, left:right] = c
    big[top:bottom, left : min(left + width, right)] = c
    big[top:bottom, max(right - width, left) : right] = c
    return big


# --------------------------------------------------------------------------------------------
# The network overview: CNN Explainer's columns of tiles, left to right
# --------------------------------------------------------------------------------------------

_KIND_COLOUR = {
    "input": "#555555",
    "conv": "#1f77b4",
    "activation": "#2ca02c",
    "pooling": "#9467bd",
    "dense": "#d62728",
    "normalization": "#8c564b",
}
_TILE_GAP = 0.18  # between tiles of a column, in tile heights
_COLUMN_GAP = 0.55  # between columns, in tile widths


def network_overview(
    input_image: np.ndarray,
    columns: Sequence[tuple[str, str, np.ndarray, Sequence[int]]],
    scores: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    *,
    per_layer: int = 8,
    selected: tuple[int, int] | None = None,
    max_side: int = 32,
    height: int | None = None,
) -> go.Figure:
    """Every layer as a column of small maps, input on the left, class scores on the right.

    Reads left to right like CNN Explainer's overview (Wang et al., IEEE VIS 2020). One
    heat-map trace per column (its tiles stacked with blank rows between them, one colour
    range per layer so tiles of a layer compare), a vector layer as one thin strip, and the
    model's output as horizontal bars. An invisible marker sits on every tile so a click
    selects it (`st.plotly_chart(on_select=...)`): its `customdata` is [column, channel].

    Args:
        input_image: what the model read, (h, w) / (h, w, 1) gray or (h, w, 3) any range.
        columns: per layer (title, kind, output (H, W, C) or (C,), channel order to show).
        scores: (classes,) probabilities, drawn as bars; None for no head.
        class_names: bar labels (escaped here).
        per_layer: tiles shown per map layer (the first ones of its order).
        selected: (column, channel) to outline.
        max_side: tiles are shrunk to at most this many cells a side for display.
        height: figure height in pixels (default: from the tallest column).

    Returns:
        A plotly figure; columns are numbered 1.. (0 is the input).
    """
    big = figures.projector_mode()
    n_cols = len(columns) + 1
    step_x = 1.0 + _COLUMN_GAP
    traces: list[dict] = []
    annotations: list[dict] = []
    shapes: list[dict] = []
    clicks = {"x": [], "y": [], "customdata": [], "text": []}
    tallest = 1
    extent = 1.0  # the longest column, in tile heights (small tiles have relatively wider gaps)

    def column_title(ci: int, text: str, kind: str) -> None:
        annotations.append(
            {
                "text": text,
                "x": ci * step_x + 0.5,
                "y": -0.12,
                "xref": "x",
                "yref": "y",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 15 if big else 10, "color": _KIND_COLOUR.get(kind, "#333")},
            }
        )

    # Column 0: the input exactly as the model read it.
    img = np.asarray(input_image, np.float64)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    h, w = img.shape[:2]
    if img.ndim == 3:
        lo, hi = float(img.min()), float(img.max())
        rgb = np.clip((img - lo) / ((hi - lo) or 1.0) * 255, 0, 255).astype(np.uint8)
        traces.append(
            {"type": "image", "z": rgb, "x0": 0.5 / w, "dx": 1 / w, "y0": 0.5 / h, "dy": 1 / h,
             "hoverinfo": "skip"}
        )  # fmt: skip
    else:
        traces.append(
            {"type": "heatmap", "z": shrink(img, max_side * 2), "colorscale": "Gray",
             "showscale": False, "x0": 0.0, "dx": 1 / min(w, max_side * 2), "y0": 0.0,
             "dy": 1 / min(h, max_side * 2), "hoverinfo": "skip", "xgap": 0, "ygap": 0}
        )  # fmt: skip
        traces[-1]["x0"] = 0.5 * traces[-1]["dx"]
        traces[-1]["y0"] = 0.5 * traces[-1]["dy"]
    column_title(0, f"input<br>{w}×{h}", "input")

    for ci, (title, kind, out, order) in enumerate(columns, start=1):
        x_left = ci * step_x
        out = np.asarray(out, np.float64)
        lo, hi = float(out.min()), float(out.max())
        signed = lo < 0
        zmin, zmax = _limits(np.array([lo, hi]), signed)
        scale = figures.DIVERGING if signed else figures.SEQUENTIAL
        if out.ndim == 3:
            shown = list(order)[:per_layer]
            tiles = [shrink(out[..., c], max_side) for c in shown]
            th, tw = tiles[0].shape
            gap_rows = max(1, round(_TILE_GAP * th))
            blank = np.full((gap_rows, tw), np.nan)
            z = np.vstack([part for t in tiles for part in (t, blank)][:-1])
            traces.append(
                {"type": "heatmap", "z": z, "x0": x_left + 0.5 / tw, "dx": 1 / tw,
                 "y0": 0.5 / th, "dy": 1 / th, "zmin": zmin, "zmax": zmax,
                 "colorscale": scale, "showscale": False, "hoverinfo": "skip"}
            )  # fmt: skip
            pitch = 1.0 + gap_rows / th
            for i, c in enumerate(shown):
                clicks["x"].append(x_left + 0.5)
                clicks["y"].append(i * pitch + 0.5)
                clicks["customdata"].append([ci, int(c)])
                clicks["text"].append(
                    f"{html.escape(title)} · channel {c}<br>max {float(out[..., c].max()):.3g}"
                )
                if selected == (ci, int(c)):
                    shapes.append(
                        {"type": "rect", "x0": x_left - 0.06, "x1": x_left + 1.06,
                         "y0": i * pitch - 0.06, "y1": i * pitch + 1.06,
                         "line": {"color": _HIGHLIGHT_COLOUR, "width": 4}}
                    )  # fmt: skip
            tallest = max(tallest, len(shown))
            extent = max(extent, len(shown) * pitch)
            label = f"{html.escape(title)}<br>{out.shape[0]}×{out.shape[1]}×{out.shape[2]}"
            column_title(ci, label, kind)
        else:
            # A vector: one thin strip as tall as the tallest map column, unit 0 at the top.
            n = out.shape[0]
            span = max(tallest * (1.0 + _TILE_GAP) - _TILE_GAP, 1.0)
            traces.append(
                {"type": "heatmap", "z": out[:, None], "x0": x_left + 0.5, "dx": 0.4,
                 "y0": 0.5 * span / n, "dy": span / n, "zmin": zmin, "zmax": zmax,
                 "colorscale": scale, "showscale": False, "hoverinfo": "skip"}
            )  # fmt: skip
            if n <= 128:  # dense units can be clicked; a 576-long flatten is only a picture
                for u in range(n):
                    clicks["x"].append(x_left + 0.5)
                    clicks["y"].append((u + 0.5) * span / n)
                    clicks["customdata"].append([ci, u])
                    clicks["text"].append(f"{html.escape(title)} · unit {u}<br>{out[u]:.3g}")
            if selected is not None and selected[0] == ci:
                u = selected[1]
                shapes.append(
                    {"type": "rect", "x0": x_left + 0.25, "x1": x_left + 0.75,
                     "y0": u * span / n, "y1": (u + 1) * span / n,
                     "line": {"color": _HIGHLIGHT_COLOUR, "width": 3}}
                )  # fmt: skip
            column_title(ci, f"{html.escape(title)}<br>{n}", kind)
    span = max(tallest * (1.0 + _TILE_GAP), extent)
    # The click targets: invisible markers, one per tile (heat maps cannot be selected).
    traces.append(
        {"type": "scatter", "mode": "markers", "x": clicks["x"], "y": clicks["y"],
         "customdata": clicks["customdata"], "text": clicks["text"],
         "hovertemplate": "%{text}<extra>click to explain</extra>",
         "marker": {"size": 26, "color": "rgba(0,0,0,0.01)"}, "showlegend": False}
    )  # fmt: skip
    axis = {"showticklabels": False, "showgrid": False, "zeroline": False}
    tiles_domain = [0.0, 0.8] if scores is not None else [0.0, 1.0]
    layout = {
        "xaxis": {
            **axis,
            "domain": tiles_domain,
            "range": [-0.2, n_cols * step_x - _COLUMN_GAP + 0.2],
        },
        "yaxis": {**axis, "range": [span + 0.1, -0.9], "scaleanchor": "x", "constrain": "domain"},
        "annotations": annotations,
        "shapes": shapes,
        "hovermode": "closest",
        "hoverdistance": 40,
        "dragmode": False,
        "clickmode": "event+select",
    }
    if scores is not None:
        p = np.asarray(scores, np.float64).ravel()
        names = [html.escape(str(c)) for c in (class_names or [str(i) for i in range(len(p))])]
        top = int(np.argmax(p))
        traces.append(
            {"type": "bar", "orientation": "h", "x": p, "y": names, "xaxis": "x2", "yaxis": "y2",
             "marker": {"color": [_HIGHLIGHT_COLOUR if i == top else "#7f7f7f" for i in range(len(p))]},
             "text": [f"{v:.0%}" for v in p], "textposition": "outside", "cliponaxis": False,
             "customdata": [[len(columns), i] for i in range(len(p))],
             "hovertemplate": "%{y}: %{x:.2%}<extra>click to explain</extra>", "showlegend": False}
        )  # fmt: skip
        # 1.7: room right of a full bar for its "100%" label, at projector size too.
        layout["xaxis2"] = {"domain": [0.86, 1.0], "range": [0, 1.7], "showticklabels": False,
                            "showgrid": False, "anchor": "y2"}  # fmt: skip
        layout["yaxis2"] = {
            "anchor": "x2",
            "type": "category",  # class names such as "0".."9" are labels, not numbers
            "autorange": "reversed",
            "domain": [0.05, 0.95],
            "tickfont": {"size": 18 if big else 12},
        }
    fig = go.Figure(data=traces, layout=layout)
    px_per_tile = 78 if big else 64
    figures.style(fig, height=height or int(span * px_per_tile + 90))
    fig.update_layout(margin={"t": 8, "b": 8, "l": 8, "r": 8})
    return fig
