"""Memory-bomb and slow-to-load models (issue 21): each is refused by `load_uploaded` with
ModelRejected in its own process, within generous resource bounds (10 s, 1 GB of peak memory
growth, measured in the child). These are safety bounds, not speed goals: a model that got
through to Keras would take minutes and many GB, or kill the process."""

import io
import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from cnnviz import models  # noqa: E402
from cnnviz.models import CAPS, ModelRejected, load_uploaded, upload  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# Never read: every hostile file is refused before Keras opens the weights.
_FAKE_WEIGHTS = b"\x89HDF\r\n\x1a\n" + bytes(64)


def _archive(config_json: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("config.json", config_json)
        z.writestr("metadata.json", json.dumps({"keras_version": keras.__version__}))
        z.writestr("model.weights.h5", _FAKE_WEIGHTS)
    return buf.getvalue()


def _config(model: keras.Model) -> dict:
    # Keras builds these symbolically (no tensor exists); only the config is written.
    return json.loads(json.dumps(keras.saving.serialize_keras_object(model)))


def _sequential(*layers, shape) -> dict:
    return _config(keras.Sequential([keras.Input(shape), *layers]))


def _many_dense(n: int) -> str:
    """n Dense(1) layers in a row, written as text: Keras itself needs minutes to build them."""
    base = _sequential(keras.layers.Dense(1, name="d0"), shape=(4,))
    first = base["config"]["layers"][1]
    layers = [base["config"]["layers"][0]]
    for i in range(n):
        layer = json.loads(json.dumps(first))
        layer["config"]["name"] = f"d{i}"
        layer["build_config"] = {"input_shape": [None, 4 if i == 0 else 1]}
        layers.append(layer)
    base["config"]["layers"] = layers
    return json.dumps(base)


def _rescaling(scale_text: str) -> str:
    text = json.dumps(
        _sequential(keras.layers.Rescaling(12345.5), keras.layers.Flatten(), shape=(8, 8, 3))
    )
    assert text.count("12345.5") == 1
    return text.replace("12345.5", scale_text)


def _hostile() -> dict[str, str]:
    L = keras.layers
    return {
        # Issue 21's reproductions.
        "1e6 squared input + GAP + Dense(2)": json.dumps(
            _sequential(L.GlobalAveragePooling2D(), L.Dense(2), shape=(1_000_000, 1_000_000, 3))
        ),
        "16000 squared input": json.dumps(
            _sequential(L.GlobalAveragePooling2D(), L.Dense(2), shape=(16_000, 16_000, 3))
        ),
        "UpSampling2D(1000) after 28x28": json.dumps(
            _sequential(L.UpSampling2D(1000), L.GlobalAveragePooling2D(), shape=(28, 28, 1))
        ),
        "ZeroPadding2D(10**6)": json.dumps(
            _sequential(L.ZeroPadding2D(10**6), L.GlobalAveragePooling2D(), shape=(28, 28, 1))
        ),
        "Rescaling(scale=inf)": _rescaling("Infinity"),
        "2,000 Dense(1)": _many_dense(2_000),
        "10,000 Dense(1)": _many_dense(10_000),
        "2,000 Dense(1) with the module name written in escapes": _many_dense(2_000).replace(
            '"keras.layers"', '"keras\\u002elayers"'
        ),
        # Our own.
        "Rescaling(scale=NaN)": _rescaling("NaN"),
        "Rescaling(scale=1e999)": _rescaling("1e999"),
        "Conv2D(4096) on 224x224 (one 784 MB activation)": json.dumps(
            _sequential(L.Conv2D(4096, 1), L.GlobalAveragePooling2D(), shape=(224, 224, 3))
        ),
        "many medium activations (each under the one-layer cap)": json.dumps(
            _sequential(*[L.ReLU() for _ in range(40)], shape=(1024, 1024, 3))
        ),
        "Reshape to a huge flat vector then RepeatVector": json.dumps(
            _sequential(L.Flatten(), L.RepeatVector(100_000), shape=(32, 32, 3))
        ),
        "Conv2DTranspose stride 1000": json.dumps(
            _sequential(L.Conv2DTranspose(1, 3, strides=1000), shape=(32, 32, 1))
        ),
        "a 999x999 kernel on 2048x2048 (a CPU bomb with 3 M weights)": json.dumps(
            _sequential(L.Conv2D(1, 999), shape=(2048, 2048, 3))
        ),
        "MaxPooling2D(1000, strides=1) on 2048x2048": json.dumps(
            _sequential(L.MaxPooling2D(1000, strides=1), shape=(2048, 2048, 1))
        ),
        "SeparableConv2D depth_multiplier=100000 (a huge hidden step)": json.dumps(
            _sequential(L.SeparableConv2D(1, 3, depth_multiplier=100_000), shape=(224, 224, 3))
        ),
    }


HOSTILE = _hostile()

CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    from cnnviz.models import ModelRejected, load_uploaded
    data = open(sys.argv[1], "rb").read()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    try:
        load_uploaded(data)
        outcome, message = "loaded", ""
    except ModelRejected as err:
        outcome, message = "rejected", str(err)
    except BaseException as err:  # anything else is a failure of the checks
        outcome, message = type(err).__name__, str(err)[:500]
    seconds = time.perf_counter() - start
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(json.dumps({"outcome": outcome, "message": message, "seconds": seconds,
                      "grown_mb": grown_kb / 1024}))
    """
)


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_model_is_refused_in_its_own_process(name, tmp_path):
    path = tmp_path / "hostile.keras"
    path.write_bytes(_archive(HOSTILE[name]))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,  # TensorFlow's import is outside the measured bounds
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{name}: {result}")  # the measured bounds, shown with pytest -s
    assert result["outcome"] == "rejected", result
    assert result["seconds"] <= 10, result
    assert result["grown_mb"] <= 1024, result


def test_messages_name_the_layer_and_the_size():
    with pytest.raises(ModelRejected) as err:
        load_uploaded(_archive(HOSTILE["UpSampling2D(1000) after 28x28"]))
    # 28000 × 28000 × 1 float32 = 2.92 GiB.
    assert "'up_sampling2d" in str(err.value) and "28 000×28 000×1 floats = 2.9 GB" in str(
        err.value
    )
    assert "the cap is 64 MB" in str(err.value)
    with pytest.raises(ModelRejected, match="at most 500 layers"):
        load_uploaded(_archive(HOSTILE["2,000 Dense(1)"]))
    with pytest.raises(ModelRejected, match="finite"):
        load_uploaded(_archive(HOSTILE["Rescaling(scale=inf)"]))
    with pytest.raises(ModelRejected, match="2048 pixels a side"):
        load_uploaded(_archive(HOSTILE["16000 squared input"]))


def test_the_caps_are_one_frozen_table():
    assert CAPS.activation_bytes == 64 * 2**20 and CAPS.total_activation_bytes == 256 * 2**20
    assert CAPS.layers == 500 and models.MAX_PARAMS == CAPS.params
    with pytest.raises(AttributeError):
        CAPS.layers = 10**6  # frozen: a page cannot loosen a cap by accident


def _activation_bytes_by_hand(model: keras.Model) -> int:
    """Every layer output for one image, from the built Keras model's own shapes (float32)."""
    shapes = [tuple(model.inputs[0].shape)] + [
        tuple(layer.output.shape)
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)  # a Functional lists its input
    ]
    return sum(4 * int(np.prod([d for d in s[1:]])) for s in shapes)


@pytest.mark.parametrize(
    "layers, shape",
    [
        (lambda L: [L.Conv2D(3, 5, strides=2, padding="same"), L.MaxPooling2D(3, 2)], (57, 43, 3)),
        (
            lambda L: [L.DepthwiseConv2D(3, depth_multiplier=2), L.ZeroPadding2D(((1, 2), (3, 4)))],
            (20, 20, 3),
        ),
        (lambda L: [L.SeparableConv2D(4, 3, dilation_rate=2), L.UpSampling2D((2, 3))], (30, 31, 2)),
        (
            lambda L: [L.Conv2DTranspose(5, 4, strides=3), L.Cropping2D(2), L.BatchNormalization()],
            (9, 11, 1),
        ),
        (
            lambda L: [L.AveragePooling2D(2), L.Flatten(), L.Dense(7), L.Reshape((7, 1))],
            (16, 16, 4),
        ),
    ],
)
def test_inferred_activation_memory_equals_keras(layers, shape):
    model = keras.Sequential([keras.Input(shape), *layers(keras.layers)])
    assert upload.check_activations(_config(model)) == _activation_bytes_by_hand(model)


def test_multiply_adds_equal_the_textbook_count():
    L = keras.layers
    model = keras.Sequential(
        [keras.Input((32, 30, 3)), L.Conv2D(8, 5, strides=2), L.DepthwiseConv2D(3),
         L.MaxPooling2D(2), L.Flatten(), L.Dense(10)]
    )  # fmt: skip
    budget = upload._Budget()
    upload._model_outputs(_config(model), None, budget, "")
    conv = 14 * 13 * 8 * (5 * 5 * 3)  # each output: a 5×5×3 window
    depthwise = 12 * 11 * 8 * (3 * 3)  # each output: one channel's 3×3 window
    pool = 6 * 5 * 8 * (2 * 2)
    dense = 10 * (6 * 5 * 8)
    assert budget.macs == conv + depthwise + pool + dense


def test_branching_model_memory_equals_keras():
    L = keras.layers
    inp = keras.Input((24, 24, 3), name="img")
    a = L.Conv2D(4, 3, padding="same", name="a")(inp)
    b = L.Conv2D(6, 3, padding="same", name="b")(inp)
    cat = L.Concatenate(name="cat")([a, b])
    add = L.Add(name="add")([cat, L.Conv2D(10, 1, name="c")(cat)])
    model = keras.Model(inp, L.Dense(2, name="out")(L.GlobalAveragePooling2D(name="gap")(add)))
    assert upload.check_activations(_config(model)) == _activation_bytes_by_hand(model)


# ------------------------------------------------------------------ positive controls


def _save(model: keras.Model, tmp_path) -> bytes:
    path = tmp_path / "m.keras"
    model.save(path)
    return path.read_bytes()


@pytest.mark.parametrize(
    "build",
    [
        lambda L: [keras.Input((8, 8, 3)), L.Conv2D(4, 3), L.GlobalAveragePooling2D(), L.Dense(3, activation="softmax")],
        # One filter: a legitimate model (the Activations page's slider has one channel).
        lambda L: [keras.Input((28, 28, 1)), L.Conv2D(1, 3, activation="relu"), L.Flatten(), L.Dense(2)],
        lambda L: [keras.Input((224, 224, 3)), L.Rescaling(1 / 255), L.Conv2D(16, 3, strides=2),
                   L.MaxPooling2D(), L.Conv2D(32, 3), L.GlobalAveragePooling2D(), L.Dense(5)],
    ],
    ids=["clean", "one-filter", "224x224 conv"],
)  # fmt: skip
def test_legitimate_models_load_and_predict_finite_values(build, tmp_path):
    keras.utils.set_random_seed(1)
    model = keras.Sequential(build(keras.layers))
    loaded = load_uploaded(_save(model, tmp_path))
    h, w, c = models.info(loaded).input_shape
    x = np.random.default_rng(2).uniform(0, 255, (2, h, w, c)).astype(np.float32)
    probs = models.predict(loaded, x)
    assert np.isfinite(probs).all() and probs.shape[0] == 2
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_a_model_that_overflows_is_loaded_but_its_nan_is_refused(tmp_path):
    # Finite config, NaN answer: 255 · 1e38 overflows float32 to inf, and inf − inf is NaN.
    L = keras.layers
    model = keras.Sequential(
        [keras.Input((8, 8, 3)), L.Rescaling(1e38), L.Conv2D(2, 3), L.GlobalAveragePooling2D(),
         L.Dense(2, activation="softmax")]
    )  # fmt: skip
    loaded = load_uploaded(_save(model, tmp_path))
    image = np.full((8, 8, 3), 255, np.uint8)
    with pytest.raises(models.ModelOutputNotFinite, match="produces NaN for this image"):
        models.predict(loaded, image)
    with pytest.raises(models.ModelOutputNotFinite, match="produces inf"):
        models.check_finite(np.array([[np.inf, 0.0]]))
    assert isinstance(models.ModelOutputNotFinite("x"), ValueError)
