"""Transfer learning and your own classes: the seeds' last lesson, and Teachable Machine."""

import numpy as np
import pandas as pd
import streamlit as st

from cnnviz import datasets, figures, imageset, transfer
from cnnviz.ui import transfer as ui
from cnnviz.ui.models import register_session_model
from cnnviz.ui.router import use_app_router
from cnnviz.ui.widgets import download_image, md_code

use_app_router()
P = ui.P
MODE_TITLES = {
    "scratch": "from scratch",
    "frozen": "frozen base + new head",
    "finetune": "fine-tuned (conv4 learns too)",
}
SHAPES_BASE = "shapes"

st.title("Transfer learning: reuse what a network already knows")
st.markdown(
    "Both lecture series end here. A network trained on one task has filters that find "
    "edges, strokes, corners and curves. **Transfer learning** keeps that convolutional "
    "**base**, throws away the old classifier and trains a **new head** (global average "
    "pooling + one Dense layer) for new classes. Three ways to do it:\n"
    "- **frozen**: the base's weights are copied and never change; only the head learns;\n"
    "- **fine-tuned**: first the head alone, then the last convolution block learns too, "
    "with a 10× smaller learning rate "
    f"({transfer.FINETUNE_LEARNING_RATE:g} instead of {transfer.HEAD_LEARNING_RATE:g}), so the "
    "pre-trained filters are adjusted, not destroyed;\n"
    "- **from scratch**: the same architecture with random weights, for comparison."
)

JOB = f"{P}._job"

# The session's one transfer training (a background thread: Stop reaches it between batches).
job: ui.TransferJob | None = st.session_state.get(JOB)
busy = job is not None and not job.snapshot().finished
if job is not None and not busy and not job.finalised:
    # Record a finished run once: the table row, or the own-classes model in the picker.
    job.finalised = True
    snap = job.snapshot()
    if job.kind != "own" and snap.result:
        st.session_state.setdefault(job.info["runs"], {})[job.info["key"]] = snap.result
        st.session_state[job.info["last"]] = (job.info["key"], job.info["chance"])
    elif job.kind == "own" and snap.result and snap.result.get("loss"):
        data = job.info["data"]
        run = st.session_state.get(f"{P}._own_count", 0) + 1
        st.session_state[f"{P}._own_count"] = run
        label = f"my classes {run}: {', '.join(data.classes)}"
        register_session_model(label, job.info["model"], class_names=data.classes)
        st.session_state[f"{P}._own"] = {
            "model": job.info["model"],
            "classes": data.classes,
            "history": snap.result,
            "n_val": len(data.y_val),
            "label": label,
        }


def live(job: ui.TransferJob) -> None:
    """Redrawn every second while the job trains; the whole page reruns once it ends."""
    snap = job.snapshot()
    if snap.status == "waiting":
        st.info(ui.WAITING)
    else:
        st.progress(snap.fraction, text=snap.text)
    if snap.finished:
        st.rerun()


def buttons(kind: str, label: str) -> bool:
    """This section's Train and Stop buttons; True when Train was pressed."""
    mine = busy and job.kind == kind
    c1, c2 = st.columns(2)
    pressed = c1.button(label, key=f"{P}.{kind}_train", type="primary", disabled=busy)
    c2.button(
        "Stop",
        key=f"{P}.{kind}_stop",
        disabled=not mine,
        on_click=job.stop if mine else None,
        help="Stops after the current batch. The weights trained so far are kept.",
    )
    if busy and not mine:
        c1.caption("Another training of yours is running; stop it or wait for it.")
    return pressed


def job_panel(kind: str) -> None:
    """Progress while this section's job runs; then its error, or what a Stop kept."""
    if job is None or job.kind != kind:
        return
    for msg in job.info.get("skipped", [])[:10]:
        st.warning(f"Skipped in the zip: {msg}")
    if busy:
        st.fragment(run_every=1.0)(live)(job)
        return
    snap = job.snapshot()
    if snap.status == "error":
        st.error(snap.error)
    elif snap.status == "stopped" and not snap.steps_done:
        st.warning("Stopped before training started; nothing was learnt.")
    elif snap.status == "stopped" and kind == "own":
        done = len((snap.result or {}).get("loss", []))
        st.warning(
            f"Stopped after {snap.steps_done} steps (epoch {done} of {job.info['epochs']}). "
            "The weights trained so far are kept: the model below is the head as it was."
        )
    elif snap.status == "stopped":
        trained = ", ".join(MODE_TITLES[m] for m in snap.result or {})
        st.warning(
            f"Stopped after {snap.steps_done} steps. The weights trained so far are kept: "
            f"the table measures each model as it was when you stopped ({trained or 'none'}; "
            "the others did not start)."
        )


def results(runs_key: str, last_key: str, what: str) -> None:
    """Curves of the last run and the table of every run of this section."""
    runs = st.session_state.get(runs_key, {})
    last, chance = st.session_state.get(last_key, (None, 0.5))
    if last in runs:
        histories = {MODE_TITLES[m]: r["history"] for m, r in runs[last].items()}
        left, right = st.columns(2)
        left.plotly_chart(
            figures.mode_curves(
                histories,
                chance=chance,
                title=f"Validation accuracy, {last[-1]} per class, base {last[-2]}",
            ),
            key=f"{runs_key}_acc",
        )
        right.plotly_chart(
            figures.mode_curves(histories, metric="loss", title="Training loss"),
            key=f"{runs_key}_loss",
        )
    if not runs:
        return
    index = ["pictures", "base", "pictures per class"][-len(next(iter(runs))) :]
    table = pd.DataFrame(
        [
            {
                **dict(zip(index, key, strict=True)),
                **{MODE_TITLES[m]: r["accuracy"] for m, r in v.items()},
            }
            for key, v in sorted(runs.items())
        ]
    ).set_index(index)
    st.markdown(f"**Held-out accuracy** ({what})")
    st.dataframe(table.style.format("{:.1%}", na_rep="–"), key=f"{runs_key}_table")
    st.download_button(
        "Download the table (CSV)",
        table.to_csv(),
        f"transfer_accuracy{'_photos' if len(index) == 3 else ''}.csv",
        mime="text/csv",
        key=f"{runs_key}_csv",
    )


# ---- 0. which bases are here ----------------------------------------------------------------
imagenet_ok, imagenet_msg = st.session_state.get(f"{P}._imagenet", (False, None))
with st.container(border=True):
    st.markdown(
        "**Bases.** The built-in shapes network works offline. With a network connection (or "
        "its weights file prepared with `python -m cnnviz.prefetch mobilenet_v2`), MobileNetV2 "
        "trained on 1.2 million ImageNet photos can be the base too: it knows fur, wheels and "
        "faces, so it suits photos of real things; the shapes base knows strokes and corners "
        "of flat coloured shapes, not cats."
    )
    if st.button("Check for MobileNetV2's ImageNet weights", key=f"{P}.imagenet_check"):
        with st.spinner("Loading MobileNetV2…"):
            st.session_state[f"{P}._imagenet"] = ui.imagenet_base()
        st.rerun()  # offer the ImageNet base in every section
    if imagenet_msg:
        (st.success if imagenet_ok else st.warning)(imagenet_msg)
    side = ui.IMAGENET_SIDE
    if imagenet_ok:
        side = st.select_slider(
            "MobileNetV2 rebuilt at (px)",
            options=list(ui.IMAGENET_SIDES),
            value=ui.IMAGENET_SIDE,
            key=f"{P}.side",
            help="Its convolutions work at any size; smaller pictures train faster.",
        )

# ---- 1. the seeds' experiment, offline ------------------------------------------------------
st.header("1 · New shapes from few examples")
st.markdown(
    "The built-in shapes model learnt circles, squares, stars… It has never seen these four: "
    f"**{', '.join(datasets.NOVEL_CLASSES)}**. How many pictures does each method need?"
)
examples, example_labels = datasets.novel_shapes(8, seed=7)
strip = np.concatenate(list(examples), axis=1)
st.image(strip, caption=" · ".join(datasets.NOVEL_CLASSES[i] for i in example_labels))
download_image("Download these examples", strip, "novel_shapes.png", key=f"{P}.examples_png")

exp_bases = {SHAPES_BASE: "the shapes base (offline)"}
if imagenet_ok:
    exp_bases["mobilenet_v2"] = f"MobileNetV2 (ImageNet) at {side} px"
exp_base = st.radio(
    "Base", list(exp_bases), format_func=exp_bases.get, key=f"{P}.exp_base", horizontal=True
)
c1, c2 = st.columns(2)
per_class = c1.select_slider(
    "Training pictures per class",
    options=[5, 20, 100],
    value=20,
    key=f"{P}.per_class",
    help="The same fixed held-out set of 400 new pictures measures every model.",
)
steps = c2.slider(
    "Gradient steps per model",
    50,
    400,
    150,
    step=50,
    key=f"{P}.steps",
    help="Every model gets the same number of steps (small sets are seen for more epochs).",
)
if buttons("compare", "Train the three models"):
    online = exp_base != SHAPES_BASE
    task = ui.cached_task(int(per_class), size=side if online else 64)
    st.session_state[JOB] = ui.compare_job(
        "compare",
        exp_base,
        task,
        steps=int(steps),
        titles=MODE_TITLES,
        input_size=side if online else None,
        info={
            "runs": f"{P}._runs",
            "key": (exp_base, int(per_class)),
            "last": f"{P}._last",
            "chance": 1 / len(task.classes),
        },
    )
    st.rerun()
job_panel("compare")
results(f"{P}._runs", f"{P}._last", "400 new pictures; guessing scores 25 %")
if st.session_state.get(f"{P}._runs"):
    st.info(
        "What to look for: with 5 pictures per class the network trained from scratch has "
        "nothing to build on, while the frozen base already has filters for edges and "
        "corners. With 100 per class the gap shrinks: with enough data, a network can learn "
        "its own filters, and transfer matters less. Try all three sizes."
    )

# ---- 2. photos: seed 003's cats vs dogs, or a zip of class folders -------------------------
st.header("2 · Photos: cats vs dogs, or your own folders")
st.markdown(
    "Seed 003 ends with a frozen pre-trained base on **cats vs dogs**. Here the same "
    "three models learn from 5, 20 or 100 photos per class. The photos are downloaded once "
    "(68 MB, the seed's `cats_and_dogs_filtered.zip`); without a network, upload a zip with "
    "one folder per class instead (`cats/…jpg`, `dogs/…jpg`; seed 003's `train/cats` and "
    "`validation/cats` count as one class)."
)
sources = {
    "cats_dogs": "seed 003's cats vs dogs (download)",
    "zip": "my zip of class folders",
}
source = st.radio(
    "Photos", list(sources), format_func=sources.get, key=f"{P}.photo_source", horizontal=True
)
upload = None
if source == "zip":
    upload = st.file_uploader(
        "A zip with 2–5 class folders",
        type=["zip"],
        key=f"{P}.photo_zip",
        max_upload_size=imageset.MAX_ZIP_BYTES // 2**20,
        help="At most 20 MB; every picture is checked. A quarter of each class is held out.",
    )
photo_bases = {SHAPES_BASE: "the shapes base (offline; knows flat shapes, not fur)"}
if imagenet_ok:
    photo_bases = {"mobilenet_v2": f"MobileNetV2 (ImageNet) at {side} px", **photo_bases}
else:
    st.caption(
        "Only the shapes base is here (MobileNetV2's weights were not checked or could not "
        "be loaded: see **Bases** above). Expect it to do little better than guessing on "
        "photos: it never saw fur or faces."
    )
photo_base = st.radio(
    "Base", list(photo_bases), format_func=photo_bases.get, key=f"{P}.photo_base", horizontal=True
)
c1, c2 = st.columns(2)
photo_k = c1.select_slider(
    "Training photos per class", options=[5, 20, 100], value=20, key=f"{P}.photo_per_class"
)
photo_steps = c2.slider("Gradient steps per model", 50, 400, 100, step=50, key=f"{P}.photo_steps")
if buttons("photos", "Train the three models on photos"):
    size = side if photo_base != SHAPES_BASE else 64
    task, skipped = None, []
    try:
        if source == "cats_dogs":
            with st.spinner("Fetching seed 003's cats and dogs (68 MB, only the first time)…"):
                task = ui.cached_cats_dogs(int(photo_k), size)
        elif upload is None:
            st.error("Upload a zip of class folders first, or choose seed 003's cats vs dogs.")
        else:
            task, skipped = ui.cached_zip_task(upload.getvalue(), size, int(photo_k))
    except ValueError as err:
        st.error(str(err))
    if task is not None:
        name = "cats vs dogs" if source == "cats_dogs" else f"zip: {', '.join(task.classes)}"
        st.session_state[JOB] = ui.compare_job(
            "photos",
            photo_base,
            task,
            steps=int(photo_steps),
            titles=MODE_TITLES,
            input_size=side if photo_base != SHAPES_BASE else None,
            info={
                "runs": f"{P}._photo_runs",
                "key": (name, photo_base, int(photo_k)),
                "last": f"{P}._photo_last",
                "chance": 1 / len(task.classes),
                "skipped": skipped,
            },
        )
        st.rerun()
job_panel("photos")
results(
    f"{P}._photo_runs",
    f"{P}._photo_last",
    f"cats vs dogs: {2 * transfer.CATS_DOGS_TEST} photos from the seed's validation folder; "
    "a zip: a quarter of each class. Guessing scores 1 / classes: 50 % for two",
)

# ---- 3. your own classes --------------------------------------------------------------------
st.header("3 · Your own classes")
st.markdown(
    "Name 2–5 classes and give each a handful to a few dozen pictures (camera snapshots or "
    "uploads). A new head is trained on a frozen base, then the model joins the **model "
    "picker** in the sidebar, so Activations and Grad-CAM can show what it looks at."
)
bases = {SHAPES_BASE: "Shapes base (offline; knows flat shapes, strokes and corners)"}
if imagenet_ok:
    bases["mobilenet_v2"] = f"MobileNetV2 base at {side} px (ImageNet photos)"
base_name = st.radio(
    "Base", list(bases), format_func=bases.get, key=f"{P}.own_base", horizontal=True
)
n_classes = st.number_input(
    "Number of classes",
    transfer.MIN_OWN_CLASSES,
    transfer.MAX_OWN_CLASSES,
    2,
    key=f"{P}.own_n",
)
camera = st.toggle("Use the camera", key=f"{P}.camera", help="Your browser asks first.")
pictures: dict[str, list[np.ndarray]] = {}
refused: list[str] = []
for i in range(int(n_classes)):
    with st.container(border=True):
        name = st.text_input(
            f"Name of class {i + 1}", f"class {i + 1}", max_chars=40, key=f"{P}.name{i}"
        )
        uploads = st.file_uploader(
            "Pictures",
            type=["png", "jpg", "jpeg", "webp", "bmp", "gif"],
            accept_multiple_files=True,
            # A new key after "Empty this class", so the emptied files are not added again.
            key=f"{P}.files{i}_{st.session_state.get(f'{P}._gen{i}', 0)}",
        )
        for up in uploads or []:
            ui.add_picture(i, up.getvalue())
        if camera:
            snap = st.camera_input("Snapshot", key=f"{P}.camera{i}")
            if snap is not None:
                ui.add_picture(i, snap.getvalue())
        good, errors = ui.decode_class(i)
        refused += [f"{md_code(name, 40)}, {e}" for e in errors]
        cols = st.columns([3, 1])
        cols[0].caption(f"{len(good)} picture(s)")
        if good:
            cols[0].image([g for g in good[:8]], width=56)
        if cols[1].button("Empty this class", key=f"{P}.clear{i}"):
            st.session_state[ui.pictures_key(i)] = []
            st.session_state[f"{P}._gen{i}"] = st.session_state.get(f"{P}._gen{i}", 0) + 1
            st.rerun()
        pictures[name] = good
for msg in refused:
    st.error(f"Refused and left out: {msg}")

epochs = st.slider("Epochs", 1, 100, 15, key=f"{P}.own_epochs")
if buttons("own", "Train my classes"):
    try:
        model = transfer.build(
            base_name,
            int(n_classes),
            mode="frozen",
            input_size=side if base_name != SHAPES_BASE else None,
        )
        data = transfer.own_classes(pictures, tuple(model.input_shape[1:]))
    except ValueError as err:
        st.error(str(err))
    else:
        st.session_state[JOB] = ui.own_job(model, data, epochs=int(epochs))
        st.rerun()
job_panel("own")

own = st.session_state.get(f"{P}._own")
if own is not None:
    acc = own["history"].get("val_accuracy", [0.0])[-1]
    k = len(own["classes"])
    st.plotly_chart(
        figures.mode_curves({"frozen base + new head": own["history"]}, chance=1 / k),
        key=f"{P}.own_curves",
    )
    st.metric("Validation accuracy", f"{acc:.0%}", help=f"on {own['n_val']} held-back pictures")
    if transfer.near_chance(acc, k, own["n_val"]):
        st.warning(
            f"That is close to guessing ({1 / k:.0%} for {k} classes): the model has not "
            "learnt to tell your classes apart. Add more, more varied pictures, make the "
            "classes differ in shape and outline (what this base knows), or try another base."
        )
    st.success(
        f"**{own['label']}** is in the sidebar's model picker: open Activations or "
        "Grad-CAM to see what it looks at."
    )

    def exported(part: int) -> bytes:
        # Saved once, on the first click.
        if "export" not in own:
            own["export"] = transfer.export(own["model"], own["classes"])
        return own["export"][part]

    d1, d2 = st.columns(2)
    d1.download_button(
        "Download the model (.keras)",
        lambda: exported(0),
        "my_classes.keras",
        mime="application/octet-stream",
        key=f"{P}.own_keras",
        on_click="ignore",
    )
    d2.download_button(
        "Download its class names (.json)",
        lambda: exported(1),
        "my_classes.json",
        mime="application/json",
        key=f"{P}.own_json",
        on_click="ignore",
    )
