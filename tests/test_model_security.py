"""The malicious-model suite: every hostile file is built here, and a canary file proves that
none of its code ran. Each one must be refused with ModelRejected before Keras loads it."""

import io
import json
import zipfile

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras.src.backend.common import global_state  # noqa: E402

from cnnviz import models  # noqa: E402
from cnnviz.models import ModelRejected, load_uploaded, upload  # noqa: E402


@pytest.fixture
def canary(tmp_path):
    """A path hostile code would create; the test fails if it exists afterwards."""
    path = tmp_path / "canary.txt"
    yield path
    assert not path.exists(), "code from the model file ran"
    assert global_state.get_global_attribute("safe_mode_saving") is not False


def _tiny(name: str = "clean") -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Rescaling(1 / 255.0, name="rescale"),
            keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(3, activation="softmax", name="out"),
        ],
        name=name,
    )


def _save(model: keras.Model, tmp_path, name: str = "m.keras") -> bytes:
    path = tmp_path / name
    model.save(path)
    return path.read_bytes()


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {n: z.read(n) for n in z.namelist()}


def _zip(members: dict[str, bytes], *, deflate: bool = False) -> bytes:
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, content in members.items():
            z.writestr(name, content)
    return buf.getvalue()


def _edit_config(data: bytes, edit) -> bytes:
    """The same archive with config.json changed by `edit(config)`."""
    members = _members(data)
    config = json.loads(members["config.json"])
    edit(config)
    members["config.json"] = json.dumps(config).encode()
    return _zip(members)


def _layer(config: dict, name: str) -> dict:
    return next(layer for layer in config["config"]["layers"] if layer["config"]["name"] == name)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    model = _tiny()
    return model, _save(model, tmp_path_factory.mktemp("clean"))


# ------------------------------------------------------------------------- code in the config


def _writer(canary):
    path = str(canary)
    return lambda x: (open(path, "w").write("ran"), x)[1]  # noqa: SIM115 - hostile on purpose


def test_lambda_is_refused(tmp_path, canary):
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Lambda(_writer(canary))])
    canary.unlink()  # building the model ran the lambda once; start clean
    data = _save(model, tmp_path)
    with pytest.raises(ModelRejected, match="Lambda layer can run arbitrary code"):
        load_uploaded(data)
    # Positive control: Keras without safe mode would run it.
    keras.saving.load_model(tmp_path / "m.keras", safe_mode=False)
    assert canary.exists()
    canary.unlink()


def test_nested_lambda_is_refused(tmp_path, canary):
    inner = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Lambda(_writer(canary), name="hidden")], name="inner"
    )
    i = keras.Input((8, 8, 3))
    outer = keras.Model(i, keras.layers.GlobalAveragePooling2D()(inner(i)), name="outer")
    canary.unlink()
    with pytest.raises(ModelRejected, match=r"layers\[\d\]\.config\.layers\[\d\].*Lambda"):
        load_uploaded(_save(outer, tmp_path))


@keras.saving.register_keras_serializable(package="cnnviz_test")
class Canary(keras.layers.Layer):
    """A custom layer that writes the canary when it is created."""

    def __init__(self, target: str = "", **kwargs):
        super().__init__(**kwargs)
        self.target = target
        if target:
            with open(target.replace("|", "/"), "w") as f:
                f.write("ran")

    def call(self, x):
        return x

    def get_config(self):
        return {**super().get_config(), "target": self.target}


def test_custom_registered_class_is_refused(tmp_path, canary):
    # The path is stored with "|" for "/", so only the foreign class can be blamed.
    layer = Canary(target=str(canary).replace("/", "|"))
    canary.unlink()
    model = keras.Sequential([keras.Input((8, 8, 3)), layer])
    data = _save(model, tmp_path)
    canary.unlink(missing_ok=True)
    with pytest.raises(ModelRejected, match="outside keras|custom object"):
        load_uploaded(data)
    # Positive control: safe mode alone does not stop a registered class from running.
    keras.saving.load_model(tmp_path / "m.keras")
    assert canary.exists()
    canary.unlink()


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda c: _layer(c, "conv").update(module="os"), "module is outside keras"),
        (
            lambda c: _layer(c, "out")["config"].update(
                activation={
                    "module": "builtins",
                    "class_name": "function",
                    "config": "exec",
                    "registered_name": "function",
                }
            ),
            "outside keras",
        ),
        (lambda c: _layer(c, "gap").update(registered_name="evil>Gap"), "custom object"),
        (
            lambda c: _layer(c, "out")["config"].update(activation="exec"),
            "not a built-in Keras activation",
        ),
        (
            lambda c: _layer(c, "conv").update(class_name="TFSMLayer"),
            "TFSMLayer layer can run arbitrary code",
        ),
        (
            lambda c: _layer(c, "conv").update(class_name="TorchModuleWrapper"),
            "TorchModuleWrapper layer can run",
        ),
        (lambda c: _layer(c, "conv").update(class_name="EinsumDense"), "not on the list"),
        (lambda c: c.update(module="evil.models"), "outside keras"),
    ],
    ids=[
        "foreign-module",
        "builtins-function",
        "registered-name",
        "activation-name",
        "tfsm",
        "torch",
        "unlisted-layer",
        "top-module",
    ],
)
def test_foreign_objects_are_refused(clean, canary, edit, reason):
    with pytest.raises(ModelRejected, match=reason):
        load_uploaded(_edit_config(clean[1], edit))


def test_config_calling_enable_unsafe_deserialization_is_refused(clean, canary):
    def edit(config):
        # As an activation, Keras would import keras.config and call the function.
        _layer(config, "out")["config"]["activation"] = {
            "module": "keras.config",
            "class_name": "function",
            "config": "enable_unsafe_deserialization",
            "registered_name": "function",
        }

    with pytest.raises(ModelRejected, match="safe mode"):
        load_uploaded(_edit_config(clean[1], edit))


def test_stringlookup_vocabulary_path_is_refused(tmp_path, canary):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("a\nb\n")
    model = keras.Sequential(
        [keras.Input((1,), dtype="string"), keras.layers.StringLookup(vocabulary=str(vocab))]
    )
    data = _save(model, tmp_path)
    # The Keras file carries the vocabulary as an asset member: refused at the archive.
    with pytest.raises(ModelRejected, match="Expected only config.json"):
        load_uploaded(data)
    # Without the asset, the config points Keras at a file on the server: refused too.
    members = _members(data)
    members = {k: v for k, v in members.items() if not k.startswith("assets/")}
    config = json.loads(members["config.json"])
    config["config"]["layers"][-1]["config"]["vocabulary"] = "/etc/passwd"
    members["config.json"] = json.dumps(config).encode()
    with pytest.raises(ModelRejected, match="StringLookup"):
        load_uploaded(_zip(members))


@pytest.mark.parametrize(
    "value",
    ["/etc/passwd", "../../secret", "https://example.com/w.h5", "C:\\x", "vocab.txt", "~root"],
)
def test_paths_and_urls_in_allowed_layers_are_refused(clean, canary, value):
    def edit(config):
        _layer(config, "conv")["config"]["kernel_initializer"] = {
            "module": "keras.initializers",
            "class_name": "Constant",
            "config": {"value": value},
            "registered_name": None,
        }

    with pytest.raises(ModelRejected, match="looks like a file path or URL"):
        load_uploaded(_edit_config(clean[1], edit))


# ------------------------------------------------------------------------- the container


def test_zip_bomb_is_refused(clean, canary):
    members = _members(clean[1])
    # 300 MB of zeros behind an HDF5 signature, deflated to ~300 kB.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", members["config.json"])
        z.writestr("metadata.json", members["metadata.json"])
        with z.open("model.weights.h5", "w", force_zip64=True) as f:
            f.write(b"\x89HDF\r\n\x1a\n")
            chunk = bytes(2**20)
            for _ in range(300):
                f.write(chunk)
    data = buf.getvalue()
    assert len(data) < 2_000_000
    with pytest.raises(ModelRejected, match="unpacks to 300 MB"):
        load_uploaded(data)


def test_high_compression_ratio_is_refused(clean, canary):
    members = _members(clean[1])
    members["model.weights.h5"] = b"\x89HDF\r\n\x1a\n" + bytes(20 * 2**20)
    data = _zip(members, deflate=True)
    with pytest.raises(ModelRejected, match="compression ratio"):
        load_uploaded(data)


def test_h5_file_is_refused(tmp_path, canary):
    model = _tiny()
    model.save(tmp_path / "m.h5")
    with pytest.raises(ModelRejected, match=r"HDF5 \(`.h5`\) file"):
        load_uploaded((tmp_path / "m.h5").read_bytes())


@pytest.mark.parametrize(
    "data",
    [
        b"",
        np.random.default_rng(0).bytes(4096),
        b"PK\x03\x04" + np.random.default_rng(1).bytes(4096),
    ],
    ids=["empty", "random-bytes", "broken-zip"],
)
def test_garbage_is_refused(canary, data):
    with pytest.raises(ModelRejected, match="Expected"):
        load_uploaded(data)


def test_savedmodel_and_extra_members_are_refused(clean, canary):
    with pytest.raises(ModelRejected, match="SavedModel"):
        load_uploaded(_zip({"saved_model.pb": b"x", "variables/variables.index": b"y"}))
    members = _members(clean[1])
    with pytest.raises(ModelRejected, match="Expected only"):
        load_uploaded(_zip({**members, "evil.py": b"import os"}))
    members["model.weights.h5"] = b"not hdf5 at all"
    with pytest.raises(ModelRejected, match="HDF5"):
        load_uploaded(_zip(members))


# ------------------------------------------------------------------------------ size caps


def test_oversize_parameter_count_is_refused_before_allocation(clean, canary):
    def edit(config):
        # A Dense layer claiming 60,000 × 60,000 weights (14 GB) next to the conv's 112: refused
        # from the config alone.
        out = _layer(config, "out")
        out["config"]["units"] = 60_000
        out["build_config"]["input_shape"] = [None, 60_000]

    with pytest.raises(ModelRejected, match="declaring 3,600,060,112"):
        load_uploaded(_edit_config(clean[1], edit))
    with pytest.raises(ModelRejected, match="at most 100 parameters"):
        load_uploaded(clean[1], max_params=100)


def test_weighted_layer_without_recorded_shape_is_refused(clean, canary):
    with pytest.raises(ModelRejected, match="record its input shape"):
        load_uploaded(_edit_config(clean[1], lambda c: _layer(c, "out").pop("build_config")))


def _zoo() -> list[keras.Model]:
    """Models covering every weighted layer on the allow-list, Functional and nested."""
    keras.utils.set_random_seed(0)
    i = keras.Input((16, 16, 3))
    x = keras.layers.Normalization(mean=[1.0, 2.0, 3.0], variance=[1.0, 1.0, 1.0])(i)
    x = keras.layers.SeparableConv2D(8, 3, depth_multiplier=2, padding="same")(x)
    x = keras.layers.BatchNormalization(scale=False)(x)
    y = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=1)(x)
    y = keras.layers.Conv2D(8, 1, groups=2, use_bias=False)(y)
    x = keras.layers.Add()([x, y])
    x = keras.layers.Conv2DTranspose(4, 3, strides=2)(x)
    x = keras.layers.LayerNormalization()(x)
    x = keras.layers.GroupNormalization(groups=2)(x)
    x = keras.layers.PReLU(shared_axes=[1, 2])(x)
    x = keras.layers.Reshape((-1, 4))(x)
    x = keras.layers.Conv1D(3, 5)(x)
    x = keras.layers.GlobalMaxPooling1D()(x)
    functional = keras.Model(i, keras.layers.Dense(5)(x), name="zoo")
    base = keras.applications.MobileNetV2(
        weights=None, include_top=False, alpha=0.35, input_shape=(32, 32, 3)
    )
    nested = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            base,
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2),
        ],
        name="transfer",
    )
    return [functional, nested]


def test_config_parameter_count_equals_keras(tmp_path, canary):
    # The pre-load count (from the config only) against Keras' own count of the built model.
    for model in _zoo():
        config = json.loads(_members(_save(model, tmp_path, f"{model.name}.keras"))["config.json"])
        upload._check_config(config)
        assert upload._count_config_params(config) == model.count_params(), model.name


# -------------------------------------------------------------------------- clean uploads


def test_clean_upload_loads_and_predicts(clean, canary):
    model, data = clean
    loaded = load_uploaded(data)
    x = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(models.predict(loaded, x), models.predict(model, x), atol=1e-6)
    assert models.info(loaded).input_shape == (8, 8, 3)


def test_clean_nested_upload_loads(tmp_path, canary):
    model = _zoo()[1]
    loaded = load_uploaded(_save(model, tmp_path))
    assert loaded.count_params() == model.count_params()
    x = np.random.default_rng(1).random((1, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-5)


def test_deflated_clean_upload_is_accepted(clean, canary):
    # Re-zipped by a user's archiver with compression: still fine (ratio well under the cap).
    assert (
        load_uploaded(_zip(_members(clean[1]), deflate=True)).count_params()
        == clean[0].count_params()
    )
