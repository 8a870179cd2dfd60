"""Uploaded models: every check runs before Keras sees the file.

A security reviewer reads this module alone: the container checks (size, ZIP members, zip
bombs), the config walk (only allow-listed built-in keras objects, no code, no paths), the
parameter count and the memory one image needs, all from config.json, and only then Keras'
own loader in safe mode.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from cnnviz.models.errors import ModelError, ModelRejected
from cnnviz.models.preprocess import _model_input_shape


@dataclass(frozen=True)
class UploadCaps:
    """Every limit an uploaded model must keep, in one place (README, Security, gives reasons).

    Sizes of activations are for ONE image, in bytes of the layer's compute dtype (float32: 4).
    """

    #: The file itself (Streamlit's own upload cap is lower; this guards direct library use).
    upload_bytes: int = 200 * 2**20
    #: Parameters: Keras allocates every weight while loading (30 M float32 = 120 MB).
    params: int = 30_000_000
    #: Layers, counted before anything else walks the config: Keras' loader recurses per layer
    #: (10,000 Dense(1) layers cost it 130 s and 1.6 GB before a RecursionError).
    layers: int = 500
    #: Height or width of the input: every picture is resized to it before the forward pass.
    input_side: int = 2048
    #: The largest single layer output, and all outputs together, for one image.
    activation_bytes: int = 64 * 2**20
    total_activation_bytes: int = 256 * 2**20
    #: Multiply-adds of the convolution, dense and pooling layers for one image: a huge kernel
    #: or pooling window on a big input is a CPU bomb with few weights. ResNet50 needs 4 G,
    #: VGG16 15.5 G.
    multiply_adds: int = 20 * 10**9
    #: The archive: bytes once unpacked, compression ratio of members over 1 MB (Keras stores
    #: them uncompressed, ratio 1), size of config.json, nesting depth, any one number in it.
    unpacked_bytes: int = 256 * 2**20
    compression_ratio: int = 50
    json_bytes: int = 8 * 2**20
    json_depth: int = 64
    dim: int = 1_000_000


#: The caps `load_uploaded` applies.
CAPS = UploadCaps()
#: Largest upload we read at all, and the most parameters an uploaded model may have.
MAX_UPLOAD_BYTES = CAPS.upload_bytes
MAX_PARAMS = CAPS.params
_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_MEMBERS = {"config.json", "metadata.json", "model.weights.h5"}
_MAX_TOTAL_UNCOMPRESSED = CAPS.unpacked_bytes
_MAX_RATIO = CAPS.compression_ratio
_MAX_JSON_BYTES = CAPS.json_bytes
_MAX_DEPTH = CAPS.json_depth
_MAX_DIM = CAPS.dim  # any single shape entry, unit or filter count
_LAYER_MODULE = re.compile(rb'"module"\s*:\s*"keras\.layers"')
# A free (None) height or width is fed at this size (`info` reports it; fit_image resizes to it).
_FREE_SIDE = 224

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
    path or URL, no NaN or infinite number; at most `CAPS.layers` layers (counted first); the
    parameter count computed from the config (before any weight exists); and every layer's
    output shape inferred from the config, so that the input side, the largest activation, all
    activations together and the multiply-adds for one image stay under `CAPS`. Only then `keras.saving.load_model(..., safe_mode=True, compile=False)` on a temp file.

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
    # 2. A cheap count first: Keras' loader spends minutes on thousands of layers.
    _check_layer_count(config)
    # 3. The config: only built-in, code-free keras objects; no paths or URLs anywhere.
    _check_config(config)
    # 4. The size, from the config alone (Keras would allocate every weight while loading).
    params = _count_config_params(config)
    if params > max_params:
        raise ModelRejected(
            f"Expected a model with at most {max_params:,} parameters. Received a config "
            f"declaring {params:,}."
        )
    # 5. The memory one image needs, from every layer's output shape (no weights, no tensors).
    check_activations(config)
    # 6. Only now does Keras read the file, in safe mode (no lambdas, no pickled code).
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
        raw = archive.read("config.json")
        # The layer cap on the bytes first: parsing an 8 MB config takes a second on a busy
        # server. A layer written with escapes slips past this count, not past the exact one
        # on the parsed config (`_check_layer_count`).
        if len(_LAYER_MODULE.findall(raw)) > CAPS.layers:
            raise ModelRejected(
                f"Expected a model with at most {CAPS.layers} layers. Received a config with "
                f"{len(_LAYER_MODULE.findall(raw)):,}."
            )
        config = _parse_json(raw)
        if "metadata.json" in names:
            _parse_json(archive.read("metadata.json")[:_MAX_JSON_BYTES])
    except ModelRejected:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, RecursionError, EOFError) as err:
        raise ModelRejected(
            f"Expected valid JSON and members in the archive. Received: {err}."
        ) from err
    return config


def _parse_json(raw: bytes) -> Any:
    """JSON with every number finite: NaN, Infinity and 1e999 (which parses to inf) are refused."""

    def constant(name: str) -> float:
        raise ModelRejected(f"Expected finite numbers in the model file. Received {name}.")

    def number(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise ModelRejected(
                f"Expected finite numbers in the model file. Received {text[:40]}, which is "
                "not a finite float64."
            )
        return value

    return json.loads(raw.decode("utf-8"), parse_constant=constant, parse_float=number)


def _check_layer_count(config: Any) -> None:
    """At most CAPS.layers serialised layers (nested models included), without recursion."""
    count, stack = 0, [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            count += node.get("module") == "keras.layers" and "class_name" in node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        if count > CAPS.layers:
            raise ModelRejected(
                f"Expected a model with at most {CAPS.layers} layers. Received a config with "
                f"more than {CAPS.layers}."
            )


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
    if isinstance(node, float):
        if not math.isfinite(node):
            raise _reject(where, f"the number {node} is not finite.")
        return
    if isinstance(node, bool) or node is None:
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


# --------------------------------------------------------------------------------------------
# The memory one image needs: every layer's output shape, inferred from config.json
# --------------------------------------------------------------------------------------------
# Each layer is made from its config WITHOUT its build_config, so no weight is allocated, and
# asked for `compute_output_shape`: Keras' own shape arithmetic (every allow-listed layer
# implements it without building or tracing), fed the shapes this walk computed from the
# input layers, never the shapes the file claims. Batch size is 1.


def _fmt_bytes(n: float) -> str:
    for unit, size in (("TB", 2**40), ("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}".replace(".0 ", " ")
    return f"{n:.0f} bytes"


class _Budget:
    """Adds up the activations of one image and refuses the first one over a cap."""

    def __init__(self) -> None:
        self.total = 0
        self.macs = 0

    def compute(self, name: str, macs: int) -> None:
        self.macs += macs
        if self.macs > CAPS.multiply_adds:
            raise ModelRejected(
                f"The layers up to {name!r} would need {self.macs / 1e9:,.1f} G multiply-adds "
                f"for one image; the cap is {CAPS.multiply_adds / 1e9:.0f} G (a forward pass "
                "must take seconds, not hours)."
            )

    def add(self, name: str, shape: tuple[int, ...], itemsize: int, *, kept: bool = True) -> None:
        size = math.prod(shape[1:]) * itemsize
        dims = "×".join(f"{d:,}".replace(",", " ") if d >= 10_000 else str(d) for d in shape[1:])
        what = {4: "floats", 8: "float64s", 2: "half floats"}.get(itemsize, "values")
        if size > CAPS.activation_bytes:
            raise ModelRejected(
                f"Layer {name!r} would output {dims or '1'} {what} = {_fmt_bytes(size)} for one "
                f"image; the cap is {_fmt_bytes(CAPS.activation_bytes)} for one layer."
            )
        self.total += size if kept else 0
        if self.total > CAPS.total_activation_bytes:
            raise ModelRejected(
                f"The layers up to {name!r} would output {_fmt_bytes(self.total)} for one image "
                f"together; the cap is {_fmt_bytes(CAPS.total_activation_bytes)} for all layers."
            )


def check_activations(config: dict) -> int:
    """Refuse a model whose input side or activations for one image are over `CAPS`.

    Args:
        config: a parsed config.json that passed `_check_config` (allow-listed objects only).

    Returns:
        The bytes all layer outputs take for one image.

    Raises:
        ModelRejected: the input is too large, a layer's output is too large or unknown, all
            outputs together are too large, or the graph cannot be followed.
    """
    budget = _Budget()
    try:
        _model_outputs(config, None, budget, "")
    except ModelRejected:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as err:
        raise ModelRejected(
            f"Expected a model graph whose shapes can be followed. Received a config where "
            f"that fails ({type(err).__name__}: {str(err)[:200]})."
        ) from err
    return budget.total


def _input_shape(layer: dict, given: tuple[int, ...] | None, budget: _Budget, where: str):
    """The shape an input layer feeds (batch 1, a free side at _FREE_SIDE), checked and counted."""
    cfg = layer.get("config") or {}
    name = f"{where}{cfg.get('name', '?')}"
    fresh = given is None  # a nested model's input is the outer layer's output: counted there
    if given is None:
        raw = cfg.get("batch_shape") or cfg.get("batch_input_shape")
        if not isinstance(raw, list) or len(raw) < 2:
            raise ModelRejected(
                f"Expected the input {name!r} to state its shape. Received {raw!r}."
            )
        given = tuple(1 if i == 0 else _FREE_SIDE if d is None else d for i, d in enumerate(raw))
    sides = given[1:-1] if len(given) > 2 else given[1:]
    if any(not isinstance(d, int) or d < 1 for d in given):
        raise ModelRejected(f"Expected positive sizes for the input {name!r}. Received {given}.")
    if any(d > CAPS.input_side for d in sides):
        raise ModelRejected(
            f"The input {name!r} is {'×'.join(map(str, given[1:]))}; the cap is "
            f"{CAPS.input_side} pixels a side, because every picture is resized to the input "
            "before the forward pass."
        )
    if fresh:
        budget.add(name, given, np.dtype(cfg.get("dtype") or "float32").itemsize)
    return given


def _model_outputs(model: dict, inputs: list | None, budget: _Budget, where: str) -> list:
    """Output shapes of a serialised Sequential or Functional model, fed `inputs` (or its own)."""
    cfg = model["config"]
    if model["class_name"] == "Sequential":
        layers = cfg.get("layers") or []
        shape = inputs[0] if inputs else None
        for layer in layers:
            if layer["class_name"] == "InputLayer":
                shape = _input_shape(layer, shape, budget, where)
                continue
            if shape is None:
                built = cfg.get("build_input_shape")
                fake = {"config": {"name": "input", "batch_shape": built}}
                shape = _input_shape(fake, None, budget, where)
            shape = _call(layer, [shape], False, budget, where)[0]
        if shape is None:
            raise ModelRejected("Expected a model with at least one layer. Received none.")
        return [shape]
    by_name = {layer["name"]: layer for layer in cfg["layers"]}
    shapes: dict[tuple[str, int], list] = {}
    for i, (name, _, _) in enumerate(_refs(cfg["input_layers"])):
        given = inputs[i] if inputs else None
        shapes[(name, 0)] = [_input_shape(by_name[name], given, budget, where)]
    pending = [
        (layer, k, node)
        for layer in cfg["layers"]
        if layer["class_name"] != "InputLayer"
        for k, node in enumerate(layer.get("inbound_nodes") or [])
    ]
    # Keras lists layers in call order; a few passes settle any that are listed early.
    while pending:
        waiting = []
        for layer, k, node in pending:
            refs, many = _node_refs(node)
            if all((n, ni) in shapes for n, ni, _ in refs):
                ins = [shapes[(n, ni)][ti] for n, ni, ti in refs]
                shapes[(layer["name"], k)] = _call(layer, ins, many, budget, where)
            else:
                waiting.append((layer, k, node))
        if len(waiting) == len(pending):
            raise ModelRejected(
                f"Expected every layer's inputs to come from the model. Received "
                f"{waiting[0][0]['name']!r}, whose input is never made."
            )
        pending = waiting
    return [shapes[(n, ni)][ti] for n, ni, ti in _refs(cfg["output_layers"])]


def _refs(value: list) -> list[tuple[str, int, int]]:
    """[name, node, tensor] or a list of them -> a list of (name, node, tensor)."""
    items = [value] if value and isinstance(value[0], str) else value
    return [(str(n), int(ni), int(ti)) for n, ni, ti, *_ in items]


def _node_refs(node: Any) -> tuple[list[tuple[str, int, int]], bool]:
    """The (layer, node, tensor) a call node reads, and whether they come as one list argument."""
    if isinstance(node, dict):
        first = (node.get("args") or [None])[0]
        many = isinstance(first, list)
        tensors = first if many else [first]
        return [tuple(t["config"]["keras_history"][:3]) for t in tensors], many
    # The older format: a list of [name, node, tensor, kwargs].
    return _refs(node), len(node) > 1


def _call(layer: dict, ins: list, many: bool, budget: _Budget, where: str) -> list:
    """The output shapes of one serialised layer (or nested model) called on shapes `ins`."""
    cls = layer["class_name"]
    name = f"{where}{(layer.get('config') or {}).get('name', cls)}"
    if cls in _MODELS:
        return _model_outputs(layer, ins, budget, f"{name}/")
    bare = {k: v for k, v in layer.items() if k not in ("build_config", "inbound_nodes")}
    try:
        obj = keras.saving.deserialize_keras_object(bare, safe_mode=True)
        out = obj.compute_output_shape(list(ins) if many else ins[0])
    except Exception as err:  # noqa: BLE001 - any failure here is a config Keras could not run
        raise ModelRejected(
            f"Layer {name!r} ({cls}) cannot take inputs of shape "
            f"{', '.join(str(tuple(i)) for i in ins)}: {str(err)[:200]}"
        ) from err
    shape = tuple(out)
    if any(not isinstance(d, int) or d < 0 for d in shape):
        raise ModelRejected(f"Expected a known output size for layer {name!r}. Received {shape}.")
    itemsize = np.dtype(obj.compute_dtype).itemsize
    cfg = layer.get("config") or {}
    if cls.startswith("SeparableConv"):
        # The depthwise step's output exists until the pointwise 1×1 has mixed it: one more
        # activation, freed at once (so not in the total).
        inner = _with_channels(shape, cfg, _channels(ins[0], cfg) * cfg.get("depth_multiplier", 1))
        budget.add(f"{name} (depthwise step)", inner, itemsize, kept=False)
    budget.add(name, shape, itemsize)
    budget.compute(name, _multiply_adds(cls, cfg, ins[0], shape))
    return [shape]


def _channels(shape: tuple, cfg: dict) -> int:
    return int(shape[1] if cfg.get("data_format") == "channels_first" else shape[-1])


def _with_channels(shape: tuple, cfg: dict, c: int) -> tuple:
    if cfg.get("data_format") == "channels_first":
        return (shape[0], c, *shape[2:])
    return (*shape[:-1], c)


def _multiply_adds(cls: str, cfg: dict, x: tuple, out: tuple) -> int:
    """Multiply-adds of one layer for one image (0 for layers linear in their output size)."""
    window = math.prod(cfg.get("kernel_size") or cfg.get("pool_size") or [1])
    n_out = math.prod(out[1:])
    if cls == "Dense":
        return n_out * int(x[-1])
    if cls.endswith("Transpose"):
        return math.prod(x[1:]) * window * int(cfg.get("filters", 1))  # each input is spread
    if cls.startswith("SeparableConv"):
        c = _channels(x, cfg) * cfg.get("depth_multiplier", 1)
        return n_out // max(_channels(out, cfg), 1) * c * (window + _channels(out, cfg))
    if cls.startswith("DepthwiseConv"):
        return n_out * window
    if cls.startswith("Conv"):
        return n_out * window * _channels(x, cfg) // max(int(cfg.get("groups", 1)), 1)
    if "Pooling" in cls and not cls.startswith("Global"):
        return n_out * window
    return 0


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
