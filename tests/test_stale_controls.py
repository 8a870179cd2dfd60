"""Controls that depend on the model, layer or objective show an option of the current run.

The browser remembers a select box's choice by its label and sends that label back. AppTest
does the same (it sends the label the last run drew), so these tests replay a student who
chose something, then changed the model or the layer.
"""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from cnnviz import models
from tests.apptest_util import assert_clean, page


def _shown(box) -> str:
    """The label the select box shows for its value (this run's format_func)."""
    return box.format_func(box.value)


def _sent(box) -> bool:
    """Whether this run told the browser the box's value (and so its label): a box whose
    labels changed must, or the browser keeps drawing the label it remembers."""
    return box.proto.set_value and box.proto.raw_value == _shown(box)


def _hold_label(box) -> None:
    """Choose what the box shows the way the browser does: by sending its label back."""
    box.set_value(_shown(box))


def test_gradcam_class_is_always_a_class_of_the_current_model():
    at = AppTest.from_file(page("gradcam.py"), default_timeout=300)
    at.session_state["model.name"] = "shapes"
    at.run()
    assert_clean(at)
    box = at.selectbox(key="gradcam.class")
    assert _shown(box).startswith("top-1: ") and box.value == -1
    _hold_label(box)  # the browser now holds the label "top-1: <a shape>"
    at.run()
    at.session_state["model.name"] = "digits"
    at.run()
    assert_clean(at)
    box = at.selectbox(key="gradcam.class")
    digits = models.info("digits").class_names
    assert box.value == -1 and _sent(box)
    assert _shown(box).removeprefix("top-1: ") in digits
    # An explicit class of the old model does not survive a model switch either.
    box.set_value(7).run()
    at.session_state["model.name"] = "shapes"
    at.run()
    assert_clean(at)
    box = at.selectbox(key="gradcam.class")
    assert (
        box.value == -1 and _shown(box).removeprefix("top-1: ") in models.info("shapes").class_names
    )


def test_gradcam_class_after_a_new_image_is_the_new_top1():
    at = AppTest.from_file(page("gradcam.py"), default_timeout=300)
    at.session_state["model.name"] = "shapes"
    at.run()
    _hold_label(at.selectbox(key="gradcam.class"))
    at.run()
    before = _shown(at.selectbox(key="gradcam.class"))
    for seed in range(1, 40):  # a new generated picture until the top-1 class changes
        _hold_label(at.selectbox(key="gradcam.class"))
        at.number_input(key="gradcam.seed").set_value(seed).run()
        assert_clean(at)
        box = at.selectbox(key="gradcam.class")
        assert box.value == -1
        if _shown(box) != before:
            assert _sent(box)
            break
    else:
        raise AssertionError("no picture changed the top-1 class")
    # The label names the top-1 class of the picture now shown: the first bar's class.
    top_bar = at.get("progress")[0].proto.text.split(":")[0]
    assert _shown(box) == f"top-1: {top_bar}"


def test_filters_look_closer_shows_the_current_layers_scores():
    at = AppTest.from_file(page("filters.py"), default_timeout=300)
    at.session_state["model.name"] = "shapes"
    at.run()
    assert_clean(at)
    box = at.selectbox(key="filters.large")
    box.set_value(0).run()
    _hold_label(at.selectbox(key="filters.large"))  # "#0 (score ...)" of the last layer
    layers = at.selectbox(key="filters.layer").options
    at.selectbox(key="filters.layer").set_value(layers[0]).run()
    assert_clean(at)
    box = at.selectbox(key="filters.large")
    captions = [img.caption for img in at.get("image")[0].proto.imgs]
    assert box.value == 0 and _sent(box)
    # The label's score is the score under picture #0 of the layer now shown.
    assert _shown(box) == f"#0 (score {captions[0].split(': ')[1]})"
    # And for another objective (the centre unit) too.
    _hold_label(box)
    at.radio(key="filters.objective").set_value("neuron").run()
    assert_clean(at)
    box = at.selectbox(key="filters.large")
    captions = [img.caption for img in at.get("image")[0].proto.imgs]
    assert (
        box.value == 0 and _sent(box) and _shown(box) == f"#0 (score {captions[0].split(': ')[1]})"
    )
