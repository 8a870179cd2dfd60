"""Uploaded models: every check runs before Keras sees the file.

A security reviewer reads this module alone: the container checks (size, ZIP members, zip
bombs), the config walk (only allow-listed built-in keras objects, no code, no paths), the
parameter count and the memory one image needs, all from config.json, and only then Keras'
own loader in safe mode.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np

from cnnviz.models.errors import ModelError, ModelRejected
from cnnviz.models.preprocess import _model_input_shape

#: Largest upload we read at all, and the most parameters an uploaded model may have.
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
MAX_PARAMS = 30_000_000
_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_MEMBERS = {"config.json", "metadata.json", "model.weights.h5"}
_MAX_TOTAL_UNCOMPRESSED = 256 * 1024 * 1024
_MAX_RATIO = 50  # for members over 1 MB; Keras itself stores members uncompressed (ratio 1)
_MAX_JSON_BYTES = 8 * 1024 * 1024
_MAX_DEPTH = 64
_MAX_DIM = 1_000_000  # any single shape entry, unit or filter count

# Built-in keras.layers classes an uploaded model may use. Anything else (Lambda, TFSMLayer,
# TorchModuleWrapper, JaxLayer, lookup layers that read files, custom classes) is refused.
_WEIGHTLESS_LAYERS = frozenset(
    """InputLayer Flatten Reshape Permute RepeatVector Dropout SpatialDropout1D SpatialDropout2D
    SpatialDropout3D GaussianNoise GaussianDropout AlphaDropout ActivityRegularization Activation
    ReLU LeakyReLU ELU Softmax MaxPooling1D MaxPooling2D MaxPooling3D AveragePooling1D
    AveragePooling2D AveragePooling3D GlobalAveragePooling1D GlobalAveragePooling2D
    GlobalAveragePooling3D GlobalMaxPooling1D GlobalMaxPooling2D GlobalMaxPooling3D ZeroPadding1D
    ZeroPadding2D ZeroPadding3D Cropping1D Cropping2D Cropping3D UpSampling1D UpSampling2D
    UpSampling3D Add Subtract Multiply Average Maximum Minimum Concatenate Rescaling Resizing
    CenterCrop RandomFlip RandomRotation RandomZoom RandomTranslation RandomContrast
    RandomBrightness RandomCrop Identity UnitNormalization""".split()
)
_WEIGHTED_LAYERS = frozenset(
    """Dense Conv1D Conv2D Conv3D Conv1DTranspose Conv2DTranspose Conv3DTranspose SeparableConv1D
    SeparableConv2D DepthwiseConv1D DepthwiseConv2D BatchNormalization LayerNormalization
    GroupNormalization PReLU Normalization""".split()
)
_MODELS = frozenset({"Sequential", "Functional"})
_MODEL_MODULES = frozenset(
    {"keras", "keras.models", "keras.src.models.functional", "keras.src.models.sequential"}
)
# Other serialised keras objects that carry no code: (module, allowed class names).
_OBJECTS = {
    "keras.initializers": frozenset(
        """Constant GlorotNormal GlorotUniform HeNormal HeUniform Identity IdentityInitializer
        LecunNormal LecunUniform Ones Orthogonal OrthogonalInitializer RandomNormal RandomUniform
        TruncatedNormal VarianceScaling Zeros""".split()
    ),
    "keras.regularizers": frozenset({"L1", "L2", "L1L2", "OrthogonalRegularizer"}),
    "keras.constraints": frozenset({"MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm"}),
    "keras": frozenset({"DTypePolicy", "FloatDTypePolicy"}),
}
_ACTIVATIONS = frozenset(
    """celu elu exponential gelu glu hard_shrink hard_sigmoid hard_silu hard_swish hard_tanh
    leaky_relu linear log_sigmoid log_softmax mish relu relu6 selu sigmoid silu soft_shrink
    softmax softplus softsign sparse_plus sparse_sigmoid sparsemax squareplus swish tanh
    tanh_shrink threshold""".split()
)
# Data-only markers Keras writes inside configs.
_DATA_MARKERS = {"__keras_tensor__", "__numpy__", "__tensor__"}
_PATH_LIKE = re.compile(
    r"[/\\]|://|^~|^(?:file|https?|ftp|gs|s3|hdfs|data):|"
    r"\.(?:txt|csv|tsv|json|py|pyc|pkl|pickle|npy|npz|h5|hdf5|keras|pb|so|dll|dylib|sh|bin)$",
    re.IGNORECASE,
)


def load_uploaded(data: bytes, *, max_params: int = MAX_PARAMS) -> keras.Model:
    """Load an untrusted `.keras` file, after checking it can carry no code and is not too big.

    Checks, in order, before Keras reads anything: the size; the ZIP container (only
    config.json, metadata.json and model.weights.h5; a cap on members, total uncompressed size
    and compression ratio: no zip bombs); config.json parsed and walked recursively: only
    allow-listed built-in keras.layers classes, no Lambda, TFSMLayer, TorchModuleWrapper or
    custom class, no `module` or `registered_name` outside Keras, no string that looks like a
    path or URL; and the parameter count computed from the config (before any weight exists).
    Only then `keras.saving.load_model(..., safe_mode=True, compile=False)` on a temp file.

    Args:
        data: the uploaded file's bytes.
        max_params: the parameter cap.

    Returns:
        The loaded keras.Model (Sequential or Functional, image input).

    Raises:
        ModelRejected: the file failed a check; the message says which and why.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ModelRejected(f"Expected the file's bytes. Received {type(data).__name__}.")
    data = bytes(data)
    if len(data) > MAX_UPLOAD_BYTES:
        raise ModelRejected(
            f"Expected a model file of at most {MAX_UPLOAD_BYTES // 2**20} MB. "
            f"Received {len(data) / 2**20:.0f} MB."
        )
    # 1. The container: a small, honest ZIP with exactly the members of a .keras file.
    config = _check_archive(data)
    # 2. The config: only built-in, code-free keras objects; no paths or URLs anywhere.
    _check_config(config)
    # 3. The size, from the config alone (Keras would allocate every weight while loading).
    params = _count_config_params(config)
    if params > max_params:
        raise ModelRejected(
            f"Expected a model with at most {max_params:,} parameters. Received a config "
            f"declaring {params:,}."
        )
    # 4. Only now does Keras read the file, in safe mode (no lambdas, no pickled code).
    model = _keras_load(data)
    actual = int(model.count_params())
    if actual > max_params:
        raise ModelRejected(
            f"Expected a model with at most {max_params:,} parameters. Received {actual:,}."
        )
    try:
        _model_input_shape(model)
    except ModelError as err:
        raise ModelRejected(str(err)) from err
    return model


def _check_archive(data: bytes) -> Any:
    """The parsed config.json of a ZIP that passes the container checks."""
    if data.startswith(_HDF5_MAGIC):
        raise ModelRejected(
            "Expected a Keras 3 `.keras` file. Received an HDF5 (`.h5`) file: that legacy format "
            "is refused. Save the model with model.save('name.keras')."
        )
    if not data.startswith(_ZIP_MAGIC):
        raise ModelRejected(
            "Expected a Keras 3 `.keras` file (a ZIP archive). Received bytes that are not one."
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise ModelRejected(
            f"Expected a readable `.keras` ZIP archive. Received a broken one ({err})."
        ) from err
    names = [m.filename for m in members]
    if "saved_model.pb" in {n.rsplit("/", 1)[-1] for n in names}:
        raise ModelRejected(
            "Expected a Keras 3 `.keras` file. Received a TensorFlow SavedModel, which is refused."
        )
    if len(members) > len(_MEMBERS) or len(set(names)) != len(names) or not set(names) <= _MEMBERS:
        raise ModelRejected(
            f"Expected only {', '.join(sorted(_MEMBERS))} in the archive. Received "
            f"{len(members)} members: {', '.join(repr(n[:60]) for n in names[:8])}."
        )
    if "config.json" not in names or "model.weights.h5" not in names:
        raise ModelRejected(
            "Expected config.json and model.weights.h5 in the archive. Received neither or one."
        )
    total = sum(m.file_size for m in members)
    if total > _MAX_TOTAL_UNCOMPRESSED:
        raise ModelRejected(
            f"Expected at most {_MAX_TOTAL_UNCOMPRESSED // 2**20} MB once unpacked. Received an "
            f"archive that unpacks to {total / 2**20:.0f} MB."
        )
    for m in members:
        if m.flag_bits & 0x1:
            raise ModelRejected(
                f"Expected unencrypted members. Received an encrypted {m.filename!r}."
            )
        ratio = m.file_size / max(m.compress_size, 1)
        if m.file_size > 2**20 and ratio > _MAX_RATIO:
            raise ModelRejected(
                f"Expected a compression ratio of at most {_MAX_RATIO}. Received {m.filename!r} "
                f"compressed {ratio:.0f}:1 (a zip bomb?)."
            )
    if archive.getinfo("config.json").file_size > _MAX_JSON_BYTES:
        raise ModelRejected(f"Expected config.json under {_MAX_JSON_BYTES // 2**20} MB.")
    try:
        # Declared sizes are enforced by zipfile while reading, so these reads are bounded.
        with archive.open("model.weights.h5") as f:
            if f.read(len(_HDF5_MAGIC)) != _HDF5_MAGIC:
                raise ModelRejected("Expected model.weights.h5 to be an HDF5 file. It is not.")
        config = json.loads(archive.read("config.json").decode("utf-8"))
        if "metadata.json" in names:
            json.loads(archive.read("metadata.json")[:_MAX_JSON_BYTES].decode("utf-8"))
    except ModelRejected:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, RecursionError, EOFError) as err:
        raise ModelRejected(
            f"Expected valid JSON and members in the archive. Received: {err}."
        ) from err
    return config


def _reject(where: str, why: str) -> ModelRejected:
    return ModelRejected(f"Refused at {where or 'the top level'} of config.json: {why}")


def _check_config(config: Any) -> None:
    """Walk the whole config; every object must be an allow-listed, code-free keras object."""
    if not isinstance(config, dict) or config.get("class_name") not in _MODELS:
        raise ModelRejected(
            "Expected a Sequential or Functional model in config.json. Received "
            f"{config.get('class_name') if isinstance(config, dict) else type(config).__name__!r}."
        )
    _walk(config, "", 0)


def _walk(node: Any, where: str, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise _reject(where, f"nested deeper than {_MAX_DEPTH} levels.")
    if isinstance(node, list):
        for i, item in enumerate(node):
            _walk(item, f"{where}[{i}]", depth + 1)
        return
    if isinstance(node, str):
        _check_string(node, where)
        return
    if isinstance(node, bool) or node is None or isinstance(node, float):
        return
    if isinstance(node, int):
        if abs(node) > _MAX_DIM and not where.endswith(("shared_object_id", "seed")):
            raise _reject(where, f"the number {node} is larger than {_MAX_DIM:,}.")
        return
    if not isinstance(node, dict):
        raise _reject(where, f"unexpected value of type {type(node).__name__}.")
    # Keys and plain string values first, so a telling reason (a path, safe mode) wins.
    for key, value in node.items():
        _check_string(key, where)
        if isinstance(value, str):
            _check_string(value, f"{where}.{key}" if where else key)
    if "class_name" in node:
        _check_object(node, where)
    for key, value in node.items():
        path = f"{where}.{key}" if where else key
        if key == "activation" and isinstance(value, str) and value not in _ACTIVATIONS:
            raise _reject(path, f"{value!r} is not a built-in Keras activation.")
        _walk(value, path, depth + 1)


def _check_string(s: str, where: str) -> None:
    if "enable_unsafe_deserialization" in s or "safe_mode" in s:
        raise _reject(where, "it tries to switch off Keras' safe mode.")
    if _PATH_LIKE.search(s):
        raise _reject(where, f"the string {s[:80]!r} looks like a file path or URL.")


def _check_object(node: dict, where: str) -> None:
    """One serialised object: {"module", "class_name", "config", "registered_name"}."""
    cls = node.get("class_name")
    module = node.get("module")
    registered = node.get("registered_name")
    name = f"{cls!r}" + (f" from module {module!r}" if module else "")
    if not isinstance(cls, str):
        raise _reject(where, "class_name is not a string.")
    if cls in ("Lambda", "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer"):
        raise _reject(where, f"a {cls} layer can run arbitrary code, so it is refused.")
    if module is not None and not (
        isinstance(module, str) and (module == "keras" or module.startswith("keras."))
    ):
        raise _reject(where, f"{name}: the module is outside keras.")
    if registered is not None and registered != cls:
        raise _reject(
            where, f"{name} is registered as {registered!r}: a custom object, not built into keras."
        )
    if cls in _DATA_MARKERS:
        if module is not None:
            raise _reject(where, f"{name}: a data marker with a module.")
        return
    if module == "keras.layers":
        if cls not in _WEIGHTLESS_LAYERS | _WEIGHTED_LAYERS:
            raise _reject(
                where, f"the layer {cls!r} is not on the list of allowed built-in layers."
            )
        return
    if cls in _MODELS and module in _MODEL_MODULES:
        return
    if module in _OBJECTS and cls in _OBJECTS[module]:
        return
    raise _reject(where, f"{name} is not an allowed built-in keras object.")


def _layer_dicts(node: Any) -> Iterator[dict]:
    """Every serialised keras.layers object in a config, nested models included."""
    if isinstance(node, dict):
        if node.get("module") == "keras.layers" and "class_name" in node:
            yield node
        for value in node.values():
            yield from _layer_dicts(value)
    elif isinstance(node, list):
        for value in node:
            yield from _layer_dicts(value)


def _count_config_params(config: dict) -> int:
    """Parameters of every layer in a config, from its hyperparameters and recorded input shape.

    Keras builds each layer from its `build_config` while loading, so these shapes are exactly
    what it would allocate; a weighted layer without one is refused.
    """
    return sum(_layer_params(layer) for layer in _layer_dicts(config))


def _layer_params(layer: dict) -> int:
    cls, cfg = layer["class_name"], layer.get("config") or {}
    if cls not in _WEIGHTED_LAYERS:
        return 0
    shape = ((layer.get("build_config") or {}).get("input_shape")) or None
    name = cfg.get("name", cls)
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(d, int | type(None)) for d in shape)
    ):
        raise ModelRejected(
            f"Expected the layer {name!r} to record its input shape (build_config). Received "
            f"{shape!r}; its size cannot be checked."
        )
    channels_first = cfg.get("data_format") == "channels_first"
    chan = shape[1] if channels_first else shape[-1]

    def known(*dims: Any) -> list[int]:
        if any(not isinstance(d, int) or d < 1 for d in dims):
            raise ModelRejected(
                f"Expected known sizes for layer {name!r}. Received input shape {shape}."
            )
        return [int(d) for d in dims]

    def axes(axis: Any) -> int:
        picked = [shape[a] for a in (axis if isinstance(axis, list) else [axis])]
        return int(np.prod(known(*picked)))

    bias = 1 if cfg.get("use_bias", True) else 0
    if cls == "Dense":
        (c,) = known(chan)
        units = known(cfg.get("units"))[0]
        return units * c + units * bias
    if cls in ("Conv1D", "Conv2D", "Conv3D"):
        (c,) = known(chan)
        k = int(np.prod(known(*cfg["kernel_size"])))
        f, groups = known(cfg["filters"], cfg.get("groups", 1))
        return k * (c // groups) * f + f * bias
    if cls.endswith("Transpose"):
        (c,) = known(chan)
        k = int(np.prod(known(*cfg["kernel_size"])))
        (f,) = known(cfg["filters"])
        return k * f * c + f * bias
    if cls.startswith("SeparableConv"):
        (c,) = known(chan)
        k = int(np.prod(known(*cfg["kernel_size"])))
        f, dm = known(cfg["filters"], cfg.get("depth_multiplier", 1))
        return k * c * dm + c * dm * f + f * bias
    if cls.startswith("DepthwiseConv"):
        (c,) = known(chan)
        k = int(np.prod(known(*cfg["kernel_size"])))
        (dm,) = known(cfg.get("depth_multiplier", 1))
        return k * c * dm + c * dm * bias
    if cls == "BatchNormalization":
        # gamma, beta (if used) + the moving mean and variance.
        c = axes(cfg.get("axis", -1))
        return c * (2 + bool(cfg.get("scale", True)) + bool(cfg.get("center", True)))
    if cls == "LayerNormalization":
        c = axes(cfg.get("axis", -1))
        return c * (bool(cfg.get("scale", True)) + bool(cfg.get("center", True)))
    if cls == "GroupNormalization":
        c = axes(cfg.get("axis", -1))
        return c * (bool(cfg.get("scale", True)) + bool(cfg.get("center", True)))
    if cls == "PReLU":
        dims = known(*shape[1:])
        for a in cfg.get("shared_axes") or []:
            dims[int(a) - 1] = 1
        return int(np.prod(dims))
    # Normalization: mean and variance over the kept axis and a sample count, learned by
    # adapt(); given as constants in the config instead, there are no weights.
    if cfg.get("mean") is not None:
        return 0
    return 2 * axes(cfg.get("axis", -1)) + 1


def _keras_load(data: bytes) -> keras.Model:
    """keras.saving.load_model on a private temp copy, in safe mode, without optimizer state."""
    fd, path = tempfile.mkstemp(suffix=".keras")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as err:  # noqa: BLE001 - any failure inside Keras is a rejected file
        raise ModelRejected(f"Keras could not load the file: {str(err)[:300]}") from err
    finally:
        os.unlink(path)
    if not isinstance(model, keras.Model):
        raise ModelRejected(f"Expected a keras Model. Received {type(model).__name__}.")
    return model
