"""Make every page go through app.py's router, even when a link opens it first.

Streamlit still supports the old "pages/ directory" multipage mode. On a fresh server, until
some session has run app.py (which calls `st.navigation`), Streamlit assumes that old mode:
a link straight to /kernels then runs pages/kernels.py alone, without the app's sidebar and
page settings, and lists raw file names as navigation. Each page calls `use_app_router()`
first; in that situation it switches Streamlit to `st.navigation` mode and reruns, which
runs app.py, which then shows the requested page properly.
"""

from __future__ import annotations

import logging
import sys

import streamlit as st

__all__ = ["use_app_router", "keep_keras_state"]

_ROUTED = "app._routed"  # session state: this session has had its first run


def use_app_router() -> None:
    """Rerun through app.py if Streamlit ran this page in the legacy pages/ mode.

    Also applies `keep_keras_state`, so every page (and app.py) shares one Keras state.
    """
    keep_keras_state()
    try:
        from streamlit.runtime.pages_manager import PagesManager  # noqa: PLC0415
    except ImportError:  # a future Streamlit without the legacy mode
        return
    # Only on a session's first run: that is when a link lands here, and a rerun then loses no
    # click. (Streamlit's AppTest resets the legacy flag before every run; rerunning later
    # would swallow the button press that caused the run.)
    first_run = not st.session_state.get(_ROUTED, False)
    st.session_state[_ROUTED] = True
    if PagesManager.uses_pages_directory and first_run:
        PagesManager.uses_pages_directory = False
        st.rerun()


def keep_keras_state() -> bool:
    """Stop Streamlit from calling `keras.backend.clear_session()` after every script run.

    Streamlit's script runner "cleans" Keras after each run of any script
    (`streamlit.runtime.scriptrunner.script_runner._clean_problem_modules`). In a server where
    every session shares cached models, that is harmful twice over: `clear_session` ends with a
    full `gc.collect()`, measured at ~1 s per rerun here with TensorFlow loaded (more than a
    VGG16 forward pass, so a cached page could never rerun faster than it computes), and it
    swaps Keras' global state and clears TensorFlow's kernel cache under the other sessions'
    running computations. The matplotlib half of the clean-up is kept.

    Idempotent; a no-op (returning False) when Streamlit's internals have changed.
    """
    try:
        from streamlit.runtime.scriptrunner import script_runner  # noqa: PLC0415
    except ImportError:
        return False
    original = getattr(script_runner, "_clean_problem_modules", None)
    if original is None:
        return False
    if getattr(original, "_cnnviz_keeps_keras", False):
        return True

    def clean_without_keras() -> None:
        # What Streamlit does, minus keras.backend.clear_session().
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None:
            try:
                plt.close("all")
            except Exception as err:  # noqa: BLE001 - never break a script run over clean-up
                logging.getLogger(__name__).warning(err)

    clean_without_keras._cnnviz_keeps_keras = True  # type: ignore[attr-defined]
    script_runner._clean_problem_modules = clean_without_keras  # noqa: SLF001
    return True
