"""Home: what each lesson teaches, each lesson's name a link to it."""

from pathlib import Path

import streamlit as st

from cnnviz.ui.router import use_app_router

use_app_router()

_PAGES = Path(__file__).resolve().parent
# (section, [(page file, name, what it teaches)]), in the order of the sidebar (app.py).
LESSONS = [
    (
        "Convolution",
        [
            ("kernels.py", "Kernels", "slide a small matrix over any image. Blur, sharpen and "
             "edge detectors, with padding, stride and dilation, and the output-size formula "
             "filled in with your numbers."),
            ("gabor.py", "Gabor filters", "oriented wave detectors, one at a time or as a bank, "
             "the filters a CNN's first layer ends up learning."),
            ("steps.py", "Step by step", "convolution and pooling one window at a time, with the "
             "arithmetic of every step written out, exactly as Keras computes it."),
        ],
    ),
    (
        "Inside a CNN",
        [
            ("network.py", "Network", "draw a picture and watch every layer and the prediction "
             "change with each stroke; click a tile for its arithmetic."),
            ("architecture.py", "Architecture", "layers, shapes, parameter counts and receptive "
             "fields."),
            ("activations.py", "Activations", "what every layer sees in your image."),
            ("filters.py", "Filters", "the images each filter wants most, found by gradient "
             "ascent."),
            ("gradcam.py", "Grad-CAM", "where the network looked, and the sanity checks that "
             "show when an explanation lies."),
            ("failures.py", "When it fails", "occlusion, adversarial pictures and two shapes in "
             "one picture."),
            ("neurons.py", "Neurons", "what one unit responds to, and the pictures that excite "
             "it most."),
        ],
    ),
    (
        "Train",
        [
            ("train.py", "Train a CNN", "train a small CNN live and compare experiments."),
            ("transfer.py", "Transfer learning", "teach a trained network new classes from a "
             "few pictures."),
        ],
    ),
]  # fmt: skip

st.title("cnnviz: see how a convolutional network works")
st.markdown(
    "A lab for lectures and for students' own images. Every number you see is computed live, "
    "and every picture has a download button."
)

for section, lessons in LESSONS:
    st.subheader(section)
    for file, name, what in lessons:
        if not (_PAGES / file).exists():
            continue  # as in the sidebar: never a link to a lesson that is not there
        link, text = st.columns([1, 3.2], vertical_alignment="center")
        with link:
            st.page_link(f"pages/{file}", label=f"**{name}**")
        text.markdown(what)

st.caption(
    "Pick a lesson here or on the left. The sidebar's *Projector mode* makes text large for a "
    "classroom."
)
