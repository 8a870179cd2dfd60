"""The Network page in a real browser: Playwright's mouse draws on the canvas and the page's
prediction must follow. A vertical stroke is a "1", a circle a "0", a square outline a
"square"; undo and clear (the canvas toolbar) must bring the empty-canvas message back."""

from __future__ import annotations

import math

import pytest

from tests.browser.conftest import after_rerun, screenshot, wait_idle

pytestmark = pytest.mark.browser


def _canvas(page):
    """The drawing layer of the canvas (fabric.js stacks an upper canvas that gets the mouse)."""
    page.wait_for_selector("canvas.upper-canvas", timeout=120_000)
    return page.locator("canvas.upper-canvas").first


def _stroke(page, points: list[tuple[float, float]]) -> None:
    """One stroke through points given as fractions (0..1) of the canvas, then the rerun."""
    box = _canvas(page).bounding_box()
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]

    def draw() -> None:
        page.mouse.move(*xy[0])
        page.mouse.down()
        for x, y in xy[1:]:
            page.mouse.move(x, y, steps=3)
        page.mouse.up()

    after_rerun(page, draw)


def _prediction(page) -> str:
    metric = page.locator("[data-testid=stMetric]").filter(has_text="Prediction").first
    metric.wait_for(timeout=60_000)
    return metric.locator("[data-testid=stMetricValue]").inner_text().strip()


def _empty_again(page) -> None:
    page.get_by_text("The canvas is empty").wait_for(timeout=60_000)
    wait_idle(page)
    assert not page.locator("[data-testid=stMetric]").filter(has_text="Prediction").count()


def _circle(cx=0.5, cy=0.5, r=0.3, n=40) -> list[tuple[float, float]]:
    return [
        (cx + r * math.sin(2 * math.pi * k / n), cy - r * math.cos(2 * math.pi * k / n))
        for k in range(n + 1)
    ]


def test_vertical_stroke_is_a_one_then_undo_and_clear(open_page):
    page, watch = open_page("network?model=digits&source=draw")
    assert page.get_by_text("The canvas is empty").count(), "an empty canvas must say so"
    assert not page.locator("[data-testid=stMetric]").filter(has_text="Prediction").count()
    _stroke(page, [(0.5, 0.15), (0.5, 0.5), (0.5, 0.85)])
    assert _prediction(page) == "1"
    # The page shows what the model read beside the drawing.
    assert page.get_by_text("What the model reads: 28×28").count()
    screenshot(page, "network_digits_one")
    # Undo (the canvas toolbar) takes the stroke away: the empty-canvas message is back.
    page.get_by_role("button", name="Undo").first.click()
    _empty_again(page)
    _stroke(page, [(0.5, 0.15), (0.5, 0.85)])
    assert _prediction(page) == "1"
    page.get_by_role("button", name="Reset canvas & history").first.click()
    _empty_again(page)
    watch.check()


def test_circle_is_a_zero(open_page):
    page, watch = open_page("network?model=digits&source=draw")
    _stroke(page, _circle(r=0.3))
    screenshot(page, "network_digits_zero")
    assert _prediction(page) == "0"
    watch.check()


def test_square_outline_is_a_square(open_page):
    page, watch = open_page("network?model=shapes&source=draw")
    square = [(0.2, 0.2), (0.8, 0.2), (0.8, 0.8), (0.2, 0.8), (0.2, 0.2)]
    _stroke(page, square)
    screenshot(page, "network_shapes_square")  # before the assertion: a misread is seen too
    assert _prediction(page) == "square"
    wait_idle(page)
    watch.check()
