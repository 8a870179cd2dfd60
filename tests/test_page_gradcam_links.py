"""Grad-CAM page: every control that changes the view is in the link, a link restores them all,
a Neurons-map link opens its picture, and the sanity and faithfulness charts explain
themselves (issue 20, issue 17's "clicking opens it on the Grad-CAM page")."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage
from streamlit.testing.v1 import AppTest

from cnnviz import cam, datasets, figures, models
from cnnviz.layers import last_conv_layer
from tests.apptest_util import assert_clean, page

P = "gradcam"
# One value per linked control, none of them the default.
VIEW = {
    "model": "shapes",
    "image": "generated",
    "seed": "12",
    "layer": "conv3",
    "class": "2",
    "method": "layercam",
    "cmap": "cividis",
    "alpha": "0.7",
}
WIDGET = {
    "image": ("radio", "source", "generated"),
    "seed": ("number_input", "seed", 12),
    "layer": ("selectbox", "layer", "conv3"),
    "class": ("selectbox", "class", 2),
    "method": ("selectbox", "method", "layercam"),
    "cmap": ("selectbox", "cmap", "cividis"),
    "alpha": ("slider", "alpha", 0.7),
}


def _open(query: dict[str, str], **state) -> AppTest:
    at = AppTest.from_file(page("gradcam.py"), default_timeout=300)
    for k, v in query.items():
        at.query_params[k] = v
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert_clean(at)
    return at


def _url(at: AppTest, name: str) -> str | None:
    v = at.query_params.get(name)
    return v[0] if isinstance(v, list) else v


def _widget(at: AppTest, kind: str, key: str):
    return getattr(at, kind)(key=f"{P}.{key}")


def _texts(at: AppTest) -> str:
    return " ".join(e.value for e in [*at.caption, *at.markdown, *at.info, *at.warning])


def test_a_link_restores_every_control_and_stays_in_the_url():
    at = _open(VIEW)
    assert not at.info or "Link settings adjusted" not in at.info[0].value
    for name, (kind, key, value) in WIDGET.items():
        assert _widget(at, kind, key).value == pytest.approx(value), name
        assert _url(at, name) == VIEW[name], name
    # The view really is that one: LayerCAM for class 2 at conv3 on generated picture #12.
    captions = [i.caption for el in at.get("image") for i in el.proto.imgs]
    assert "Overlay on shapes picture #12" in " ".join(captions).replace("\\", "")
    names = models.info("shapes").class_names
    assert f"**LayerCAM** for class **{names[2]}** at layer conv3" in _texts(at).replace("\\", "")


def test_every_control_is_written_back_and_the_link_reopens_it():
    at = _open({}, **{"model.name": "shapes"})
    at.number_input(key=f"{P}.seed").set_value(21).run()
    at.selectbox(key=f"{P}.cmap").set_value("magma").run()
    at.selectbox(key=f"{P}.method").set_value("hirescam").run()
    at.slider(key=f"{P}.alpha").set_value(0.2).run()
    at.selectbox(key=f"{P}.layer").set_value("conv2").run()
    at.selectbox(key=f"{P}.class").set_value(3).run()
    assert_clean(at)
    link = {n: _url(at, n) for n in ("model", "image", *WIDGET)}
    assert link == {
        "model": "shapes",
        "image": "generated",
        "seed": "21",
        "cmap": "magma",
        "method": "hirescam",
        "alpha": "0.2",
        "layer": "conv2",
        "class": "3",
    }
    # A student opens that link in a new session: the same view.
    again = _open(link)
    for name, (kind, key, _) in WIDGET.items():
        assert str(_widget(again, kind, key).value) == link[name], name


def test_a_layer_of_the_old_model_goes_back_to_the_last_conv_layer():
    at = _open({}, **{"model.name": "shapes"})
    at.selectbox(key=f"{P}.layer").set_value("conv1").run()
    at.session_state["model.name"] = "digits"
    at.run()
    assert_clean(at)
    net, _ = models.resolve("digits")
    box = at.selectbox(key=f"{P}.layer")
    assert box.value == last_conv_layer(net) and box.value in box.options


@pytest.fixture
def small_neurons_set(monkeypatch):
    # The Neurons page's set, smaller (the env var is read on every call, also in-process).
    monkeypatch.setenv("CNNVIZ_NEURONS_IMAGES", "60")


def test_a_neurons_map_link_opens_that_picture(small_neurons_set):
    at = _open({"model": "shapes", "sample": "dataset:shapes:17"})
    assert not at.info or "Link settings adjusted" not in at.info[0].value
    assert at.radio(key=f"{P}.source").value == "picker"
    assert at.radio(key=f"{P}.src").value == "sample"
    box = at.selectbox(key=f"{P}.sample")
    assert box.value == "dataset:shapes:17"
    assert box.format_func(box.value) == "shapes #17 (from the Neurons map)"
    assert _url(at, "sample") == "dataset:shapes:17"
    # The picture shown is #17 of the generated set, drawn here straight from the generator.
    picture = datasets.shapes(60, seed=4242)[0][17]
    probs = cam.compute("gradcam", "shapes", picture).probabilities
    top = models.info("shapes").class_names[int(np.argmax(probs))]
    assert at.get("progress")[0].proto.text.startswith(f"{top}: ")
    # A rerun (another colour map) keeps the picture; a student can still choose a sample.
    at.selectbox(key=f"{P}.cmap").set_value("inferno").run()
    assert at.selectbox(key=f"{P}.sample").value == "dataset:shapes:17"
    at.selectbox(key=f"{P}.sample").set_value("coins").run()
    assert_clean(at)
    box = at.selectbox(key=f"{P}.sample")
    assert box.value == "coins" and "shapes #17 (from the Neurons map)" in box.options


def test_a_linked_picture_that_no_longer_exists_gets_a_message(small_neurons_set, monkeypatch):
    at = _open({"model": "shapes", "sample": "dataset:shapes:55"})
    assert at.selectbox(key=f"{P}.sample").value == "dataset:shapes:55"
    monkeypatch.setenv("CNNVIZ_NEURONS_IMAGES", "50")  # the server now makes a smaller set
    at.selectbox(key=f"{P}.cmap").set_value("magma").run()
    assert_clean(at)
    assert "Expected a picture number from 0 to 49" in at.error[0].value
    assert "Showing `camera` instead" in at.error[0].value
    assert "Overlay on camera" in " ".join(
        i.caption for el in at.get("image") for i in el.proto.imgs
    )


@pytest.mark.parametrize(
    "value, message",
    [
        ("dataset:shapes:60", "Expected a picture number from 0 to 59 of the generated shapes"),
        ("dataset:shapes:-1", "Expected a picture number from 0 to 59"),
        ("dataset:shapes:x", "Received `x`"),
        ("dataset:cats:3", "Expected dataset:KIND:NUMBER with KIND one of shapes, digits"),
        ("dataset:shapes", "Received `dataset:shapes`"),
    ],
)
def test_a_bad_neurons_link_says_what_was_expected(small_neurons_set, value, message):
    at = _open({"model": "shapes", "sample": value})
    assert not at.error
    note = at.info[0].value
    assert note.startswith("Link settings adjusted") and message in note, note
    # The usual view instead: the generated picture of the page.
    assert at.radio(key=f"{P}.source").value == "generated"


def _chart(at: AppTest, key: str) -> dict:
    chart = next(c for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{P}.{key}"))
    return json.loads(chart.proto.spec)


def test_sanity_chart_marks_every_stage_with_no_correlation():
    # Digits picture #1: at two of the conv layers the random copy's Grad-CAM map is empty.
    at = _open({"seed": "1"}, **{"model.name": "digits"})
    test = next(
        v for v in at.session_state[f"{P}._memo"].values() if isinstance(v, cam.RandomizationResult)
    )
    flat = [i for i, s in enumerate(test.stages) if s.spearman is None]
    assert flat, "expected a stage with a flat map on this picture"
    fig = _chart(at, "sanity_curve")
    labels = fig["data"][0]["x"]
    assert fig["data"][1]["x"] == [labels[i] for i in flat]
    assert fig["data"][1]["y"] == [0.0] * len(flat)
    text = _texts(at)
    assert "No correlation at" in text and "flat" in text


def test_sanity_curve_draws_a_mark_for_an_undefined_stage():
    fig = figures.sanity_curve(["original", "a", "b", "c"], [1.0, None, 0.3, None], title="t")
    assert np.isnan(fig.data[0].y[1]) and fig.data[0].y[2] == 0.3
    assert list(fig.data[1].x) == ["a", "c"] and list(fig.data[1].y) == [0.0, 0.0]
    assert len(figures.sanity_curve(["original", "a"], [1.0, 0.5], title="t").data) == 1


def test_insertion_starts_from_the_blur_it_reports():
    picture = datasets.shapes(1, seed=5_000_007)[0][0]
    f = cam.deletion_insertion("shapes", picture, steps=4, random_repeats=1, blur_sigma=4.0)
    assert f.blur_sigma == 4.0
    # The curve's first point is the model's probability for the blurred picture, blurred
    # here with scipy directly.
    net, x = models.resolve("shapes")[0], models.prepare("shapes", picture)[0]
    blurred = ndimage.gaussian_filter(np.asarray(x[0], np.float32), sigma=(4.0, 4.0, 0))
    expect = np.asarray(net(blurred[None], training=False))[0, f.class_index]
    assert f.insertion[0] == pytest.approx(float(expect), abs=1e-4)
    with pytest.raises(ValueError, match="blur_sigma"):
        cam.deletion_insertion("shapes", picture, blur_sigma=0)


def test_the_page_says_where_insertion_starts_and_why_the_blur_is_strong():
    at = _open({}, **{"model.name": "shapes"})
    text = _texts(at)
    assert "σ = 1/16 of the picture's side" in text
    faith = next(
        v for v in at.session_state[f"{P}._memo"].values() if isinstance(v, cam.Faithfulness)
    )
    assert faith.blur_sigma == 4.0  # 64 / 16
    assert "blurred by σ = 4.0 px, where p(" in text.replace("\\", "")


def test_float_link_values_are_clamped_or_ignored():
    from cnnviz.ui import params

    alpha = params.Float("k", 0.0, 1.0)
    assert alpha.parse("0.3") == (0.3, None)
    assert alpha.parse("2") == (1.0, "2 is outside 0–1; using 1")
    for junk in ("nan", "abc", ""):
        value, note = alpha.parse(junk)
        assert value is None and "not a number" in note
