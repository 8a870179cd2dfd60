"""Architecture: every layer's output shape, parameters and receptive field (seeds 003 and 004)."""

import csv
import io
import json
import math

import streamlit as st

from cnnviz import figures, models
from cnnviz.ui.models import current_model, model_summary
from cnnviz.ui.router import use_app_router
from cnnviz.ui.widgets import safe_text

use_app_router()

P = "architecture"
MAX_STEPS = 60  # boxes drawn in the shape-flow diagram before we thin it out

st.title("Architecture: how the shape of the data changes, layer by layer")
st.markdown(
    "A CNN is a stack of layers. Each one turns a block of numbers "
    "(**height × width × channels**) into another. Convolutions add channels, pooling halves "
    "the height and width, and at the end a classifier turns the last block into one score "
    "per class. The table below is what Keras' `model.summary()` prints, plus two columns "
    "that say how much of the image each layer can see."
)

model, info = current_model()  # its note (random weights, offline) is in the sidebar

try:
    with st.spinner("Reading the layers…"):
        rows, total, flow = model_summary(model)
except ValueError as err:
    st.error(str(err))
    st.stop()


def shape_text(shape: tuple | None) -> str:
    """(None, 26, 26, 32) -> "26×26×32"; None -> "?"."""
    if shape is None:
        return "?"
    return "×".join("?" if d is None else str(d) for d in shape if d is not None) or "scalar"


# ---- Totals, compared with the lecture's numbers where there are some
c1, c2, c3 = st.columns(3)
c1.metric("Total parameters", f"{total['total']:,}")
c2.metric("Trainable", f"{total['trainable']:,}")
c3.metric("Non-trainable", f"{total['non_trainable']:,}", help="BatchNorm's moving statistics.")
expected = models.LECTURE_PARAMS.get(info.name)
if expected is not None:
    same = "the same count" if expected == total["total"] else "a DIFFERENT count"
    st.caption(
        f"The lecture slide prints **{expected:,}** parameters for this network; "
        f"this model has {same}. It is built with random weights: only its shape matters here."
    )

# ---- The Keras-style table
st.subheader(f"Layers of {safe_text(info.name)}")
show_nested = st.toggle(
    "Show the layers inside nested models",
    value=True,
    key=f"{P}.nested",
    help="A transfer-learning model contains a whole network (e.g. VGG16) as one layer. "
    "Its layers are listed below it as base/layer.",
)
table = [
    {
        "layer": ("    " * r["depth"]) + r["layer"],
        "type": r["type"],
        "output shape": str(r["output_shape"]),
        "parameters": r["params"],
        "trainable": r["trainable"],
        "receptive field": r["receptive_field"],
        "jump": r["jump"],
    }
    for r in rows
    if show_nested or r["depth"] == 0
]
st.dataframe(table, hide_index=True, width="stretch", key=f"{P}.table")
st.caption(
    f"{len(rows)} layers · total {total['total']:,} parameters "
    f"({total['trainable']:,} trainable, {total['non_trainable']:,} non-trainable). "
    "Receptive field: how many input pixels (per side) one output value depends on. "
    "Jump: how many input pixels apart two neighbouring output values are."
)


def _csv(summary_rows: list[dict]) -> str:
    """The summary table as CSV text (shapes as 26x26x32, quoted where needed)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(
        ["layer", "type", "output_shape", "params", "trainable", "receptive_field", "jump"]
    )
    for r in summary_rows:
        writer.writerow(
            [r["layer"], r["type"], shape_text(r["output_shape"]), r["params"], r["trainable"],
             r["receptive_field"], r["jump"]]
        )  # fmt: skip
    return buf.getvalue()


d1, d2 = st.columns(2)
with d1:
    st.download_button(
        "Summary as CSV",
        data=lambda: _csv(rows),
        file_name=f"{info.name.replace(':', '_')}_summary.csv",
        mime="text/csv",
        key=f"{P}.dl_csv",
        on_click="ignore",
    )
with d2:
    st.download_button(
        "Summary as JSON",
        data=lambda: json.dumps({"model": info.name, "totals": total, "layers": rows}, indent=1),
        file_name=f"{info.name.replace(':', '_')}_summary.json",
        mime="application/json",
        key=f"{P}.dl_json",
        on_click="ignore",
    )


# ---- The shape flow (seed 004's 224×224×3 → 224×224×64 → 112×112×64 … picture)
st.subheader("How the shape flows")
only_changes = st.toggle(
    "Only layers that change the shape",
    value=len(flow) > 25,
    key=f"{P}.only_changes",
    help="Activations, batch norm and dropout keep the shape; hide them to see the big steps.",
)
steps = [flow[0]] + [
    step
    for prev, step in zip(flow, flow[1:], strict=False)
    if not only_changes or step[1] != prev[1]
]
if len(steps) > MAX_STEPS:
    st.caption(f"ℹ️ {len(steps)} steps; showing every {math.ceil(len(steps) / MAX_STEPS)}th.")
    steps = steps[:: math.ceil(len(steps) / MAX_STEPS)]


st.plotly_chart(
    figures.shape_flow([(name, shape, shape_text((None, *shape))) for name, shape in steps]),
    key=f"{P}.flow",
)
st.caption(
    "Each box is one layer's output: taller = larger image, wider = more channels (log scale). "
    "Orange bars are vectors (after Flatten / global pooling / Dense). Save the picture as a PNG "
    "with the camera icon above the chart, or the numbers as CSV below."
)
st.download_button(
    "Shape flow as CSV",
    data=lambda: "layer,shape\n" + "\n".join(f"{n},{shape_text((None, *s))}" for n, s in flow),
    file_name=f"{info.name.replace(':', '_')}_shape_flow.csv",
    mime="text/csv",
    key=f"{P}.dl_flow",
    on_click="ignore",
)

with st.expander("Where do the numbers come from?", expanded=False):
    st.markdown(
        """
- **Conv2D parameters** = (kernel height × kernel width × input channels + 1 bias) × filters.
  Seed 003's first layer: (3·3·1 + 1)·32 = **320**.
- **Dense parameters** = (inputs + 1) × units. Flatten turns 3×3×64 into 576 inputs, so
  Dense(64) has 577·64 = **36,928**: a Flatten head is where the weights pile up.
  GlobalAveragePooling keeps only 64 numbers (one average per map): the GAP head is tiny.
- **Pooling, Flatten, Dropout** have no parameters: they only move or pick numbers.
- **Output size** with "valid" padding: n − k + 1 (a 3×3 kernel eats a pixel on each side);
  pooling 2×2 halves it, rounding down (11 → 5).
- **Receptive field** grows by (k − 1) × jump with each layer; **jump** multiplies by the
  stride. After VGG16's five blocks one value sees 212×212 input pixels, 32 pixels apart.
"""
    )
