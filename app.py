"""cnnviz router: page config, the shared sidebar, and the lesson navigation.

Run with `streamlit run app.py`. Each lesson is a short script in pages/; the library code
lives in cnnviz/. Pages that need no model never import TensorFlow.
"""

from pathlib import Path

import streamlit as st

from cnnviz.device import device_name
from cnnviz.ui.router import keep_keras_state
from cnnviz.ui.widgets import projector_toggle

keep_keras_state()  # before any page runs: see cnnviz.ui.router
st.set_page_config(
    page_title="cnnviz: a CNN lab",
    page_icon=str(Path(__file__).parent / "assets" / "favicon.png"),
    layout="wide",
)

_PAGES = Path(__file__).parent / "pages"


def _page(file: str, title: str, icon: str, *, default: bool = False):
    return st.Page(
        str(_PAGES / file),
        title=title,
        icon=icon,
        default=default,
        url_path=file.removesuffix(".py"),
    )


def _existing(*specs):
    # List only lessons whose page file exists, so a half-built lesson never shows a dead link.
    return [
        _page(*spec[:3], **(spec[3] if len(spec) > 3 else {}))
        for spec in specs
        if (_PAGES / spec[0]).exists()
    ]


sections = {
    "": _existing(("home.py", "Home", ":material/home:", {"default": True})),
    "Convolution": _existing(
        ("kernels.py", "Kernels", ":material/grid_on:"),
        ("gabor.py", "Gabor filters", ":material/waves:"),
        ("steps.py", "Step by step", ":material/footprint:"),
    ),
    "Inside a CNN": _existing(
        ("network.py", "Network", ":material/hub:"),
        ("architecture.py", "Architecture", ":material/account_tree:"),
        ("activations.py", "Activations", ":material/lightbulb:"),
        ("filters.py", "Filters", ":material/palette:"),
        ("gradcam.py", "Grad-CAM", ":material/local_fire_department:"),
        ("failures.py", "When it fails", ":material/broken_image:"),
        ("neurons.py", "Neurons", ":material/hub:"),
    ),
    "Train": _existing(
        ("train.py", "Train a CNN", ":material/model_training:"),
        ("transfer.py", "Transfer learning", ":material/move_up:"),
    ),
}
navigation = st.navigation({name: pages for name, pages in sections.items() if pages})

with st.sidebar:
    st.caption(f"Compute device: **{device_name()}**")
    projector_toggle()

navigation.run()
