"""Filters: the picture each filter looks for (gradient ascent, seed 003) and the raw weights."""

import numpy as np
import streamlit as st

from cnnviz import featureviz, figures, grids, layers, weights
from cnnviz.ui import featureviz_cache, params
from cnnviz.ui.choices import fresh_choice
from cnnviz.ui.mapgrid import COLS_CHOICES, map_grid
from cnnviz.ui.models import current_network
from cnnviz.ui.router import use_app_router
from cnnviz.ui.slots import heavy_slot
from cnnviz.ui.widgets import download_array, download_image, safe_slider, safe_text

use_app_router()
# Shareable link, e.g. ?layer=...
LINK = {
    "layer": params.Text("filters.layer"),
}
params.bind(LINK, prefix="filters")
P = "filters"
# Quality presets for beginners: steps of the optimisation (the expert panel can change all).
PRESETS = {"quick": 24, "good": 64, "best": 192}
PRESET_LABELS = {
    "quick": "Quick look (24 steps)",
    "good": "Good (64 steps)",
    "best": "Best (192 steps, slow on big models)",
}
HOW_MANY = {"8": 8, "16": 16, "32": 32, "64": 64, "range": None}
# Runs at most this big (images × steps × input values) start by themselves on a CPU; bigger
# ones (VGG16 at 224²) wait for the button, so the page never blocks on load.
AUTO_RUN_WORK = 16 * 64 * 64 * 64 * 3
OBJECTIVES = {
    "channel": "a filter's whole feature map (its mean)",
    "neuron": "the centre unit of a filter's map",
    "class": "a class score (what does a star look like?)",
}

st.title("Filters: the picture each filter is looking for")
st.markdown(
    "A filter in a deep layer does not look for a fixed grid of numbers in the image; it "
    "responds to a *pattern*. To see that pattern we turn the question around: start from a "
    "grey picture and change it, step by step, so that the filter responds **more** "
    "(gradient ascent, seed 003). The picture it ends up with is what the filter likes best."
)

model, info, net = current_network()
conv_paths = layers.conv_layer_paths(net)
if not conv_paths:
    st.error(
        f"Model {safe_text(info.name)} has no convolution layer, so it has no filters to show."
    )
    st.stop()


def pick(key: str, options: list, default):
    """Drop a remembered choice that the current model does not offer, else keep it."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = default


def to_uint8(img: np.ndarray) -> np.ndarray:
    """[0, 1] floats (H, W, C) -> uint8 (H, W, 3) or (H, W) for gray."""
    arr = np.round(np.clip(img, 0.0, 1.0) * 255).astype(np.uint8)
    return arr[..., 0] if arr.shape[-1] == 1 else arr


def enlarge(img: np.ndarray, side: int = 320) -> np.ndarray:
    """Nearest-neighbour upscaling so small pictures stay sharp on screen."""
    k = max(1, side // max(img.shape[:2]))
    return np.kron(img, np.ones((k, k) + (1,) * (img.ndim - 2), img.dtype))


def grid_png(imgs: np.ndarray, cols: int) -> np.ndarray:
    return grids.tile_images(np.stack([to_uint8(i) for i in imgs]), cols, gap=2, fill=255)


tab_ascent, tab_weights = st.tabs(["What each filter looks for", "The weights themselves"])

# --------------------------------------------------------------------------------------------
# Gradient ascent
# --------------------------------------------------------------------------------------------
with tab_ascent:
    left, right = st.columns([1, 2], gap="large")
    with left:
        has_classes = bool(info.class_names)
        objective = st.radio(
            "Make the picture excite…",
            [o for o in OBJECTIVES if o != "class" or has_classes],
            format_func=OBJECTIVES.get,
            key=f"{P}.objective",
            help="A filter's map (the usual choice), one unit in its middle (a single "
            "neuron sees only part of the picture), or the network's score for a class.",
        )
        if objective == "class":
            layer = None
            names = list(info.class_names)
            # Keep only remembered classes that this model has (another model was chosen).
            if f"{P}.classes" in st.session_state:
                kept = [c for c in st.session_state[f"{P}.classes"] if c in names]
                if kept:
                    st.session_state[f"{P}.classes"] = kept
                else:
                    del st.session_state[f"{P}.classes"]  # back to the default classes
            chosen = st.multiselect(
                "Classes",
                names,
                default=names[: min(8, len(names))],
                key=f"{P}.classes",
                max_selections=16,
                help="The score before the softmax (the logit) is maximised.",
            )
            wanted = [names.index(c) for c in chosen]
            labels = [safe_text(c, 24) for c in chosen]
        else:
            pick(f"{P}.layer", conv_paths, conv_paths[-1])
            layer = st.selectbox(
                "Layer",
                conv_paths,
                key=f"{P}.layer",
                help="Convolution layers in the order the image passes them. Early layers look "
                "for edges and colours, late ones for parts of objects.",
            )
            n_filters = int(layers.get_layer(net, layer).output.shape[-1])
            how = st.segmented_control(
                "Filters",
                list(HOW_MANY),
                default="8",
                key=f"{P}.how",
                format_func=lambda h: "a range" if h == "range" else f"first {h}",
                help="More filters take longer: all of them are optimised together, as one batch.",
            )
            if how == "range" or how is None:
                top = n_filters - 1  # 0 for a one-filter layer: safe_slider shows a caption
                remembered = st.session_state.get(f"{P}.range")
                if remembered is not None and max(remembered) > top:
                    del st.session_state[f"{P}.range"]  # a layer with fewer filters
                lo, hi = safe_slider(
                    "Filter numbers",
                    0,
                    top,
                    (0, min(top, 7)),
                    key=f"{P}.range",
                    help="At most 64 at a time.",
                )
                wanted = list(range(lo, min(hi, lo + 63) + 1))
            else:
                wanted = list(range(min(HOW_MANY[how], n_filters)))
            labels = [f"#{f}" for f in wanted]
            st.caption(f"{safe_text(layer)} has {n_filters} filters.")
        preset = st.radio(
            "Quality",
            list(PRESETS),
            index=1,
            format_func=PRESET_LABELS.get,
            key=f"{P}.preset",
            horizontal=True,
        )
        compare = st.toggle(
            "Compare with plain gradient ascent",
            key=f"{P}.compare",
            help="Seed 003's method: change the pixels themselves, one grey level per step, "
            "with no tricks. Same number of steps.",
        )
        with st.expander("Expert settings", expanded=False):
            steps = st.slider(
                "Steps", 1, 512, PRESETS[preset], key=f"{P}.steps.{preset}", help="Optimiser steps."
            )
            h, w, _ = info.input_shape
            size = st.slider(
                "Picture size (pixels)",
                16,
                256,
                int(min(256, max(16, h))),
                step=8,
                key=f"{P}.size",
                help="A model with a fixed input size sees the picture resized to it.",
            )
            param = st.selectbox(
                "Parameterisation",
                ["fft", "pixel", "clipped"],
                key=f"{P}.param",
                format_func={
                    "fft": "Fourier spectrum (Lucid; smooth, fast)",
                    "pixel": "pixels through a sigmoid",
                    "clipped": "raw pixels, clipped (the seed's)",
                }.get,
                help="What the optimiser changes. In the Fourier basis, broad shapes form as "
                "fast as fine detail.",
            )
            decorrelate = st.toggle(
                "Decorrelated colour",
                value=True,
                key=f"{P}.decorrelate",
                help="Change colours along natural-image directions (brightness first).",
            )
            use_transforms = st.toggle(
                "Robustness transforms (pad, jitter, zoom, rotate)",
                value=True,
                key=f"{P}.transforms",
                help="Move the picture a little before every step, so the pattern must work "
                "wherever it is. This removes most high-frequency noise.",
            )
            polish = st.slider(
                "Last steps without transforms",
                0.0,
                1.0,
                0.3,
                0.05,
                key=f"{P}.polish",
                help="A final stretch fits the picture exactly as it is scored.",
            )
            tv = st.number_input(
                "Total variation penalty", 0.0, 10.0, 0.0, 0.05, key=f"{P}.tv", help="Smoothness."
            )
            l2 = st.number_input("L2 penalty (towards grey)", 0.0, 10.0, 0.0, 0.05, key=f"{P}.l2")
            blur_every = st.number_input(
                "Blur every … steps (0: never)", 0, 100, 0, key=f"{P}.blur_every"
            )
            optimizer = st.selectbox("Optimiser", ["adam", "sgd", "rmsprop"], key=f"{P}.opt")
            learning_rate = st.number_input(
                "Learning rate", 0.0001, 10.0, 0.2, format="%.4f", key=f"{P}.lr"
            )
            revive = st.toggle(
                "Wake up silent filters",
                value=True,
                key=f"{P}.revive",
                help="A ReLU filter that is zero everywhere on grey gets no gradient; raise the "
                "value before its ReLU until it fires.",
            )
            seed = st.number_input("Seed", 0, 1_000_000, 0, key=f"{P}.seed")
            input_range = None
            if not isinstance(model, str):
                ranges = {"0-255": (0.0, 255.0), "0-1": (0.0, 1.0)}
                suggested = featureviz.suggested_input_range(model) or (0.0, 255.0)
                chosen_range = st.radio(
                    "This model's input values",
                    list(ranges),
                    index=list(ranges.values()).index(suggested),
                    key=f"{P}.input_range",
                    horizontal=True,
                    help="Models trained here rescale inside, so they take 0–255.",
                )
                input_range = ranges[chosen_range]

    settings = {
        "steps": int(steps),
        "size": int(size),
        "seed": int(seed),
        "objective": objective,
        "param": param,
        "decorrelate": bool(decorrelate),
        "transforms": "standard" if use_transforms else "none",
        "polish": float(polish),
        "tv": float(tv),
        "l2": float(l2),
        "blur_every": int(blur_every),
        "optimizer": optimizer,
        "learning_rate": float(learning_rate),
        "revive": bool(revive),
        "input_range": input_range,
        # Big models in chunks of 16 pictures, so memory stays bounded.
        "batch_size": 16 if size * size > 96 * 96 else None,
    }
    plain_settings = {**settings, **featureviz.PLAIN_OPTIONS}

    def ready_to_run() -> bool:
        """Start at once when cached or cheap; for big runs wait for the button."""
        cached = featureviz_cache.lookup(model, layer, wanted, **settings)
        cached_plain = featureviz_cache.lookup(model, layer, wanted, **plain_settings)
        if cached is not None and (not compare or cached_plain is not None):
            return True
        work = len(wanted) * featureviz.capped_steps(steps) * size * size * info.input_shape[2]
        if work <= AUTO_RUN_WORK:
            return True
        clicked = st.button(
            "Find the pictures",
            key=f"{P}.run",
            type="primary",
            help="This model is large: the optimisation takes a while on a CPU.",
        )
        if not clicked:
            st.caption(
                f"{len(wanted)} pictures × {featureviz.capped_steps(steps)} steps of "
                f"{size}×{size}: press the button to start."
            )
        return clicked

    def run(options: dict, title: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Run (or fetch) one visualisation with a progress bar and live previews."""
        found = featureviz_cache.lookup(model, layer, wanted, **options)
        if found is not None:
            return found
        bar = st.progress(0.0, text=title)
        preview = st.empty()
        every = max(1, featureviz.capped_steps(options["steps"]) // 8)

        def progress(step: int, total: int, current: np.ndarray) -> None:
            bar.progress(min(1.0, step / total), text=f"{title}: step {step} of {total}")
            if step % every == 0 or step == total:
                preview.image(grid_png(current, 8), caption="live preview", clamp=True)

        try:
            # One of the server's heavy-work slots: a class pressing the button at once queues.
            with heavy_slot("the filter pictures"):
                result = featureviz_cache.visualize(
                    model, layer, wanted, progress=progress, **options
                )
        except ValueError as err:
            st.error(str(err))
            return None
        finally:
            bar.empty()
            preview.empty()
        return result

    def show(result: tuple[np.ndarray, np.ndarray], plain) -> None:
        """The grid with a score under each picture, the comparison, and one picture large."""
        images, scores = result
        what = {"class": "class score (logit)", "neuron": "centre unit"}.get(
            objective, "mean activation"
        )
        st.markdown(
            f"**{len(wanted)} pictures** for "
            + (f"layer **{safe_text(layer)}**" if layer else "the classes")
            + f"; the number under each is its {what}."
        )
        st.image(
            [enlarge(to_uint8(i), 128) for i in images],
            caption=[f"{lab}: {s:.3g}" for lab, s in zip(labels, scores, strict=True)],
            width=128,
        )
        download_image(
            "Grid as PNG", lambda: grid_png(images, 8), "filters.png", key=f"{P}.dl_grid"
        )
        if plain is not None:
            p_images, p_scores = plain
            wins = int(np.sum(scores > p_scores))
            st.markdown(
                f"**Plain gradient ascent** (seed 003), same steps: ours scores higher on "
                f"**{wins} of {len(wanted)}**."
            )
            st.image(
                [enlarge(to_uint8(i), 128) for i in p_images],
                caption=[f"{lab}: {s:.3g}" for lab, s in zip(labels, p_scores, strict=True)],
                width=128,
            )
            download_image(
                "Plain grid as PNG", lambda: grid_png(p_images, 8), "plain.png", key=f"{P}.dl_plain"
            )

        # One picture large: the student chooses which. Its labels carry this run's scores, so
        # the choice restarts for another layer or objective and is relabelled for new scores.
        fresh_choice(
            f"{P}.large",
            list(range(len(wanted))),
            0,
            reset_on=(objective, layer, tuple(wanted)),
            refresh_on=tuple(f"{s:.3g}" for s in scores),
        )
        large = st.selectbox(
            "Look closer at",
            list(range(len(wanted))),
            format_func=lambda i: f"{labels[i]} (score {scores[i]:.3g})",
            key=f"{P}.large",
        )
        cols = st.columns(2 if plain is not None else 1)
        with cols[0]:
            big = to_uint8(images[large])
            st.plotly_chart(
                figures.image_figure(big, title=f"{labels[large]}: ours", height=420),
                key=f"{P}.large_fig",
            )
            download_image("This picture as PNG", big, "filter.png", key=f"{P}.dl_large")
        if plain is not None:
            with cols[1]:
                p_big = to_uint8(plain[0][large])
                st.plotly_chart(
                    figures.image_figure(p_big, title=f"{labels[large]}: plain", height=420),
                    key=f"{P}.large_plain_fig",
                )

    # The weights tab below must draw whatever happens here: no st.stop() in this panel.
    with right:
        if not wanted:
            st.info("Choose at least one class.")
        elif ready_to_run():
            result = run(settings, "Gradient ascent")
            plain = run(plain_settings, "Plain gradient ascent") if compare else None
            if result is not None:
                show(result, plain)

    with st.expander("Why does this work, and why do the pictures look like this?"):
        st.markdown(
            """
- **Gradient ascent in input space.** Training changes the *weights* to lower the loss. Here
  the weights stay fixed and we change the *picture* to raise one filter's response:
  x ← x + η ∂(response)/∂x. After enough steps, x shows what the filter responds to.
- **Plain ascent makes noise.** A network responds to fine, high-frequency patterns a person
  hardly sees, so changing pixels directly mostly adds those. Lucid's tricks fix this:
  the picture is built from a **Fourier spectrum** scaled so that broad shapes change as fast
  as fine detail, colours change along **decorrelated** natural-image directions, and before
  every step the picture is **padded, shifted, zoomed and rotated** a little, so only patterns
  that work wherever they are survive.
- **Deeper layers, bigger patterns.** An early filter sees a few pixels: edges and colours.
  A late filter sees most of the image: textures, stripes, parts of shapes. The picture
  repeats the pattern everywhere because the score is the mean over the whole map.
- **The score** is the filter's mean activation on the final picture. Compare it with the
  same filter on real images (Activations page): the optimised picture excites it far more
  than any real one.
"""
        )

# --------------------------------------------------------------------------------------------
# The weights themselves
# --------------------------------------------------------------------------------------------
with tab_weights:
    st.markdown(
        "The first layer's kernels act directly on the RGB pixels, so each one can be drawn as "
        "a tiny colour picture (seed 001: AlexNet's 96 kernels of 11×11×3). Grey is zero; a "
        "red tile responds to red, a dark-light pair of stripes to an edge."
    )
    w_left, w_right = st.columns([1, 2], gap="large")
    with w_left:
        scale = st.radio(
            "Brightness scale",
            ["global", "each"],
            format_func={"global": "one for all kernels", "each": "one per kernel"}.get,
            key=f"{P}.w_scale",
            horizontal=True,
            help="One scale shows which kernels are strong; one per kernel shows every pattern.",
        )
        w_cols = st.select_slider(
            "Kernels per row",
            COLS_CHOICES,
            value=8,
            key=f"{P}.w_cols",
            help="Fewer kernels per row make each one larger: easier to read on a projector.",
        )
    try:
        tiles, first = weights.first_layer_weights(model, normalize=scale)
    except ValueError as err:
        tiles, first = None, None
        st.info(str(err))
    if tiles is not None:
        with w_right:
            kh, kw = tiles.shape[1:3]
            big_tiles = np.stack([enlarge(to_uint8(t), 96) for t in tiles])
            cols = min(int(w_cols), len(tiles))
            sheet = grids.tile_images(big_tiles, cols, gap=4, fill=255)
            # The column's whole width (a 3×3 kernel is blown up, pixel for pixel, not blurred).
            st.image(
                sheet,
                caption=f"{safe_text(first)}: {len(tiles)} kernels of {kh}×{kw}×{tiles.shape[3]}",
                width="stretch",
            )
            download_image("Kernels as PNG", sheet, "first_layer_kernels.png", key=f"{P}.dl_w")

    st.markdown(
        "**Any convolution layer, one input channel at a time.** A kernel of a deeper layer "
        "has one small grid of weights per input channel; blue is negative, red positive."
    )
    k_left, k_right = st.columns([1, 2], gap="large")
    with k_left:
        pick(f"{P}.k_layer", conv_paths, conv_paths[0])
        k_layer = st.selectbox("Layer", conv_paths, key=f"{P}.k_layer")
        kernels = weights.conv_kernels(model, k_layer)  # (out, in, kh, kw)
        k_filter = st.number_input(
            "Filter", 0, kernels.shape[0] - 1, 0, key=f"{P}.k_filter", help="Which output channel."
        )
        shown = min(64, kernels.shape[1])
        st.caption(
            f"{kernels.shape[0]} filters × {kernels.shape[1]} input channels of "
            f"{kernels.shape[2]}×{kernels.shape[3]}"
            + (
                f"; the first {shown} input channels are shown."
                if shown < kernels.shape[1]
                else "."
            )
        )
    with k_right:
        maps = kernels[int(k_filter), :shown]
        map_grid(
            maps,
            [f"in {i}" for i in range(shown)],
            choose_cols=True,
            shared_scale=True,
            cols=8,
            cell_px=80,
            key=f"{P}.k_grid",
            label="This filter's weights as PNG",
            file_name="kernel.png",
            download_key=f"{P}.dl_k_png",
        )
        download_array(
            "This filter's weights as NPY", kernels[int(k_filter)], "kernel.npy", key=f"{P}.dl_k"
        )

params.sync(LINK, prefix="filters")
