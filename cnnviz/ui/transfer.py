"""The Transfer page's caches and state: the seeds' few-shot data, the student's pictures.

Pictures of the student's own classes live in session state as PNG/JPEG bytes, one list per
class (`pictures_key(i)`), added from uploads and camera snapshots; every one goes through
`cnnviz.images.load_image` (cached by its hash) before it is used.
"""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

from cnnviz import images, models, transfer

__all__ = [
    "P",
    "cached_task",
    "pictures_key",
    "add_picture",
    "decode_class",
    "imagenet_base",
]

P = "transfer"
#: MobileNetV2 rebuilt at this side for the online base (quick on a CPU, see the issue).
IMAGENET_SIDE = 128


@st.cache_data(max_entries=6, ttl=3600, show_spinner=False)
def cached_task(per_class: int, seed: int = 0, size: int = 64) -> transfer.NovelTask:
    """The new-classes task (`transfer.novel_task`), generated once per size."""
    return transfer.novel_task(per_class, seed=seed, size=size)


def pictures_key(i: int) -> str:
    """Session-state key of class i's list of picture bytes."""
    return f"{P}._pictures{i}"


def add_picture(i: int, data: bytes) -> bool:
    """Append a picture's bytes to class i (a repeat of the same bytes is ignored)."""
    pics = st.session_state.setdefault(pictures_key(i), [])
    if len(pics) >= transfer.MAX_IMAGES_PER_CLASS or data in pics:
        return False
    pics.append(bytes(data))
    return True


@st.cache_data(max_entries=512, ttl=3600, show_spinner=False)
def _decode(digest: str, _data: bytes) -> np.ndarray:
    # Keyed by the hash: the same picture is checked and decoded once.
    return images.load_image(_data)


def decode_class(i: int) -> tuple[list[np.ndarray], list[str]]:
    """Class i's pictures as RGB arrays, and one message per picture that was refused."""
    good, errors = [], []
    for n, data in enumerate(st.session_state.get(pictures_key(i), []), start=1):
        try:
            good.append(_decode(hashlib.sha256(data).hexdigest(), data))
        except images.ImageError as err:
            errors.append(f"picture {n}: {err}")
    return good, errors


def imagenet_base() -> tuple[bool, str]:
    """(usable, message): whether MobileNetV2's ImageNet weights are here (downloading them
    once when online; offline the download fails fast and the base has random weights)."""
    from cnnviz.ui.models import cached_model  # noqa: PLC0415

    try:
        cached_model("mobilenet_v2")
        meta = models.info("mobilenet_v2")
    except ValueError as err:
        return False, str(err)
    if meta.random_weights:
        return False, (
            "MobileNetV2's ImageNet weights could not be loaded (no network here?), and a "
            "base with random weights knows nothing. Use the shapes base below; "
            f"{meta.note or ''}"
        )
    return True, "MobileNetV2 with its ImageNet weights is ready."
