"""Activations: what every layer of a CNN sees in your image (seeds 003 and 001)."""

import numpy as np
import streamlit as st

from cnnviz import activations, figures, grids, images, layers, models
from cnnviz.ui import cache, params
from cnnviz.ui.honesty import familiarity_note
from cnnviz.ui.mapgrid import map_grid
from cnnviz.ui.model_input import model_input_view
from cnnviz.ui.models import current_model, fit_image, model_samples
from cnnviz.ui.router import use_app_router
from cnnviz.ui.widgets import (
    download_array,
    download_image,
    image_picker,
    safe_slider,
    safe_text,
)

P = "activations"
PAGE = 64  # channels per grid page; VGG's 512-channel layers become 8 pages
PAGE_COMPARE = 32  # two grids side by side: half as many channels each
VIEWS = {
    "layer": "One layer, all channels",
    "hierarchy": "Every layer, a few channels",
    "compare": "Two images, one layer",
}

use_app_router()
# Shareable link, e.g. ?sample=...&layer=...&filter=...
LINK = {
    "sample": params.Choice("activations.sample", images.sample_names()),
    "layer": params.Text("activations.layer"),
    "filter": params.Int("activations.channel", 0, 4095),
}
params.bind(LINK, prefix="activations")
st.title("Activations: what every layer sees in your image")
st.markdown(
    "Each convolution layer slides many learned kernels over its input. Each kernel gives one "
    "**feature map** (a *channel*): bright where the kernel found its pattern, dark elsewhere. "
    "A layer's output is also called its **activation**. Here you see them for any image."
)

model, info = current_model()
samples = model_samples(info)
left, right = st.columns([1, 2], gap="large")
with left:
    img, img_name = image_picker(P, extra=samples, default=next(iter(samples), "chelsea"))


# One forward pass per (model, image), cached for every session: switching layer, view or
# channel below only redraws.
try:
    with st.spinner("Running the image through the network…"):
        fed, note = fit_image(model, info, img)
        result = cache.forward(model, fed)
        models.check_finite(result.output)  # a NaN answer gets a message, never a NaN bar
        net, _ = models.resolve(model)
        # The prediction comes from the same cached pass; no second forward pass for it.
        top5 = []
        if info.class_names and result.output.ndim == 1:
            probs = models.to_probabilities(result.output[None])[0]
            top5 = models.top_k(model, probs, k=5)
except ValueError as err:
    st.error(str(err))
    st.stop()

paths = list(result.maps)
if not paths:
    st.error(
        f"Model {safe_text(info.name)} has no convolution, pooling or activation layer with "
        "feature maps, so there is nothing to show here."
    )
    st.stop()
kinds = {i.path: i.class_name for i in layers.list_layers(net)}
convs = set(layers.conv_layer_paths(net))
input_hw = result.inputs.shape[1:3]


def describe(path: str) -> str:
    h, w, c = result.maps[path].shape
    return f"{path} · {kinds.get(path, '?')} · {h}×{w}×{c}"


def remember_layer() -> None:
    # Keep the layer when the student switches view (the select box is the same in all views),
    # and let the new layer start on its most active channel.
    st.session_state[f"{P}._layer"] = st.session_state[f"{P}.layer"]
    st.session_state.pop(f"{P}.channel", None)


with left:
    if note:
        st.caption(f"ℹ️ {safe_text(note, 300)}")
    model_input_view(model, img, key=f"{P}.model_input")
    if top5:
        st.markdown(f"**{safe_text(info.name)} thinks this is:**")
        for label, p in top5:
            st.progress(float(np.clip(p, 0.0, 1.0)), text=f"{safe_text(label)}: {p:.1%}")
        familiarity_note(model, fed, probs)
    else:
        st.caption("This model has no classifier head, so it makes no prediction.")
    view = st.radio(
        "View",
        list(VIEWS),
        format_func=VIEWS.get,
        key=f"{P}.view",
        help="One layer in detail, the whole network at a glance, or two images side by side.",
    )
    remembered = st.session_state.get(f"{P}._layer")
    first_conv = next((p for p in paths if p in convs), paths[0])
    layer = st.selectbox(
        "Layer",
        paths,
        index=paths.index(remembered if remembered in paths else first_conv),
        key=f"{P}.layer",
        format_func=describe,
        on_change=remember_layer,
        help="Layers in the order the image flows through them; name · type · height×width×channels.",
        disabled=view == "hierarchy",
    )

act = result.maps[layer]
n_ch = act.shape[-1]
stats = activations.channel_stats(act)


def page_picker(size: int) -> tuple[int, int]:
    """A select box over pages of `size` channels when they do not fit one grid."""
    pages = [(s, min(s + size, n_ch)) for s in range(0, n_ch, size)]
    if len(pages) == 1:
        return pages[0]
    key = f"{P}.page{size}"
    if st.session_state.get(key) not in pages:
        st.session_state.pop(key, None)
    return st.selectbox(
        "Channels",
        pages,
        key=key,
        format_func=lambda p: f"{p[0]}–{p[1] - 1} of {n_ch}",
        help=f"{n_ch} channels are shown {size} at a time.",
    )


def npz_button(maps: dict, file_name: str, key: str) -> None:
    st.download_button(
        "Activations as NPZ",
        data=lambda: activations.to_npz(maps),
        file_name=file_name,
        mime="application/octet-stream",
        key=key,
        on_click="ignore",
        help="numpy: np.load(file)['layer name'] gives one layer's array.",
    )


def stem(path: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in path)


# One colour map in every view, grid, large map and overlay: white is 0, red positive, blue
# negative (batch norm makes values negative; a ReLU never does).
CMAP = figures.DIVERGING


def limits(maps: list[np.ndarray], shared: bool) -> list[tuple[float, float]]:
    """Colour limits symmetric around 0, one pair per map (white is always exactly 0).

    A flat map (the same value everywhere) gets the limits of all the maps together, so its
    colour shows its value honestly: an all-zero map is white, not the darkest colour of a
    range stretched around nothing.
    """
    tops = [float(np.abs(m).max()) for m in maps]
    every = max(tops, default=0.0) or 1.0
    if shared:
        return [(-every, every)] * len(maps)
    return [
        (-every, every) if float(m.max()) == float(m.min()) or t == 0.0 else (-t, t)
        for m, t in zip(maps, tops, strict=True)
    ]


def flat_title(i: int, a: np.ndarray, empty: bool) -> str:
    """ "#3", "#3 ∅" (all zero) or "#3 ∅=-0.16" (flat at a constant that is not 0)."""
    if not empty:
        return f"#{i}"
    v = float(a.flat[0])
    return f"#{i} ∅" if v == 0.0 else f"#{i} ∅={v:.2g}"


def flat_note(act: np.ndarray, empty: np.ndarray) -> str:
    """Why a flat map has a colour: a sentence when some flat maps are not zero, else ""."""
    nonzero = [c for c in np.flatnonzero(empty) if float(act[..., c].flat[0]) != 0.0]
    if not nonzero:
        return ""
    c = nonzero[0]
    return (
        f" {len(nonzero)} flat maps are not 0 (#{c} is {float(act[..., c].flat[0]):.3g} "
        "everywhere): a batch normalisation before this layer maps the 0 of an empty map to "
        "one constant (its learned offset β − γ·μ/σ), and pooling keeps it. The filter still "
        "found nothing; the colour shows that constant on this layer's scale."
    )


def what_to_look_for() -> str:
    """The layer view's notes, about the model shown (not about the seed's cat)."""
    conv_order = [p for p in paths if p in convs]
    first_c, last_c = (conv_order[0], conv_order[-1]) if conv_order else (paths[0], paths[-1])
    (h1, w1, c1), (h2, w2, c2) = result.maps[first_c].shape, result.maps[last_c].shape
    n_empty = int(activations.empty_channels(result.maps[first_c]).sum())
    classes = ", ".join(safe_text(c, 20) for c in info.class_names[:6])
    more = "…" if len(info.class_names) > 6 else ""
    trained = (
        f"{safe_text(info.name)} was trained to tell {len(info.class_names)} classes apart "
        f"({classes}{more})"
        if info.class_names and not info.random_weights
        else f"{safe_text(info.name)} has random weights: nothing was learnt, so expect noise"
    )
    if info.random_weights:
        parts = "only by chance"
    elif info.kind == "imagenet":
        parts = "in photos, such as an animal's eyes and ears (seed 003's cat)"
    else:
        parts = {
            "shapes": "of an outline: look for maps that light up only along straight sides, "
            "only at corners, or only on curves",
            "digits": "of pen strokes: look for maps that light up on loops, on bars, or at "
            "the ends of strokes",
        }.get(info.name, "of what it was trained on")
    return f"""
- **The first layer ({safe_text(first_c)}, {h1}×{w1}, {c1} maps) detects edges.** Each map is
  the picture filtered by one learned kernel: it lights up along edges of one direction or
  one kind of brightness change, like the Sobel and Gabor kernels of the *Kernels* lesson.
  For this picture {n_empty} of its {c1} maps are empty (∅).
- **Deeper layers ({safe_text(last_c)}: {h2}×{w2}, {c2} maps) respond to larger patterns**
  {parts}. {trained}. Their maps are smaller and there are more of them: the network trades
  resolution for more kinds of features. Compare two pictures in *Two images, one layer*.
- **Empty maps (∅)** are not broken: the picture simply lacks what that filter looks for.
  Try another picture and they may light up.
- **Sparsity.** After a ReLU most numbers are exactly zero (white here; seed 001: "hidden
  layers see a high level of sparsity"). The *shared* colour scale shows how few channels
  respond strongly.
"""


# --------------------------------------------------------------------------------------------
# Layer view: every channel of one layer, then one channel large.
# --------------------------------------------------------------------------------------------
if view == "layer":
    with right:
        c1, c2 = st.columns([1, 1])
        with c1:
            first, stop = page_picker(PAGE)
        with c2:
            shared = (
                st.radio(
                    "Colour scale",
                    ["per channel", "shared"],
                    horizontal=True,
                    key=f"{P}.scale",
                    help="Per channel: each map uses its own range, so weak patterns show. "
                    "Shared: one range for all, so you see which channels respond most.",
                )
                == "shared"
            )
        ch_key = f"{P}.channel"
        if not 0 <= st.session_state.get(ch_key, -1) < n_ch:
            # First show (or a layer with fewer channels): start on the most active channel.
            st.session_state[ch_key] = int(np.argmax(stats["mean"]))
        # A one-filter layer has a single channel: safe_slider shows a caption, not a slider.
        channel = safe_slider(
            "Channel to see large",
            0,
            n_ch - 1,
            key=ch_key,
            help="Each channel is the output of one learned filter.",
        )
        idx = range(first, stop)
        maps = np.moveaxis(act[..., first:stop], -1, 0)
        empty = stats["empty"][first:stop]
        layer_limits = limits(list(np.moveaxis(act, -1, 0)), shared)
        map_grid(
            maps,
            [flat_title(i, act[..., i], stats["empty"][i]) for i in idx],
            choose_cols=True,
            zlimits=layer_limits[first:stop],
            colorscale=CMAP,
            marked=empty,
            highlight=channel - first if first <= channel < stop else None,
            key=f"{P}.grid",
            file_name=f"{stem(layer)}_channels_{first}-{stop - 1}.png",
            download_key=f"{P}.dl_grid",
        )
        n_empty = int(stats["empty"].sum())
        h, w = act.shape[:2]
        st.caption(
            f"{n_ch} channels of {h}×{w}. **{n_empty} empty** for this image (∅, red dotted "
            f"outline: the map is flat, the filter found nothing). On average "
            f"{stats['sparsity'].mean():.0%} of the values are exactly zero. White is 0, red "
            "positive, blue negative; hover for the numbers." + flat_note(act, stats["empty"])
        )
        d2, d3 = st.columns(2)
        with d2:
            npz_button(result.maps, "activations.npz", f"{P}.dl_npz")
        with d3:
            table = np.column_stack(
                [np.arange(n_ch), stats["mean"], stats["max"], stats["sparsity"], stats["empty"]]
            )
            download_array(
                "Channel statistics as CSV",
                table,
                f"{stem(layer)}_stats.csv",
                key=f"{P}.dl_stats",
            )

        one = act[..., channel]
        st.markdown(
            f"**Channel {channel}** of {safe_text(layer)}: mean {stats['mean'][channel]:.3g}, "
            f"max {stats['max'][channel]:.3g}, {stats['sparsity'][channel]:.0%} zeros"
            + (" · **empty**" if stats["empty"][channel] else "")
        )
        big_l, big_r = st.columns(2)
        with big_l:
            one_limits = [layer_limits[channel]]
            st.plotly_chart(
                grids.channel_grid(
                    [one],
                    [f"{h}×{w} map"],
                    max_side=512,
                    cell_px=320,
                    zlimits=one_limits,
                    colorscale=CMAP,
                ),
                key=f"{P}.channel_fig",
            )
            download_image(
                "Map as PNG",
                lambda: grids.tile_maps([one], 1, zlimits=one_limits, colorscale=CMAP),
                f"{stem(layer)}_channel{channel}.png",
                key=f"{P}.dl_channel",
            )
        with big_r:
            base = images.resize(img, tuple(input_hw))
            # The same colours as the map: 0.5 (white) is 0 on the map's symmetric scale.
            bound = one_limits[0][1]
            over = images.overlay(base, 0.5 + 0.5 * one / bound, cmap=CMAP)
            st.image(
                over,
                caption=f"over the input, at the input's size {input_hw[1]}×{input_hw[0]}",
                width="stretch",
            )
            download_image(
                "Overlay as PNG",
                over,
                f"{stem(layer)}_channel{channel}_overlay.png",
                key=f"{P}.dl_overlay",
            )

        with st.expander("What to look for", expanded=True):
            st.markdown(what_to_look_for())

# --------------------------------------------------------------------------------------------
# Hierarchy view: the first channels of every layer, top to bottom.
# --------------------------------------------------------------------------------------------
elif view == "hierarchy":
    with right:
        c1, c2 = st.columns([1, 1])
        with c1:
            per_layer = st.slider("Channels per layer", 1, 16, 8, key=f"{P}.per_layer")
        with c2:
            conv_only = st.toggle(
                "Convolution layers only",
                key=f"{P}.conv_only",
                help="Hide pooling and activation layers.",
            )
        rows = [p for p in paths if not conv_only or p in convs] or paths
        # Every row has the same number of cells, so a narrow layer limits them all.
        k = min(per_layer, min(result.maps[p].shape[-1] for p in rows))
        cells, titles, flags, cell_limits = [], [], [], []
        for p in rows:
            a = result.maps[p]
            empty = activations.empty_channels(a)
            # Each layer on its own scale (its values differ by orders of magnitude).
            row_limits = limits([a[..., c] for c in range(k)], False)
            for c in range(k):
                cells.append(a[..., c])
                name = flat_title(c, a[..., c], bool(empty[c]))
                titles.append(f"{p.rsplit('/', 1)[-1]} {name}" if c == 0 else name)
                flags.append(bool(empty[c]))
                cell_limits.append(row_limits[c])
        # One row per layer: the layout is the lesson, so the tiles per row are fixed.
        map_grid(
            cells,
            titles,
            cols=k,
            marked=flags,
            zlimits=cell_limits,
            colorscale=CMAP,
            max_side=40,
            cell_px=90,
            key=f"{P}.hierarchy",
            label="Hierarchy as PNG",
            file_name="hierarchy.png",
            download_key=f"{P}.dl_hier",
        )
        st.caption(
            "One row per layer, input side at the top; each row is "
            + ", ".join(f"{result.maps[p].shape[0]}×{result.maps[p].shape[1]}" for p in rows[:6])
            + ("…" if len(rows) > 6 else "")
            + " pixels. ∅ and a red dotted outline mark empty (flat) maps; white is 0, red "
            "positive, blue negative. "
            "A flat map marked ∅=value is an empty map moved off 0 by the batch normalisation "
            "before it: the filter found nothing, but batch norm adds its learned offset."
        )
        npz_button({p: result.maps[p] for p in rows}, "activations.npz", f"{P}.dl_npz_hier")
        with st.expander("What to look for", expanded=True):
            st.markdown(
                """
- **A spatial hierarchy** (seed 003). The top rows keep the image's layout: you can still
  recognise it, traced in edges. Each layer down combines the patterns of the layer above over
  a larger area, so the maps get coarser and more abstract.
- **Pooling rows** halve the size and keep the strongest responses: the network cares *that* a
  pattern is there more than exactly *where*.
- Empty maps appear more often deeper down: specialised features that this image does not
  contain.
"""
            )

# --------------------------------------------------------------------------------------------
# Compare view: the same layer for two images, and each channel's mean for both.
# --------------------------------------------------------------------------------------------
else:
    with right:
        img_b, name_b = image_picker(
            f"{P}.b",
            default=list(samples)[1] if len(samples) > 1 else "coffee",
            label="Second image",
            share=False,
            extra=samples,
        )
        try:
            with st.spinner("Running the second image through the network…"):
                result_b = cache.forward(model, fit_image(model, info, img_b)[0])
        except ValueError as err:
            st.error(str(err))
            st.stop()
        act_b = result_b.maps[layer]
        stats_b = activations.channel_stats(act_b)
        first, stop = page_picker(PAGE_COMPARE)
        idx = range(first, stop)
        # One colour range per channel across both images, so equal colours mean equal numbers.
        lo = np.minimum(act[..., idx].min(axis=(0, 1)), act_b[..., idx].min(axis=(0, 1)))
        hi = np.maximum(act[..., idx].max(axis=(0, 1)), act_b[..., idx].max(axis=(0, 1)))
        # Symmetric around 0 (white), as in the other views.
        bound = np.maximum(np.abs(lo), np.abs(hi))
        pair_limits = [(-float(b), float(b)) if b > 0 else (-1.0, 1.0) for b in bound]
        ca, cb = st.columns(2)
        for col, a, s, name, tag in (
            (ca, act, stats, img_name, "a"),
            (cb, act_b, stats_b, name_b, "b"),
        ):
            with col:
                st.markdown(f"**{safe_text(name)}**")
                maps = np.moveaxis(a[..., first:stop], -1, 0)
                map_grid(
                    maps,
                    [f"#{i}" for i in idx],
                    cols=4,
                    marked=s["empty"][first:stop],
                    zlimits=pair_limits,
                    colorscale=CMAP,
                    cell_px=80,
                    key=f"{P}.compare_{tag}",
                    file_name=f"{stem(layer)}_{tag}.png",
                    download_key=f"{P}.dl_compare_{tag}",
                )
        st.plotly_chart(
            grids.paired_scatter(
                stats["mean"],
                stats_b["mean"],
                [f"channel {i}" for i in range(n_ch)],
                x_title=f"mean activation: {img_name}",
                y_title=f"mean activation: {name_b}",
                marked=stats["empty"] | stats_b["empty"],
                title=f"Each point is one channel of {layer}",
            ),
            key=f"{P}.scatter",
        )
        d1, d2 = st.columns(2)
        with d1:
            download_array(
                "Channel means as CSV",
                np.column_stack([np.arange(n_ch), stats["mean"], stats_b["mean"]]),
                f"{stem(layer)}_means.csv",
                key=f"{P}.dl_means",
            )
        with d2:
            npz_button({"a/" + layer: act, "b/" + layer: act_b}, "compare.npz", f"{P}.dl_npz_cmp")
        with st.expander("What to look for", expanded=True):
            st.markdown(
                """
- **The same filter responds differently to different inputs** (seed 003's cat vs dog: "very
  different activations"). A channel far above the dashed line fires more for the second
  image, far below it for the first.
- In the **first layers** the points hug the line: every photo has edges. **Deeper**, they
  spread out: those channels respond to things one image has and the other lacks.
- Crosses mark channels empty for at least one of the images.
"""
            )

params.sync(LINK, prefix="activations")
