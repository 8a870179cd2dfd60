"""AppTest for the Neurons page with both built-ins: neuron, layer, map, links, zip, the disk cache."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from cnnviz import activations, datasets, neurons
from cnnviz.ui import mapview, neurons_cache

PAGE = Path(__file__).resolve().parents[1] / "pages" / "neurons.py"
P = "neurons"
N = 120  # images per generated set in these tests


@pytest.fixture(autouse=True)
def small_sets(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNVIZ_NEURONS_IMAGES", str(N))
    monkeypatch.setenv("CNNVIZ_CACHE_DIR", str(tmp_path / "cache"))
    neurons_cache._RECENT.clear()


def _app(model: str, **state) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=300)
    at.session_state["model.name"] = model
    for key, value in state.items():
        at.session_state[key] = value
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, at.exception[0].message if at.exception else ""
    assert not at.error, [e.value for e in at.error]


def _map_args(at: AppTest) -> dict:
    """The arguments the page gave the feature map component (`cnnviz.ui.mapview`)."""
    (view,) = [
        c for c in at.get("component_instance") if c.proto.component_name.endswith("mapview")
    ]
    return json.loads(view.proto.json_args)


def _captions(at: AppTest, index: int) -> list[str]:
    return [img.caption for img in at.get("image")[index].proto.imgs]


@pytest.mark.parametrize("model, kind", [("shapes", "shapes"), ("digits", "digits")])
def test_page_with_each_builtin(model, kind):
    at = _app(model, **{f"{P}.show_map": True})
    at.run()
    _ok(at)
    assert at.session_state[f"{P}.data"] == kind
    layer = at.session_state[f"{P}.layer"]
    channel = at.session_state[f"{P}.channel"]
    # The top 9 captions are the true maxima of that channel over the same generated set.
    data = neurons_cache.builtin_dataset(kind, N)
    maps = activations.activations(model, data.images, [layer])[layer]
    ref = np.sort(maps.max(axis=(1, 2))[:, channel])[::-1][:9]
    assert len(at.get("image")) >= 4
    # The examples grid is the first 9-picture image list with captions.
    grids_9 = [
        _captions(at, i)
        for i in range(len(at.get("image")))
        if len(at.get("image")[i].proto.imgs) == 9 and _captions(at, i)[0]
    ]
    shown = [float(c.split(" ")[0]) for c in grids_9[0]]
    np.testing.assert_allclose(shown, ref, rtol=1e-2, atol=1e-3)
    # The firing-rate metric matches the share of images with max > 0.
    rate = (maps.max(axis=(1, 2))[:, channel] > 0).mean()
    assert at.metric[0].value == f"{rate:.0%}"
    # The layer view shows every channel; the map has a point per image and a star.
    assert any(len(img.proto.imgs) == maps.shape[-1] for img in at.get("image"))
    args = _map_args(at)
    fig = json.loads(args["figure"])
    names = [t.get("name", "") for t in fig["data"]]
    assert any(n.startswith("your image") for n in names)
    # Every picture is a point exactly once among the class traces, with its index as customdata.
    shown = sorted(
        int(c[0]) for t in fig["data"] if t.get("name") in data.class_names for c in t["customdata"]
    )
    assert shown == list(range(N))
    assert args["count"] == N and len(args["captions"]) == N
    assert args["link"] == f"gradcam?model={model}&sample=dataset:{kind}:{{index}}"
    # The URL carries the neuron.
    assert at.query_params["layer"] == [layer] or at.query_params["layer"] == layer
    assert str(at.query_params["channel"]).strip("[]'") == str(channel)


def test_default_neuron_is_class_pure_on_shapes():
    at = _app("shapes")
    at.run()
    _ok(at)
    data = neurons_cache.builtin_dataset("shapes", N)
    layer, channel = at.session_state[f"{P}.layer"], at.session_state[f"{P}.channel"]
    m = neurons.layer_maxima("shapes", layer, data.images)
    top = np.argsort(-m.values[:, channel], kind="stable")[:9]
    purity = np.bincount(data.labels[top]).max() / 9
    assert purity >= 7 / 9, purity


def test_link_opens_a_neuron_and_clamps():
    at = _app("shapes")
    at.query_params["layer"] = "conv2"
    at.query_params["channel"] = "7"
    at.run()
    _ok(at)
    assert at.session_state[f"{P}.layer"] == "conv2"
    assert at.session_state[f"{P}.channel"] == 7
    at2 = _app("shapes")
    at2.query_params["layer"] = "conv1"
    at2.query_params["channel"] = "900"  # conv1 has 16 channels
    at2.run()
    assert not at2.exception
    assert at2.session_state[f"{P}.channel"] <= 15


def test_results_come_from_the_disk_cache_on_a_second_server(monkeypatch):
    runs = []
    real = neurons.layer_maxima

    def counting(*args, **kwargs):
        runs.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(neurons, "layer_maxima", counting)
    at = _app("shapes", **{f"{P}.layer": "conv1"})
    at.run()
    _ok(at)
    assert runs == ["conv1"]
    # A "second replica": the in-process table is gone, the disk cache is not.
    neurons_cache._RECENT.clear()
    at2 = _app("shapes", **{f"{P}.layer": "conv1"})
    at2.run()
    _ok(at2)
    assert runs == ["conv1"]


def _zip_of(images: np.ndarray, labels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i, (im, lab) in enumerate(zip(images, labels, strict=True)):
            png = io.BytesIO()
            Image.fromarray(im).save(png, format="PNG")
            z.writestr(f"{datasets.SHAPE_CLASSES[lab]}/{i}.png", png.getvalue())
    return buf.getvalue()


def test_uploaded_zip_and_a_hostile_one():
    imgs, labels, _ = datasets.shapes(24, seed=55)
    at = _app("shapes", **{f"{P}.data": "zip"})
    at.run()
    _ok(at)
    assert any("Upload a zip" in i.value for i in at.info)
    # AppTest has no file-upload driver: the page's library call is checked directly instead.
    data, skipped = neurons_cache.uploaded_dataset(_zip_of(imgs, labels), (64, 64))
    assert len(data.images) == 24 and not skipped
    assert set(data.class_names) <= set(datasets.SHAPE_CLASSES)
    maxima = neurons_cache.layer_maxima("shapes", "conv4", data)
    assert maxima.values.shape == (24, 64)


def test_dataset_sample_links_are_checked():
    data = neurons_cache.builtin_dataset("shapes")
    link = neurons_cache.sample_link("shapes", 5)
    np.testing.assert_array_equal(neurons_cache.dataset_sample(link), data.images[5])
    for bad in ("dataset:shapes:99999", "dataset:cifar:1", "dataset:shapes:x", "chelsea", "a:b"):
        assert neurons_cache.dataset_sample(bad) is None


def test_map_hover_pictures_and_a_clicked_point():
    # A click in the browser sets the component's value; here it is set as the browser would.
    at = _app("shapes", **{f"{P}.show_map": True, f"{P}.map": {"index": 7, "click": 1}})
    at.run()
    _ok(at)
    data = neurons_cache.builtin_dataset("shapes", N)
    args = _map_args(at)
    # The hover pictures: tile i of the sheet file beside the component's page is picture i.
    sheet = Image.open(mapview._DIR / args["sheet"])
    side, cols = args["thumb"], args["cols"]
    row, col = divmod(7, cols)
    tile = np.asarray(sheet.convert("RGB"))[
        row * side : (row + 1) * side, col * side : (col + 1) * side
    ]
    want = np.asarray(Image.fromarray(data.images[7]).resize((side, side), Image.BOX))
    assert np.abs(tile.astype(int) - want).mean() < 6  # JPEG, quality 85
    name = data.class_names[data.labels[7]]
    assert args["captions"][7].startswith(f"#7 · a {name}")
    # The clicked picture is shown beside the map, with its Grad-CAM link.
    links = [m.value for m in at.markdown if "Grad-CAM page" in m.value]
    assert links == ["[Open it on the Grad-CAM page](gradcam?model=shapes&sample=dataset:shapes:7)"]
    np.testing.assert_array_equal(neurons_cache.dataset_sample("dataset:shapes:7"), data.images[7])
