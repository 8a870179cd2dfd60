"""The one widget that says, next to a prediction, when the input is unlike the training data."""

from __future__ import annotations

import importlib

import keras
import numpy as np
import streamlit as st

from cnnviz import models
from cnnviz.ui.cache import image_key

# The module, not the function of the same name that cnnviz.models exports.
fam = importlib.import_module("cnnviz.models.familiarity")

__all__ = ["familiarity_note"]


@st.cache_data(max_entries=64, ttl=3600, show_spinner=False)
def _familiarity(name: str, _image: np.ndarray, image_id: str) -> float:
    # Cached per (built-in name, image bytes); the underscored image is not hashed by Streamlit.
    return float(fam.familiarity(name, _image)[0])


def familiarity_note(
    model: str | keras.Model, image: np.ndarray, probs: np.ndarray | None = None
) -> float | None:
    """Say plainly whether `image` looks like what the built-in `model` was trained on.

    For an unfamiliar picture (familiarity below the model's threshold) a warning says that
    the model still had to pick one of its classes, so its top probability is a forced guess,
    with one sentence on what softmax confidence means. A familiar one gets a short caption.
    Models without familiarity statistics (anything but a trained built-in) show nothing.

    Args:
        model: the page's model (a registry name or a keras.Model).
        image: the picture as the page feeds it (uint8, any size).
        probs: the prediction shown on the page (for the forced guess's percentage).

    Returns:
        The familiarity in [0, 1], or None when the model has none.
    """
    name = model if isinstance(model, str) else None
    try:
        stats = fam.stats_for(model)
        if name is None:
            name = models.info(model).name
        value = _familiarity(name, image, image_key(image))
    except fam.FamiliarityUnavailable:
        return None
    classes = models.info(name).class_names
    if value < stats.threshold:
        guess = ""
        if probs is not None and len(probs) == len(classes):
            top = int(np.argmax(probs))
            guess = f", so its {probs[top]:.0%} for “{classes[top]}” is a forced guess"
        st.warning(
            f"⚠️ **This picture looks like nothing the {name} model was trained on** "
            f"(familiarity {value:.1%}). It must still pick one of its {len(classes)} "
            f"classes{guess}. Softmax turns any scores into probabilities that add up to 100 %, "
            "so a high probability only says which class wins, not that the answer is right."
        )
    else:
        st.caption(
            f"Familiarity {value:.0%}: this picture looks like the pictures the {name} model "
            "was trained on (0 % would mean unlike all of them)."
        )
    return value
