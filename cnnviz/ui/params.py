"""Shareable links: the view's key settings live in the URL's query parameters.

A teacher copies the address bar and students open the same view: page (the URL path), model,
sample image, kernel, layer, filter and class. Values from a URL are untrusted: unknown ones
are ignored and out-of-range numbers are clamped, each with a short note, never a crash.

A page declares its parameters once:

    params.bind({"sample": params.Choice("kernels.sample", images.sample_names()),
                 "stride": params.Int("kernels.stride", 1, 8)})

`bind` seeds the widgets' session state from the URL before the widgets are drawn (only
when the URL changed, so it never fights the student's own clicks), and `sync` at the end
of the page writes the current widget values back to the URL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import streamlit as st

from cnnviz.ui.widgets import md_code

__all__ = ["Choice", "Int", "Float", "Text", "bind", "sync"]

_MAX_LEN = 200


@dataclass(frozen=True)
class Choice:
    """A parameter that must be one of `options` (compared as strings)."""

    key: str
    options: Sequence[object] | Callable[[], Sequence[object]]

    def parse(self, raw: str) -> tuple[object | None, str | None]:
        opts = list(self.options() if callable(self.options) else self.options)
        for o in opts:
            if str(o) == raw:
                return o, None
        # A "+" typed into an address bar arrives as a space ("gradcam++" as "gradcam  ").
        typed = raw.replace(" ", "+")
        for o in opts:
            if str(o) == typed:
                return o, None
        return None, f"unknown value {md_code(raw, 40)} ignored"


@dataclass(frozen=True)
class Int:
    """An integer parameter clamped to [lo, hi]."""

    key: str
    lo: int
    hi: int

    def parse(self, raw: str) -> tuple[object | None, str | None]:
        try:
            value = int(float(raw))
        except (TypeError, ValueError, OverflowError):
            return None, f"{md_code(raw, 40)} is not a whole number; ignored"
        clamped = min(max(value, self.lo), self.hi)
        note = (
            None if clamped == value else f"{value} is outside {self.lo}–{self.hi}; using {clamped}"
        )
        return clamped, note


@dataclass(frozen=True)
class Float:
    """A number clamped to [lo, hi] (a slider's value, such as an overlay strength)."""

    key: str
    lo: float
    hi: float

    def parse(self, raw: str) -> tuple[object | None, str | None]:
        try:
            value = float(raw)
        except (TypeError, ValueError, OverflowError):
            value = float("nan")
        if value != value:  # NaN: float("nan") parses, but is no number to show
            return None, f"{md_code(raw, 40)} is not a number; ignored"
        clamped = min(max(value, self.lo), self.hi)
        note = (
            None
            if clamped == value
            else f"{value:g} is outside {self.lo:g}–{self.hi:g}; using {clamped:g}"
        )
        return clamped, note


@dataclass(frozen=True)
class Text:
    """Free text (e.g. a typed kernel), length-capped; validation happens where it is used."""

    key: str
    max_len: int = _MAX_LEN

    def parse(self, raw: str) -> tuple[object | None, str | None]:
        if len(raw) > self.max_len:
            return None, "a value was too long; ignored"
        return raw, None


Param = Choice | Int | Float | Text


def bind(spec: dict[str, Param], *, prefix: str) -> dict[str, object]:
    """Seed widget state from the URL (when it changed) and keep the URL in step with widgets.

    Args:
        spec: query-parameter name -> how to parse it and which widget key it sets.
        prefix: the page's key prefix; remembers which URL this page last applied.

    Returns:
        {widget key: value} of what this run took from the URL (empty when nothing new), so a
        page can keep a linked value that a model switch in the same run would otherwise reset.
    """
    try:
        url = {k: st.query_params.get(k) for k in spec if k in st.query_params}
    except Exception:  # noqa: BLE001 - a malformed URL must never break the page
        url = {}
    seen_key = f"{prefix}._applied_url"
    notes, applied = [], {}
    if url and st.session_state.get(seen_key) != url:
        for name, raw in url.items():
            value, note = spec[name].parse(str(raw)[: _MAX_LEN * 10])
            if note:
                notes.append(f"`{name}`: {note}")
            if value is not None:
                st.session_state[spec[name].key] = value
                applied[spec[name].key] = value
        st.session_state[seen_key] = url
    if notes:
        st.info("Link settings adjusted: " + "; ".join(notes))
    return applied


def sync(spec: dict[str, Param], *, prefix: str) -> None:
    """Call at the end of a page: write the widgets' current values into the URL."""
    for name, p in spec.items():
        value = st.session_state.get(p.key)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            if st.query_params.get(name) != str(value):
                st.query_params[name] = str(value)
    # Remember the URL we wrote, so the next run does not re-apply it over the widgets.
    st.session_state[f"{prefix}._applied_url"] = {
        k: st.query_params.get(k) for k in spec if k in st.query_params
    }
