"""AppTest for the "When it fails" page: occlusion, the sanity check, the attacks, two shapes."""

import base64
import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cnnviz import adversarial, cam, datasets, evaldata, images, models
from cnnviz.ui.model_input import model_input_image
from tests.apptest_util import assert_clean, page

P = "failures"


def _app(model_name: str = "shapes") -> AppTest:
    at = AppTest.from_file(page("failures.py"), default_timeout=300)
    at.session_state["model.name"] = model_name
    at.run()
    assert_clean(at)
    return at


@pytest.fixture(scope="module")
def at():
    return _app()


def _chart(at: AppTest, key: str) -> dict:
    chart = next(c for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{P}.{key}"))
    return json.loads(chart.proto.spec)


def _z(trace: dict, field: str = "z") -> np.ndarray:
    z = trace[field]
    if isinstance(z, dict):  # plotly writes numpy data as a base64 typed array
        z = np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"])
        if "shape" in trace[field]:
            z = z.reshape([int(n) for n in str(trace[field]["shape"]).split(",")])
    return np.asarray(z, dtype=np.float64)


def _captions(at: AppTest) -> list[str]:
    return [c for element in at.get("image") for c in element.captions]


def _picture(at: AppTest) -> np.ndarray:
    images, _, _ = datasets.shapes(1, seed=int(at.number_input(key=f"{P}.seed").value))
    return images[0]


def test_loads_every_view_with_downloads(at):
    assert not at.error
    assert len(at.tabs) == 4
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Download the adversarial picture" in labels and "Download the scene" in labels
    assert "Download the overlay" in labels and "Download the covered picture" in labels


def test_occlusion_view_shows_the_map_and_moves_the_square(at):
    picture = _picture(at)
    top1 = int(models.predict("shapes", picture)[0].argmax())
    want = cam.occlusion_map("shapes", picture, class_index=top1)
    np.testing.assert_allclose(_z(_chart(at, "occ_map")["data"][0]), want, atol=1e-6)
    # A "click": the square moves and the covered prediction follows it.
    at.session_state[f"{P}.click"] = (0, 0)
    at.run()
    assert_clean(at)
    covered = picture.copy()
    covered[:8, :8] = np.rint(picture.reshape(-1, 3).mean(axis=0)).astype(np.uint8)
    bars = _chart(at, "occ_bars")["data"]
    after = dict(zip(bars[1]["y"], _z(bars[1], "x"), strict=True))
    p = models.predict("shapes", covered)[0]
    for name, value in after.items():
        assert value == pytest.approx(p[datasets.SHAPE_CLASSES.index(name)], abs=1e-5)


def test_guided_backprop_view_reports_the_randomization_numbers(at):
    picture = _picture(at)
    result = cam.randomization_test("shapes", picture, method="guided_backprop")
    final = result.stages[-1].spearman
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Guided backprop: Spearman after all layers are random"] == f"{final:.2f}"
    assert "Grad-CAM: Spearman after all layers are random" in metrics
    assert any("guided backprop keeps a rank correlation" in i.value for i in at.info)


def test_adversarial_lab_flips_and_moves_with_epsilon(at):
    picture = _picture(at)
    adv = adversarial.pgd("shapes", picture, epsilon=8 / 255)
    bars = _chart(at, "adv_bars")["data"]
    after = dict(zip(bars[1]["y"], _z(bars[1], "x"), strict=True))
    p = models.predict("shapes", adv)[0]
    for name, value in after.items():
        assert value == pytest.approx(p[datasets.SHAPE_CLASSES.index(name)], abs=1e-5)
    assert any("Perturbation ×" in c for c in _captions(at))
    # ε = 0 changes nothing.
    at.slider(key=f"{P}.eps").set_value(0).run()
    assert_clean(at)
    bars = _chart(at, "adv_bars")["data"]
    np.testing.assert_allclose(_z(bars[0], "x"), _z(bars[1], "x"))
    at.slider(key=f"{P}.eps").set_value(8).run()
    # The bisection and the targeted attack, on their buttons.
    at.button(key=f"{P}.flip").click().run()
    assert_clean(at)
    assert any("turns" in s.value for s in at.success) or any("Even" in w.value for w in at.warning)
    at.button(key=f"{P}.targeted").click().run()
    assert_clean(at)
    assert _chart(at, "target_bars")


@pytest.mark.parametrize("kind", ["drawn", "generated"])
def test_two_shapes_view_explains_both_classes(at, kind):
    at.radio(key=f"{P}.scene_kind").set_value(kind).run()
    assert_clean(at)
    make = evaldata.drawn_scenes if kind == "drawn" else datasets.scenes
    _, labels, _ = make(1, seed=int(at.number_input(key=f"{P}.scene_seed").value))
    captions = " ".join(_captions(at))
    for lab in labels[0]:
        assert f"Grad-CAM for {datasets.SHAPE_CLASSES[int(lab)]} (p = " in captions
    # The first scene a class sees: each class's map peaks on (or within the pointing game's
    # 4 px of) its own shape, and the captions say so.
    notes = " ".join(c.value for c in at.caption)
    assert notes.count("Brightest point") == 2 and "looks elsewhere" not in notes


def test_own_picture_drives_the_page_and_the_two_shapes_view():
    at = _app()
    at.radio(key=f"{P}.scene_kind").set_value("yours").run()
    # Not yet switched on: the view says how, and shows the generated picture meanwhile.
    assert any("Use your own picture" in i.value for i in at.info)
    at.toggle(key=f"{P}.own").set_value(True).run()
    assert_clean(at)
    # The shared picker's sample (a photo) now drives every view; the two-shape view shows
    # the maps of its two most likely classes.
    shown, _ = images.downscale_for_display(images.sample_image("camera"), images.DISPLAY_MAX_SIDE)
    picture = model_input_image("shapes", shown)  # cropped to the content, at 64×64
    p = models.predict("shapes", picture)[0]
    first, second = np.argsort(p)[::-1][:2]
    captions = " ".join(_captions(at))
    for lab in (first, second):
        assert f"Grad-CAM for {datasets.SHAPE_CLASSES[int(lab)]} (p = " in captions
    notes = " ".join(c.value for c in at.caption)
    assert "Its first guess." in notes and "Its second guess." in notes
    top1 = int(p.argmax())
    want = cam.occlusion_map("shapes", picture, class_index=top1)
    np.testing.assert_allclose(_z(_chart(at, "occ_map")["data"][0]), want, atol=1e-6)


def test_digits_model_works_and_scenes_say_why_not():
    at = _app("digits")
    assert not at.error
    assert any("shapes" in i.value for i in at.info)
