"""Select boxes whose options or labels depend on the model, layer, image or objective.

Streamlit's browser side remembers a select box's choice as its *label*. When the labels
change under the same key (a new model's class names, a new layer's scores), the browser
sends back a label that no longer exists: Streamlit then hands the script that stale string,
and the box keeps showing "top-1: circle" after a switch to VGG16, or "Choose an option".
`fresh_choice`, called just before the widget, puts a valid value into session state, which
Streamlit sends to the browser, so the box always shows an option of the current run.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import streamlit as st

__all__ = ["fresh_choice"]


def fresh_choice(
    key: str,
    options: Sequence[Any],
    default: Any,
    *,
    reset_on: Hashable = None,
    refresh_on: Hashable = None,
) -> Any:
    """Make `st.session_state[key]` one of `options` before the select box `key` is drawn.

    Args:
        key: the select box's widget key. Create the widget without `index`/`value`: the
            value set here is its value.
        options: the options the widget is about to get.
        default: the value to fall back on (must be in `options`).
        reset_on: what the options mean (the model, the layer and objective): when it changes,
            the choice goes back to `default`.
        refresh_on: what the labels show (the image, the scores): when it changes, a valid
            choice is kept but sent to the browser again, so its label is redrawn.

    Returns:
        The value the widget will have.
    """
    seen_key = f"{key}._seen"
    seen = st.session_state.get(seen_key)
    now = (reset_on, refresh_on)
    value = st.session_state.get(key, default)
    if value not in options:
        value = default  # a stale label the browser sent back, or a link's out-of-range value
    if seen is not None and seen[0] != reset_on:
        value = default
    if seen != now or st.session_state.get(key, default) != value or key not in st.session_state:
        st.session_state[key] = value
    st.session_state[seen_key] = now
    return value
