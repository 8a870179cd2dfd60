"""The Grad-CAM page in a real browser (issue 20): "Explain the class" always shows a class of
the current model, and a link restores picture number, colour map and method."""

from __future__ import annotations

import re

import pytest

from cnnviz import models
from tests.browser.conftest import after_rerun, screenshot, wait_idle
from tests.browser.test_pages import by_key, choose, photo, upload  # noqa: F401 - a fixture

pytestmark = pytest.mark.browser
READY = "score before softmax"


def _shown(page, key: str) -> str:
    """The text a select box shows: its combobox input's value ("" when nothing is chosen,
    and the box then shows its placeholder, "Choose an option")."""
    box = by_key(page, key).locator("input[role=combobox]").first
    box.wait_for(timeout=120_000)
    return box.input_value().strip()


def _top_bar(page) -> str:
    """The class name of the first "thinks this is" bar ("circle: 97.0%" -> "circle")."""
    text = page.locator("[data-testid=stProgress]").first.inner_text().strip()
    return re.sub(r":\s*[\d.]+%$", "", text.splitlines()[0]).strip()


def _explained_class(page, model: str) -> str:
    page.get_by_text(READY).first.wait_for(timeout=240_000)
    wait_idle(page)
    shown = _shown(page, "gradcam.class")
    assert shown.startswith("top-1: "), shown
    name = shown.removeprefix("top-1: ")
    assert name in models.info(model).class_names, (model, shown)
    assert name == _top_bar(page), (shown, _top_bar(page))
    return name


def test_explain_the_class_follows_the_model_and_the_picture(open_page, photo):  # noqa: F811
    page, watch = open_page("gradcam?model=shapes")
    _explained_class(page, "shapes")
    for model in ("digits", "shapes"):
        choose(page, "model.picker", models.title(model).split(" (")[0])
        _explained_class(page, model)
    # An upload: the box shows the new picture's top-1 class, never "Choose an option".
    after_rerun(
        page, by_key(page, "gradcam.source").get_by_text("A sample photo or your own upload").click
    )
    _explained_class(page, "shapes")
    upload(page, "gradcam.upload", photo)
    page.get_by_text("Overlay on stripes.jpg").first.wait_for(timeout=240_000)
    _explained_class(page, "shapes")
    screenshot(page, "gradcam-upload")
    watch.check()


def test_a_link_restores_picture_number_colour_map_and_method(open_page):
    link = "gradcam?model=shapes&image=generated&seed=12&cmap=cividis&method=layercam"
    page, watch = open_page(link)
    page.get_by_text(READY).first.wait_for(timeout=240_000)
    wait_idle(page)
    assert by_key(page, "gradcam.seed").locator("input").input_value() == "12"
    assert _shown(page, "gradcam.cmap") == "cividis (colour-blind safe)"
    assert _shown(page, "gradcam.method") == "LayerCAM"
    assert page.get_by_text("Overlay on shapes picture #12").count()
    for part in ("seed=12", "cmap=cividis", "method=layercam"):
        assert part in page.url, page.url
    screenshot(page, "gradcam-link")
    watch.check()


def test_a_neurons_map_link_opens_its_picture(open_page):
    page, watch = open_page("gradcam?model=shapes&sample=dataset:shapes:17")
    page.get_by_text(READY).first.wait_for(timeout=240_000)
    wait_idle(page)
    assert _shown(page, "gradcam.sample") == "shapes #17 (from the Neurons map)"
    assert page.get_by_text("Overlay on shapes #17 (from the Neurons map)").count()
    watch.check()
