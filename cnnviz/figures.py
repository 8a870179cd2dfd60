"""Arrays -> plotly figures. No computation happens here beyond scaling for display.

Colour maps are colour-blind safe by default: "cividis"/"viridis" for magnitudes and the
blue–red "RdBu" diverging map (reversed so that positive is red) for signed values.
"""

from __future__ import annotations

import functools
import html
import math
import threading

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

__all__ = [
    "SEQUENTIAL",
    "DIVERGING",
    "set_projector_mode",
    "projector_mode",
    "projector_theme",
    "image_figure",
    "heatmap",
    "kernel_figure",
    "embedding_figure",
    "style",
    "mode_curves",
    "OUTLINE",
    "number_grid",
    "set_grid_values",
    "cell_outline",
    "surface",
    "orientation_figure",
    "sanity_curve",
    "faithfulness_curve",
    "shape_flow",
    "window_map",
    "value_bars",
]

SEQUENTIAL = "Viridis"
DIVERGING = "RdBu_r"
# Per thread: each Streamlit session runs its script in its own thread, and one student's
# projector switch must not change another student's figures.
_LOCAL = threading.local()


def set_projector_mode(on: bool) -> None:
    """Large type and thicker lines for figures made after this call, in this thread."""
    _LOCAL.projector = bool(on)


def projector_mode() -> bool:
    """Whether figures are being made for a projector."""
    return getattr(_LOCAL, "projector", False)


@functools.cache
def projector_theme() -> dict:
    """What projector mode adds to every figure: a plotly template, so that a size a figure
    builder sets itself still wins and everything it leaves unset is large.

    Colour bars are shorter and sit at the bottom of the plot, which keeps the top right corner
    free for plotly's toolbar (it covered the bar's top ticks), and thicker, with large tick
    labels and title. Legends, hover labels and annotations get large type too; axis ticks
    follow the layout's base font (20 px in projector mode).

    A figure's template replaces plotly's default one (Streamlit's, with the colours its
    frontend fills in), so the theme starts from the default's layout and the trace kinds these
    figures use. Given as a dict: validating it costs ~10 ms a figure, only in projector mode
    (the full default template costs twice that; plotly skips validating its own default).
    """
    default = pio.templates[pio.templates.default] if pio.templates.default else None
    theme = go.layout.Template(layout=default.layout if default else None)
    bar = dict(len=0.8, y=0, yanchor="bottom", thickness=22,
               tickfont=dict(size=18), title=dict(font=dict(size=20)))  # fmt: skip
    for kind in ("heatmap", "contour", "histogram2d", "surface", "scatter", "bar"):
        base = [t.to_plotly_json() for t in getattr(default.data, kind)] if default else []
        if kind != "scatter" and kind != "bar":
            base = [dict(t, colorbar=dict(t.get("colorbar", {}), **bar)) for t in base] or [
                dict(colorbar=bar)
            ]
        if base:
            setattr(theme.data, kind, base)
    theme.layout.coloraxis.colorbar.update(bar)
    theme.layout.legend.font.size = 18
    theme.layout.hoverlabel.font.size = 18
    theme.layout.annotationdefaults.font.size = 18
    return theme.to_plotly_json()


def _layout(title: str | None, height: int | None, **extra) -> dict:
    """The shared layout as one dict: tight margins, readable fonts (bigger in projector mode).

    Building a figure in one `go.Figure(data, layout)` call is several times faster than a
    chain of `update_*` calls (measured 0.65 ms vs 4.4 ms per heat map), which matters on
    pages that redraw several figures per step.
    """
    big = projector_mode()
    layout = dict(
        title=dict(text=title, font=dict(size=24 if big else 15)) if title else None,
        # Room for a large title above top-side tick labels (heat maps put them on top).
        margin=dict(l=8, r=8, t=(64 if big else 48) if title else 8, b=8),
        font=dict(size=20 if big else 13),
        height=height,
    )
    if big:
        layout["template"] = projector_theme()
    layout.update(extra)
    return layout


def style(fig: go.Figure, *, title: str | None = None, height: int | None = None) -> go.Figure:
    """Apply the shared layout to an existing figure."""
    fig.update_layout(**_layout(title, height))
    return fig


def image_figure(
    img: np.ndarray, *, title: str | None = None, height: int | None = None
) -> go.Figure:
    """An RGB uint8 image (H, W, 3), or a grayscale (H, W) array, as a figure with hover values."""
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[2] == 3:
        fig = go.Figure(go.Image(z=arr, hovertemplate="x=%{x}, y=%{y}<br>RGB=%{z}<extra></extra>"))
    else:
        arr2 = arr[..., 0] if arr.ndim == 3 else arr
        fig = go.Figure(
            go.Heatmap(
                z=arr2,
                colorscale="Gray",
                showscale=False,
                hovertemplate="x=%{x}, y=%{y}<br>value=%{z:.4g}<extra></extra>",
            )
        )
    fig.update_yaxes(
        autorange="reversed", scaleanchor="x", constrain="domain", showticklabels=False
    )
    fig.update_xaxes(constrain="domain", showticklabels=False)
    return style(fig, title=title, height=height)


# plotly's height when a figure names none, and the smallest number size still readable.
_DEFAULT_HEIGHT = 450
_MIN_VALUE_FONT = 8


def _value_font_size(text: np.ndarray | None, height: int | None) -> int:
    """The size of the numbers written in a heat map's cells: 22 px on a projector, 14 px
    otherwise, smaller when the longest number would not fit its cell (square cells, so the
    cell's side is about the plot's height over the rows; a digit is about 0.6 em wide)."""
    base = 22 if projector_mode() else 14
    if text is None or text.size == 0:
        return base
    cell = (height or _DEFAULT_HEIGHT) * 0.85 / max(text.shape)
    chars = max(len(t) for t in text.ravel())
    fits = min(0.9 * cell / (0.6 * chars), 0.6 * cell)
    return int(max(_MIN_VALUE_FONT, min(base, fits)))


def heatmap(
    z: np.ndarray,
    *,
    title: str | None = None,
    colorscale: str | None = None,
    zmid: float | None = None,
    zmin: float | None = None,
    zmax: float | None = None,
    show_values: bool = False,
    height: int | None = None,
    showscale: bool = True,
) -> go.Figure:
    """A 2-D array as a heat map with square pixels, row 0 at the top.

    `zmid` centres a diverging scale (use 0 for signed outputs). NaNs are never produced here:
    a constant array simply shows one colour.
    """
    z = np.nan_to_num(np.asarray(z, dtype=np.float64))
    text = None
    if show_values:
        text = np.vectorize(lambda v: f"{v:.3g}")(z)
    value_size = _value_font_size(text, height)
    ticks = z.shape[0] <= 32 and z.shape[1] <= 32
    trace = go.Heatmap(
        z=z,
        colorscale=colorscale or (DIVERGING if zmid is not None else SEQUENTIAL),
        zmid=zmid,
        zmin=zmin,
        zmax=zmax,
        text=text,
        texttemplate="%{text}" if show_values else None,
        textfont=dict(size=value_size),
        showscale=showscale,
        hovertemplate="row=%{y}, col=%{x}<br>value=%{z:.4g}<extra></extra>",
    )
    layout = _layout(
        title,
        height,
        xaxis=dict(constrain="domain", side="top", showticklabels=ticks),
        yaxis=dict(autorange="reversed", scaleanchor="x", constrain="domain", showticklabels=ticks),
    )
    return go.Figure(trace, layout=layout)


def kernel_figure(
    kernel: np.ndarray, *, title: str | None = "Kernel", height: int | None = None
) -> go.Figure:
    """A kernel as a diverging heat map with its numbers written in each cell."""
    k = np.asarray(kernel, dtype=np.float64)
    bound = float(np.abs(k).max()) or 1.0
    return heatmap(
        k,
        title=title,
        colorscale=DIVERGING,
        zmid=0.0,
        zmin=-bound,
        zmax=bound,
        show_values=k.size <= 15 * 15,
        height=height,
        showscale=False,
    )


# Okabe-Ito colours (colour-blind safe), one per transfer-learning mode.
_MODE_COLOURS = {"scratch": "#D55E00", "frozen": "#0072B2", "finetune": "#009E73"}


def mode_curves(
    histories: dict[str, dict[str, list[float]]],
    *,
    metric: str = "val_accuracy",
    chance: float | None = None,
    title: str | None = None,
    height: int = 340,
) -> go.Figure:
    """One curve per training mode (scratch / frozen / fine-tuned) of one metric per epoch,
    with an optional dotted "chance" line."""
    width = 4 if projector_mode() else 2
    data = [
        go.Scatter(
            x=list(range(1, len(h.get(metric, [])) + 1)),
            y=h.get(metric, []),
            name=mode,
            mode="lines",
            line=dict(color=_MODE_COLOURS.get(mode), width=width),
        )
        for mode, h in histories.items()
    ]
    shapes = []
    if chance is not None:
        shapes.append(
            dict(type="line", xref="paper", x0=0, x1=1, y0=chance, y1=chance,
                 line=dict(dash="dot", color="gray"))
        )  # fmt: skip
    label = metric.replace("val_", "validation ").replace("_", " ")
    return go.Figure(
        data,
        _layout(
            title,
            height,
            xaxis=dict(title="epoch"),
            yaxis=dict(title=label, rangemode="tozero"),
            shapes=shapes,
            legend=dict(orientation="h", y=-0.25),
        ),
    )


# --------------------------------------------------------------------------------------------
# Number grids (Step by step): heat maps with each cell's number, updated in place per step
# --------------------------------------------------------------------------------------------
# An outline visible on any colour: white under black.
OUTLINE = (dict(color="white", width=6), dict(color="black", width=3))


def set_grid_values(fig: go.Figure, z: np.ndarray, show: bool) -> None:
    """New numbers for a number grid's heat map; NaN cells stay blank (not computed yet,
    padding, gaps). Cheap: a step of the stepper costs this, not a new figure."""
    fig.data[0].z = z
    if show:
        fig.data[0].text = np.where(np.isnan(z), "", np.char.mod("%.3g", np.nan_to_num(z)))


def number_grid(
    z: np.ndarray,
    title: str,
    *,
    height: int,
    show: bool | None = None,
    max_text_side: int = 16,
    **kw,
) -> go.Figure:
    """A heat map with the numbers in its cells when they fit (hover shows them always).

    Args:
        z: (h, w) numbers; NaN cells are drawn blank.
        show: write the numbers in the cells; default when no side exceeds `max_text_side`.
        **kw: passed to `heatmap` (colorscale, zmid, zmin, zmax, showscale).
    """
    z = np.asarray(z, dtype=np.float64)
    show = max(z.shape) <= max_text_side if show is None else show
    kw.setdefault("showscale", not show)  # a colour bar only when the numbers are hidden
    fig = heatmap(np.nan_to_num(z), title=title, show_values=show, height=height, **kw)
    set_grid_values(fig, z, show)
    # Fixed ranges: the grid keeps its shape while blank (NaN) cells fill in; one tick per cell.
    x_axis, y_axis = fig.layout.xaxis, fig.layout.yaxis
    x_axis.range, y_axis.range, y_axis.autorange = (
        [-0.5, z.shape[1] - 0.5],
        [z.shape[0] - 0.5, -0.5],
        False,
    )
    x_axis.showgrid = y_axis.showgrid = x_axis.zeroline = y_axis.zeroline = False
    fig.layout.margin.t = 76  # room for the title above the column numbers
    if show:
        x_axis.dtick = y_axis.dtick = 1
    return fig


def cell_outline(r0: float, r1: float, c0: float, c1: float) -> list[dict]:
    """Layout shapes outlining cells r0..r1 × c0..c1 of a number grid."""
    box = dict(type="rect", x0=c0 - 0.5, x1=c1 + 0.5, y0=r0 - 0.5, y1=r1 + 0.5)
    return [dict(box, line=line) for line in OUTLINE]


# --------------------------------------------------------------------------------------------
# Gabor: a kernel as a surface, the winning orientation per pixel
# --------------------------------------------------------------------------------------------
ORIENTATION_SCALE = "Twilight"  # cyclic: 0° and 180° look alike, as their stripes do


def surface(z: np.ndarray, title: str, *, height: int = 360) -> go.Figure:
    """A 2-D array (a kernel part) as a 3-D surface: height = weight, blue-red around 0."""
    b = float(np.abs(z).max()) or 1.0
    fig = go.Figure(go.Surface(z=z, colorscale=DIVERGING, cmin=-b, cmax=b, showscale=False))
    fig.update_layout(scene={"aspectmode": "manual", "aspectratio": {"x": 1, "y": 1, "z": 0.5}})
    return style(fig, title=title, height=height)


def orientation_figure(
    theta_deg: np.ndarray,
    hidden: np.ndarray | None = None,
    *,
    title: str = "Orientation map: which θ won",
    height: int = 360,
) -> go.Figure:
    """Winning orientation per pixel in degrees [0, 180], on a cyclic colour scale.

    `hidden` (bool, same shape) blanks pixels, e.g. where no filter responds.
    """
    z = np.asarray(theta_deg, dtype=np.float64)
    if hidden is not None:
        z = np.where(hidden, np.nan, z)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            colorscale=ORIENTATION_SCALE,
            zmin=0,
            zmax=180,
            colorbar={"title": "θ (°)", "tickvals": [0, 45, 90, 135, 180]},
            hovertemplate="row=%{y}, col=%{x}<br>θ = %{z:.1f}°<extra></extra>",
        )
    )
    fig.update_yaxes(
        autorange="reversed", scaleanchor="x", constrain="domain", showticklabels=False
    )
    fig.update_xaxes(constrain="domain", showticklabels=False)
    return style(fig, title=title, height=height)


# --------------------------------------------------------------------------------------------
# Line charts: the randomization sanity check, deletion/insertion curves
# --------------------------------------------------------------------------------------------
def sanity_curve(
    labels: list[str], rhos: list[float | None], *, title: str, height: int = 340
) -> go.Figure:
    """Spearman correlation with the original map after each randomization stage.

    An undefined correlation (None: a flat map, which has no ranking) is a gap in the line and
    a hollow grey mark on the zero line, named "undefined" in the legend and the hover, so no
    stage is silently missing.
    """
    undefined = [i for i, r in enumerate(rhos) if r is None]
    traces = [
        go.Scatter(
            x=labels,
            y=[np.nan if r is None else r for r in rhos],
            mode="lines+markers",
            name="Spearman",
            hovertemplate="scrambled down to %{x}<br>Spearman %{y:.3f}<extra></extra>",
        )
    ]
    if undefined:
        traces.append(
            go.Scatter(
                x=[labels[i] for i in undefined],
                y=[0.0] * len(undefined),
                mode="markers",
                name="undefined: a flat map",
                marker={"symbol": "x-open", "size": 12, "color": "grey"},
                hovertemplate="scrambled down to %{x}<br>the map is flat: no ranking, so no "
                "correlation<extra></extra>",
            )
        )
    fig = go.Figure(traces)
    fig.add_hline(y=0, line_dash="dot")
    fig.update_yaxes(range=[-1.05, 1.05], title="Spearman rank correlation")
    fig.update_xaxes(title="randomized down to layer", categoryorder="array", categoryarray=labels)
    fig.update_layout(showlegend=bool(undefined))
    return style(fig, title=title, height=height)


def faithfulness_curve(
    fractions: np.ndarray,
    curve: np.ndarray,
    baseline: np.ndarray,
    *,
    name: str,
    baseline_name: str = "random map",
    x_title: str,
    y_title: str,
    title: str,
    height: int = 300,
) -> go.Figure:
    """A deletion or insertion curve next to its random-map baseline, probability in [0, 1]."""
    fig = go.Figure(
        [
            go.Scatter(x=fractions, y=curve, name=name, mode="lines+markers"),
            go.Scatter(x=fractions, y=baseline, name=baseline_name, line_dash="dash"),
        ]
    )
    fig.update_xaxes(title=x_title)
    fig.update_yaxes(title=y_title, range=[0, 1.02])
    return style(fig, title=title, height=height)


# --------------------------------------------------------------------------------------------
# Architecture: the shape flow
# --------------------------------------------------------------------------------------------
def shape_flow(steps: list[tuple[str, tuple, str]], *, height: int = 480) -> go.Figure:
    """One box per layer output: height ∝ image side, width ∝ log(channels); vectors as thin
    bars. `steps` holds (layer name, output shape without the batch axis, shape as text)."""
    sides = [s[0] for _, s, _ in steps if len(s) == 3 and s[0]] or [1]
    chans = [s[-1] for _, s, _ in steps if s and s[-1]] or [1]
    top_side, top_chan = max(sides), max(max(chans), 2)
    # Readable from the back row: large while few boxes share the width.
    label_size = (20 if projector_mode() else 15) if len(steps) <= 16 else 12
    fig = go.Figure()
    for i, (name, shape, text) in enumerate(steps):
        if len(shape) == 3 and shape[0]:
            h = 0.15 + 0.85 * shape[0] / top_side
            w = 0.15 + 0.6 * math.log(max(shape[2], 1) + 1) / math.log(top_chan + 1)
            colour = "#4c78a8"
        else:
            units = shape[-1] if shape and shape[-1] else 1
            h = 0.15 + 0.85 * math.log(units + 1) / math.log(max(chans) + 1)
            w, colour = 0.12, "#f58518"
        x0, x1 = i - w / 2, i + w / 2
        fig.add_trace(
            go.Scatter(
                x=[x0, x1, x1, x0, x0],
                y=[-h / 2, -h / 2, h / 2, h / 2, -h / 2],
                fill="toself",
                mode="lines",
                line=dict(color=colour),
                name=name,
                hoverinfo="text",
                text=f"{name}: {text}",
                showlegend=False,
            )
        )
        # The shape over the box, one number per line ("64×64" over "×16"), so the labels
        # stay level and large even with a box every 70 pixels.
        label = text.replace("×", "<br>×", 2).replace("<br>×", "×", 1) if "×" in text else text
        fig.add_annotation(x=i, y=h / 2 + 0.04, text=label, showarrow=False,
                           yanchor="bottom", font=dict(size=label_size))  # fmt: skip
    # Level layer names while they fit (about 16 boxes on a wide page), slanted beyond.
    fig.update_xaxes(
        tickvals=list(range(len(steps))),
        ticktext=[n for n, _, _ in steps],
        tickangle=0 if len(steps) <= 16 else -45,
        tickfont=dict(size=label_size),
        range=[-0.6, len(steps) - 0.4],
    )
    fig.update_yaxes(visible=False, range=[-0.6, 1.15])
    return style(fig, height=height)


# Colour-blind-safe qualitative colours (Okabe & Ito 2008), then Plotly's D3 set for more.
_CLASS_COLOURS = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
]  # fmt: skip


def embedding_figure(
    points: np.ndarray,
    labels: np.ndarray | None,
    class_names: list[str],
    *,
    predicted: np.ndarray | None = None,
    star: tuple[float, float] | None = None,
    star_label: str = "your image",
    title: str | None = None,
    height: int | None = 560,
) -> go.Figure:
    """A 2-D map of images: one point per image, coloured by class, misclassified ones ringed.

    Every point's `customdata` is its image index, so a page can react to a click (selection).
    Hovering shows the index, the true class and the prediction.
    """
    pts = np.asarray(points, np.float64)
    n = len(pts)
    lab = np.zeros(n, np.int64) if labels is None else np.asarray(labels)
    names = class_names or ["image"]
    pred = None if predicted is None else np.asarray(predicted)
    traces = []
    for k in np.unique(lab):
        idx = np.flatnonzero(lab == k)
        name = names[k] if k < len(names) else f"class {k}"
        pred_text = (
            [names[p] if p < len(names) else f"class {p}" for p in pred[idx]]
            if pred is not None
            else ["–"] * len(idx)
        )
        traces.append(
            go.Scattergl(
                x=pts[idx, 0],
                y=pts[idx, 1],
                mode="markers",
                name=name,
                marker=dict(size=6, color=_CLASS_COLOURS[int(k) % len(_CLASS_COLOURS)]),
                customdata=np.stack([idx, np.array(pred_text, dtype=object)], axis=1),
                hovertemplate=f"image #%{{customdata[0]}}<br>class: {name}"
                "<br>predicted: %{customdata[1]}<extra></extra>",
            )
        )
    if pred is not None and labels is not None:
        wrong = np.flatnonzero(pred != lab)
        traces.append(
            go.Scattergl(
                x=pts[wrong, 0],
                y=pts[wrong, 1],
                mode="markers",
                name=f"misclassified ({len(wrong)})",
                marker=dict(size=13, color="rgba(0,0,0,0)", line=dict(color="#d62728", width=2)),
                customdata=np.stack([wrong, wrong], axis=1),
                hovertemplate="image #%{customdata[0]}: misclassified<extra></extra>",
            )
        )
    if star is not None:
        traces.append(
            go.Scatter(
                x=[star[0]],
                y=[star[1]],
                mode="markers",
                name=star_label,
                marker=dict(
                    symbol="star", size=24, color="#FFD700", line=dict(color="black", width=1.5)
                ),
                hovertemplate=f"{star_label}<extra></extra>",
            )
        )
    fig = go.Figure(traces)
    fig.update_xaxes(showticklabels=False, zeroline=False, showgrid=False)
    fig.update_yaxes(showticklabels=False, zeroline=False, showgrid=False, scaleanchor="x")
    return style(fig, title=title, height=height)


def probability_bars(
    classes: list[str],
    probabilities: dict[str, np.ndarray],
    *,
    title: str | None = None,
    height: int | None = None,
    top: int = 8,
) -> go.Figure:
    """Class probabilities as horizontal bars, one colour per series ("before", "after", ...).

    The classes shown are the `top` most probable in any series, most probable first.
    """
    series = {k: np.asarray(v, np.float64) for k, v in probabilities.items()}
    best = np.max(np.stack(list(series.values())), axis=0)
    order = np.argsort(-best)[: min(top, len(classes))][::-1]
    fig = go.Figure(
        [
            go.Bar(
                y=[str(classes[i]) for i in order],
                x=p[order],
                name=name,
                orientation="h",
                hovertemplate="%{y}: %{x:.1%}<extra>" + name + "</extra>",
            )
            for name, p in series.items()
        ]
    )
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=-0.15))
    return style(fig, title=title, height=height)


_OUTLINE = ("white", "black")  # white under black: visible on any colour


def window_map(
    z: np.ndarray,
    *,
    title: str | None = None,
    rows: tuple[int, int] | None = None,
    cols: tuple[int, int] | None = None,
    show_values: bool | None = None,
    height: int | None = 320,
    signed: bool | None = None,
) -> go.Figure:
    """A 2-D map with the cells rows[0]..rows[1] × cols[0]..cols[1] outlined (a window or a
    unit); the box may reach past the edge (padding). Numbers in the cells when they fit."""
    z = np.asarray(z, dtype=np.float64)
    finite = z[np.isfinite(z)]
    signed = bool(finite.size and finite.min() < 0) if signed is None else signed
    bound = float(np.abs(finite).max()) if finite.size else 1.0
    show = max(z.shape) <= 12 if show_values is None else show_values
    fig = heatmap(
        z,
        title=title,
        colorscale=DIVERGING if signed else SEQUENTIAL,
        zmid=0.0 if signed else None,
        zmin=-(bound or 1.0) if signed else None,
        zmax=(bound or 1.0) if signed else None,
        show_values=show,
        height=height,
        showscale=False,
    )
    fig.data[0].z = np.where(np.isfinite(z), z, np.nan)  # padding stays blank
    if show:
        fig.data[0].text = np.where(np.isfinite(z), np.char.mod("%.3g", np.nan_to_num(z)), "")
    if rows is not None and cols is not None:
        box = dict(
            type="rect", x0=cols[0] - 0.5, x1=cols[1] + 0.5, y0=rows[0] - 0.5, y1=rows[1] + 0.5
        )
        fig.layout.shapes = [
            dict(box, line=dict(color=c, width=w)) for c, w in zip(_OUTLINE, (5, 2.5), strict=True)
        ]
        # Keep the window in view when it reaches over the edge onto padding.
        fig.layout.xaxis.range = [min(-0.5, cols[0] - 0.6), max(z.shape[1] - 0.5, cols[1] + 0.6)]
        fig.layout.yaxis.range = [max(z.shape[0] - 0.5, rows[1] + 0.6), min(-0.5, rows[0] - 0.6)]
        fig.layout.yaxis.autorange = False
    return fig


def value_bars(
    values: np.ndarray,
    labels: list[str],
    *,
    title: str | None = None,
    highlight: int | None = None,
    height: int | None = 300,
    percent: bool = False,
) -> go.Figure:
    """Horizontal bars, first label on top; negative bars blue, positive red, one in orange."""
    v = np.asarray(values, dtype=np.float64).ravel()
    colours = ["#d62728" if x >= 0 else "#1f77b4" for x in v]
    if highlight is not None and 0 <= highlight < len(v):
        colours[highlight] = "#ff7f0e"
    text = [f"{x:.1%}" if percent else f"{x:.3g}" for x in v]
    trace = go.Bar(
        x=v,
        y=[html.escape(str(s)) for s in labels],
        orientation="h",
        marker=dict(color=colours),
        text=text,
        textposition="auto",
        hovertemplate="%{y}: %{x:.4g}<extra></extra>",
    )
    layout = _layout(title, height, yaxis=dict(autorange="reversed"), showlegend=False)
    return go.Figure(trace, layout=layout)
