"""Kernels playground: slide any kernel over any image, with padding, stride and dilation."""

import numpy as np
import streamlit as st

from cnnviz import conv, figures, images, kernels
from cnnviz.ui import params
from cnnviz.ui.kernel_editor import kernel_editor
from cnnviz.ui.router import use_app_router
from cnnviz.ui.widgets import download_array, download_image, image_picker

use_app_router()

P = "kernels"
# conv2d's pad modes (numpy.pad's names) and what each does to "a b c d" on the left.
PAD_MODES = {
    "constant": "zeros: 0 0 0 | a b c d (constant)",
    "reflect": "mirror, edge pixel once: d c b | a b c d (numpy reflect)",
    "symmetric": "mirror, edge pixel repeated: c b a | a b c d (numpy symmetric)",
    "edge": "the edge pixel repeated: a a a | a b c d (edge)",
    "wrap": "the opposite side: b c d | a b c d (wrap)",
}
# Shareable link: ?sample=coins&kernel=laplacian&padding=valid&stride=2&dilation=1
LINK = {
    "sample": params.Choice(f"{P}.sample", images.sample_names()),
    "kernel": params.Choice(f"{P}.preset", kernels.preset_names()),
    "padding": params.Choice(f"{P}.padding", ["valid", "same", "full", "custom"]),
    "stride": params.Int(f"{P}.stride", 1, 8),
    "dilation": params.Int(f"{P}.dilation", 1, 6),
}
params.bind(LINK, prefix=P)
st.title("Kernels: convolution on your image")
st.markdown(
    "A **kernel** is a small grid of weights. We slide it over the image and, at every position, "
    "multiply the pixels under it by the weights and add them up. That sum is one output pixel. "
    "Different weights find different things: averaging blurs, differences find edges."
)

left, right = st.columns([1, 2.4], gap="large")
with left:
    img, img_name = image_picker(P)
    kernel, kernel_label = kernel_editor(P)
    colour = st.radio(
        "Colour",
        ["Grayscale", "Per channel (RGB)"],
        horizontal=True,
        key=f"{P}.colour",
        help="Per channel applies the same kernel to R, G and B separately.",
    )
    with st.expander("Padding, stride, dilation", expanded=True):
        pad_kind = st.selectbox(
            "Padding",
            ["valid", "same", "full", "custom"],
            index=1,
            key=f"{P}.padding",
            help="valid: no padding, the output shrinks. same: pad so the output keeps the size "
            "(stride 1). full: every partial overlap counts.",
        )
        pad_amount = 0
        if pad_kind == "custom":
            pad_amount = st.number_input("Pixels on every side", 0, 64, 1, key=f"{P}.pad_amount")
        pad_mode = st.selectbox(
            "Fill the border with",
            list(PAD_MODES),
            key=f"{P}.pad_mode",
            format_func=PAD_MODES.get,
            help="How 'a b c d' is extended to the left, with numpy.pad's names. numpy's "
            "reflect leaves the edge pixel out of the mirror image; symmetric repeats it "
            "(scipy.ndimage and the Gabor page call that one reflect).",
        )
        stride = st.slider(
            "Stride", 1, 8, 1, key=f"{P}.stride", help="Step between windows; 2 halves the size."
        )
        dilation = st.slider(
            "Dilation",
            1,
            6,
            1,
            key=f"{P}.dilation",
            help="Gap between kernel taps: a wider view with the same weights.",
        )
        flip = st.toggle(
            "True convolution (flip the kernel)",
            key=f"{P}.flip",
            help="Keras and most deep-learning code compute correlation (no flip). "
            "Mathematical convolution rotates the kernel by 180° first (seed 001's 'with reversal').",
        )

if kernel is None:
    st.stop()

padding = int(pad_amount) if pad_kind == "custom" else pad_kind
x = images.to_gray(img) if colour == "Grayscale" else img.astype(np.float32)
try:
    out = conv.conv2d(
        x, kernel, stride=stride, padding=padding, dilation=dilation, pad_mode=pad_mode, flip=flip
    )
except conv.ConvError as err:
    st.error(str(err))
    st.stop()

signed_default = abs(float(kernel.sum())) < 1e-9
with left:
    display = st.radio(
        "Show the output as",
        ["signed", "absolute", "clip"],
        index=0 if signed_default else 2,
        horizontal=True,
        key=f"{P}.display",
        format_func={
            "signed": "signed (blue −, red +)",
            "absolute": "absolute value",
            "clip": "clipped to 0–255",
        }.get,
        help="Edge kernels sum to 0 and give negative numbers; a signed map shows both signs.",
    )


def render(y: np.ndarray) -> np.ndarray:
    """Output numbers -> picture, per the chosen display mode (no NaN for constant input)."""
    if display == "clip":
        return np.clip(np.round(y), 0, 255).astype(np.uint8)
    if display == "absolute":
        a = np.abs(y)
        top = float(a.max())
        return (
            np.zeros(a.shape, np.uint8)
            if top <= 1e-12
            else np.round(a / top * 255).astype(np.uint8)
        )
    # Scale to the 99th percentile of |y| so a few extreme pixels do not wash out the map.
    bound = float(np.percentile(np.abs(y), 99)) or float(np.abs(y).max())
    if y.ndim == 2:
        return images.colorize(y, cmap=figures.DIVERGING, vmin=-bound, vmax=bound)
    # Signed colour: mid-grey is zero, brighter is positive, per channel.
    return np.clip(np.round(127.5 + 127.5 * y / (bound or 1.0)), 0, 255).astype(np.uint8)


shown = render(out)
kh, kw = kernel.shape
pads = conv.resolve_padding(
    x.shape[:2], kernel.shape, stride=stride, padding=padding, dilation=dilation
)
_, formula_h = conv.output_size(x.shape[0], kh, stride, (pads[0], pads[1]), dilation)
_, formula_w = conv.output_size(x.shape[1], kw, stride, (pads[2], pads[3]), dilation)
shape_in = "×".join(str(s) for s in x.shape)
shape_out = "×".join(str(s) for s in out.shape)

with right:
    # The pictures are the lesson: they get the column's whole width, side by side or, for a
    # projector, one above the other at twice the size.
    stacked = st.toggle(
        "Larger pictures (input above output)",
        key=f"{P}.stacked",
        help="For a projector: each picture takes the whole width.",
    )
    c_in, c_out = (right, right) if stacked else st.columns(2)
    with c_in:
        st.markdown(f"**Input** {shape_in}")
        st.image(
            img if colour != "Grayscale" else np.clip(x, 0, 255).astype(np.uint8), width="stretch"
        )
        st.caption(img_name)
    with c_out:
        st.markdown(f"**Output** {shape_out}")
        st.image(shown, width="stretch")
        legend = {
            "signed": " · blue < 0 < red" if out.ndim == 2 else " · grey = 0",
            "absolute": " · bright = large |value|",
            "clip": "",
        }
        st.caption(
            f"min {out.min():.4g}, max {out.max():.4g}, mean {out.mean():.4g}{legend[display]}"
        )

    c_k, c_size = st.columns([1, 2], gap="medium")
    with c_k:
        st.plotly_chart(
            figures.kernel_figure(kernel, title=f"Kernel {kh}×{kw}", height=300),
            key=f"{P}.kernel_fig",
        )
        st.caption(f"{kernel_label}; sum = {kernel.sum():.4g}" + ("; flipped" if flip else ""))
    with c_size:
        st.markdown(
            "**Output size**, per axis: ⌊(n + pad before + pad after − dilation·(k − 1) − 1) / stride⌋ + 1"
        )
        st.code(f"height: {formula_h}\nwidth:  {formula_w}", language=None)
        st.caption(
            f"Padding used (top, bottom, left, right) = {pads}; stride {stride}, dilation {dilation}, "
            f"effective kernel {(kh - 1) * dilation + 1}×{(kw - 1) * dilation + 1}."
        )

    d1, d2, d3 = st.columns(3)
    with d1:
        download_image("Output as PNG", shown, "output.png", key=f"{P}.dl_png")
    with d2:
        download_array("Numbers as CSV", out, "output.csv", key=f"{P}.dl_csv")
    with d3:
        download_array("Numbers as NPY", out, "output.npy", key=f"{P}.dl_npy")

    with st.expander("Why does this happen?", expanded=False):
        st.markdown(
            """
- **Edges appear** with kernels that sum to zero (Sobel, Laplacian, outline): on a flat region
  the positive and negative weights cancel, so the output is 0. Only where the brightness
  *changes* does one side win: that is an edge. The sign tells which way it changes.
- **Blurs keep brightness** because their weights sum to 1: each output is a weighted average.
- **Padding keeps the size.** Without padding ("valid") a 3×3 kernel fits only where all nine
  cells lie inside the image, so each side loses one pixel. "same" adds just enough border.
  Zero padding darkens the border; *reflect*, *symmetric* and *edge* do not.
- **Stride** skips positions: stride 2 keeps every second window, halving width and height.
- **Dilation** spreads the taps apart: a 3×3 kernel with dilation 2 sees a 5×5 area with
  only nine weights. Deep networks use this to see far without more parameters.
"""
        )

params.sync(LINK, prefix=P)
