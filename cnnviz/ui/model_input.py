""" "What the model sees": the user's picture next to the input the model actually got."""

from __future__ import annotations

import keras
import numpy as np
import streamlit as st

from cnnviz import images, models
from cnnviz.ui.widgets import download_image


def model_input_image(model: str | keras.Model, image: np.ndarray) -> np.ndarray:
    """The model's input for `image` (via `models.resolve`), as a uint8 picture to show.

    The built-in models take 0-255 values, shown as they are; other preprocessing (ImageNet
    means, 0-1 scaling) is stretched to 0-255 for display. Gray inputs come back (h, w).

    Raises:
        cnnviz.models.ModelError: the picture cannot be fed (a blank one, for example).
    """
    _, prepare = models.resolve(model)
    x = np.asarray(prepare(image), np.float64)[0]
    if x.min() < 0 or x.max() > 255 or x.max() <= 1.0:
        lo, hi = x.min(), x.max()
        x = (x - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(x)
    x = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    return x[..., 0] if x.shape[-1] == 1 else x


def model_input_view(model: str | keras.Model, image: np.ndarray, *, key: str) -> bool:
    """Show the user's picture and, beside it, exactly the array the model was fed.

    For the digits model that is MNIST's 28×28 frame (ink found, cropped, fitted into 20×20,
    centred by mass); for the shapes model a big canvas cropped to the drawing, at 64×64.
    An input that cannot be made is shown as the model's error message, and False returned
    (a page then stops: `if not model_input_view(...): st.stop()`).
    """
    try:
        fed = model_input_image(model, image)
    except ValueError as err:
        st.error(str(err))
        return False
    h, w = fed.shape[:2]
    # Enlarged with nearest-neighbour so each input pixel stays a visible square.
    scale = max(1, 224 // max(h, w))
    big = np.kron(fed, np.ones((scale, scale) + (1,) * (fed.ndim - 2), np.uint8))
    left, right = st.columns(2)
    left.image(images.downscale_for_display(image)[0], caption="Your picture", width="stretch")
    right.image(big, caption=f"What the model sees: {w}×{h}", width="stretch")
    download_image("Download the model's input (PNG)", fed, "model_input.png", key=key)
    return True
