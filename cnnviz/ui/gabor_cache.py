"""Cached Gabor work for the Gabor page: one bank per (image, settings), shared by every session.

Thirty students with the default settings filter the same sample once. Results are made
read-only, so no session can change what another sees. Images are keyed by a hash of every
byte (`keys.image_key`); nothing here imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import streamlit as st

from cnnviz import gabor, images
from cnnviz.ui.keys import image_key

__all__ = ["bank", "dataset_batch", "dataset_responses"]


def _frozen(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr


@st.cache_resource(max_entries=6, ttl=3600, show_spinner="Filtering with the whole bank…")
def _bank(
    _x: np.ndarray,
    x_id: str,
    freqs: tuple[float, ...],
    n_thetas: int,
    sigma: float | None,
    bandwidth: float,
    mode: str,
) -> dict[str, np.ndarray]:
    # Underscored arguments are not hashed by Streamlit; x_id is the image's cache key.
    thetas = gabor.even_thetas(n_thetas)
    resp = gabor.gabor_bank(_x, freqs, thetas, sigma=sigma, bandwidth=bandwidth, mode=mode)
    out = {
        "thetas": thetas,
        "responses": resp,
        "magnitude": np.abs(resp),
        "energy": gabor.energy_map(resp),
        "orientation": np.degrees(thetas)[gabor.orientation_map(resp)],
    }
    return {k: _frozen(v) for k, v in out.items()}


def bank(
    x: np.ndarray,
    freqs: Sequence[float],
    n_thetas: int,
    *,
    sigma: float | None,
    bandwidth: float,
    mode: str,
) -> dict[str, np.ndarray]:
    """`gabor.gabor_bank` of a (H, W) image over `n_thetas` even orientations, with its
    magnitude, energy map and winning orientation in degrees; read-only arrays:

    thetas (T,), responses (F, T, H, W) complex, magnitude (F, T, H, W), energy (H, W),
    orientation (H, W) in degrees.
    """
    return _bank(x, image_key(x), tuple(freqs), int(n_thetas), sigma, float(bandwidth), mode)


@st.cache_data(max_entries=8, show_spinner="Making the images…")
def dataset_batch(which: str, n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """(n, h, w) float32 gray in [0, 1] and a label per image, from cnnviz.datasets."""
    from cnnviz import datasets  # noqa: PLC0415 - its font and shape tables load on first use

    if which == "digits":
        x, y = datasets.digits(n, seed=seed)
        labels = [datasets.DIGIT_CLASSES[i] for i in y]
    else:
        x, y, _ = datasets.shapes(n, seed=seed)
        labels = [datasets.SHAPE_CLASSES[i] for i in y]
    x = np.asarray(x)
    gray = images.to_gray(x) if x.ndim == 4 else x.astype(np.float32)
    return (gray / 255.0).astype(np.float32), labels


@st.cache_resource(max_entries=6, ttl=3600, show_spinner="Filtering the images…")
def _dataset_responses(
    _x: np.ndarray, x_id: str, freqs: tuple[float, ...], thetas: tuple[float, ...], kw: tuple
) -> np.ndarray:
    return _frozen(np.abs(gabor.gabor_bank_batch(_x, freqs, thetas, **dict(kw))))


def dataset_responses(
    x: np.ndarray, freqs: Sequence[float], thetas: Sequence[float], **options
) -> np.ndarray:
    """Magnitudes (N, F, T, H, W) of `gabor.gabor_bank_batch(x, freqs, thetas, **options)`,
    read-only."""
    kw = tuple(sorted(options.items()))  # hashable
    return _dataset_responses(x, image_key(x), tuple(freqs), tuple(thetas), kw)
