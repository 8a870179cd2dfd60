"""When it fails: occlusion, guided backprop's sanity check, adversarial examples, two objects."""

import numpy as np
import streamlit as st
from streamlit_image_coordinates import streamlit_image_coordinates

from cnnviz import activations, cam, datasets, figures, grids, images, layers, models
from cnnviz.cam.occlusion import occlude
from cnnviz.ui import failures as cache
from cnnviz.ui.model_input import model_input_image
from cnnviz.ui.models import current_network
from cnnviz.ui.router import use_app_router
from cnnviz.ui.slots import heavy_slot
from cnnviz.ui.widgets import download_image, image_picker, safe_text

use_app_router()
P = "failures"
# The clickable picture is shown this many times larger (a 64×64 picture is tiny on screen).
ZOOM = 4
# Where the two-shape picture comes from.
SCENE_KINDS = {
    "drawn": "Hand-drawn on paper",
    "generated": "Generated (pasted shapes)",
    "yours": "Your own picture",
}

st.title("When it fails")
st.markdown(
    "A CNN can be right for the wrong reasons, and an explanation can look convincing while "
    "saying little about the network. This page breaks both on purpose: **cover** parts of "
    "the picture, **scramble** the network and see which explanations notice, **nudge** "
    "pixels invisibly until the answer flips, and ask about **two objects** in one picture."
)

model, info, net = current_network()
classes = info.class_names or [str(i) for i in range(int(net.output_shape[-1]))]
h, w, _c = info.input_shape
family = model.removeprefix(models.RANDOM_PREFIX) if isinstance(model, str) else None


def progress_bar(text: str):
    """A progress bar and the progress(done, total) callback the library calls."""
    bar = st.progress(0.0, text=text)
    return bar, lambda done, total: bar.progress(min(1.0, done / max(total, 1)), text=text)


def predict(img: np.ndarray) -> np.ndarray:
    return models.predict(model, img)[0]


def gradcam(img: np.ndarray, class_index: int | None = None) -> np.ndarray:
    return cam.compute("gradcam", model, img, class_index=class_index).heatmap


def big(img: np.ndarray) -> np.ndarray:
    """Nearest-neighbour zoom for display (pixels stay visible as pixels)."""
    arr = np.asarray(img)
    return np.repeat(np.repeat(arr, ZOOM, axis=0), ZOOM, axis=1)


def adversarial_lab(levels: int, method: str) -> None:
    """The attack, what it changed, and the bisection and targeted attack below it."""
    eps = levels / 255
    with heavy_slot("the attack"):
        bar, tick = progress_bar(f"{method.upper()} at ε = {levels}/255…")
        try:
            adv = cache.attack(model, picture, method=method, epsilon=eps, progress=tick)
        except ValueError as err:
            st.error(str(err))
            return
        bar.empty()
    delta = adv.astype(np.float64) - picture.astype(np.float64)
    scale = 127.5 / max(float(np.abs(delta).max()), 1.0)
    shown_delta = np.clip(127.5 + delta * scale, 0, 255).astype(np.uint8)
    a, b, c = st.columns(3)
    a.image(big(picture), caption="Original")
    b.image(
        big(shown_delta),
        caption=f"Perturbation × {scale:.0f} (grey = 0; max {np.abs(delta).max():.0f} levels)",
    )
    c.image(big(adv), caption="Adversarial")
    with c:
        download_image(
            "Download the adversarial picture", adv, "adversarial.png", key=f"{P}.dl_adv"
        )
    p0, p1 = predict(picture), predict(adv)
    st.plotly_chart(
        figures.probability_bars(
            classes, {"original": p0, "adversarial": p1}, title="Prediction", height=300
        ),
        key=f"{P}.adv_bars",
    )
    st.markdown(
        f"Before: **{safe_text(classes[int(p0.argmax())])}** ({p0.max():.0%}); after: "
        f"**{safe_text(classes[int(p1.argmax())])}** ({p1.max():.0%})."
    )
    layer = layers.conv_layer_paths(net)[0]
    x, y = st.columns(2)
    for col, img, name in ((x, picture, "original"), (y, adv, "adversarial")):
        with col:
            st.image(
                big(images.overlay(img, gradcam(img))), caption=f"Grad-CAM of the top class, {name}"
            )
    st.markdown(
        f"Activations of the first convolution layer `{safe_text(layer)}`, before and after:"
    )
    maps = [activations.forward(model, img, [layer]).maps[layer] for img in (picture, adv)]
    k = min(8, maps[0].shape[-1])
    st.plotly_chart(
        grids.channel_grid(
            [m[..., i] for m in maps for i in range(k)],
            [f"{name} #{i}" for name in ("before", "after") for i in range(k)],
            shared_scale=True,
            cols=k,
        ),
        key=f"{P}.adv_acts",
    )

    st.markdown("**The smallest ε that flips the answer** (bisection, ten PGD steps each).")
    if st.button("Find the smallest ε", key=f"{P}.flip"):
        with heavy_slot("the bisection"):
            bar, tick = progress_bar("Bisecting ε…")
            found = cache.flip(model, picture, method="pgd", progress=tick)
            bar.empty()
        if found.epsilon is None:
            st.warning("Even ε = 32/255 does not change the answer for this picture.")
        else:
            st.success(
                f"ε = {found.epsilon * 255:.1f}/255 turns *{safe_text(classes[found.original_class])}* "
                f"into *{safe_text(classes[found.new_class])}* ({len(found.tried)} attacks tried)."
            )

    st.markdown("**A targeted attack**: choose what the network should see.")
    t1, t2 = st.columns([2, 1])
    # "Make this circle a star" (or this star a circle): never the class it already is.
    now = int(p0.argmax())
    wished = [classes.index(c) for c in ("star", "circle") if c in classes]
    default_target = next(
        (i for i in wished if i != now), next((i for i in range(len(classes)) if i != now), 0)
    )
    target = t1.selectbox(
        "Make it a…",
        range(len(classes)),
        index=default_target,
        format_func=lambda i: classes[i],
        key=f"{P}.target",
    )
    if t2.button("Attack", key=f"{P}.targeted"):
        with heavy_slot("the targeted attack"):
            bar, tick = progress_bar(f"PGD towards {classes[target]}…")
            tadv = cache.attack(
                model,
                picture,
                method="pgd",
                epsilon=max(eps, 1 / 255),
                target=int(target),
                progress=tick,
            )
            bar.empty()
        pt = predict(tadv)
        ta, tb = st.columns(2)
        ta.image(big(tadv), caption=f"Now: {classes[int(pt.argmax())]} ({pt.max():.0%})")
        with tb:
            st.plotly_chart(
                figures.probability_bars(classes, {"original": p0, "targeted": pt}, height=300),
                key=f"{P}.target_bars",
            )
            download_image("Download", tadv, "targeted.png", key=f"{P}.dl_target")


# -- the picture -------------------------------------------------------------------------------
picture = None
with st.sidebar:
    own = family not in ("shapes", "digits") or st.toggle(
        "Use your own picture",
        key=f"{P}.own",
        help="Draw, photograph or upload a picture instead of a generated one: every view on "
        "this page then works on it (draw two shapes for the last tab).",
    )
    if not own and family == "shapes":
        # Seed 324: a large star whose points matter (covering one drops "star" by up to 39 %).
        seed = st.number_input("Picture seed", 0, 10**6, 324, key=f"{P}.seed")
        picture, _label = cache.shape_picture(int(seed))
        st.caption("A fresh picture from `datasets.shapes` (a seed never used in training).")
    elif not own and family == "digits":
        seed = st.number_input("Picture seed", 0, 10**6, 7, key=f"{P}.seed")
        picture = datasets.digits(1, seed=int(seed))[0][0]
if picture is None:
    raw, _name = image_picker(P)
    if family in ("shapes", "digits"):
        # A built-in model's own input: a drawing cropped to it at 64×64, a digit normalised
        # as MNIST at 28×28. Occlusion and attacks then change exactly the pixels it sees.
        try:
            picture = model_input_image(model, raw)
        except ValueError as err:
            st.error(str(err))
            st.stop()
        st.caption(f"What the model sees, {w}×{h}: attacks change these pixels.")
    else:
        picture = images.resize(raw, (h, w))
        if _c == 1:
            picture = images.to_gray(picture)
        st.caption(f"Resized to the model's input, {w}×{h}: attacks change the pixels it sees.")
picture = np.asarray(picture)

occ_tab, guided_tab, adv_tab, scene_tab = st.tabs(
    ["Occlusion", "Guided backprop", "Adversarial lab", "Two shapes in one picture"]
)

# -- occlusion ---------------------------------------------------------------------------------
with occ_tab:
    st.subheader("Cover part of the picture")
    st.markdown(
        "Click on the picture to put a grey square there (the picture's mean colour), and "
        "watch the prediction. Cover a star's points and watch *star* drop. Zeiler & Fergus "
        "(2014) did this at every position: the **occlusion map** shows how much the class's "
        "probability falls when each place is hidden."
    )
    patch = st.slider(
        "Square side (pixels)", 2, max(2, min(h, w) // 2), min(8, min(h, w) // 2), key=f"{P}.patch"
    )
    if f"{P}.click" not in st.session_state:
        st.session_state[f"{P}.click"] = (h // 2 - patch // 2, w // 2 - patch // 2)
    top, left = st.session_state[f"{P}.click"]
    top, left = int(np.clip(top, 0, h - patch)), int(np.clip(left, 0, w - patch))
    covered = occlude(picture, top, left, patch)
    col_pic, col_bars = st.columns([1, 1])
    with col_pic:
        clicked = streamlit_image_coordinates(
            big(covered if covered.ndim == 3 else np.repeat(covered[..., None], 3, -1)),
            key=f"{P}.clicker",
            cursor="crosshair",
        )
        if clicked is not None:
            spot = (int(clicked["y"]) // ZOOM - patch // 2, int(clicked["x"]) // ZOOM - patch // 2)
            if spot != st.session_state[f"{P}.click"]:
                st.session_state[f"{P}.click"] = spot
                st.rerun()
        st.caption(f"Square at row {top}, column {left}. Click elsewhere to move it.")
        download_image(
            "Download the covered picture", covered, "occluded.png", key=f"{P}.dl_covered"
        )
    with col_bars:
        p_before, p_after = predict(picture), predict(covered)
        st.plotly_chart(
            figures.probability_bars(
                classes, {"original": p_before, "covered": p_after}, title="Prediction", height=320
            ),
            key=f"{P}.occ_bars",
        )
    top1 = int(np.argmax(p_before))
    st.markdown(f"**Occlusion map** for *{safe_text(classes[top1])}* (8-px squares every 4 px).")
    with heavy_slot("the occlusion map"):
        bar, tick = progress_bar("Covering every position…")
        try:
            occ = cache.occlusion(
                model, picture, patch=8, stride=4, class_index=top1, progress=tick
            )
        except ValueError as err:
            st.error(str(err))
            occ = None
        bar.empty()
    if occ is not None:
        a, b = st.columns(2)
        with a:
            st.plotly_chart(
                figures.heatmap(occ, title="p(original) − p(covered)", zmid=0.0, height=320),
                key=f"{P}.occ_map",
            )
        with b:
            positive = np.maximum(occ, 0) / max(float(occ.max()), 1e-9)
            over = images.overlay(picture, positive)
            st.image(big(over), caption="Where covering hurts the most (bright)")
            download_image("Download the overlay", over, "occlusion.png", key=f"{P}.dl_occ")
        st.caption(
            f"Largest drop {occ.max():.1%}; most negative {occ.min():.1%} (covering there "
            "makes the class *more* likely)."
        )

# -- guided backprop -----------------------------------------------------------------------------
with guided_tab:
    st.subheader("Guided backprop next to Grad-CAM, and a sanity check")
    st.markdown(
        "Guided backprop draws crisp, beautiful maps. But does it show what the network "
        "*learned*? Adebayo et al. (2018) re-initialised a network's layers from the top down "
        "and measured how similar each map stays (Spearman rank correlation with the original: "
        "1 = the same ranking of pixels, 0 = unrelated). A map that stays similar while the "
        "weights are destroyed is explaining the picture, not the network."
    )
    results = {}
    with (
        heavy_slot("the randomization test"),
        st.status("Scrambling the network, layer by layer…") as status,
    ):
        for method in ("guided_backprop", "gradcam"):
            bar, tick = progress_bar(f"{cam.method_info(method).title}: stage by stage")
            try:
                results[method] = cache.randomization(model, picture, method, progress=tick)
            except ValueError as err:
                st.error(str(err))
            bar.empty()
        status.update(label="Randomization test done", state="complete", expanded=False)
    cols = st.columns(len(results) or 1)
    for col, (method, res) in zip(cols, results.items(), strict=False):
        with col:
            title = cam.method_info(method).title
            last = res.stages[-1]
            st.image(
                big(images.overlay(picture, res.original)), caption=f"{title}, trained network"
            )
            st.image(
                big(images.overlay(picture, last.heatmap)), caption=f"{title}, every layer random"
            )
            download_image(
                f"Download {title} (trained)",
                images.colorize(res.original),
                f"{method}.png",
                key=f"{P}.dl_{method}",
            )
            final = "undefined (a flat map)" if last.spearman is None else f"{last.spearman:.2f}"
            st.metric(f"{title}: Spearman after all layers are random", final)
            st.caption(
                "Stage by stage: "
                + ", ".join("–" if s.spearman is None else f"{s.spearman:.2f}" for s in res.stages)
            )
    if len(results) == 2:
        gb, gc = (results[m].stages[-1].spearman for m in ("guided_backprop", "gradcam"))
        gb = 0.0 if gb is None else gb
        gc = 0.0 if gc is None else gc
        verdict = (
            "It stays close to its original map while every weight is random: like Adebayo "
            "et al. (2018) found on ImageNet networks, the map is drawn by the picture's edges "
            "more than by what the network learned."
            if gb >= 0.5
            else "Here it does change once the weights are random, unlike the ImageNet "
            "networks of Adebayo et al. (2018): on this small network the map depends on the "
            "weights too. Try a few seeds before you trust either method."
        )
        st.info(
            f"On this picture guided backprop keeps a rank correlation of {gb:.2f} with its "
            f"original map once every weight is random, Grad-CAM {gc:.2f}. {verdict}"
        )

# -- adversarial lab -----------------------------------------------------------------------------
with adv_tab:
    st.subheader("Adversarial examples")
    st.markdown(
        "Change every pixel by at most ε, in the direction that hurts the network most. "
        "**FGSM** takes one step along the sign of the gradient (Goodfellow et al. 2015); "
        "**PGD** takes ten smaller ones, staying within ε (Madry et al. 2018). "
        "ε = 8/255 means 8 levels out of 256: invisible to us."
    )
    c1, c2 = st.columns(2)
    levels = c1.slider("ε in levels of 255", 0, 32, 8, key=f"{P}.eps")
    method = c2.radio(
        "Attack", ["pgd", "fgsm"], format_func=str.upper, horizontal=True, key=f"{P}.attack"
    )
    adversarial_lab(levels, method)

# -- two shapes --------------------------------------------------------------------------------
with scene_tab:
    st.subheader("Two shapes in one picture")
    st.markdown(
        "The Grad-CAM paper's famous figure: one picture with a cat and a dog; Grad-CAM for "
        "*cat* lights the cat, for *dog* the dog. Our shapes network was trained mostly on one "
        "shape per picture; in its few two-shape pictures it was told only that each class's "
        "evidence must lie on that class's own shape. Does its Grad-CAM tell the two apart "
        "on pictures it never saw, and on yours?"
    )
    if family != "shapes":
        st.info("Choose the **shapes** model in the sidebar: the scenes are made of its shapes.")
    else:
        kind = st.radio(
            "Scene",
            list(SCENE_KINDS),
            format_func=SCENE_KINDS.get,
            horizontal=True,
            key=f"{P}.scene_kind",
        )
        if kind == "yours":
            img, masks = picture, None
            if not own:
                st.info(
                    "Switch on **Use your own picture** in the sidebar and draw two shapes "
                    "side by side (or photograph them). Showing the generated picture for now."
                )
        else:
            scene_seed = st.number_input("Scene seed", 0, 10**6, 3, key=f"{P}.scene_seed")
            img, labels, masks = cache.scene(int(scene_seed), hand_drawn=kind == "drawn")
        probs = predict(img)
        if masks is None:
            # No masks for a student's picture: the maps of its two most likely classes.
            labels = np.argsort(probs)[::-1][:2]
        cols = st.columns(3)
        cols[0].image(big(img), caption="The scene")
        with cols[0]:
            download_image("Download the scene", img, "scene.png", key=f"{P}.dl_scene")
        with st.status("Grad-CAM for each shape…") as status:
            for rank, col, lab, mask in zip(
                ("first", "second"),
                cols[1:],
                labels,
                [None, None] if masks is None else masks,
                strict=True,
            ):
                heat = gradcam(img, int(lab))
                name = classes[int(lab)]
                if mask is None:
                    col.caption(f"Its {rank} guess.")
                else:
                    # The pointing game (Zhang et al. 2016): within 15 px at 224² of the object.
                    on, distance = cam.pointing(heat, mask)
                    col.caption(
                        f"Brightest point on the {name}."
                        if distance == 0
                        else f"Brightest point {distance:.0f} px from the {name}: "
                        + (
                            "close enough for the pointing game "
                            f"({cam.pointing_tolerance(max(mask.shape)):.0f} px)."
                            if on
                            else "the map for this class looks elsewhere."
                        )
                    )
                over = images.overlay(img, heat)
                col.image(
                    big(over),
                    caption=f"Grad-CAM for {classes[int(lab)]} (p = {probs[int(lab)]:.0%})",
                )
                with col:
                    download_image(
                        "Download",
                        over,
                        f"scene_{classes[int(lab)]}.png",
                        key=f"{P}.dl_scene_{lab}",
                    )
            status.update(label="Grad-CAM for each shape", state="complete", expanded=False)
