"""The "When it fails" page in a real browser: click to occlude, then each tab, screenshots."""

from __future__ import annotations

import pytest

from tests.browser.conftest import after_rerun, screenshot, wait_idle
from tests.browser.test_network_draw import _circle, _stroke

pytestmark = pytest.mark.browser


def _caption_with(page, text: str) -> str:
    return page.locator("[data-testid=stCaptionContainer]").filter(has_text=text).first.inner_text()


def test_failures_page(open_page):
    page, watch = open_page("failures")
    page.get_by_text("Spearman after all layers are random").first.wait_for(
        state="attached", timeout=300_000
    )
    wait_idle(page)
    before = _caption_with(page, "Square at row")
    # Click near the top-left corner of the clickable picture: the square moves there.
    picture = page.frame_locator("iframe[title*=streamlit_image_coordinates]").locator("img")
    after_rerun(page, lambda: picture.click(position={"x": 30, "y": 30}))
    after = _caption_with(page, "Square at row")
    assert after != before and "row 3, column 3" in after, (before, after)
    screenshot(page, "failures")
    for tab, name in (
        ("Guided backprop", "failures-guided"),
        ("Adversarial lab", "failures-adversarial"),
        ("Two shapes", "failures-scenes"),
    ):
        page.get_by_role("tab", name=tab).click()
        page.wait_for_timeout(800)
        screenshot(page, name)
    watch.check()


def test_two_shapes_drawn_by_the_student(open_page):
    page, watch = open_page("failures?source=draw")
    after_rerun(page, page.get_by_text("Use your own picture").first.click)
    page.get_by_text("The canvas is empty").first.wait_for(timeout=120_000)
    # A square on the left, a circle on the right: two shapes, as a student draws them.
    _stroke(page, [(0.08, 0.3), (0.42, 0.3), (0.42, 0.64), (0.08, 0.64), (0.08, 0.3)])
    _stroke(page, _circle(cx=0.72, cy=0.5, r=0.18))
    page.get_by_role("tab", name="Two shapes").click()
    after_rerun(page, page.get_by_text("Your own picture", exact=True).first.click)
    guesses = page.locator("[data-testid=stImage]").filter(has_text="Grad-CAM for")
    guesses.first.wait_for(timeout=120_000)
    names = " ".join(guesses.all_inner_texts())
    assert "Its first guess." in page.content() and "Its second guess." in page.content()
    assert "square" in names or "circle" in names, names
    screenshot(page, "failures-scenes-drawn")
    watch.check()
