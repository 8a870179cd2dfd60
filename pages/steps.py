"""Step by step: convolution and pooling one output value at a time, every number visible."""

import numpy as np
import streamlit as st

from cnnviz import conv, figures, images
from cnnviz.ui.kernel_editor import kernel_editor
from cnnviz.ui.router import use_app_router
from cnnviz.ui.widgets import download_array, image_picker

use_app_router()

P = "steps"
STEP = f"{P}.step"
SEED_CONV = "Seed 001: the 5×5 convolution example"
SEED_POOL = "Seed 001: the 4×4 max-pooling example"
RANDOM = "Random small integers"
IMAGE = "An image at digit size (28×28)"
CONV, MAX, AVG = "Convolution", "Max pooling", "Average pooling"
# Seed 001's worked example (valid padding, stride 1) and its 4×4 max-pooling picture.
SEED_X = np.array(
    [[3, 3, 2, 1, 0], [0, 0, 1, 3, 1], [3, 1, 2, 2, 3], [2, 0, 0, 2, 2], [2, 0, 0, 0, 1]]
)
SEED_KERNEL_NAME = "seed 001 example 3×3"
SEED_KERNEL = np.array([[0, 1, 2], [2, 2, 0], [0, 1, 2]], dtype=np.float64)
SEED_POOL_X = np.array([[2, 3, 4, 0], [1, 5, 3, 2], [0, 4, 2, 3], [1, 0, 6, 1]])
CHANNEL_NAMES = ("R", "G", "B")
# Above this many cells per side the numbers no longer fit in the cells: hover shows them.
MAX_TEXT_SIDE = 16


def _load_example() -> None:
    """Choosing a seed example also sets the controls that reproduce the seed's numbers."""
    source = st.session_state[f"{P}.input"]
    if source == SEED_CONV:
        st.session_state.update(
            {
                f"{P}.op": CONV,
                f"{P}.kernel_source": "Preset",
                f"{P}.preset": SEED_KERNEL_NAME,
                f"{P}.padding": "valid",
                f"{P}.stride": 1,
                f"{P}.dilation": 1,
                f"{P}.bias": 0.0,
            }
        )
    elif source == SEED_POOL:
        st.session_state.update(
            {f"{P}.op": MAX, f"{P}.pool_size": 2, f"{P}.pool_stride": 2, f"{P}.padding": "valid"}
        )
    st.session_state[STEP] = 1


st.title("Step by step: convolution and pooling")
st.markdown(
    "A convolution layer makes **one number at a time**: it lays the kernel on a window of the "
    "input, multiplies the cells under the kernel by its weights, adds the products up and adds "
    "the bias. Then it moves the window by the stride and does it again. Step through it below: "
    "every number is the one Keras's `Conv2D`, `MaxPooling2D` and `AveragePooling2D` compute."
)

left, right = st.columns([1, 2.4], gap="large")
with left:
    source = st.selectbox(
        "Input",
        [SEED_CONV, SEED_POOL, RANDOM, IMAGE],
        key=f"{P}.input",
        on_change=_load_example,
        help="The seed examples also set the controls that reproduce the lecture's numbers.",
    )
    if source == SEED_CONV:
        x = SEED_X.astype(np.float64)
    elif source == SEED_POOL:
        x = SEED_POOL_X.astype(np.float64)
    elif source == RANDOM:
        c1, c2 = st.columns(2)
        side = c1.slider("Size", 3, 12, 6, key=f"{P}.rand_side")
        seed = c2.number_input("Random seed", 0, 10_000, 0, key=f"{P}.rand_seed")
        channels = st.radio(
            "Channels",
            [1, 3],
            horizontal=True,
            key=f"{P}.rand_channels",
            format_func={1: "1 (grey)", 3: "3 (RGB)"}.get,
        )
        shape = (side, side) if channels == 1 else (side, side, 3)
        x = np.random.default_rng(int(seed)).integers(0, 10, shape).astype(np.float64)
    else:
        img, img_name = image_picker(P)
        colour = st.radio("Colour", ["Grayscale", "RGB"], horizontal=True, key=f"{P}.colour")
        # 28×28 like an MNIST digit (seed 003): small enough to step through, big enough to see.
        small = images.resize(img, (28, 28))
        x = np.round(images.to_gray(small)) if colour == "Grayscale" else small.astype(np.float64)
        st.caption(f"{img_name}, downscaled to 28×28; pixel values 0–255.")

    op = st.radio("Operation", [CONV, MAX, AVG], horizontal=True, key=f"{P}.op")
    if op == CONV:
        kernel, kernel_label = kernel_editor(
            P,
            default=SEED_KERNEL_NAME,
            extra={SEED_KERNEL_NAME: (SEED_KERNEL, "The kernel of seed 001's worked 5×5 example.")},
        )
        c1, c2 = st.columns(2)
        bias = c1.number_input("Bias b", -10_000.0, 10_000.0, 0.0, 0.5, key=f"{P}.bias")
        relu = c2.toggle("ReLU after", key=f"{P}.relu", help="max(0, value): negatives become 0.")
    else:
        kernel, kernel_label, bias, relu = None, "", 0.0, False
        pool_size = st.slider("Pooling window", 1, 5, 2, key=f"{P}.pool_size")
    padding = st.radio(
        "Padding",
        ["valid", "same"],
        horizontal=True,
        key=f"{P}.padding",
        help="valid: windows stay inside the input. same: pad so that output = ⌈input / stride⌉.",
    )
    if op == CONV:
        c1, c2 = st.columns(2)
        stride = c1.slider("Stride", 1, 3, 1, key=f"{P}.stride")
        dilation = c2.slider("Dilation", 1, 3, 1, key=f"{P}.dilation", help="Gap between taps.")
    else:
        stride = st.slider(
            "Stride", 1, 3, 2, key=f"{P}.pool_stride", help="Keras's default is the window size."
        )
        dilation = 1

if op == CONV and kernel is None:
    st.stop()

n_channels = 1 if x.ndim == 2 else x.shape[2]
try:
    if op == CONV:
        # One filter sees every input channel: the same weights on R, G and B, summed (Conv2D).
        k3 = np.repeat(kernel[:, :, None], n_channels, axis=2)
        trace = conv.conv2d_steps(
            x, k3, bias=bias, stride=stride, padding=padding, dilation=dilation
        )
    else:
        trace = conv.pool2d_steps(
            x, pool_size, stride=stride, padding=padding, op="max" if op == MAX else "avg"
        )
except conv.ConvError as err:
    st.error(str(err))
    st.stop()

out_all = np.maximum(trace.output, 0.0) if relu else trace.output
# Everything the figures depend on apart from the step (the figure cache's key).
SETTING = hash(
    (
        x.shape,
        x.tobytes(),
        op,
        None if kernel is None else kernel.tobytes(),
        kernel_label,
        bias,
        relu,
    )
    + (padding, stride, dilation, trace.size, figures.projector_mode())
)
padded_note = " (padded)" if any(trace.pads) else ""
kh, kw = trace.size
top, bottom, pad_l, pad_r = trace.pads
ho, wo, n_out = trace.output.shape


def _fmt(v: float) -> str:
    return f"{v:.6g}".replace("-", "−")


def _side_by_side(a: np.ndarray) -> np.ndarray:
    """(h, w, C) -> (h, C·w + C − 1): the channels next to each other, one blank column apart."""
    if a.ndim == 2 or a.shape[2] == 1:
        return a.reshape(a.shape[0], a.shape[1])
    gap = np.full((a.shape[0], 1), np.nan)
    blocks = []
    for c in range(a.shape[2]):
        blocks += [a[:, :, c], gap]
    return np.hstack(blocks[:-1])


def _figure(name: str, build):
    """Figures that only change numbers and outlines from step to step are built once per
    setting and updated in place: a step then costs an update, not a new figure."""
    store = st.session_state.setdefault(f"{P}._figures", {})
    if store.get("setting") != SETTING:
        store.clear()
        store["setting"] = SETTING
    if name not in store:
        store[name] = build()
    return store[name]


def stepper() -> None:
    """The step slider, the buttons and the four views; reruns alone when stepping."""
    n = len(trace)
    k = min(max(int(st.session_state.get(STEP, 1)), 1), n)
    if st.session_state.get(f"{P}.play") and n > 1:
        k = k % n + 1  # the timer moves one step on; after the last step it starts again
    st.session_state[STEP] = k

    def shift(delta: int) -> None:
        st.session_state[STEP] = min(max(int(st.session_state[STEP]) + delta, 1), n)

    b1, b2, b3 = st.columns([1.3, 1.3, 5], vertical_alignment="bottom")
    b1.button("◀ Previous", key=f"{P}.prev", on_click=shift, args=(-1,), disabled=k <= 1)
    b2.button("Next ▶", key=f"{P}.next", on_click=shift, args=(1,), disabled=k >= n)
    if n > 1:
        b3.slider(f"Step (of {n})", 1, n, key=STEP)
    else:
        b3.caption("This output has a single value: one step.")

    s = trace[k - 1]
    i, j, m = s.out
    value = max(s.value, 0.0) if relu else s.value
    multi = op == CONV and n_channels > 1

    # The padded input with the window outlined: every channel for conv, channel m for pooling.
    def build_input():
        shown = trace.padded if op == CONV else trace.padded[:, :, m : m + 1]
        if op != CONV:
            shown = np.where(trace.inside[:, :, None], shown, np.nan)  # pooling ignores padding
        title = "Input channels " + " | ".join(CHANNEL_NAMES[:n_channels]) if multi else "Input"
        return figures.number_grid(
            _side_by_side(shown), title + padded_note, height=340, showscale=False
        )

    fig_in = _figure(f"input{0 if op == CONV else m}", build_input)
    hp, wp = trace.padded.shape[:2]
    shapes: list[dict] = []
    for c in range(n_channels if op == CONV else 1):
        off = c * (wp + 1)  # channels sit side by side, one blank column apart
        if any(trace.pads):  # the real input, dashed, inside the padding
            box = dict(
                x0=off + pad_l - 0.5, x1=off + wp - pad_r - 0.5, y0=top - 0.5, y1=hp - bottom - 0.5
            )
            shapes.append(dict(type="rect", line=dict(color="grey", width=1, dash="dash"), **box))
        shapes += figures.cell_outline(s.rows[0], s.rows[-1], off + s.cols[0], off + s.cols[-1])
        if dilation > 1:  # dilated taps: mark each cell the kernel actually touches
            tap = dict(type="rect", line=dict(color="black", width=1.5))
            shapes += [
                dict(tap, x0=off + cc - 0.35, x1=off + cc + 0.35, y0=r - 0.35, y1=r + 0.35)
                for r in s.rows
                for cc in s.cols
            ]
    fig_in.layout.shapes = shapes  # assigning is ~15× faster than update_layout(shapes=...)

    # The output so far: values up to this step, the current one outlined.
    def build_output():
        title = f"Output {ho}×{wo}" + (f", channel {CHANNEL_NAMES[m]}" if n_out > 1 else "")
        scale = dict(zmid=0.0, zmin=-bound, zmax=bound) if signed else dict(zmin=low, zmax=bound)
        return figures.number_grid(out_all[:, :, m], title, height=340, **scale)

    bound = float(np.abs(out_all).max()) or 1.0
    signed, low = bool((out_all < 0).any()), float(out_all.min())
    fig_out = _figure(f"output{m}", build_output)
    order = np.arange(trace.output.size).reshape(trace.output.shape)[:, :, m]
    figures.set_grid_values(
        fig_out, np.where(order < k, out_all[:, :, m], np.nan), max(ho, wo) <= MAX_TEXT_SIDE
    )
    fig_out.layout.shapes = figures.cell_outline(i, i, j, j)

    col_in, col_out = st.columns(2)
    col_in.plotly_chart(fig_in, key=f"{P}.fig_input")
    col_out.plotly_chart(fig_out, key=f"{P}.fig_output")

    col_k, col_p, col_v = st.columns([1, 1.2, 1.3])
    if op == CONV:

        def build_kernel():
            w = _side_by_side(s.weights)
            title = "Kernel" + (" per channel" if multi else "")
            fig = figures.kernel_figure(np.nan_to_num(w), title=title, height=260)
            fig.layout.margin.t = 76
            figures.set_grid_values(fig, w, w.size <= 15 * 15)  # blank gaps between the channels
            return fig

        fig_k = _figure("kernel", build_kernel)
        col_k.plotly_chart(fig_k, key=f"{P}.fig_kernel")
        show_p = kw * n_channels <= 3 * MAX_TEXT_SIDE

        def build_products():
            b = float(np.abs(trace.padded).max() * np.abs(trace.kernel).max()) or 1.0
            scale = dict(colorscale=figures.DIVERGING, zmid=0.0, zmin=-b, zmax=b, showscale=False)
            return figures.number_grid(
                _side_by_side(s.products),
                "Input × weight",
                height=260,
                show=show_p,
                **scale,
            )

        fig_p = _figure("products", build_products)
        figures.set_grid_values(fig_p, _side_by_side(s.products), show_p)
        col_p.plotly_chart(fig_p, key=f"{P}.fig_products")
    else:
        blank = " (blank = padding)" if not trace.inside.all() else ""
        fig_w = _figure(
            f"window{m}",
            lambda: figures.number_grid(s.inputs, "Window" + blank, height=260, showscale=False),
        )
        figures.set_grid_values(
            fig_w, np.where(s.inside, s.inputs, np.nan), max(kh, kw) <= MAX_TEXT_SIDE
        )
        if s.winner is not None:  # max pooling: outline the winning cell
            a, b = s.winner
            fig_w.layout.shapes = figures.cell_outline(a, a, b, b)
        col_k.plotly_chart(fig_w, key=f"{P}.fig_window")
        col_p.markdown(
            f"**{'Max' if op == MAX else 'Average'} of the {s.count} real cell(s)** of this "
            f"{kh}×{kw} window" + (": the winner is outlined." if op == MAX else ".")
        )
    with col_v:
        where = f"row {i}, column {j}" + (f", channel {CHANNEL_NAMES[m]}" if n_out > 1 else "")
        st.metric(f"Step {k}: output at {where}", _fmt(value))
        lines = [f"{CHANNEL_NAMES[c]}: {s.equation(c)}" for c in range(n_channels)] if multi else []
        lines.append(("sum: " + s.equation(by_channel=True)) if multi else s.equation())
        if relu:
            lines.append(f"ReLU({_fmt(s.value)}) = {_fmt(value)}")
        st.code("\n".join(lines), language=None, wrap_lines=True)


with right:
    # The output-size formula with this input's numbers, and why SAME may pad unevenly.
    _, formula_h = conv.output_size(
        x.shape[0], kh, trace.stride[0], (top, bottom), trace.dilation[0]
    )
    _, formula_w = conv.output_size(
        x.shape[1], kw, trace.stride[1], (pad_l, pad_r), trace.dilation[1]
    )
    st.markdown(
        "**Output size** per axis: ⌊(n + pad before + pad after − dilation·(k − 1) − 1) / stride⌋ + 1"
    )
    st.code(f"height: {formula_h}\nwidth:  {formula_w}", language=None)
    if padding == "same":
        # Per axis: the total TensorFlow needs, and how it splits it (the odd cell goes after).
        axes = []
        for name, n_in, n_o, k, before, after, ends in (
            ("rows", x.shape[0], ho, kh, top, bottom, ("on top", "at the bottom")),
            ("columns", x.shape[1], wo, kw, pad_l, pad_r, ("on the left", "on the right")),
        ):
            ax = 0 if name == "rows" else 1
            k_eff = (k - 1) * trace.dilation[ax] + 1
            total = f"({n_o} − 1)·{trace.stride[ax]} + {k_eff} − {n_in}"
            if (n_o - 1) * trace.stride[ax] + k_eff < n_in:
                total = f"max(0, {total})"  # windows that skip cells need no padding
            axes.append(
                f"{name}: {total} = {before + after} → {before} {ends[0]}, {after} {ends[1]}"
            )
        uneven = top != bottom or pad_l != pad_r
        note = (
            "SAME keeps ⌈n / stride⌉ outputs per axis, which needs (out − 1)·stride + k_eff − n "
            f"padded cells: {'; '.join(axes)}. TensorFlow puts half, rounded down, before and the "
            "rest after, so an odd total pads unevenly"
            + (": here the padding is **asymmetric**." if uneven else " (not here).")
        )
        if op != CONV:
            note += " Pooling ignores padded cells: they never win a max and do not count in an average."
        st.caption(note)

    c1, c2 = st.columns([1, 3], vertical_alignment="bottom")
    playing = c1.toggle("▶ Play", key=f"{P}.play", help="Step on by itself; switch off to pause.")
    speed = c2.select_slider(
        "Seconds per step", [0.2, 0.5, 1.0, 2.0], value=0.5, key=f"{P}.speed", disabled=not playing
    )
    # A fragment reruns alone: stepping redraws only the stepper, and the timer drives "play".
    st.fragment(stepper, run_every=speed if playing else None)()

    d1, d2, d3 = st.columns(3)
    with d1:
        download_array("Input as CSV", x, "input.csv", key=f"{P}.dl_input")
    with d2:
        download_array("Output as CSV", out_all, "output.csv", key=f"{P}.dl_csv")
    with d3:
        download_array("Output as NPY", out_all, "output.npy", key=f"{P}.dl_npy")

    with st.expander("Why does it work like this?", expanded=False):
        st.markdown(
            """
- **One number per window.** Each output value is Σ input · weight over the window, summed over
  every input channel, plus one bias per filter (seed 001:
  Z[i₁, i₂, m] = Σₖ₁ Σₖ₂ Σₙ W[k₁, k₂, n, m] · U[i₁ + k₁, i₂ + k₂, n] + b[m]).
- **No flip.** Keras slides the kernel as it is (correlation); seed 001 calls this
  *convolution without reversal*.
- **Stride** moves the window by more than one cell: fewer windows, a smaller output.
- **Dilation** spreads the taps apart: a 3×3 kernel with dilation 2 covers 5×5 cells.
- **Padding** adds a border of zeros so windows can sit over the edge. SAME picks just enough to
  keep ⌈n / stride⌉ outputs; when that total is odd TensorFlow puts the extra row at the bottom
  and the extra column on the right.
- **Pooling** has no weights: max keeps the largest cell, average the mean. Padded cells are
  left out, so a corner window in SAME average pooling averages fewer cells.
"""
        )
