"""End-to-end: every page in a real browser. Opens it, waits for its figures, uploads a real
image file, moves a slider and checks the picture changes, runs the page's main action, fails
on any Streamlit exception box or browser console error, and saves a full-page screenshot
under test-output/screenshots/."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from PIL import Image

from tests.browser.conftest import ROOT, after_rerun, screenshot, wait_idle

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


def upload(page, key: str, file_path: str) -> None:
    """Upload a file through the uploader with this widget key and wait for the rerun."""
    box = by_key(page, key).locator("input[type=file]")
    after_rerun(page, lambda: box.set_input_files(file_path))


def by_key(page, key: str):
    """The element of the widget with this Streamlit key (Streamlit adds a st-key-<key> class,
    with dots written as dashes)."""
    return page.locator(f".st-key-{key.replace('.', '-')}").first


def move_slider(page, key: str, presses: int = 1, attempts: int = 3) -> None:
    """Focus the slider with this widget key and press the right arrow `presses` times.

    A page still redrawing after the last rerun can remount the slider and swallow the keys
    (test_gradcam's overlay slider once stayed at its value in CI), so when the slider has not
    moved within 5 s the presses are made again, on the slider as it is now.
    """
    slider = by_key(page, key).locator("input[type=range]").first
    before = slider.input_value()
    for _ in range(attempts):
        slider.focus()
        for _ in range(presses):
            slider.press("ArrowRight")
        deadline = time.time() + 5
        while time.time() < deadline and slider.input_value() == before:
            page.wait_for_timeout(250)
        if slider.input_value() != before:
            break
    assert slider.input_value() != before, f"the slider {key} did not move"
    wait_idle(page)


def image_sources(page) -> list[str]:
    return page.locator("[data-testid=stImage] img").evaluate_all("els => els.map(e => e.src)")


def images_changed(page, before: list[str], timeout_s: float = 60.0) -> bool:
    """Whether the page's pictures become different from `before`: a slider's rerun can start
    after `wait_idle` has already seen an idle page on a loaded machine."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if image_sources(page) != before:
            return True
        page.wait_for_timeout(500)
    return False


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
    upload(page, "kernels.upload", photo)
    assert page.get_by_text("Input 240×320").count()
    screenshot(page, "kernels")
    watch.check()


def choose(page, key: str, option: str) -> None:
    """Pick an option in the select box with this widget key."""
    box = by_key(page, key).locator("input[role=combobox]")
    box.click()
    box.fill(option)  # the list opens filtered to matching options
    after_rerun(page, page.get_by_role("option", name=option, exact=False).first.click)


def click(page, key: str, *, shows: str | None = None) -> None:
    after_rerun(page, by_key(page, key).locator("button").first.click, shows=shows)


def plot_data(page, key: str) -> str:
    """The data behind the plotly chart with this widget key (to see that a picture changed)."""
    el = by_key(page, key).locator(".js-plotly-plot").first
    el.wait_for(timeout=120_000)
    return el.evaluate("e => JSON.stringify(e.data.map(t => [t.z, t.text, t.y]))")


def changed(page, key: str, before: str, timeout_s: float = 30.0) -> bool:
    """Whether the chart's data becomes different from `before` (charts redraw a little after
    the script run ends)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if plot_data(page, key) != before:
            return True
        page.wait_for_timeout(500)
    return False


def test_steps(open_page, photo):
    page, watch = open_page("steps")
    before = plot_data(page, "steps.fig_output")
    # Next reruns only the stepper fragment, fast enough to slip past the rerun watcher.
    click(page, "steps.next", shows="Step 2: output at row 0, column 1")
    assert page.get_by_text("Step 2: output at row 0, column 1").count()
    assert changed(page, "steps.fig_output", before), "Next did not fill in the next output"
    move_slider(page, "steps.stride")
    choose(page, "steps.input", "An image at digit size")
    upload(page, "steps.upload", photo)
    plot_data(page, "steps.fig_input")
    screenshot(page, "steps")
    watch.check()


def test_gabor(open_page, photo):
    page, watch = open_page("gabor")
    before = plot_data(page, "gabor.fig_mag")
    move_slider(page, "gabor.theta", presses=10)
    assert changed(page, "gabor.fig_mag", before), "moving theta did not change the response"
    upload(page, "gabor.upload", photo)
    plot_data(page, "gabor.fig_mag")
    screenshot(page, "gabor")
    page.get_by_role("tab", name="A bank of filters").click()
    wait_idle(page)
    plot_data(page, "gabor.fig_bank_r")
    screenshot(page, "gabor-bank")
    watch.check()


def test_architecture(open_page):
    page, watch = open_page("architecture")
    # The shipped shapes model's parameter count, as its model card records it.
    card = json.loads((ROOT / "assets" / "models" / "shapes.json").read_text())
    page.get_by_text(f"{card['params']:,}").first.wait_for(timeout=120_000)
    choose(page, "model.picker", "MNIST CNN")
    page.get_by_text("93,322").first.wait_for(timeout=120_000)
    screenshot(page, "architecture")
    watch.check()


def test_activations(open_page, photo):
    page, watch = open_page("activations")
    before = plot_data(page, "activations.grid")
    choose(page, "activations.layer", "conv2")
    assert changed(page, "activations.grid", before), "another layer did not change the grid"
    upload(page, "activations.upload", photo)
    assert page.get_by_text("thinks this is").count()
    screenshot(page, "activations")
    watch.check()


def test_train(open_page):
    page, watch = open_page("train")
    click(page, "train.start")
    # A short run (the server caps steps per epoch in tests) ends with a test accuracy.
    page.get_by_text("Test accuracy").first.wait_for(timeout=240_000)
    wait_idle(page)
    plot_data(page, "train.curves")
    screenshot(page, "train")
    watch.check()


def test_gradcam(open_page, photo):
    page, watch = open_page("gradcam")
    page.get_by_text("score before softmax").first.wait_for(timeout=240_000)
    before = plot_data(page, "gradcam.heat_fig")
    choose(page, "gradcam.method", "Grad-CAM++")
    assert changed(page, "gradcam.heat_fig", before), "another method did not change the map"
    overlay = image_sources(page)
    move_slider(page, "gradcam.alpha", presses=3)
    assert images_changed(page, overlay), "the overlay slider did not change the overlay"
    after_rerun(
        page, by_key(page, "gradcam.source").get_by_text("A sample photo or your own upload").click
    )
    upload(page, "gradcam.upload", photo)
    page.get_by_text("Overlay on stripes.jpg").first.wait_for(timeout=240_000)
    screenshot(page, "gradcam")
    watch.check()


def test_filters(open_page):
    page, watch = open_page("filters")
    page.locator("[data-testid=stImage] img").first.wait_for(timeout=240_000)
    before = image_sources(page)
    choose(page, "filters.layer", "conv2")
    page.locator("[data-testid=stImage] img").first.wait_for(timeout=240_000)
    assert image_sources(page) != before, "another layer did not give other pictures"
    screenshot(page, "filters")
    watch.check()
