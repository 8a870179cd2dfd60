"""Network: every layer of a CNN at once for your own drawing, and one unit's arithmetic.

After Adam Harley's interactive CNN (draw a digit, every layer lights up) and CNN Explainer
(Wang et al., IEEE VIS 2020: columns of tiles, click one to see its kernel and sums).
"""

import numpy as np
import streamlit as st

from cnnviz import conv, figures, grids, images, models, network
from cnnviz.ui import cache
from cnnviz.ui.models import current_model, fit_image, model_generator, model_samples
from cnnviz.ui.router import use_app_router
from cnnviz.ui.widgets import download_image, image_picker, safe_text

P = "network"
TILES = 8  # tiles per layer column: all channels up to this, else the strongest
EXPLAINABLE = {"conv", "pooling", "dense", "activation"}
# Layers that only rescale or regularise: hidden from the overview unless asked for, so the
# columns that compute (conv, activation, pooling, dense) get the width on a projector.
QUIET = {"preprocessing", "normalization", "dropout"}

use_app_router()
st.title("Network: watch every layer think")
st.markdown(
    "Draw a digit or a shape and watch the whole network react, stroke by stroke. Each column "
    "is one layer, left to right as the picture flows through it; each small tile is one "
    "**feature map** (a channel). **Click a tile** to see the arithmetic behind it: the input "
    "window it reads, its kernel, every product, the bias and the activation, from the "
    "model's real weights."
)

model, info = current_model()
samples = model_samples(info)


def _pick_unit(views: list[network.LayerView], event) -> None:
    """Apply a click on the overview (a tile or a bar) to the layer and channel choices."""
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    if not points:
        return
    data = points[0].get("customdata")
    if not data or len(data) < 2:
        return
    column, channel = int(data[0]), int(data[1])
    if (column, channel) == st.session_state.get(f"{P}._clicked"):
        return  # the same click, seen again on a rerun: keep the student's later choices
    st.session_state[f"{P}._clicked"] = (column, channel)
    if 1 <= column <= len(views) and views[column - 1].kind in EXPLAINABLE:
        view = views[column - 1]
        st.session_state[f"{P}.layer"] = view.name
        st.session_state[f"{P}.channel"] = channel
        _strongest_position(view, channel)


def _strongest_position(view: network.LayerView, channel: int) -> None:
    """Start a channel on its most active unit: the interesting window."""
    if len(view.shape) == 3:
        r, c = np.unravel_index(int(np.argmax(view.output[..., channel])), view.shape[:2])
        st.session_state[f"{P}.row"], st.session_state[f"{P}.col"] = int(r), int(c)


def _layers_png(views: list[network.LayerView]) -> np.ndarray:
    """The overview's tiles as one picture: a row per map layer, input side on top."""
    cells = []
    for v in views:
        if len(v.shape) == 3:
            shown = [v.output[..., c] for c in v.order[:TILES]]
            cells += shown + [np.zeros(v.shape[:2])] * (TILES - len(shown))
    return grids.tile_maps(cells, TILES)


def live() -> None:
    """Picture -> model input -> overview and prediction -> one unit. A stroke reruns only this."""
    left, right = st.columns([1.15, 3], gap="medium")
    with left:
        img, img_name = image_picker(
            P,
            extra=samples,
            default=next(iter(samples), "chelsea"),
            generate=model_generator(info),
        )
        try:
            fed, note = fit_image(model, info, img)
            views = cache.overview(model, fed)
            # The very array the model reads: the same preprocessing as every upload.
            _, prepare = models.resolve(model)
            seen = np.asarray(prepare(fed), np.float32)[0]
        except ValueError as err:
            st.error(str(err))
            return
        head = views[-1]
        probs = None
        if info.class_names and len(head.shape) == 1 and head.shape[0] == len(info.class_names):
            probs = models.to_probabilities(np.asarray(head.output)[None])[0]
        c1, c2 = st.columns(2)
        with c1:
            picture = images.normalize(seen[..., 0] if seen.shape[-1] == 1 else seen)
            st.image(
                grids.tile_maps([picture], 1) if seen.shape[-1] == 1 else picture,
                caption=f"What the model reads: {seen.shape[1]}×{seen.shape[0]}",
                width=112,
            )
        with c2:
            if probs is not None:
                label, p = models.top_k(model, probs, k=1)[0]
                st.metric("Prediction", label, help="The class with the highest probability.")
                st.caption(f"{p:.0%} sure")
            else:
                st.caption("This model has no classifier head, so it makes no prediction.")
        if note:
            st.caption(f"ℹ️ The model sees {safe_text(img_name)} {safe_text(note, 300)}.")
        d1, d2 = st.columns(2)
        with d1:
            download_image(
                "Model input as PNG",
                lambda: images.normalize(seen[..., 0] if seen.shape[-1] == 1 else seen),
                "model_input.png",
                key=f"{P}.dl_input",
            )
        with d2:
            download_image(
                "Layers as PNG", lambda: _layers_png(views), "layers.png", key=f"{P}.dl_layers"
            )

    with right:
        every = st.toggle(
            "Show every layer",
            key=f"{P}.every",
            help="Also the layers that only rescale, normalise or drop out "
            "(Rescaling, BatchNormalization, Dropout).",
        )
    shown = [v for v in views if every or v.kind not in QUIET] or views
    selected = None
    layer_names = [v.name for v in shown]
    if st.session_state.get(f"{P}.layer") in layer_names:
        selected = (
            layer_names.index(st.session_state[f"{P}.layer"]) + 1,
            int(st.session_state.get(f"{P}.channel", 0)),
        )
    with right:
        fig = grids.network_overview(
            seen,
            [(v.name, v.kind, v.output, v.order) for v in shown],
            probs,
            info.class_names if probs is not None else None,
            per_layer=TILES,
            selected=selected,
        )
        event = st.plotly_chart(
            fig, key=f"{P}.overview", on_select="rerun", selection_mode="points"
        )
        st.caption(
            "Input on the left, class scores on the right. Each column shows a layer's maps "
            f"(up to {TILES}; with more channels, the {TILES} strongest for this picture), "
            "one colour range per layer: bright = strong. Hover a tile for its name; click it "
            "to explain it below."
        )
    _pick_unit(shown, event)
    st.divider()
    drill_down(views, fed)


def drill_down(views: list[network.LayerView], fed: np.ndarray) -> None:
    """Choose a layer, channel and position (or click a tile above) and see its arithmetic."""
    st.subheader("One unit, computed by hand")
    choices = [v for v in views if v.kind in EXPLAINABLE]
    if not choices:
        st.info("This model has no convolution, pooling or dense layer to explain.")
        return
    names = [v.name for v in choices]
    if st.session_state.get(f"{P}.layer") not in names:
        first = next((v for v in choices if v.kind == "conv"), choices[0])
        st.session_state[f"{P}.layer"] = first.name
        st.session_state[f"{P}.channel"] = first.order[0]
        _strongest_position(first, first.order[0])
    by_name = {v.name: v for v in choices}

    def new_layer() -> None:
        view = by_name[st.session_state[f"{P}.layer"]]
        st.session_state[f"{P}.channel"] = view.order[0]
        _strongest_position(view, view.order[0])

    c1, c2, c3, c4 = st.columns(4)
    layer = c1.selectbox(
        "Layer",
        names,
        key=f"{P}.layer",
        on_change=new_layer,
        format_func=lambda n: f"{n} · {by_name[n].kind} · {'×'.join(map(str, by_name[n].shape))}",
    )
    view = by_name[layer]
    n_ch = view.shape[-1]
    st.session_state[f"{P}.channel"] = min(int(st.session_state.get(f"{P}.channel", 0)), n_ch - 1)
    channel = c2.number_input(
        "Channel" if len(view.shape) == 3 else "Unit", 0, n_ch - 1, key=f"{P}.channel"
    )
    if len(view.shape) == 3:
        h, w = view.shape[:2]
        for k, hi in (("row", h - 1), ("col", w - 1)):
            st.session_state[f"{P}.{k}"] = min(max(int(st.session_state.get(f"{P}.{k}", 0)), 0), hi)
        c3.number_input("Row", 0, h - 1, key=f"{P}.row")
        c4.number_input("Column", 0, w - 1, key=f"{P}.col")
        playing = st.toggle(
            "▶ Play", key=f"{P}.play", help="Slide the window by itself; switch off to pause."
        )
        # A fragment reruns alone: a step redraws only the unit, and the timer drives "play".
        st.fragment(stepper, run_every=0.8 if playing else None)(view, fed, int(channel))
    else:
        show_unit(cache.explain_unit(model, fed, layer, int(channel), 0, 0), view)


def stepper(view: network.LayerView, fed: np.ndarray, channel: int) -> None:
    """Slide the window: Previous / Next, or play; reruns alone."""
    h, w = view.shape[:2]

    def move(delta: int) -> None:
        k = (int(st.session_state[f"{P}.row"]) * w + int(st.session_state[f"{P}.col"]) + delta) % (
            h * w
        )
        st.session_state[f"{P}.row"], st.session_state[f"{P}.col"] = divmod(k, w)

    if st.session_state.get(f"{P}.play"):
        move(1)  # the timer moves it one step on, wrapping round at the end
    b1, b2, _ = st.columns([1, 1, 3])
    b1.button("◀ Previous", key=f"{P}.prev", on_click=move, args=(-1,))
    b2.button("Next ▶", key=f"{P}.next", on_click=move, args=(1,))
    row, col = int(st.session_state[f"{P}.row"]), int(st.session_state[f"{P}.col"])
    try:
        trace = cache.explain_unit(model, fed, view.name, channel, row, col)
    except ValueError as err:
        st.error(str(err))
        return
    show_unit(trace, view)


def show_unit(t: network.UnitTrace, view: network.LayerView) -> None:
    """The window, kernel, products, sums and activation of one unit."""
    if t.kind == "conv":
        _show_conv(t, view)
    elif t.kind == "pooling":
        _show_pool(t, view)
    elif t.kind == "dense":
        _show_dense(t)
    else:
        st.code(t.equation(), language=None)
    st.caption(
        f"Keras's own output at this unit: {t.value:.6g}; the arithmetic here gives "
        f"{t.computed:.6g} (float32 rounding: {abs(t.computed - t.value):.1e})."
    )


def _show_conv(t: network.UnitTrace, view: network.LayerView) -> None:
    row, col, ch = t.unit
    x = t.layer_input
    cfg = t.config
    # The whole slide of this filter, from cnnviz.conv (the Step-by-step page's engine).
    steps = conv.conv2d_steps(
        x,
        t.kernel,
        bias=t.bias,
        stride=cfg["stride"],
        padding=cfg["padding"],
        dilation=cfg["dilation"],
    )
    step = steps[row * steps.output.shape[1] + col]
    c_in = x.shape[2]
    # The input channel that contributes most to this unit, shown large.
    sums = t.terms.sum(axis=(0, 1))
    key = f"{P}.in_channel"
    if c_in > 1:
        if st.session_state.get(key, -1) >= c_in:
            st.session_state.pop(key)
        shown = st.selectbox(
            "Input channel to show",
            range(c_in),
            index=int(np.argmax(np.abs(sums))),
            key=key,
            format_func=lambda c: f"#{c} (adds {sums[c]:.3g})",
            help="A conv unit reads every input channel; here one of them in detail.",
        )
    else:
        shown = 0
    top, _, left, _ = steps.pads
    r0, c0 = t.rows[0], t.cols[0]
    a, b = st.columns(2)
    a.plotly_chart(
        figures.window_map(
            x[..., shown],
            title=f"Input it reads (channel {shown}), window outlined",
            rows=(r0, t.rows[-1]),
            cols=(c0, t.cols[-1]),
            show_values=max(x.shape[:2]) <= 14,
        ),
        key=f"{P}.in_fig",
    )
    out = view.output[..., ch]
    b.plotly_chart(
        figures.window_map(
            out,
            title=f"Output: {view.name} channel {ch}",
            rows=(row, row),
            cols=(col, col),
            show_values=max(out.shape) <= 14,
        ),
        key=f"{P}.out_fig",
    )
    k1, k2, k3 = st.columns(3)
    window = np.where(t.inside, t.window[..., shown], np.nan)
    k1.plotly_chart(
        figures.window_map(window, title="Window (blank = padding)", height=260),
        key=f"{P}.win_fig",
    )
    k2.plotly_chart(
        figures.kernel_figure(t.kernel[..., shown], title="Kernel", height=260),
        key=f"{P}.k_fig",
    )
    k3.plotly_chart(
        figures.window_map(t.terms[..., shown], title="Products window · kernel", height=260),
        key=f"{P}.p_fig",
    )
    if c_in > 1:
        order = np.argsort(-np.abs(sums))[:16]
        st.plotly_chart(
            figures.value_bars(
                sums[order],
                [f"input channel {c}" for c in order],
                title=f"Sum of the products per input channel (largest {len(order)} of {c_in})",
                height=min(60 + 22 * len(order), 420),
            ),
            key=f"{P}.sums_fig",
        )
    lines = []
    if c_in > 1:
        lines.append(f"channel {shown}: {step.equation(shown)}")
        lines.append(f"all {c_in} channels + bias: {step.equation(by_channel=True)}")
    else:
        lines.append(step.equation())
    if t.activation != "linear":
        lines.append(f"{t.activation}({t.pre_activation:.4g}) = {t.value:.4g}")
    m1, m2, m3 = st.columns(3)
    m1.metric("Σ products", f"{float(t.terms.sum()):.4g}")
    m2.metric("+ bias", f"{t.bias:.4g}")
    m3.metric(f"{t.activation} → output", f"{t.value:.4g}")
    st.code("\n".join(lines), language=None, wrap_lines=True)
    st.caption(
        f"Window at input rows {t.rows[0]}…{t.rows[-1]}, columns {t.cols[0]}…{t.cols[-1]} "
        f"(stride {cfg['stride'][0]}, dilation {cfg['dilation'][0]}, padding "
        f"{cfg['padding']}: {top} row(s) on top, {left} column(s) on the left)."
    )


def _show_pool(t: network.UnitTrace, view: network.LayerView) -> None:
    row, col, ch = t.unit
    x = t.layer_input
    a, b = st.columns(2)
    a.plotly_chart(
        figures.window_map(
            x[..., ch],
            title=f"Input channel {ch}, window outlined",
            rows=(t.rows[0], t.rows[-1]),
            cols=(t.cols[0], t.cols[-1]),
            show_values=max(x.shape[:2]) <= 14,
        ),
        key=f"{P}.in_fig",
    )
    fig = figures.window_map(t.window, title="Window", height=300)
    if t.winner is not None:
        r, c = t.winner
        fig.layout.shapes = [
            dict(
                type="rect",
                x0=c - 0.5,
                x1=c + 0.5,
                y0=r - 0.5,
                y1=r + 0.5,
                line=dict(color="orange", width=4),
            )
        ]
    b.plotly_chart(fig, key=f"{P}.win_fig")
    st.code(t.equation(), language=None)
    st.caption(
        "Max pooling keeps the largest cell (outlined): the network keeps *that* a pattern was "
        "found, not exactly where."
        if t.winner is not None
        else "Average pooling: the mean."
    )


def _show_dense(t: network.UnitTrace) -> None:
    order = np.argsort(-np.abs(t.terms))[:16]
    st.plotly_chart(
        figures.value_bars(
            t.terms[order],
            [f"input {i} ({t.window[i]:.3g} · {t.kernel[i]:.3g})" for i in order],
            title=f"The largest of the {t.terms.size} products input · weight",
            height=60 + 22 * len(order),
        ),
        key=f"{P}.dense_fig",
    )
    st.code(t.equation(max_terms=8), language=None, wrap_lines=True)
    if t.logits is not None:
        names = info.class_names if len(info.class_names) == t.logits.size else None
        labels = names or [str(i) for i in range(t.logits.size)]
        k = t.unit[0]
        z = t.logits
        e = np.exp(z - z.max())
        st.markdown(
            f"**Softmax** turns the layer's {z.size} scores (logits) into probabilities: "
            r"$p_k = e^{z_k} / \sum_j e^{z_j}$. "
            f"For {safe_text(labels[k])}: e^({z[k]:.3g}) / Σ = {t.value:.1%} "
            "(computed with the largest logit subtracted first, which changes nothing but "
            "avoids overflow)."
        )
        st.plotly_chart(
            figures.value_bars(z, labels, title="Logits z (before softmax)", highlight=k),
            key=f"{P}.logits_fig",
        )
        st.caption(
            "e^(z − max z): "
            + ", ".join(f"{safe_text(n)} {v:.3g}" for n, v in zip(labels, e, strict=True))
        )


st.fragment(live)()

with st.expander("What to look for", expanded=False):
    st.markdown(
        """
- **Draw slowly.** After each stroke the whole network runs again: the first layers change
  wherever you drew (edges of your strokes), deeper layers only when the drawing starts to
  look like something they know.
- **Strongest first.** A layer with many channels shows the ones that respond most to *this*
  picture; draw something else and other channels come to the top.
- **Pooling columns** are the conv column before them, half the size: the strongest response
  in each 2×2 window survives.
- **The last column** is the prediction: softmax turns the scores into probabilities that add
  up to 1. A messy drawing spreads them out.
- **Click a tile** and step the window across: each output cell is one sum of input × weight
  plus a bias, then the activation (ReLU: negatives become 0).
"""
    )
