"""Shared widgets: the image picker, downloads, error display, projector mode."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import streamlit as st

from cnnviz import figures, images

__all__ = [
    "SOURCES",
    "DATASET_LINK",
    "SampleLinkError",
    "SampleParam",
    "dataset_link",
    "take_dataset_link",
    "image_picker",
    "picture_source",
    "generated_picture",
    "drawn_picture",
    "camera_picture",
    "canvas_to_rgb",
    "download_image",
    "download_array",
    "show_error",
    "safe_text",
    "md_code",
    "projector_toggle",
    "safe_slider",
]

_SHARED_SAMPLE = "shared.sample"
_SHARED_SOURCE = "shared.source"

#: Where the picture comes from; the link's `source=` (next to `model=`).
SOURCES = ("sample", "upload", "generated", "draw", "camera")
_SOURCE_LABELS = {
    "sample": "Sample",
    "upload": "Upload",
    "generated": "New generated picture",
    "draw": "Draw",
    "camera": "Camera",
}
CANVAS_PX = 240  # fits the picker column of a 1440-pixel-wide window
#: A link's `sample=dataset:KIND:INDEX` names one picture of the Neurons page's generated set
#: (made by `cnnviz.ui.neurons_cache.sample_link`), so a point clicked on its map opens here.
DATASET_LINK = "dataset:"
_LINKED = "._linked"  # per picker: the dataset pictures links opened, offered as samples
_LINKED_MAX = 4


class SampleLinkError(ValueError):
    """A link's `sample=dataset:...` value that names no picture."""


def dataset_link(value: str) -> tuple[str, int]:
    """Check a `dataset:KIND:INDEX` value; returns (kind, index).

    The value comes from a URL, so it is untrusted: only the generated kinds and an index
    inside the Neurons page's set (0 to its size - 1) are accepted.

    Raises:
        SampleLinkError: anything else, saying what was expected and what was received.
    """
    # Imported here: it imports Keras, and only a page opened by such a link needs it.
    from cnnviz.ui import neurons_cache  # noqa: PLC0415

    kinds = list(neurons_cache.BUILTIN_DATASETS)
    parts = str(value).split(":")
    if len(parts) != 3 or parts[0] != DATASET_LINK[:-1] or parts[1] not in kinds:
        raise SampleLinkError(
            f"Expected dataset:KIND:NUMBER with KIND one of {', '.join(kinds)}. "
            f"Received {md_code(value, 40)}."
        )
    size = neurons_cache.dataset_size()
    try:
        index = int(parts[2])
    except ValueError:
        index = None
    if index is None or not 0 <= index < size:
        raise SampleLinkError(
            f"Expected a picture number from 0 to {size - 1} of the generated {parts[1]}. "
            f"Received {md_code(parts[2], 20)}."
        )
    return parts[1], index


def _dataset_label(value: str) -> str:
    # Only values take_dataset_link accepted get here: "dataset:KIND:INDEX".
    _, kind, index = value.split(":")
    return f"{kind} #{index} (from the Neurons map)"


def _dataset_picture(value: str) -> np.ndarray:
    """The picture a `dataset:` value names; `SampleLinkError` if it names none (any more)."""
    from cnnviz.ui import neurons_cache  # noqa: PLC0415 - see dataset_link

    dataset_link(value)
    # The very picture the Neurons page's map showed: its generated set, shared and cached.
    with st.spinner("Drawing the generated pictures of the Neurons page…"):
        picture = neurons_cache.dataset_sample(value)
    if picture is None:
        raise SampleLinkError(f"{md_code(value, 40)} names no picture of the generated set.")
    return np.asarray(picture)


@dataclass(frozen=True)
class SampleParam:
    """A link's `sample=`: one of the shipped samples, or a `dataset:KIND:INDEX` picture.

    For a page's `params.bind` spec: `{"sample": SampleParam("gradcam.sample")}`.
    """

    key: str

    def parse(self, raw: str) -> tuple[object | None, str | None]:
        if raw in images.sample_names():
            return raw, None
        if not raw.startswith(DATASET_LINK):
            return None, f"unknown value {md_code(raw, 40)} ignored"
        try:
            dataset_link(raw)
        except SampleLinkError as err:
            return None, f"{err} Showing the usual picture instead"
        return raw, None


def take_dataset_link(prefix: str) -> str | None:
    """A `dataset:` picture a link just put into this picker's sample, or None.

    The picture is remembered as one of the picker's samples, and the picker is switched to
    "Sample" so that it shows; returns the value only the first time (the run the link was
    opened), so a page can switch its own controls to the picker once.
    """
    value = st.session_state.get(f"{prefix}.sample")
    linked = st.session_state.setdefault(f"{prefix}{_LINKED}", [])
    if not isinstance(value, str) or not value.startswith(DATASET_LINK) or value in linked:
        return None
    try:
        dataset_link(value)
    except SampleLinkError:
        return None  # never from a link (SampleParam checks it); a stale value: ignore
    linked.append(value)
    del linked[:-_LINKED_MAX]
    st.session_state[f"{prefix}.src"] = "sample"
    return value


@st.cache_data(max_entries=32, show_spinner=False)
def _sample(name: str) -> np.ndarray:
    return images.sample_image(name)


@st.cache_data(max_entries=16, ttl=3600, show_spinner=False)
def _decode(data: bytes) -> np.ndarray:
    # Cached by the bytes' hash, so thirty students uploading the same file decode it once.
    return images.load_image(data)


def image_picker(
    prefix: str,
    *,
    default: str = "camera",
    max_side: int = images.DISPLAY_MAX_SIDE,
    label: str = "Image",
    share: bool = True,
    extra: dict[str, Callable[[], np.ndarray]] | None = None,
    sources: Sequence[str] = SOURCES,
    generate: Callable[[int], np.ndarray] | None = None,
) -> tuple[np.ndarray, str]:
    """Where the picture comes from (sample, upload, a new generated one, a drawing or a
    camera snapshot), then that picture; returns (RGB uint8 image, its name).

    Args:
        prefix: the page's widget-key prefix.
        default: the sample shown first.
        max_side: larger images are downscaled for speed, with a visible note.
        label: the select box's label.
        share: remember the choice across pages (the shared picker); False for a second,
            independent picker such as the Compare view's image B.
        extra: more samples listed first, e.g. {"a digit (test set)": fn}; each function
            returns an RGB uint8 image. Useful when the current model expects such images.
        sources: the choices offered (see `SOURCES`); a single one hides the choice.
        generate: seed -> RGB uint8 picture, for "New generated picture" (default: a
            generated digit when the chosen model is a digit model, else a shape).

    A bad upload shows a clear message and falls back to the sample. An empty canvas, or a
    camera without a snapshot yet, shows what to do and stops the run (never a prediction of
    a blank picture).
    """
    if share:
        take_dataset_link(prefix)
    source = picture_source(prefix, sources, share=share)
    if source in ("generated", "draw", "camera"):
        img, name = _own_picture(prefix, source, generate, share=share)
        img, note = images.downscale_for_display(img, max_side)
        if note:
            st.caption(f"ℹ️ {note}")
        return img, name
    extra = extra or {}
    linked = list(st.session_state.get(f"{prefix}{_LINKED}", [])) if share else []
    names = linked + list(extra) + images.sample_names()
    current = st.session_state.get(_SHARED_SAMPLE, default) if share else default
    if share and st.session_state.get(f"{prefix}.sample") in linked:
        current = st.session_state[f"{prefix}.sample"]
    if current not in names:
        current = default if default in names else names[0]

    def remember() -> None:
        if share:
            st.session_state[_SHARED_SAMPLE] = st.session_state[f"{prefix}.sample"]

    # "upload" shows only the uploader (its fallback stays the remembered sample).
    sample, col_b = current, st.container()
    if source == "sample":
        col_a, col_b = st.columns([1, 1])
        with col_a:
            sample = st.selectbox(
                f"{label}: sample",
                names,
                index=names.index(current),
                format_func=lambda n: _dataset_label(n) if n in linked else n,
                key=f"{prefix}.sample",
                on_change=remember,
                help="These images ship with the app (scikit-image's samples), so they work offline.",
            )
    with col_b:
        upload = st.file_uploader(
            "…or upload your own",
            type=["png", "jpg", "jpeg", "webp", "bmp", "gif"],
            key=f"{prefix}.upload",
            help="PNG, JPEG, WebP, BMP or GIF. The content is checked, not just the name.",
        )
    if source == "upload" and upload is None:
        st.info(
            "Choose a picture file (PNG, JPEG, WebP, BMP or GIF) to see what the model makes of it."
        )
        st.stop()
    img, name = None, sample
    if upload is not None:
        try:
            img = _decode(upload.getvalue())
            name = upload.name
        except images.ImageError as err:
            st.error(
                f"Could not use {md_code(upload.name)}: {err} Showing the sample image instead."
            )
    if img is None and sample in linked:
        try:
            img, name = _dataset_picture(sample), _dataset_label(sample)
        except SampleLinkError as err:
            sample = name = default if default in names[len(linked) :] else names[len(linked)]
            st.error(f"{err} Showing {md_code(sample)} instead.")
    if img is None:
        if sample in extra:
            img = np.asarray(extra[sample]())
        else:
            img = _sample(sample)
            st.caption(images.sample_description(sample))
    img, note = images.downscale_for_display(img, max_side)
    if note:
        st.caption(f"ℹ️ {note}")
    return img, name


def picture_source(prefix: str, sources: Sequence[str] = SOURCES, *, share: bool = True) -> str:
    """The "Picture from" choice; part of the shareable link as `source=` (shared pickers).

    The choice is remembered across pages, like the sample.
    """
    from cnnviz.ui import params  # noqa: PLC0415 - params imports this module

    sources = [s for s in SOURCES if s in sources]
    if len(sources) <= 1:
        return sources[0] if sources else "sample"
    key = f"{prefix}.src"
    link = {"source": params.Choice(key, sources)}
    if share:
        params.bind(link, prefix=f"{prefix}.picker")
        if st.session_state.get(key) not in sources:
            remembered = st.session_state.get(_SHARED_SOURCE)
            st.session_state[key] = remembered if remembered in sources else sources[0]

    def remember() -> None:
        if share:
            st.session_state[_SHARED_SOURCE] = st.session_state[key]

    source = st.radio(
        "Picture from",
        sources,
        format_func=_SOURCE_LABELS.get,
        horizontal=True,
        key=key,
        on_change=remember,
        help="A sample image, your own file, a new picture like the built-in models' training "
        "data, a drawing (digits: one digit, large, in the middle) or a camera snapshot.",
    )
    if share:
        params.sync(link, prefix=f"{prefix}.picker")
    return source


def _own_picture(
    prefix: str, source: str, generate: Callable[[int], np.ndarray] | None, *, share: bool
) -> tuple[np.ndarray, str]:
    if source == "generated":
        return generated_picture(prefix, generate, share=share)
    img = drawn_picture(prefix) if source == "draw" else camera_picture(prefix)
    if img is None:
        st.info(
            "The canvas is empty: draw a digit or a shape with the mouse (or a finger), large "
            "and in the middle, and the network will look at it."
            if source == "draw"
            else "Take a snapshot: hold a digit written on paper, or a shape, in front of the "
            "camera and press *Take photo*."
        )
        st.stop()
    return img, "your drawing" if source == "draw" else "your snapshot"


def _default_generator() -> Callable[[int], np.ndarray]:
    from cnnviz import datasets  # noqa: PLC0415 - numpy/Pillow only, no TensorFlow

    model = str(st.session_state.get("model.name", ""))
    if "digit" in model or "mnist" in model:
        return lambda seed: np.repeat(datasets.digits(1, seed=seed)[0][0][..., None], 3, axis=2)
    return lambda seed: datasets.shapes(1, seed=seed)[0][0]


def generated_picture(
    prefix: str, generate: Callable[[int], np.ndarray] | None = None, *, share: bool = True
) -> tuple[np.ndarray, str]:
    """A new picture like the built-in models' training data, and a button for another one.

    Which picture it is belongs to the shareable link (`gen=`, shared pickers only).
    """
    from cnnviz.ui import params  # noqa: PLC0415 - params imports this module

    fn = generate or _default_generator()
    key = f"{prefix}.gen_seed"
    link = {"gen": params.Int(key, 0, 1_000_000)}
    if share:
        params.bind(link, prefix=f"{prefix}.gen")
    st.session_state.setdefault(key, 0)

    def another() -> None:
        st.session_state[key] = int(st.session_state[key]) + 1

    st.button("New picture", key=f"{prefix}.gen_new", on_click=another, icon=":material/casino:")
    seed = int(st.session_state[key])
    if share:
        params.sync(link, prefix=f"{prefix}.gen")
    # Far from the seeds the models were trained on (their model cards list them).
    return np.asarray(fn(5_000_000 + seed), np.uint8), f"generated picture #{seed + 1}"


def canvas_to_rgb(
    rgba: np.ndarray, background: tuple[int, int, int] = (255, 255, 255)
) -> np.ndarray:
    """A canvas's RGBA pixels composited onto its background: (H, W, 3) uint8."""
    a = np.asarray(rgba)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise images.ImageError(f"Expected canvas pixels (H, W, 4). Received shape {a.shape}.")
    if a.shape[2] == 3:
        return a.astype(np.uint8)
    alpha = a[..., 3:4].astype(np.float32) / 255.0
    rgb = a[..., :3].astype(np.float32) * alpha + np.asarray(background, np.float32) * (1 - alpha)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def drawn_picture(prefix: str, *, size: int = CANVAS_PX) -> np.ndarray | None:
    """A drawing canvas with brush width and ink colour; the picture, or None while empty.

    The canvas's toolbar (above it) has undo, redo and clear (the bin). Each finished stroke
    sends the picture and reruns the script (or only the fragment the canvas is in).
    """
    # Imported here: the component registers its files only under a running Streamlit, so a
    # module-level import would break every plain `import cnnviz.ui.widgets`.
    from streamlit_drawable_canvas import st_canvas  # noqa: PLC0415

    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    brush = c1.slider("Brush width", 4, 48, 22, key=f"{prefix}.brush")
    ink = c2.color_picker("Ink colour", "#000000", key=f"{prefix}.ink")
    result = st_canvas(
        stroke_width=brush,
        stroke_color=ink,
        background_color="#ffffff",
        width=size,
        height=size,
        drawing_mode="freedraw",
        return_image_data=True,
        update_streamlit=True,
        key=f"{prefix}.canvas",
    )
    st.caption("Undo, redo and clear (the bin) are in the toolbar above the canvas.")
    objects = (result.json_data or {}).get("objects") or []
    data = result.image_data if objects else None
    if data is None:
        return None
    return canvas_to_rgb(data)


def camera_picture(prefix: str) -> np.ndarray | None:
    """A snapshot from the laptop's camera (checked like any upload), or None before one."""
    shot = st.camera_input(
        "Take a snapshot",
        key=f"{prefix}.camera",
        help="A digit written on paper, or a shape held up: fill the picture with it.",
    )
    if shot is None:
        return None
    try:
        return _decode(shot.getvalue())
    except images.ImageError as err:
        st.error(f"Could not use the snapshot: {err}")
        return None


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=&])")


def safe_text(text: object, limit: int = 120) -> str:
    """User-controlled text (file names, layer and model names from uploads) for Markdown.

    Every Markdown, LaTeX ($) and HTML-significant character is backslash-escaped, so the
    text shows literally in st.markdown / st.error / captions and can never become a link, an
    image or markup. (Streamlit never renders raw HTML here: no page uses unsafe_allow_html
    with user text. Where HTML is built by hand, use `html.escape` instead.)
    """
    s = str(text).replace("\n", " ").replace("\r", " ")
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return _MD_SPECIAL.sub(r"\\\1", s)


def safe_slider(
    label: str,
    min_value: int,
    max_value: int,
    value: int | tuple[int, int] | None = None,
    *,
    key: str,
    **kwargs,
) -> int | tuple[int, int] | None:
    """`st.slider` over a range that depends on the data (channels, images, filters).

    Streamlit raises when min_value == max_value, and when the value remembered under `key`
    lies outside the range (a layer with fewer channels than the last one). Here:
    - one choice: a caption names it instead of a slider, and it is returned;
    - no choice (max_value < min_value): a caption says so, and None is returned;
    - a remembered value (or each end of a remembered range) is clamped into the range.
    A range slider (a tuple `value`) returns a (lo, hi) tuple in every case but the empty one.
    """
    is_range = isinstance(value, tuple | list) or isinstance(st.session_state.get(key), tuple)
    if max_value < min_value:
        st.caption(f"{label}: there is nothing to choose here.")
        return None
    if max_value == min_value:
        st.caption(f"{label}: {min_value}, the only choice here.")
        return (min_value, min_value) if is_range else min_value
    if key in st.session_state:

        def clamp(v):
            return min(max(v, min_value), max_value)

        old = st.session_state[key]
        new = tuple(clamp(v) for v in old) if isinstance(old, tuple | list) else clamp(old)
        if new != old:
            st.session_state[key] = new
        value = None  # the remembered value wins; passing both makes Streamlit warn
    return st.slider(label, min_value, max_value, value, key=key, **kwargs)


def md_code(text: object, limit: int = 80) -> str:
    """User-controlled text shown literally inside Markdown (st.error, st.info, st.markdown):
    an inline code span, so no Markdown or HTML in it is interpreted."""
    s = str(text).replace("`", "'").replace("\n", " ")
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return f"`{s}`"


def show_error(err: Exception) -> None:
    """A friendly message for an expected error; never a traceback."""
    st.error(str(err))


def download_image(
    label: str, img: np.ndarray | Callable[[], np.ndarray], file_name: str, *, key: str
) -> None:
    """A PNG download button; `img` may be a function so the PNG is only encoded on click."""

    def data() -> bytes:
        return images.to_png_bytes(img() if callable(img) else img)

    st.download_button(
        label, data=data, file_name=file_name, mime="image/png", key=key, on_click="ignore"
    )


def download_array(label: str, arr: np.ndarray, file_name: str, *, key: str) -> None:
    """An array as .npy (exact numbers) or .csv (spreadsheet), encoded only when clicked."""
    fmt = file_name.rsplit(".", 1)[-1].lower()

    def data() -> bytes:
        a = np.asarray(arr)
        if fmt == "npy":
            buf = io.BytesIO()
            np.save(buf, a, allow_pickle=False)
            return buf.getvalue()
        return array_to_csv(a).encode()

    mime = "application/octet-stream" if fmt == "npy" else "text/csv"
    st.download_button(label, data=data, file_name=file_name, mime=mime, key=key, on_click="ignore")


def array_to_csv(a: np.ndarray) -> str:
    """2-D arrays as rows of numbers; (H, W, C) as one block per channel under a comment line."""
    buf = io.StringIO()
    if a.ndim == 2:
        np.savetxt(buf, a, delimiter=",", fmt="%.6g")
    else:
        blocks = a.reshape(a.shape[0], a.shape[1], -1)
        for c in range(blocks.shape[2]):
            buf.write(f"# channel {c}\n")
            np.savetxt(buf, blocks[:, :, c], delimiter=",", fmt="%.6g")
    return buf.getvalue()


# Projector mode scales the whole page rather than restyling pieces of it: Streamlit sizes its
# text, headings, metrics, widgets and spacing in rem, so a larger root font keeps every ratio
# (the title stays the largest text). What a larger font would otherwise cut or shrink is then
# given room: the page's side padding shrinks so that pictures and charts keep (at least) their
# width, the sidebar widens for the model picker where there is one, and a select box or button
# grows to fit its label. The column holding it may then grow past its share of the row;
# Streamlit's rows wrap, so a neighbour moves to the next line rather than a label being cut.
PROJECTOR_CSS = """<style>
html { font-size: 20px !important; }
[data-testid=stMainBlockContainer] {
  padding-left: 1.5rem !important; padding-right: 1.5rem !important;
}
/* The gaps between columns stay 16 px, so that columns keep their width. */
[data-testid=stHorizontalBlock] { column-gap: 0.8rem !important; }
/* Room for the model picker's longest built-in name, on the pages that have it. */
[data-testid=stSidebar]:has(.st-key-model-picker) { min-width: 19.5rem !important; }
/* A select box shows its value in an input field, which cannot wrap: it widens to its text. */
[data-testid=stSelectbox] input { field-sizing: content; min-width: max-content !important; }
/* Button labels wrap between words, never inside one; the button is as wide as its widest word. */
[data-testid^=stBaseButton] [data-testid=stMarkdownContainer] {
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
  overflow-wrap: normal !important; word-break: keep-all !important;
}
[data-testid^=stBaseButton] { min-width: min-content; }
[data-testid=stFileUploaderDropzoneInstructions] * { white-space: normal !important; }
/* A metric's value ("hexagon") is not cut with an ellipsis either. */
[data-testid=stMetricValue], [data-testid=stMetricValue] * {
  overflow: visible !important; text-overflow: clip !important;
}
/* A column is otherwise held at its share of the row; let one grow to fit its controls. */
[data-testid=stColumn]:has([data-testid=stSelectbox], [data-testid=stButton],
  [data-testid=stDownloadButton], [data-testid=stFormSubmitButton], [data-testid=stMetric]) {
  min-width: min-content !important;
}
/* Chromium does not let an open expander's content count towards the width of what holds it;
   this makes a wide control inside an expander widen the column too. */
[data-testid=stExpander] details[open]::details-content {
  content-visibility: visible !important; contain: none !important;
}
</style>"""


def projector_toggle() -> bool:
    """Sidebar toggle for large type in the app and thicker lines in figures."""
    on = st.sidebar.toggle(
        "Projector mode",
        key="app.projector",
        help="Large type and thick lines, readable from the back of a classroom.",
    )
    figures.set_projector_mode(on)
    if on:
        # Style-only st.html goes to Streamlit's event container: it takes no room on the page.
        st.html(PROJECTOR_CSS)
    return on
