"""Grad-CAM: where does the network look? And can we trust the answer? (seed 003)."""

import numpy as np
import streamlit as st

from cnnviz import activations, cam, datasets, figures, images, layers, models
from cnnviz.ui import params
from cnnviz.ui.cache import image_key, model_key
from cnnviz.ui.choices import fresh_choice
from cnnviz.ui.honesty import familiarity_note
from cnnviz.ui.mapgrid import map_grid
from cnnviz.ui.memo import SessionMemo, progress_bar
from cnnviz.ui.model_input import model_input_view
from cnnviz.ui.models import current_network, fit_image
from cnnviz.ui.router import use_app_router
from cnnviz.ui.widgets import (
    SampleParam,
    download_array,
    download_image,
    image_picker,
    safe_text,
    take_dataset_link,
)

use_app_router()
P = "gradcam"
TOP1 = -1  # "Explain the class": the network's own answer
# Colour maps for the overlay: perceptually uniform and colour-blind safe first; "jet" (the
# seed's choice) last, with a warning in its label.
COLORMAPS = {
    "viridis": "viridis (colour-blind safe)",
    "cividis": "cividis (colour-blind safe)",
    "inferno": "inferno (colour-blind safe)",
    "magma": "magma (colour-blind safe)",
    "jet": "jet (the seed's; not colour-blind safe)",
}
# Shareable link: every control that changes the view, e.g.
# ?model=shapes&image=generated&seed=12&method=layercam&cmap=cividis&alpha=0.6&class=-1
# (the picker adds source= and gen=; sample= is a shipped sample or dataset:shapes:17).
LINK = {
    "image": params.Choice(f"{P}.source", ["generated", "picker"]),
    "seed": params.Int(f"{P}.seed", 0, 1_000_000),
    "sample": SampleParam(f"{P}.sample"),
    "layer": params.Text(f"{P}.layer"),
    "class": params.Int(f"{P}.class", TOP1, 9999),  # -1: the top-1 class
    "method": params.Choice(f"{P}.method", list(cam.METHODS)),
    "cmap": params.Choice(f"{P}.cmap", list(COLORMAPS)),
    "alpha": params.Float(f"{P}.alpha", 0.0, 1.0),
}
linked = params.bind(LINK, prefix=P)
if take_dataset_link(P):
    st.session_state[f"{P}.source"] = "picker"  # a picture from the Neurons map: show it
# Defaults set here, not in the widgets: a value from the link is then never set twice.
st.session_state.setdefault(f"{P}.seed", 184)  # a clear triangle; the map lights its corners
st.session_state.setdefault(f"{P}.alpha", 0.45)
# Work bigger than this many input values (a 128×128 colour image) waits for a button click.
CHEAP_INPUT = 128 * 128 * 3
# Fewer noisy copies / path steps than the defaults in the comparison grid: 9 maps at once.
QUICK = {"smoothgrad": {"samples": 12}, "integrated_gradients": {"steps": 16}}

st.title("Grad-CAM: where does the network look?")
st.markdown(
    "A CNN's last convolution layer still knows *where* things are: each of its feature maps "
    "is a small picture of where one pattern was found. **Grad-CAM** asks which of those maps "
    "raise the score of a class, adds them up with those weights and lays the result over "
    "the image. Bright means: *this region made the network more sure of the class*. "
    "Below you can also compare other methods, layers, and test whether an explanation can be "
    "trusted at all."
)

model, info, net = current_network()


# The built-ins were trained on generated pictures: offer fresh ones (a seed never used in
# training), so the first map shows the network on the kind of image it knows.
def _shape_picture(seed: int) -> tuple[np.ndarray, np.ndarray]:
    pictures, _, masks = datasets.shapes(1, seed=seed)
    return pictures[0], masks[0]


# Each returns (image, object mask or None).
GENERATED = {
    "shapes": _shape_picture,
    "digits": lambda seed: (datasets.digits(1, seed=seed)[0][0], None),
}
family = model.removeprefix(models.RANDOM_PREFIX) if isinstance(model, str) else None

left, right = st.columns([1, 2], gap="large")
with left:
    source, mask = "picker", None
    if family in GENERATED:
        source = st.radio(
            "Image",
            ["generated", "picker"],
            format_func={
                "generated": f"A new picture like its training data ({family})",
                "picker": "A sample photo or your own upload",
            }.get,
            key=f"{P}.source",
            help="The built-in models only know their own kind of picture. On a photo they still "
            "answer, and the map shows what that answer rests on.",
        )
    if source == "generated":
        seed = st.number_input(
            "Picture number",
            min_value=0,
            max_value=1_000_000,
            key=f"{P}.seed",
            help="Each number draws a different picture; training used other numbers.",
        )
        # Offset far from the training seeds listed in the model card.
        img, mask = GENERATED[family](5_000_000 + int(seed))
        img_name = f"{family} picture #{int(seed)}"
    else:
        img, img_name = image_picker(P)
    if not model_input_view(model, img, key=f"{P}.model_input"):
        st.stop()
    img, note = fit_image(model, info, img)
    if note:
        st.caption(f"ℹ️ The model sees this image {safe_text(note, 300)}.")

# Layers with feature maps (convolution, pooling, activation) can be explained.
spatial = activations.default_layers(net)
convs = layers.conv_layer_paths(net)
if not convs:
    st.error(
        f"Model {safe_text(info.name)} has no convolution layer, so there is no map to explain."
    )
    st.stop()
cheap = int(np.prod(info.input_shape)) <= CHEAP_INPUT
mkey, ikey = model_key(model), image_key(img)


# This session's recent results, so moving a slider does not recompute a map.
memo = SessionMemo(f"{P}._memo", (mkey, ikey), slot_label="this explanation")


def explain(method: str, class_index: int | None, layer: str | None, **options) -> cam.Explanation:
    key = ("explain", method, class_index, layer, tuple(sorted(options.items())))

    def run() -> cam.Explanation:
        with progress_bar(f"Computing {cam.method_info(method).title}…") as tick:
            return cam.compute(
                method, model, img, class_index=class_index, layer=layer, progress=tick, **options
            )

    return memo(key, run)


# --------------------------------------------------------------------------------------------
# Controls: class, layer, method
# --------------------------------------------------------------------------------------------
try:
    first = explain("gradcam", None, convs[-1])
    models.check_finite(first.probabilities)  # a NaN answer gets a message, never a NaN bar
except ValueError as err:
    st.error(str(err))
    st.stop()
probs = first.probabilities
names = info.class_names
if len(names) != len(probs):
    names = [f"class {i}" for i in range(len(probs))]

with left:
    weights = " (random weights: its answers mean nothing)" if info.random_weights else ""
    st.markdown(f"**{safe_text(info.name)}{weights} thinks this is:**")
    for label, p in models.top_k(model, probs, k=5):
        st.progress(float(np.clip(p, 0.0, 1.0)), text=f"{safe_text(label)}: {p:.1%}")
    familiarity_note(model, img, probs)
    top1 = int(np.argmax(probs))
    # Always a class of this model: back to top-1 for a new model, relabelled for a new image.
    # Top-1 is the option TOP1 (-1), not None: Streamlit stores None as "nothing chosen", and
    # the box would then show "Choose an option".
    class_options = [TOP1, *range(len(names))]
    for linked_key in linked:  # a link's class and layer hold even if it also changed the model
        st.session_state.pop(f"{linked_key}._seen", None)
    fresh_choice(f"{P}.class", class_options, TOP1, reset_on=mkey, refresh_on=(ikey, top1))
    chosen_class = st.selectbox(
        "Explain the class",
        class_options,
        format_func=lambda c: f"top-1: {names[top1]}" if c == TOP1 else f"{c}: {names[c]}",
        key=f"{P}.class",
        help="Any class, by name. A class the network does not see may give an empty map: "
        "that is an honest answer, not a bug.",
    )
    class_index = None if chosen_class == TOP1 else int(chosen_class)
    # A layer of this model: back to the last convolution layer when the model changes.
    fresh_choice(f"{P}.layer", spatial, convs[-1], reset_on=mkey)
    layer = st.selectbox(
        "Layer",
        spatial,
        key=f"{P}.layer",
        help="The default is the last convolution layer: the most abstract features that still "
        "know where things are. Earlier layers give sharper but less class-specific maps.",
    )
    method = st.selectbox(
        "Method",
        list(cam.METHODS),
        format_func=lambda m: cam.method_info(m).title,
        key=f"{P}.method",
    )
    about = cam.method_info(method)
    st.info(f"**{about.title}.** {about.explanation}\n\n*{about.reference}*")
    alpha = st.slider("Overlay strength", 0.0, 1.0, step=0.05, key=f"{P}.alpha")
    cmap = st.selectbox(
        "Colour map",
        list(COLORMAPS),
        format_func=COLORMAPS.get,
        key=f"{P}.cmap",
        help="viridis and its relatives read the same in grey and for colour-blind eyes; jet "
        "does not, and its bright yellow band draws the eye to medium values.",
    )

try:
    result = explain(method, class_index, layer if about.uses_layer else None)
except ValueError as err:
    st.error(str(err))
    st.stop()
heat = result.heatmap
explained = names[result.class_index]
where = f" at layer {result.layer}" if result.layer else " on the input pixels"
# Small pictures (64×64 shapes, 28×28 digits) are enlarged with square pixels for the overlay.
zoom = max(1, 256 // max(img.shape[:2]))
shown = np.repeat(np.repeat(img, zoom, axis=0), zoom, axis=1) if zoom > 1 else img
overlay = images.overlay(shown, heat, alpha=alpha, cmap=cmap)
stem = f"{about.name}_{result.class_index}".replace("+", "p")

with right:
    st.markdown(
        f"**{about.title}** for class **{safe_text(explained)}**{safe_text(where)} · "
        f"score before softmax {result.score:.3g}, probability {probs[result.class_index]:.1%}"
    )
    if mask is not None and result.reason is None and mask.shape == heat.shape:
        # The generator knows where the object is: does the map's peak fall on it?
        peak = np.unravel_index(np.argmax(heat), heat.shape)
        st.caption(
            "✅ The map's brightest point is on the object."
            if mask[peak]
            else "⚠️ The map's brightest point is *off* the object, on the background next to "
            "it. The network may use the contrast at the edge, or the map may be too coarse: "
            "an explanation is not a segmentation."
        )
    if result.reason:
        st.warning(result.reason)
    c1, c2 = st.columns(2)
    with c1:
        st.image(overlay, caption=f"Overlay on {safe_text(img_name)}", width="stretch")
        download_image("Overlay as PNG", overlay, f"{stem}_overlay.png", key=f"{P}.dl_overlay")
    with c2:
        st.plotly_chart(
            figures.heatmap(heat, colorscale=cmap, zmin=0, zmax=1, height=340),
            key=f"{P}.heat_fig",
        )
        d1, d2 = st.columns(2)
        with d1:
            download_array("Map as NPY", heat, f"{stem}_map.npy", key=f"{P}.dl_npy")
        with d2:
            download_image(
                "Map as PNG",
                lambda: images.colorize(heat, cmap=cmap, vmin=0, vmax=1),
                f"{stem}_map.png",
                key=f"{P}.dl_map_png",
            )
    if result.raw.shape != heat.shape:
        h, w = result.raw.shape
        st.caption(
            f"The layer's map is only {h}×{w}: each cell covers about "
            f"{heat.shape[0] / h:.0f}×{heat.shape[1] / w:.0f} input pixels. It is upscaled "
            "smoothly (bilinear) to the image."
        )


def run_or_button(label: str, key: str, memo_key: tuple) -> bool:
    """Run at once for small models; for big ones wait for a click (the result is kept)."""
    if cheap or memo(memo_key) is not None:
        return True
    return st.button(label, key=key, help="This takes a while on a large model.")


tab_methods, tab_layers, tab_sanity, tab_faith = st.tabs(
    ["Compare methods", "Compare layers", "Sanity check", "Faithfulness"]
)

# --------------------------------------------------------------------------------------------
# Compare methods: every method, same image, class and layer
# --------------------------------------------------------------------------------------------
with tab_methods:
    st.markdown(
        "The same class and layer with every method. Where they agree, the evidence is strong; "
        "where they differ, remember that each answers a slightly different question. "
        "(SmoothGrad and Integrated Gradients use fewer samples here than on their own.)"
    )
    key = ("grid", class_index, layer)
    if run_or_button("Compute every method", f"{P}.run_methods", key):

        def all_methods() -> list[cam.Explanation]:
            out = []
            with progress_bar("Computing every method…") as tick:
                for i, name in enumerate(cam.METHODS):
                    info_m = cam.method_info(name)
                    out.append(
                        cam.compute(
                            name,
                            model,
                            img,
                            class_index=class_index,
                            layer=layer if info_m.uses_layer else None,
                            **QUICK.get(name, {}),
                        )
                    )
                    tick(i + 1, len(cam.METHODS))
            return out

        try:
            grid = memo(key, all_methods)
        except ValueError as err:
            st.error(str(err))
        else:
            titles = [cam.method_info(r.method).title for r in grid]
            maps = np.stack([r.heatmap for r in grid])
            map_grid(
                maps,
                titles,
                cols=5,
                choose_cols=True,
                colorscale=cmap,
                max_side=64,
                key=f"{P}.methods_fig",
                file_name="methods.png",
                download_key=f"{P}.dl_methods",
            )
            empty = [t for t, r in zip(titles, grid, strict=True) if r.reason]
            if empty:
                st.caption(f"Empty maps (no positive evidence): {', '.join(empty)}.")

# --------------------------------------------------------------------------------------------
# Compare layers: the chosen CAM method at every conv layer, early to late
# --------------------------------------------------------------------------------------------
with tab_layers:
    strip_method = method if about.uses_layer else "gradcam"
    strip_title = cam.method_info(strip_method).title
    st.markdown(
        f"{strip_title} at every convolution layer, from the first (left) to the last "
        "(right). Early layers respond to edges and colours anywhere; late layers to the "
        "parts that matter for the class, but on a coarser grid. LayerCAM keeps early "
        "layers readable."
    )
    key = ("layers", strip_method, class_index)
    if run_or_button("Compute every layer", f"{P}.run_layers", key):

        def every_layer() -> list[cam.Explanation]:
            out = []
            with progress_bar(f"{strip_title} at every layer…") as tick:
                for i, path in enumerate(convs):
                    out.append(
                        cam.compute(strip_method, model, img, class_index=class_index, layer=path)
                    )
                    tick(i + 1, len(convs))
            return out

        try:
            strip = memo(key, every_layer)
        except ValueError as err:
            st.error(str(err))
        else:
            maps = np.stack([r.heatmap for r in strip])
            titles = [
                f"{p} ({'×'.join(map(str, r.raw.shape))})"
                for p, r in zip(convs, strip, strict=True)
            ]
            map_grid(
                maps,
                titles,
                cols=min(len(convs), 7),
                choose_cols=True,
                colorscale=cmap,
                max_side=64,
                key=f"{P}.layers_fig",
                label="Strip as PNG",
                file_name="layers.png",
                download_key=f"{P}.dl_layers",
            )

# --------------------------------------------------------------------------------------------
# Sanity check: model randomization (Adebayo et al. 2018)
# --------------------------------------------------------------------------------------------
with tab_sanity:
    st.markdown(
        "**Would the map change if the network had learned nothing?** A copy of the network is "
        "scrambled one layer at a time, from the output back to the input (the layers you "
        "picked stay untouched). After each step we explain the same class again and measure "
        "how similar the new map is to the original: the **Spearman rank correlation** (1: "
        "the same ordering of pixels, 0: unrelated). An explanation that *depends on what the "
        "network learned* must fall towards 0. One that stays high is really showing the "
        "image's edges, whatever the weights: guided backprop famously does. On simple "
        "synthetic pictures even a random network may still find the object, because its "
        "edges dominate any random filter's response: that is worth seeing too."
    )
    key = ("sanity", method, class_index, layer)
    if run_or_button("Run the sanity check", f"{P}.run_sanity", key):

        def sanity() -> cam.RandomizationResult:
            with progress_bar("Scrambling the copy, layer by layer…") as tick:
                return cam.randomization_test(
                    model,
                    img,
                    method=method,
                    class_index=result.class_index,
                    layer=layer if about.uses_layer else None,
                    progress=tick,
                    **QUICK.get(method, {}),
                )

        try:
            test = memo(key, sanity)
        except ValueError as err:
            st.error(str(err))
        else:
            labels = ["original"] + [f"…{s.randomized[-1]}" for s in test.stages[1:]]
            rhos = [s.spearman for s in test.stages]
            st.plotly_chart(
                figures.sanity_curve(
                    labels, rhos, title=f"{about.title}: similarity to the original"
                ),
                key=f"{P}.sanity_curve",
            )
            flat = [lab for lab, s in zip(labels, test.stages, strict=True) if s.spearman is None]
            if flat:
                why = next((s.reason for s in test.stages if s.spearman is None and s.reason), None)
                st.caption(
                    f"✕ No correlation at {', '.join(flat)}: the map there is flat (every pixel "
                    "the same), and a flat map ranks no pixel above another, so a rank "
                    "correlation is undefined. It is drawn as a grey ✕ on the zero line. "
                    + (f"Why it is flat: {why}" if why else "")
                )
            final = rhos[-1]
            st.metric(
                "Correlation with every layer scrambled",
                "undefined (a flat map)" if final is None else f"{final:.2f}",
            )
            maps = np.stack([s.heatmap for s in test.stages])
            map_grid(
                maps,
                labels,
                cols=6,
                choose_cols=True,
                colorscale=cmap,
                max_side=64,
                key=f"{P}.sanity_fig",
                label="Stages as PNG",
                file_name="sanity_stages.png",
                download_key=f"{P}.dl_sanity",
            )
            download_array(
                "Correlations as CSV",
                np.array([np.nan if r is None else r for r in rhos]),
                "sanity_spearman.csv",
                key=f"{P}.dl_sanity_csv",
            )

# --------------------------------------------------------------------------------------------
# Faithfulness: deletion and insertion (Petsiuk et al. 2018)
# --------------------------------------------------------------------------------------------
with tab_faith:
    st.markdown(
        "**Does the map point at what the network actually uses?** *Deletion* blacks out the "
        "pixels the map calls most important first and watches the class probability: if the "
        "map is right, it drops fast (small area under the curve). *Insertion* starts from a "
        "blurred image and puts the most important pixels back first: the probability should "
        "rise fast (large area). The same done with **random maps** is the baseline to beat.\n\n"
        "The blur here is strong (σ = 1/16 of the picture's side): the RISE paper's 5 pixels "
        "on a 224-pixel photo leave a big, simple shape perfectly recognisable, so the "
        "insertion curve would start at the final probability and stay flat, measuring nothing."
    )
    blur = max(info.input_shape[:2]) / 16
    key = ("faith", method, class_index, layer, blur)
    if run_or_button("Measure faithfulness", f"{P}.run_faith", key):

        def faith() -> cam.Faithfulness:
            with progress_bar("Deleting and inserting pixels…") as tick:
                return cam.deletion_insertion(
                    model, img, method=method, class_index=result.class_index, heatmap=heat,
                    blur_sigma=blur, progress=tick,
                )  # fmt: skip

        try:
            f = memo(key, faith)
        except ValueError as err:
            st.error(str(err))
        else:
            m1, m2 = st.columns(2)
            m1.metric(
                "Deletion AUC (lower is better)",
                f"{f.deletion_auc:.3f}",
                f"{f.deletion_auc - f.random_deletion_auc:+.3f} vs random",
                delta_color="inverse",
            )
            m2.metric(
                "Insertion AUC (higher is better)",
                f"{f.insertion_auc:.3f}",
                f"{f.insertion_auc - f.random_insertion_auc:+.3f} vs random",
            )
            for curve, rand, name in (
                (f.deletion, f.random_deletion, "Deletion"),
                (f.insertion, f.random_insertion, "Insertion"),
            ):
                fig = figures.faithfulness_curve(
                    f.fractions,
                    curve,
                    rand,
                    name=about.title,
                    x_title="fraction of pixels "
                    + ("removed" if name == "Deletion" else "inserted"),
                    y_title=f"p({safe_text(explained, 40)})",
                    title=name,
                )
                st.plotly_chart(fig, key=f"{P}.faith_{name.lower()}")
            start, end = f.insertion[0], f.insertion[-1]
            st.caption(
                f"Insertion starts from the picture blurred by σ = {f.blur_sigma:.1f} px, where "
                f"p({safe_text(explained, 40)}) is {start:.1%}; with every pixel back it is "
                f"{end:.1%}."
                + (
                    " The network still recognises the blurred picture, so this insertion curve "
                    "is nearly flat and says little: the class lives in the picture's coarse "
                    "shape, which the blur keeps; deletion is the more telling curve here."
                    if end - start < 0.1 * max(end, 1e-6)
                    else ""
                )
            )
            download_array(
                "Curves as CSV",
                np.stack(
                    [f.fractions, f.deletion, f.random_deletion, f.insertion, f.random_insertion],
                    axis=1,
                ),
                "faithfulness.csv",
                key=f"{P}.dl_faith",
            )
            st.caption("Columns: fraction, deletion, random deletion, insertion, random insertion.")

params.sync(LINK, prefix="gradcam")
