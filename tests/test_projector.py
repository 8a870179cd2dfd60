"""Projector mode without a browser: the figures' theme and the page style it sends.

What it looks like in a browser (larger titles, pictures as wide, no label cut) is checked by
tests/browser/test_projector.py.
"""

from __future__ import annotations

import threading

import numpy as np
import plotly.io as pio
import pytest

from cnnviz import figures


@pytest.fixture
def projector():
    figures.set_projector_mode(True)
    yield
    figures.set_projector_mode(False)


def test_style_survives_streamlits_sanitiser():
    # st.html runs the markup through DOMPurify, which removes a <style> whose text contains
    # something that looks like a tag (it did once: a comment that named an HTML element).
    from cnnviz.ui.widgets import PROJECTOR_CSS

    body = PROJECTOR_CSS.removeprefix("<style>").removesuffix("</style>")
    assert body != PROJECTOR_CSS and "<" not in body


def test_style_scales_the_root_font_only_up():
    from cnnviz.ui.widgets import PROJECTOR_CSS

    # Everything Streamlit draws is sized in rem: the root font is the one scale factor.
    root = PROJECTOR_CSS.split("html {", 1)[1].split("}", 1)[0]
    px = float(root.split("font-size:", 1)[1].split("px", 1)[0])
    assert px > 16  # the browser default Streamlit builds on


def test_colour_bars_leave_the_toolbar_corner_free(projector):
    fig = figures.heatmap(np.arange(12.0).reshape(3, 4), title="map")
    bar = fig.layout.template.data.heatmap[0].colorbar
    # Anchored at the bottom and shorter than the plot: the top right corner (where plotly
    # puts its toolbar) has no colour bar under it.
    assert bar.yanchor == "bottom" and bar.y == 0 and bar.len < 1
    assert bar.tickfont.size > 13
    grid_bar = fig.layout.template.layout.coloraxis.colorbar
    assert grid_bar.yanchor == "bottom" and grid_bar.len < 1


def test_figure_text_is_larger_in_projector_mode(projector):
    fig = figures.mode_curves({"scratch": {"val_accuracy": [0.2, 0.5]}}, title="accuracy")
    figures.set_projector_mode(False)
    small = figures.mode_curves({"scratch": {"val_accuracy": [0.2, 0.5]}}, title="accuracy")
    assert fig.layout.font.size > small.layout.font.size
    assert fig.layout.title.font.size > small.layout.title.font.size
    assert fig.layout.template.layout.legend.font.size > small.layout.font.size


def test_a_builders_own_size_wins_over_the_theme(projector):
    # The theme is a template: what a figure sets itself is kept.
    fig = figures.heatmap(np.ones((2, 2)))
    fig.update_traces(colorbar=dict(len=0.5))
    assert fig.data[0].colorbar.len == 0.5
    assert fig.layout.template.data.heatmap[0].colorbar.len == 0.8


def test_the_default_colours_are_kept(projector):
    fig = figures.heatmap(np.ones((2, 2)))
    default = pio.templates[pio.templates.default]
    assert fig.layout.template.layout.colorway == default.layout.colorway


def test_projector_mode_is_per_session_thread(projector):
    # One student's switch must not change another student's figures.
    seen = {}

    def other_session():
        seen["on"] = figures.projector_mode()
        seen["template"] = figures.heatmap(np.ones((2, 2))).layout.template

    worker = threading.Thread(target=other_session)
    worker.start()
    worker.join()
    assert figures.projector_mode() and seen["on"] is False
    assert not seen["template"].data.heatmap or (
        seen["template"].data.heatmap[0].colorbar.len is None
    )


def test_cell_numbers_fit_their_cells(projector):
    # A 3×3 kernel keeps the projector's 22 px numbers; a 12×12 confusion matrix at 420 px
    # (cells about 30 px) gets numbers whose width, about 0.6 em a character, fits a cell.
    kernel = figures.heatmap(np.arange(9.0).reshape(3, 3), show_values=True, height=360)
    assert kernel.data[0].textfont.size == 22
    rng = np.random.default_rng(0)
    matrix = figures.heatmap(rng.random((12, 12)).round(2), show_values=True, height=420)
    size = matrix.data[0].textfont.size
    longest = max(len(t) for t in np.asarray(matrix.data[0].text).ravel())
    cell = 420 * 0.85 / 12
    assert 8 <= size < 22 and 0.6 * size * longest <= cell
    # Off the projector, small numbers stay 14 px where they fit.
    figures.set_projector_mode(False)
    assert figures.heatmap(np.eye(3), show_values=True).data[0].textfont.size == 14
