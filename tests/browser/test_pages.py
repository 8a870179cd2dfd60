"""End-to-end: every page in a real browser. Opens it, waits for its figures, uploads a real
image file, moves a slider and checks the picture changes, runs the page's main action, fails
on any Streamlit exception box or browser console error, and saves a full-page screenshot
under test-output/screenshots/."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.browser.conftest import screenshot, wait_idle

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> str:
    """A real JPEG file on disk, as a student would upload."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:240, 0:320]
    arr = np.stack(
        [(xx % 64 < 32) * 200 + 30, (yy % 48 < 24) * 180 + 40, rng.integers(0, 80, xx.shape)], -1
    )
    path = tmp_path_factory.mktemp("upload") / "stripes.jpg"
    Image.fromarray(arr.astype(np.uint8)).save(path, quality=92)
    return str(path)


def upload(page, file_path: str, index: int = 0) -> None:
    page.locator("[data-testid=stFileUploaderDropzoneInput]").nth(index).set_input_files(file_path)
    wait_idle(page)


def by_key(page, key: str):
    """The element of the widget with this Streamlit key (Streamlit adds a st-key-<key> class,
    with dots written as dashes)."""
    return page.locator(f".st-key-{key.replace('.', '-')}").first


def move_slider(page, key: str, presses: int = 1) -> None:
    """Focus the slider with this widget key and press the right arrow."""
    slider = by_key(page, key).locator("input[type=range]").first
    slider.focus()
    for _ in range(presses):
        slider.press("ArrowRight")
    wait_idle(page)


def image_sources(page) -> list[str]:
    return page.locator("[data-testid=stImage] img").evaluate_all("els => els.map(e => e.src)")


def test_home(open_page):
    page, watch = open_page("")
    assert page.get_by_text("see how a convolutional network works").count()
    screenshot(page, "home")
    watch.check()


def test_kernels(open_page, photo):
    page, watch = open_page("kernels")
    page.wait_for_selector("[data-testid=stImage] img")
    before = image_sources(page)
    move_slider(page, "kernels.stride")
    after = image_sources(page)
    assert after != before, "moving the stride slider did not change the output picture"
    assert page.get_by_text("/ 2⌋ + 1 = 256").count()
    upload(page, photo)
    assert page.get_by_text("Input 240×320").count()
    screenshot(page, "kernels")
    watch.check()
