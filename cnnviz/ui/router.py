"""Make every page go through app.py's router, even when a link opens it first.

Streamlit still supports the old "pages/ directory" multipage mode. On a fresh server, until
some session has run app.py (which calls `st.navigation`), Streamlit assumes that old mode:
a link straight to /kernels then runs pages/kernels.py alone, without the app's sidebar and
page settings, and lists raw file names as navigation. Each page calls `use_app_router()`
first; in that situation it switches Streamlit to `st.navigation` mode and reruns, which
runs app.py, which then shows the requested page properly.
"""

from __future__ import annotations

import streamlit as st

__all__ = ["use_app_router"]


def use_app_router() -> None:
    """Rerun through app.py if Streamlit ran this page in the legacy pages/ mode."""
    try:
        from streamlit.runtime.pages_manager import PagesManager  # noqa: PLC0415
    except ImportError:  # a future Streamlit without the legacy mode
        return
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
