"""Gabor filters: one filter with sliders, a bank of them, and a bank on a dataset (seed 003)."""

from pathlib import Path

import numpy as np
import streamlit as st

from cnnviz import conv, figures, gabor, grids, images
from cnnviz.ui import gabor_cache
from cnnviz.ui.mapgrid import map_grid
from cnnviz.ui.router import use_app_router
from cnnviz.ui.widgets import download_array, download_image, image_picker, safe_slider

use_app_router()

P = "gabor"
# The seed's ipywidgets sliders (frequency 0.01–1, θ 0–3.14, σ 0–5) started at their midpoints
# (frequency 0.46, θ 1.5, σ 2.5). At 0.46 cycles/px a stripe pair is two pixels wide, so the
# kernel looks like a checkered blob; 0.12 (a pair every 8 px) inside a σ = 4 window shows a
# class about three clear stripes.
SINGLE = {
    "frequency": 0.12,
    "theta": 1.5,
    "width_by": "sigma",
    "sigma": 4.0,
    "bandwidth": 1.0,
    "offset": 0.0,
    "n_stds": 3.0,
}
BANK = {
    "n_thetas": 8,
    "freqs": ["0.05", "0.1", "0.2", "0.4"],
    "bank_width_by": "bandwidth",
    "bank_sigma": 2.5,
    "bank_bandwidth": 1.0,
}
FREQ_CHOICES = ["0.02", "0.03", "0.05", "0.07", "0.1", "0.14", "0.2", "0.28", "0.4", "0.46"]
# scipy.ndimage's border modes (skimage.filters.gabor's `mode`), what each does to "a b c d" on
# the left, and numpy.pad's name for the same (the Kernels page uses numpy's names).
MODE_HELP = {
    "reflect": "mirror, edge pixel repeated: c b a | a b c d (scipy reflect = numpy symmetric)",
    "constant": "zeros: 0 0 0 | a b c d (constant)",
    "nearest": "the edge pixel repeated: a a a | a b c d (scipy nearest = numpy edge)",
    "mirror": "mirror, edge pixel once: d c b | a b c d (scipy mirror = numpy reflect)",
    "wrap": "the opposite side: b c d | a b c d (wrap)",
}
WIDTH_BY = {
    "sigma": "σ directly (the seed's slider)",
    "bandwidth": "bandwidth (σ shrinks as frequency grows)",
}
VIEWS = ["One filter", "A bank of filters", "On a dataset"]
# Below this fraction of the strongest energy, no filter really responds.
WEAK = 0.15

st.title("Gabor filters: wave detectors at every angle and scale")
st.markdown(
    "A **Gabor filter** is a small patch of stripes that fades out at its edges: a wave inside a "
    "Gaussian window. Slid over an image, it answers one question everywhere: *are there stripes "
    "here, this fine, at this angle?* Three numbers shape it: **frequency** (how fine the "
    "stripes are), **theta** (their angle) and **sigma** (how large the window is)."
)


def pick_working_image() -> np.ndarray:
    """The chosen image in gray, float32 in [0, 1], at the working size."""
    c1, c2 = st.columns([3, 1])
    with c1:
        img, _ = image_picker(P, max_side=512)
    with c2:
        side = st.select_slider(
            "Work at (longest side, pixels)",
            options=[32, 64, 128, 256, 512],
            value=128,
            key=f"{P}.side",
            persist_state="page",  # kept while the dataset tab hides it
            help="A Gabor filter has a fixed size in pixels, so on a smaller image it sees larger "
            "structures. The seed filtered 32×32 street-view digits. Small is also fast.",
        )
    gray = images.to_gray(img) / 255.0
    h, w = gray.shape
    scale = min(1.0, side / max(h, w))
    if scale < 1.0:
        gray = images.resize(gray, (max(1, round(h * scale)), max(1, round(w * scale))))
    return np.ascontiguousarray(gray, dtype=np.float32)


def single_params() -> dict:
    """The one-filter settings, from the sliders (remembered when their tab is closed)."""
    s = {k: st.session_state.get(f"{P}.{k}", v) for k, v in SINGLE.items()}
    return {
        "frequency": float(s["frequency"]),
        "theta": float(s["theta"]),
        "sigma": float(s["sigma"]) if s["width_by"] == "sigma" else None,
        "bandwidth": float(s["bandwidth"]),
        "offset": float(s["offset"]),
        "n_stds": float(s["n_stds"]),
    }


def filter_controls() -> None:
    """Sliders of the single filter; their values are read back with `single_params`."""
    keep = {"persist_state": "page"}
    st.slider(
        "Frequency (cycles per pixel)",
        0.01,
        1.0,
        SINGLE["frequency"],
        0.01,
        key=f"{P}.frequency",
        help="How many stripes per pixel: 0.1 is one stripe pair every 10 pixels. Above 0.5 the "
        "stripes are finer than the pixel grid and alias into coarser ones.",
        **keep,
    )
    theta = st.slider(
        "Theta θ (radians)",
        0.0,
        3.14,
        SINGLE["theta"],
        0.01,
        key=f"{P}.theta",
        help="The direction the wave travels. θ = 0 gives vertical stripes (the wave runs "
        "along x); θ = π/2 ≈ 1.57 gives horizontal ones.",
        **keep,
    )
    st.caption(f"θ = {np.degrees(theta):.0f}°")
    width_by = st.radio(
        "Window size from",
        list(WIDTH_BY),
        format_func=WIDTH_BY.get,
        horizontal=True,
        key=f"{P}.width_by",
        **keep,
    )
    if width_by == "sigma":
        st.slider(
            "Sigma σ (pixels)",
            0.1,
            10.0,
            SINGLE["sigma"],
            0.1,
            key=f"{P}.sigma",
            help="The Gaussian window's standard deviation: a larger window holds more stripes "
            "and is pickier about their frequency and angle.",
            **keep,
        )
    else:
        st.slider(
            "Bandwidth (octaves)",
            0.3,
            3.0,
            SINGLE["bandwidth"],
            0.1,
            key=f"{P}.bandwidth",
            help="scikit-image's default: σ is set so that the filter always holds about the "
            "same number of stripes, whatever the frequency.",
            **keep,
        )
    st.slider(
        "Phase offset (radians)",
        -3.14,
        3.14,
        SINGLE["offset"],
        0.01,
        key=f"{P}.offset",
        help="Shifts the stripes inside the window: π/2 swaps the real (cosine) and imaginary "
        "(sine) parts.",
        **keep,
    )
    st.slider(
        "Kernel extent n_stds (σ on each side)",
        1.0,
        5.0,
        SINGLE["n_stds"],
        0.5,
        key=f"{P}.n_stds",
        help="Where the kernel is cut off. 3σ keeps 99.7 % of the window.",
        **keep,
    )


def padding_controls() -> tuple[conv.PadSpec, str, int]:
    """Padding, border mode and stride, as on the Kernels page (scikit-image's mode names)."""
    kind = st.selectbox(
        "Padding",
        ["same", "valid", "full", "custom"],
        key=f"{P}.padding",
        help="same: output as large as the input (what scikit-image's gabor does). valid: only "
        "where the whole kernel fits. full: every partial overlap.",
    )
    padding: conv.PadSpec = kind
    if kind == "custom":
        padding = int(st.number_input("Pixels on every side", 0, 256, 4, key=f"{P}.pad_amount"))
    mode = st.selectbox(
        "Fill the border with",
        list(gabor.MODES),
        format_func=MODE_HELP.get,
        key=f"{P}.mode",
        help="scipy.ndimage's names, as in skimage.filters.gabor(mode=...). Careful: scipy's "
        "reflect repeats the edge pixel (numpy calls that symmetric); scipy's mirror does not "
        "(numpy's reflect, as on the Kernels page).",
    )
    stride = st.slider(
        "Stride", 1, 8, 1, key=f"{P}.stride", help="Keep every stride-th output pixel."
    )
    return padding, mode, stride


def clipped(z: np.ndarray, q: float = 99.5) -> float:
    """A colour limit at the q-th percentile of |z| (never 0), so a few peaks don't hide the rest."""
    return float(np.percentile(np.abs(z), q)) or float(np.abs(z).max()) or 1.0


def signed_png(z: np.ndarray) -> np.ndarray:
    """A signed map as the same blue–red picture the figure shows."""
    b = clipped(z)
    return images.colorize(z, cmap=figures.DIVERGING, vmin=-b, vmax=b)


def one_filter(x: np.ndarray) -> None:
    left, right = st.columns([1, 2], gap="large")
    with left:
        filter_controls()
        with st.expander("Padding and stride", expanded=False):
            padding, mode, stride = padding_controls()
        show_3d = st.toggle("Show the kernel as a 3-D surface", key=f"{P}.surface")
        large = st.toggle(
            "Larger responses (one per row)",
            key=f"{P}.large",
            help="For a projector: each response map takes the whole width.",
        )
    p = single_params()
    try:
        kernel = gabor.gabor_kernel(**p)
        resp = gabor.gabor_response(x, **p, mode=mode, padding=padding, stride=stride)
    except gabor.GaborError as err:
        st.error(str(err))
        return
    sigma_used = p["sigma"] or gabor.sigma_from_bandwidth(p["frequency"], p["bandwidth"])
    kh, kw = kernel.shape
    with right:
        c1, c2, c3 = st.columns(3)
        with c1:
            st.plotly_chart(
                figures.image_figure(x, title=f"Input {x.shape[0]}×{x.shape[1]}", height=300),
                key=f"{P}.fig_in",
            )
            download_image("Input PNG", x, "gabor_input.png", key=f"{P}.dl_in")
        with c2:
            st.plotly_chart(
                figures.kernel_figure(kernel.real, title=f"Real part {kh}×{kw}", height=300),
                key=f"{P}.fig_kre",
            )
            download_image(
                "Kernel (real) PNG",
                lambda: signed_png(kernel.real),
                "gabor_kernel_real.png",
                key=f"{P}.dl_kre",
            )
        with c3:
            st.plotly_chart(
                figures.kernel_figure(kernel.imag, title="Imaginary part", height=300),
                key=f"{P}.fig_kim",
            )
            download_image(
                "Kernel (imag.) PNG",
                lambda: signed_png(kernel.imag),
                "gabor_kernel_imag.png",
                key=f"{P}.dl_kim",
            )
        st.caption(
            f"σ = {sigma_used:.3g} px, one stripe pair every {1 / p['frequency']:.3g} px, "
            f"θ = {np.degrees(p['theta']):.0f}°. The real part is the even (cosine) filter, the "
            "imaginary part the odd (sine) one: together they catch stripes at any position."
        )
        if show_3d:
            s1, s2 = st.columns(2)
            s1.plotly_chart(
                figures.surface(kernel.real, "Real part as a surface"), key=f"{P}.fig_sre"
            )
            s2.plotly_chart(
                figures.surface(kernel.imag, "Imaginary part as a surface"), key=f"{P}.fig_sim"
            )
        mag = np.abs(resp)
        # Side by side, or (for a projector) one under the other at the column's full width.
        r1, r2 = (st.container(), st.container()) if large else st.columns(2)
        resp_h = 720 if large else 440
        for col, z, label, slug in (
            (r1, resp.real, "Response, real part", "real"),
            (r2, resp.imag, "Response, imaginary part", "imag"),
        ):
            with col:
                b = clipped(z)
                st.plotly_chart(
                    figures.heatmap(z, title=label, zmid=0.0, zmin=-b, zmax=b, height=resp_h),
                    key=f"{P}.fig_{slug}",
                )
                download_image(
                    f"{label.split(', ')[1].capitalize()} PNG",
                    lambda z=z: signed_png(z),
                    f"gabor_response_{slug}.png",
                    key=f"{P}.dl_{slug}",
                )
        r3, r4 = (st.container(), st.container()) if large else st.columns(2)
        with r3:
            st.plotly_chart(
                figures.heatmap(
                    mag, title="Response magnitude", zmin=0.0, zmax=clipped(mag), height=resp_h
                ),
                key=f"{P}.fig_mag",
            )
            download_image("Magnitude PNG", mag, "gabor_response_magnitude.png", key=f"{P}.dl_mag")
        with r4:
            st.markdown(
                "The **real part** shows the stripes themselves: red where the image matches the "
                "kernel's cosine, blue where it matches its negative. The **magnitude** "
                "√(real² + imag²) is large wherever the image has stripes of this frequency and "
                "angle, whatever their position."
            )
            st.caption(
                "Colours saturate at the 99.5th percentile so that a few strong edges don't hide "
                "the rest; hover for exact values."
            )
            pads = conv.resolve_padding(x.shape, kernel.shape, stride=stride, padding=padding)
            _, fh = conv.output_size(x.shape[0], kh, stride, (pads[0], pads[1]))
            _, fw = conv.output_size(x.shape[1], kw, stride, (pads[2], pads[3]))
            st.markdown(
                "**Output size**, per axis: ⌊(n + pad before + pad after − (k − 1) − 1) / stride⌋ + 1"
            )
            st.code(f"height: {fh}\nwidth:  {fw}", language=None)
            download_array(
                "Response as NPY (complex)", resp, "gabor_response.npy", key=f"{P}.dl_npy"
            )


def bank_params() -> tuple[tuple[float, ...], int, float | None, float]:
    """Bank controls in one row; frequencies typed by the student are checked here."""
    c1, c2, c3 = st.columns([1, 2, 1.4])
    n_thetas = c1.slider(
        "Number of orientations",
        1,
        16,
        BANK["n_thetas"],
        key=f"{P}.n_thetas",
        persist_state="page",
        help="Evenly spaced over half a turn: a filter at θ + 180° finds the same stripes.",
    )
    chosen = c2.multiselect(
        "Frequencies (cycles per pixel)",
        FREQ_CHOICES,
        default=BANK["freqs"],
        key=f"{P}.freqs",
        accept_new_options=True,
        persist_state="page",
        help="Pick from the list or type your own, e.g. 0.33. One octave apart (×2) covers the "
        "scales evenly.",
    )
    freqs = []
    for text in chosen:
        try:
            f = float(text)
        except ValueError:
            f = float("nan")
        if not 0 < f <= 1:
            c2.error(f"{text!s:.20} is not a frequency. Expected a number in (0, 1], such as 0.15.")
            continue
        freqs.append(f)
    width_by = c3.radio(
        "Window size from",
        list(WIDTH_BY),
        index=1,
        format_func=WIDTH_BY.get,
        horizontal=True,
        key=f"{P}.bank_width_by",
        persist_state="page",
    )
    if width_by == "sigma":
        sigma = c3.slider(
            "Sigma σ (pixels), all filters",
            0.5,
            10.0,
            BANK["bank_sigma"],
            0.1,
            key=f"{P}.bank_sigma",
            persist_state="page",
        )
        return tuple(sorted(set(freqs))), int(n_thetas), float(sigma), 1.0
    bw = c3.slider(
        "Bandwidth (octaves)",
        0.3,
        3.0,
        BANK["bank_bandwidth"],
        0.1,
        key=f"{P}.bank_bandwidth",
        persist_state="page",
    )
    return tuple(sorted(set(freqs))), int(n_thetas), None, float(bw)


def a_bank(x: np.ndarray) -> None:
    controls, more = st.columns([4, 1.4], gap="large")
    with controls:
        freqs, n_thetas, sigma, bw = bank_params()
    with more:
        mode = st.selectbox(
            "Fill the border with",
            list(gabor.MODES),
            format_func=MODE_HELP.get,
            key=f"{P}.bank_mode",
        )
        shared = st.toggle(
            "Shared colour scale",
            value=True,
            key=f"{P}.shared",
            help="On: compare strengths across filters. Off: see each filter's "
            "pattern, however weak.",
        )
    if not freqs:
        st.info("Choose at least one frequency.")
        return
    try:
        res = gabor_cache.bank(x, freqs, n_thetas, sigma=sigma, bandwidth=bw, mode=mode)
    except gabor.GaborError as err:
        st.error(str(err))
        return
    thetas = res["thetas"]
    nf, nt = len(freqs), len(thetas)
    titles = [f"{f:g} · {np.degrees(t):.0f}°" for f in freqs for t in thetas]
    # Each kernel at its own size, so that fine stripes stay visible in a small cell.
    k_real = [
        gabor.gabor_kernel(f, t, sigma=sigma, bandwidth=bw).real for f in freqs for t in thetas
    ]
    sizes = ", ".join(f"{f:g}: {k_real[i * nt].shape[0]} px" for i, f in enumerate(freqs))
    mags = res["magnitude"].reshape(nf * nt, *x.shape)
    st.markdown(
        f"**{nf} frequencies × {nt} orientations = {nf * nt} filters** on the image "
        f"({x.shape[0]}×{x.shape[1]}). Each row is one frequency, each column one angle "
        "(titles: frequency · θ)."
    )
    # One grid above the other, each the page's whole width: at 8 angles a tile is ~120 px.
    # One row per frequency, one column per angle: the layout is the lesson, so the kernels'
    # grid is fixed; the responses may be shown fewer (larger) to a row.
    map_grid(
        k_real,
        titles,
        cols=nt,
        max_side=96,
        cell_px=120,
        title="Kernels (real part)",
        key=f"{P}.fig_bank_k",
        label="Kernel bank PNG",
        file_name="gabor_bank_kernels.png",
        download_key=f"{P}.dl_bank_k",
    )
    st.caption(
        f"Each kernel at its own size and on its own colour scale. Sizes at θ = 0: {sizes}. "
        "Lower frequencies need wider windows, so their weights are smaller."
    )
    map_grid(
        mags,
        titles,
        shared_scale=shared,
        cols=nt,
        choose_cols=True,
        max_side=128,
        cell_px=120,
        title="Response magnitudes",
        key=f"{P}.fig_bank_r",
        label="Magnitudes PNG",
        file_name="gabor_bank_magnitudes.png",
        download_key=f"{P}.dl_bank_r",
    )
    download_array(
        "Responses NPY (F, T, H, W), complex",
        res["responses"],
        "gabor_bank_responses.npy",
        key=f"{P}.dl_bank_npy",
    )
    e1, e2 = st.columns(2)
    with e1:
        st.plotly_chart(
            figures.heatmap(
                res["energy"], title="Energy: strongest response over the bank", height=360
            ),
            key=f"{P}.fig_energy",
        )
        download_image("Energy PNG", res["energy"], "gabor_energy.png", key=f"{P}.dl_energy")
    with e2:
        hide = st.toggle(
            "Hide pixels where no filter responds (energy < 15 % of max)",
            value=True,
            key=f"{P}.hide_weak",
        )
        weak = res["energy"] < WEAK * float(res["energy"].max()) if hide else None
        st.plotly_chart(figures.orientation_figure(res["orientation"], weak), key=f"{P}.fig_orient")
        download_image(
            "Orientation PNG",
            lambda: grids.orientation_picture(res["orientation"], weak),
            "gabor_orientation.png",
            key=f"{P}.dl_orient",
        )
    st.caption(
        "Energy is high wherever some filter found its stripes: edges and textures light up, "
        "flat regions stay dark. The orientation map colours each pixel by the angle of the "
        "winning filter: a hand-made version of what a CNN's first layer computes."
    )


def on_a_dataset() -> None:
    left, right = st.columns([1, 3], gap="large")
    with left:
        which = st.radio(
            "Images",
            ["digits", "shapes"],
            horizontal=True,
            key=f"{P}.dataset",
            format_func={"digits": "digits 28×28", "shapes": "shapes 64×64 (gray)"}.get,
            help="Generated offline by cnnviz.datasets, like the seed's street-view "
            "digits and Fashion-MNIST.",
        )
        n = st.slider("How many", 4, 32, 16, 4, key=f"{P}.n_images")
        seed = int(st.number_input("Seed (a new batch)", 0, 10_000, 0, key=f"{P}.seed"))
        apply = st.radio(
            "Filter with",
            ["one", "bank"],
            key=f"{P}.apply",
            format_func={
                "one": "the single filter (first tab's sliders)",
                "bank": "the bank (second tab's settings)",
            }.get,
        )
    x, labels = gabor_cache.dataset_batch(which, n, seed)
    p = single_params()
    if apply == "one":
        freqs, thetas = (p["frequency"],), (p["theta"],)
        kw = {k: p[k] for k in ("sigma", "bandwidth", "offset", "n_stds")}
        what = f"f={p['frequency']:g}, θ={np.degrees(p['theta']):.0f}°"
    else:
        freqs = tuple(
            sorted(
                {float(f) for f in st.session_state.get(f"{P}.freqs", BANK["freqs"]) if _is_freq(f)}
            )
        )
        thetas = tuple(
            gabor.even_thetas(int(st.session_state.get(f"{P}.n_thetas", BANK["n_thetas"])))
        )
        by_sigma = st.session_state.get(f"{P}.bank_width_by", BANK["bank_width_by"]) == "sigma"
        kw = {
            "sigma": float(st.session_state.get(f"{P}.bank_sigma", BANK["bank_sigma"]))
            if by_sigma
            else None,
            "bandwidth": float(st.session_state.get(f"{P}.bank_bandwidth", BANK["bank_bandwidth"])),
        }
        what = f"{len(freqs)}×{len(thetas)} bank"
        if not freqs:
            st.info("The bank has no frequencies: choose some on the second tab.")
            return
    try:
        mag = gabor_cache.dataset_responses(x, freqs, thetas, **kw)
    except gabor.GaborError as err:
        st.error(str(err))
        return
    with right:
        # One "Tiles per row" choice for both grids, so each response sits under its image.
        cols = map_grid(
            x,
            labels,
            cols=8,
            choose_cols=True,
            colorscale="Gray",
            cell_px=90,
            title="The images",
            key=f"{P}.fig_ds_in",
            label="Images PNG",
            file_name="dataset_images.png",
            download_key=f"{P}.dl_ds_in",
        )
        if apply == "one":
            shown, title = mag[:, 0, 0], f"Response magnitude, {what}"
        else:
            shown, title = mag.max(axis=(1, 2)), f"Energy over the {what}"
        map_grid(
            shown,
            labels,
            cols=8,
            tiles=cols,
            shared_scale=True,
            cell_px=90,
            title=title,
            key=f"{P}.fig_ds_out",
            label="Responses PNG",
            file_name="dataset_responses.png",
            download_key=f"{P}.dl_ds_out",
        )
        download_array(
            "Magnitudes NPY (N, F, T, H, W)", mag, "dataset_magnitudes.npy", key=f"{P}.dl_ds_npy"
        )
        if apply == "bank":
            # Clamped: a remembered image number may exceed a smaller new batch.
            i = safe_slider("Every filter on image #", 0, n - 1, 0, key=f"{P}.ds_pick")
            nf, nt = mag.shape[1:3]
            per = mag[i].reshape(nf * nt, *x.shape[1:])
            titles = [f"f={f:g}, θ={np.degrees(t):.0f}°" for f in freqs for t in thetas]
            map_grid(
                per,
                titles,
                cols=nt,
                shared_scale=True,
                cell_px=90,
                title=f"Image #{i} ({labels[i]}) through every filter",
                key=f"{P}.fig_ds_bank",
                label="This grid PNG",
                file_name="dataset_image_bank.png",
                download_key=f"{P}.dl_ds_bank",
            )


def _is_freq(text: str) -> bool:
    try:
        return 0 < float(text) <= 1
    except ValueError:
        return False


# The dataset tab filters generated images: the picker and the working size do nothing there.
view = st.session_state.get(f"{P}.view", VIEWS[0])
x = pick_working_image() if view != "On a dataset" else None
tabs = st.tabs(VIEWS, key=f"{P}.view", on_change="rerun")
# Lazy tabs: only the open tab's content runs, so moving a slider reruns one lesson, not three.
with tabs[0]:
    if tabs[0].open:
        one_filter(x)
with tabs[1]:
    if tabs[1].open:
        a_bank(x)
with tabs[2]:
    if tabs[2].open:
        on_a_dataset()

with st.expander("Teacher's notes: what the three numbers do, and why a bank", expanded=False):
    filters_page = Path(__file__).resolve().parent / "filters.py"
    link = (
        "Open the [Filters](filters) page to see the first-layer weights of a trained network "
        "next to these."
        if filters_page.exists()
        else "The Filters page (first-layer weights of a trained network) will sit next to this one."
    )
    st.markdown(
        f"""
- **Frequency** sets how fine the stripes are, in cycles per pixel: 0.25 means one dark and one
  light stripe every 4 pixels. High frequencies find fine texture and thin edges, low
  frequencies find broad bands. 0.5 is the finest a pixel grid can show.
- **Theta** turns the stripes. The filter answers most where the image has stripes at that
  angle, and hardly at all at right angles to it: it is an *oriented* edge and line detector.
- **Sigma** sizes the Gaussian window. A small window reacts to a single edge; a large one
  wants many parallel stripes and is pickier about frequency and angle. With *bandwidth* instead,
  σ shrinks as the frequency grows, so every filter holds about the same number of stripes.
- **Real, imaginary, magnitude.** The real part is a cosine (a line detector), the imaginary
  part a sine (an edge detector). The magnitude combines them, so it no longer depends on
  exactly where the stripe sits.
- **Why a bank?** No single filter sees everything, so we run many: every orientation at a few
  frequencies. The energy map keeps, per pixel, the strongest answer. The first convolution
  layer of a CNN trained on photos *learns* filters that look just like these oriented stripe
  patches, without being told to: they are the most useful first step for seeing. {link}
"""
    )
