"""The "When it fails" page in a real browser: click to occlude, then each tab, screenshots."""

from __future__ import annotations

import pytest

from tests.browser.conftest import after_rerun, screenshot, wait_idle

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
