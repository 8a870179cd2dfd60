"""Neurons: what one unit responds to (dataset examples), a layer's vocabulary, the feature map."""

import html

import numpy as np
import streamlit as st

from cnnviz import featureviz, figures, grids, imageset, layers, neurons, weights
from cnnviz.ui import featureviz_cache, mapview, neurons_cache, params
from cnnviz.ui.models import current_network, fit_image, model_samples
from cnnviz.ui.router import use_app_router
from cnnviz.ui.slots import heavy_slot
from cnnviz.ui.widgets import download_image, image_picker, md_code, safe_text

use_app_router()
P = "neurons"
DATA = {**neurons_cache.BUILTIN_DATASETS, "zip": "your own images (a zip)"}
# Shareable link to one neuron, like OpenAI Microscope's: ?model=shapes&layer=conv4&channel=12
LINK = {
    "layer": params.Text(f"{P}.layer"),
    "channel": params.Int(f"{P}.channel", 0, 4095),
    "data": params.Choice(f"{P}.data", list(neurons_cache.BUILTIN_DATASETS)),
}
params.bind(LINK, prefix=P)
# The Filters page's "good" preset, so both pages share one gradient-ascent cache entry.
ASCENT = dict(steps=64, seed=0, objective="channel", param="fft", decorrelate=True,
              transforms="standard", polish=0.3, tv=0.0, l2=0.0, blur_every=0,
              optimizer="adam", learning_rate=0.2, revive=True, input_range=None,
              batch_size=None)  # fmt: skip
AUTO_ASCENT_PIXELS = 96 * 96  # bigger inputs wait for a button

st.title("Neurons: what one unit responds to")
st.markdown(
    "A filter's gradient-ascent picture (the Filters page) shows what it would *like* to see. "
    "Here we ask the other question: among thousands of real pictures, **which ones make this "
    "unit fire most**, and where? Each example is cut out to the unit's **receptive field**: "
    "the patch of the input that one value of its feature map can see."
)

model, info, net = current_network()
conv_paths = layers.conv_layer_paths(net)
if not conv_paths:
    st.error(f"Model {safe_text(info.name)} has no convolution layer: it has no neurons to show.")
    st.stop()

# ---- the dataset -----------------------------------------------------------------------------
suits = "digits" if info.input_shape[:2] == (28, 28) else "shapes"
if st.session_state.get(f"{P}.data") not in DATA:
    st.session_state[f"{P}.data"] = suits
kind = st.radio(
    "Images to look through",
    list(DATA),
    format_func=DATA.get,
    key=f"{P}.data",
    horizontal=True,
    help=f"{neurons_cache.dataset_size():,} generated pictures the models never trained on, "
    "or your own zip of pictures (one folder per class gives colours on the map).",
)
if kind == "zip":
    upload = st.file_uploader(
        "A zip of pictures",
        type=["zip"],
        key=f"{P}.zip",
        help=f"At most {imageset.MAX_FILES} pictures and {imageset.MAX_ZIP_BYTES // 2**20} MB; "
        "PNG, JPEG, WebP, BMP or GIF, each checked. Folders become classes.",
    )
    if upload is None:
        st.info("Upload a zip of pictures, or choose the generated digits or shapes.")
        st.stop()
    try:
        data, skipped = neurons_cache.uploaded_dataset(upload.getvalue(), info.input_shape[:2])
    except imageset.ImageSetError as err:
        st.error(f"{md_code(upload.name, 60)} was refused. {err}")
        st.stop()
    if len(data.images) < 10:
        st.error(f"Expected at least 10 pictures in the zip. Received {len(data.images)}.")
        st.stop()
    if skipped:
        st.caption(f"Skipped {len(skipped)} files: " + safe_text("; ".join(skipped[:3]), 300))
else:
    data = neurons_cache.builtin_dataset(kind)
if kind != "zip" and kind != suits:
    st.caption(f"ℹ️ {safe_text(info.name)} was not trained on {DATA[kind]}: expect odd examples.")


def with_progress(title: str, fn):
    """Run fn(progress) under a progress bar that counts images."""
    bar = st.progress(0.0, text=title)
    try:
        return fn(lambda done, total: bar.progress(done / total, text=f"{title}: {done}/{total}"))
    finally:
        bar.empty()


def maxima_for(layer: str) -> neurons.LayerMaxima:
    return with_progress(
        f"Running {len(data.images):,} pictures through the network up to {layer}",
        lambda progress: neurons_cache.layer_maxima(model, layer, data, progress=progress),
    )


tab_neuron, tab_layer, tab_map = st.tabs(["One neuron", "A whole layer", "Feature map"])

# ---- one neuron --------------------------------------------------------------------------------
with tab_neuron:
    if st.session_state.get(f"{P}.layer") not in conv_paths:
        st.session_state[f"{P}.layer"] = conv_paths[-1]
    left, right = st.columns([1, 3], gap="large")
    with left:
        layer = st.selectbox(
            "Layer",
            conv_paths,
            key=f"{P}.layer",
            help="Early layers see a few pixels (edges, colours); late ones see most of the "
            "picture (parts of objects).",
        )
    try:
        maxima = maxima_for(layer)
        geometry = neurons.layer_geometry(model, layer)
    except ValueError as err:
        st.error(str(err))
        st.stop()
    n_channels = maxima.values.shape[1]
    remembered = st.session_state.get(f"{P}.channel")
    if remembered is None or st.session_state.get(f"{P}._layer_seen") != layer:
        if remembered is None or remembered >= n_channels:
            # First visit of this layer: start on a unit whose top examples share one class.
            st.session_state[f"{P}.channel"] = neurons.default_neuron(maxima, data.labels)
    st.session_state[f"{P}._layer_seen"] = layer
    with left:
        channel = st.number_input(
            "Channel (filter)",
            0,
            n_channels - 1,
            key=f"{P}.channel",
            help=f"{safe_text(layer)} has {n_channels} channels. The first one shown is the "
            "channel whose top examples agree most on one class.",
        )
        rate = float(maxima.fire_rate()[channel])
        st.metric("Fires on", f"{rate:.0%}", help="Share of the pictures where its maximum is > 0.")
        rf = geometry.receptive_field
        st.caption(
            f"Receptive field {rf[0]}×{rf[1]} pixels, jump {geometry.jump[0]} "
            "(from the Architecture page's summary)."
        )
        kernels = weights.conv_kernels(model, layer)[channel]  # (in, kh, kw)
        strongest = np.argsort(-np.abs(kernels).reshape(len(kernels), -1).sum(1))[:3]
        st.markdown("**Its kernel** (the strongest input channels)")
        for i in strongest:
            st.caption(f"from input channel {i}")
            st.plotly_chart(
                figures.kernel_figure(kernels[i], title=None, height=200),
                key=f"{P}.kernel.{i}",
            )
    top = neurons.examples_from_maxima(maxima, geometry, channel, data.images, n=9)
    low = neurons.examples_from_maxima(maxima, geometry, channel, data.images, n=9, lowest=True)

    def captions(ex: neurons.Examples) -> list[str]:
        names = data.class_names
        return [
            f"{v:.3g}" + (f" · {names[data.labels[i]]}" if data.labels is not None else "")
            for i, v in zip(ex.indices, ex.values, strict=True)
        ]

    def pictures(ex: neurons.Examples) -> list[np.ndarray]:
        return [
            grids.outlined(data.images[i], b, scale=3)
            for i, b in zip(ex.indices, ex.boxes, strict=True)
        ]

    with right:
        col_a, col_b = st.columns([1, 2])
        with col_a:
            st.markdown("**What it would like to see** (gradient ascent)")
            size = int(info.input_shape[0])
            settings = {**ASCENT, "size": size}
            found = featureviz_cache.lookup(model, layer, [channel], **settings)
            if found is None and (
                size * size <= AUTO_ASCENT_PIXELS
                or st.button("Find its picture", key=f"{P}.ascent", type="primary")
            ):
                try:
                    with heavy_slot("the filter picture"):
                        found = with_progress(
                            "Gradient ascent",
                            lambda progress: featureviz_cache.visualize(
                                model, layer, [channel],
                                progress=lambda s, t, _img: progress(s, t), **settings,
                            ),
                        )  # fmt: skip
                except ValueError as err:
                    st.error(str(err))
            if found is not None:
                picture = np.round(np.clip(found[0][0], 0, 1) * 255).astype(np.uint8)
                picture = picture[..., 0] if picture.shape[-1] == 1 else picture
                st.image(grids.outlined(picture, None, scale=3), width=220)
                st.caption(
                    f"mean activation {found[1][0]:.3g} (Filters page, {featureviz.capped_steps(64)} steps)"
                )
        with col_b:
            st.markdown(
                f"**Top 9 of {len(data.images):,} pictures**: the orange box is the receptive "
                "field at the unit's strongest position; the number is its activation there."
            )
            st.image(pictures(top), caption=captions(top), width=120)
            download_image(
                "Top examples as PNG",
                lambda: grids.tile_images(np.stack(pictures(top)), 9, gap=2),
                f"{layer}-{channel}-top.png".replace("/", "_"),
                key=f"{P}.dl_top",
            )
        st.markdown("**Its patches**, cut out to the receptive field (outside the picture: black)")
        st.image(
            [grids.outlined(p, None, scale=max(1, 96 // max(p.shape[:2])))
             for p in top.patches],
            width=96,
        )  # fmt: skip
        st.markdown("**The 9 lowest**: the pictures where it stays quietest")
        st.image(pictures(low), caption=captions(low), width=100)

# The neuron is chosen: write it into the address bar now (the map below may stop early).
params.sync(LINK, prefix=P)

# ---- a whole layer -------------------------------------------------------------------------------
with tab_layer:
    st.markdown(
        f"Every channel of **{safe_text(layer)}** with its single strongest picture: the layer's "
        "vocabulary. Early layers: colours and edges; later ones: corners, tips, whole parts."
    )
    best = [
        neurons.examples_from_maxima(maxima, geometry, c, data.images, n=1)
        for c in range(n_channels)
    ]
    st.image(
        [grids.outlined(data.images[e.indices[0]], e.boxes[0], scale=2) for e in best],
        caption=[f"#{e.channel}: {e.values[0]:.3g}" for e in best],
        width=96,
    )
    download_image(
        "Layer grid as PNG",
        lambda: grids.tile_images(
            np.stack(
                [grids.outlined(data.images[e.indices[0]], e.boxes[0], scale=2) for e in best]
            ),
            8,
            gap=2,
        ),
        f"{layer}-layer.png".replace("/", "_"),
        key=f"{P}.dl_layer",
    )

# ---- feature map ---------------------------------------------------------------------------------
with tab_map:
    st.markdown(
        "Each picture becomes the vector of the layer before the classifier. t-SNE puts "
        "pictures with similar vectors close together: if the network has learned the classes, "
        "they form islands. Red rings mark pictures it gets wrong."
    )
    methods = ["tsne", "pca"] + (["umap"] if neurons_cache.umap_available() else [])
    method = (
        st.segmented_control(
            "Map",
            methods,
            default="tsne",
            key=f"{P}.method",
            format_func={"tsne": "t-SNE", "pca": "PCA", "umap": "UMAP"}.get,
            help="t-SNE keeps neighbours together; PCA is a plain projection (fast, but overlaps).",
        )
        or "tsne"
    )
    ready = neurons_cache.feature_map_ready(model, data, method=method)
    if not ready and not st.toggle(
        f"Draw the map of {len(data.images):,} pictures",
        key=f"{P}.show_map",
        help="t-SNE on a few thousand points takes a while on a CPU (the benchmark says how "
        "long); once computed, every student and every server replica reuses it.",
    ):
        st.caption("Switch on to compute the map; it is then kept for everyone.")
        st.stop()
    try:
        fmap = with_progress(
            "Computing the feature map",
            lambda progress: neurons_cache.feature_map(
                model, data, method=method, progress=progress
            ),
        )
    except ValueError as err:
        st.error(str(err))
        st.stop()
    st.markdown("**Your own picture on the map** (the star)")
    samples = model_samples(info)
    img, img_name = image_picker(P, extra=samples, default=next(iter(samples), "chelsea"))
    fitted, _note = fit_image(model, info, img)
    star = neurons.place(
        neurons.features(model, np.asarray(fitted)[None], layer=fmap.layer),
        fmap.features,
        fmap.points,
    )[0]
    wrong = int((fmap.predicted != data.labels).sum()) if data.labels is not None else None
    fig = figures.embedding_figure(
        fmap.points,
        data.labels,
        [html.escape(n) for n in data.class_names],  # a zip's folder names: Plotly labels
        predicted=fmap.predicted if data.labels is not None else None,
        star=(float(star[0]), float(star[1])),
        star_label=f"your image ({html.escape(img_name[:40])})",  # a Plotly label: HTML-escaped
    )
    names = data.class_names
    captions = [
        f"#{i}"
        + (f" · a {names[data.labels[i]]}" if data.labels is not None else "")
        + f" · the network says {neurons_cache.class_name(info, int(p))} ({c:.0%})"
        for i, (p, c) in enumerate(zip(fmap.predicted, fmap.confidence, strict=True))
    ]
    # Only a built-in set can be named in a link (an uploaded zip lives in this session only).
    link = (
        neurons_cache.gradcam_link(model, kind)
        if isinstance(model, str) and kind != "zip"
        else None
    )
    index = mapview.feature_map_view(
        fig, neurons_cache.thumbnails(data), captions, link=link, key=f"{P}.map"
    )
    if wrong is not None:
        st.caption(f"{wrong} of {len(data.images):,} pictures misclassified.")
    if index is not None:
        col_a, col_b = st.columns([1, 3])
        col_a.image(grids.outlined(data.images[index], None, scale=3))
        with col_b:
            st.markdown(safe_text(captions[index]))
            if link is not None:
                st.markdown(f"[Open it on the Grad-CAM page]({link.format(index=index)})")
            download_image(
                "Picture as PNG", data.images[index], f"{kind}-{index}.png", key=f"{P}.dl_pick"
            )
    else:
        st.caption(
            "Hover over a point to see its picture; click it to open it on the Grad-CAM page "
            "(a new tab) and to see it here."
        )
