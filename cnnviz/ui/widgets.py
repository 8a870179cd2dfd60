"""Shared widgets: the image picker, downloads, error display, projector mode."""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import numpy as np
import streamlit as st

from cnnviz import figures, images

__all__ = [
    "image_picker",
    "download_image",
    "download_array",
    "show_error",
    "safe_text",
    "md_code",
    "projector_toggle",
    "safe_slider",
]

_SHARED_SAMPLE = "shared.sample"


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
) -> tuple[np.ndarray, str]:
    """A sample-image select box next to an uploader; returns (RGB uint8 image, its name).

    Args:
        prefix: the page's widget-key prefix.
        default: the sample shown first.
        max_side: larger images are downscaled for speed, with a visible note.
        label: the select box's label.
        share: remember the choice across pages (the shared picker); False for a second,
            independent picker such as the Compare view's image B.
        extra: more samples listed first, e.g. {"a digit (test set)": fn}; each function
            returns an RGB uint8 image. Useful when the current model expects such images.

    A bad upload shows a clear message and falls back to the sample.
    """
    extra = extra or {}
    names = list(extra) + images.sample_names()
    current = st.session_state.get(_SHARED_SAMPLE, default) if share else default
    if current not in names:
        current = default if default in names else names[0]

    def remember() -> None:
        if share:
            st.session_state[_SHARED_SAMPLE] = st.session_state[f"{prefix}.sample"]

    col_a, col_b = st.columns([1, 1])
    with col_a:
        sample = st.selectbox(
            f"{label}: sample",
            names,
            index=names.index(current),
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
    img, name = None, sample
    if upload is not None:
        try:
            img = _decode(upload.getvalue())
            name = upload.name
        except images.ImageError as err:
            st.error(
                f"Could not use {md_code(upload.name)}: {err} Showing the sample image instead."
            )
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


def projector_toggle() -> bool:
    """Sidebar toggle for large type in the app and thicker lines in figures."""
    on = st.sidebar.toggle(
        "Projector mode",
        key="app.projector",
        help="Large type and thick lines, readable from the back of a classroom.",
    )
    figures.set_projector_mode(on)
    if on:
        st.markdown(
            "<style>html, body, [class*='st-'] {font-size: 1.25rem;} h1 {font-size: 3rem;}</style>",
            unsafe_allow_html=True,
        )
    return on
