"""cnnviz.prefetch with the network cut off at the socket (as the ImageNet loader's tests do):
it lists what is missing, reports failed downloads clearly, checks hashes, and never hangs."""

from __future__ import annotations

import hashlib
import socket

import pytest

from cnnviz import prefetch
from cnnviz.models import applications, registry

MOBILENET = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"


@pytest.fixture
def offline(no_network, monkeypatch, tmp_path):
    """No network (see conftest's no_network) and an empty weights folder."""
    monkeypatch.setenv("CNNVIZ_WEIGHTS_DIR", str(tmp_path))
    return no_network, tmp_path


def test_lists_every_imagenet_model_and_the_class_index_as_missing(offline, capsys):
    _, folder = offline
    assert prefetch.main([]) == 0
    out = capsys.readouterr().out
    assert f"Weights folder: {folder}" in out
    for name in registry.imagenet_names():
        assert any(line.split()[:2] == [name, "missing"] for line in out.splitlines()), name
    assert "class index" in out and "python -m cnnviz.prefetch vgg16" in out
    assert not any(r.ready for r in prefetch.status())


def test_a_failed_download_says_which_file_from_where_and_what_to_do(offline, capsys):
    seen, folder = offline
    assert prefetch.main(["mobilenet_v2"]) == 1
    err = capsys.readouterr().err
    assert f"Could not download {MOBILENET}" in err
    assert f"storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/{MOBILENET}" in err
    assert str(folder / MOBILENET) in err and "Are you online?" in err
    # Every attempt went through the (mocked) network under a finite timeout: it cannot hang.
    assert seen and all(t == applications._NET_TIMEOUT_S for t in seen)
    assert socket.getdefaulttimeout() is None
    assert not (folder / MOBILENET).exists()  # no half file left behind


def test_unknown_names_are_refused_with_the_known_ones(offline, capsys):
    assert prefetch.main(["vgg17"]) == 2
    err = capsys.readouterr().err
    assert "Received vgg17" in err and "vgg16" in err


def test_hashes_are_checked(offline, monkeypatch, capsys):
    _, folder = offline
    good, bad = b"pretend weights", b"a truncated download"
    (folder / "vgg16_weights_tf_dim_ordering_tf_kernels.h5").write_bytes(good)
    (folder / "resnet50_weights_tf_dim_ordering_tf_kernels.h5").write_bytes(bad)
    monkeypatch.setitem(prefetch.WEIGHTS_MD5, "vgg16", hashlib.md5(good).hexdigest())
    rows = {r.name: r for r in prefetch.status(["vgg16", "resnet50"])}
    assert rows["vgg16"].verified is True and rows["vgg16"].ready
    assert rows["resnet50"].present and rows["resnet50"].verified is False
    assert not rows["resnet50"].ready
    assert prefetch.main([]) == 0
    out = capsys.readouterr().out
    assert "DAMAGED (hash mismatch)" in out and "hash ok" in out
    # The picker's cheap check only looks for the file.
    assert prefetch.ready_offline("vgg16") and not prefetch.ready_offline("xception")
    assert not prefetch.ready_offline("shapes")


def test_pinned_hashes_are_keras_own(offline):
    # The table is copied from Keras' application modules; check it against the source.
    import inspect

    from keras.src.applications import densenet, efficientnet, resnet, vgg16, xception

    assert prefetch.WEIGHTS_MD5["resnet50"] == resnet.WEIGHTS_HASHES["resnet50"][0]
    assert prefetch.WEIGHTS_MD5["efficientnet_b0"] == efficientnet.WEIGHTS_HASHES["b0"][0]
    for module, name in ((vgg16, "vgg16"), (xception, "xception"), (densenet, "densenet121")):
        assert prefetch.WEIGHTS_MD5[name] in inspect.getsource(module)
    assert set(prefetch.WEIGHTS_MD5) == set(registry.imagenet_names())


def test_a_prefetched_class_index_is_read_without_the_network(offline, monkeypatch):
    _, folder = offline
    import json

    (folder / "imagenet_class_index.json").write_text(
        json.dumps({str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)})
    )
    monkeypatch.setattr(applications, "_class_index", None)
    monkeypatch.setattr(applications, "_class_index_failed_at", None)
    names = applications._imagenet_class_names()
    assert names[:2] == ["class 0", "class 1"] and len(names) == 1000


def test_the_loader_uses_a_prefetched_file_without_the_network(offline, monkeypatch):
    seen, folder = offline
    import h5py
    import keras
    import numpy as np
    from keras.src.legacy.saving import legacy_h5_format

    # A weights file in Keras' own legacy .h5 layout, as the download would be (random values).
    keras.utils.set_random_seed(0)
    made = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
    with h5py.File(folder / MOBILENET, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, made)
    monkeypatch.setattr(applications, "_failed", {})
    net = applications.load_imagenet("mobilenet_v2")
    assert not seen  # no socket was opened
    for a, b in zip(net.get_weights(), made.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_model_picker_marks_which_imagenet_models_are_ready_offline(offline):
    _, folder = offline
    from cnnviz.ui import models as ui_models

    assert ui_models._label("vgg16").endswith("(downloads when online)")
    (folder / "vgg16_weights_tf_dim_ordering_tf_kernels.h5").write_bytes(b"x")
    assert ui_models._label("vgg16").endswith("(ready offline)")
    assert "offline" not in ui_models._label("shapes")
