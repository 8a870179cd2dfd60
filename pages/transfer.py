"""Transfer learning and your own classes: the seeds' last lesson, and Teachable Machine."""

import numpy as np
import pandas as pd
import streamlit as st

from cnnviz import datasets, figures, transfer
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

imagenet_ok, imagenet_msg = st.session_state.get(f"{P}._imagenet", (False, None))
exp_bases = {SHAPES_BASE: "the shapes base (offline)"}
if imagenet_ok:  # checked in section 2 below
    exp_bases["mobilenet_v2"] = f"MobileNetV2 (ImageNet) at {ui.IMAGENET_SIDE} px"
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
if st.button("Train the three models", key=f"{P}.compare", type="primary"):
    online = exp_base != SHAPES_BASE
    task = ui.cached_task(int(per_class), size=ui.IMAGENET_SIDE if online else 64)
    bar = st.progress(0.0, text="Starting…")
    order = list(MODE_TITLES)

    def on_epoch(mode: str, epoch: int, epochs: int, logs: dict) -> None:
        done = (order.index(mode) + (epoch + 1) / epochs) / len(order)
        acc = logs.get("val_accuracy", 0.0)
        bar.progress(
            min(done, 1.0),
            text=f"{MODE_TITLES[mode]}: epoch {epoch + 1}/{epochs}, validation {acc:.0%}",
        )

    try:
        results = transfer.compare(
            exp_base,
            task,
            modes=tuple(order),
            steps=int(steps),
            progress=on_epoch,
            input_size=ui.IMAGENET_SIDE if online else None,
        )
    except ValueError as err:
        st.error(str(err))
    else:
        bar.empty()
        runs = st.session_state.setdefault(f"{P}._runs", {})
        runs[(exp_base, int(per_class))] = {
            m: {"history": r["history"], "accuracy": r["accuracy"]} for m, r in results.items()
        }
        st.session_state[f"{P}._last"] = (exp_base, int(per_class))

runs = st.session_state.get(f"{P}._runs", {})
last = st.session_state.get(f"{P}._last")
if last in runs:
    chance = 1 / len(datasets.NOVEL_CLASSES)
    histories = {MODE_TITLES[m]: r["history"] for m, r in runs[last].items()}
    left, right = st.columns(2)
    left.plotly_chart(
        figures.mode_curves(
            histories,
            chance=chance,
            title=f"Validation accuracy, {last[1]} per class, base {last[0]}",
        ),
        key=f"{P}.curves_acc",
    )
    right.plotly_chart(
        figures.mode_curves(histories, metric="loss", title="Training loss"),
        key=f"{P}.curves_loss",
    )
if runs:
    table = pd.DataFrame(
        [
            {
                "base": b,
                "pictures per class": k,
                **{MODE_TITLES[m]: r["accuracy"] for m, r in v.items()},
            }
            for (b, k), v in sorted(runs.items())
        ]
    ).set_index(["base", "pictures per class"])
    st.markdown("**Held-out accuracy** (400 new pictures; guessing scores 25 %)")
    st.dataframe(table.style.format("{:.1%}"), key=f"{P}.table")
    st.download_button(
        "Download the table (CSV)",
        table.to_csv(),
        "transfer_accuracy.csv",
        mime="text/csv",
        key=f"{P}.table_csv",
    )
    st.info(
        "What to look for: with 5 pictures per class the network trained from scratch has "
        "nothing to build on, while the frozen base already has filters for edges and "
        "corners. With 100 per class the gap shrinks: with enough data, a network can learn "
        "its own filters, and transfer matters less. Try all three sizes."
    )

# ---- 2. online: an ImageNet base ------------------------------------------------------------
st.header("2 · An ImageNet base (online)")
st.markdown(
    "With a network connection, MobileNetV2 trained on 1.2 million ImageNet photos can be the "
    f"base (rebuilt at {ui.IMAGENET_SIDE}×{ui.IMAGENET_SIDE} px, quick on a CPU). It knows "
    "fur, wheels and faces, so it suits photos of real things; the shapes base knows strokes "
    "and corners of flat coloured shapes, not cats."
)
if st.button("Check for MobileNetV2's ImageNet weights", key=f"{P}.imagenet_check"):
    with st.spinner("Loading MobileNetV2…"):
        st.session_state[f"{P}._imagenet"] = ui.imagenet_base()
    st.rerun()  # offer the ImageNet base in sections 1 and 3
if imagenet_msg:
    (st.success if imagenet_ok else st.warning)(imagenet_msg)

# ---- 3. your own classes --------------------------------------------------------------------
st.header("3 · Your own classes")
st.markdown(
    "Name 2–5 classes and give each a handful to a few dozen pictures (camera snapshots or "
    "uploads). A new head is trained on a frozen base, then the model joins the **model "
    "picker** in the sidebar, so Activations and Grad-CAM can show what it looks at."
)
bases = {SHAPES_BASE: "Shapes base (offline; knows flat shapes, strokes and corners)"}
if imagenet_ok:
    bases["mobilenet_v2"] = f"MobileNetV2 base at {ui.IMAGENET_SIDE} px (ImageNet photos)"
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

epochs = st.slider("Epochs", 1, 40, 15, key=f"{P}.own_epochs")
if st.button("Train my classes", key=f"{P}.own_train", type="primary"):
    try:
        model = transfer.build(
            base_name,
            int(n_classes),
            mode="frozen",
            input_size=ui.IMAGENET_SIDE if base_name != SHAPES_BASE else None,
        )
        data = transfer.own_classes(pictures, tuple(model.input_shape[1:]))
        bar = st.progress(0.0, text="Training the new head…")
        history = transfer.fit(
            model,
            data.x,
            data.y,
            epochs=int(epochs),
            batch_size=16,
            validation_data=(data.x_val, data.y_val),
            progress=lambda e, logs: bar.progress(
                (e + 1) / int(epochs), text=f"epoch {e + 1}/{int(epochs)}"
            ),
        )
    except ValueError as err:
        st.error(str(err))
    else:
        bar.empty()
        run = st.session_state.get(f"{P}._own_count", 0) + 1
        st.session_state[f"{P}._own_count"] = run
        label = f"my classes {run}: {', '.join(data.classes)}"
        register_session_model(label, model, class_names=data.classes)
        st.session_state[f"{P}._own"] = {
            "model": model,
            "classes": data.classes,
            "history": history,
            "n_val": len(data.y_val),
            "label": label,
        }

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
