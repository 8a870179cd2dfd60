"""The model zoo: built-in models, lecture architectures, keras.applications, random variants.

Every library function that takes a `model` follows one rule (`resolve`):

- a registry **name** ("digits", "shapes", "lecture:mnist_cnn", "vgg16", "random:digits", ...)
  gives the loaded model and the entry's own preprocessing, which maps images as
  `cnnviz.images.load_image` / `cnnviz.datasets` return them (uint8, (H, W, 3) or (H, W), or a
  batch) to the float32 batch the model expects: resized, gray or colour, digits inverted when
  they are dark on light, and scaled the way the family was trained;
- a bare **keras.Model** is used as it is, fed `np.asarray(images, np.float32)` unchanged
  (only a batch axis is added to a single image).

Models are shared read-only by every browser session: nothing here changes a loaded model.
A "random:NAME" variant is a clone with freshly initialised weights; the original is untouched.

ImageNet weights are downloaded once into the Keras cache (`~/.keras/models`). Offline, the
download fails fast (a short socket timeout) and `load` returns the same architecture with
random weights, labelled as such in `info(...).note`, which also says where to put the weights
file by hand.

Names:
    built-ins    "digits" (28×28×1, 10 classes), "shapes" (64×64×3, 8 classes): trained by
                 `python -m cnnviz.train NAME`, shipped in assets/models/ with a model card.
    lecture      "lecture:mnist_cnn" (93,322 parameters), "lecture:mnist_cnn_base" (55,744),
                 "lecture:mnist_cnn_gap" (56,394), "lecture:cats_dogs_cnn" (3,453,121),
                 "lecture:vgg16_base" (14,714,688), "lecture:vgg16" (138,357,544): seed 003's
                 architectures with random weights, for exploring shapes and parameter counts.
    ImageNet     "vgg16", "vgg19", "resnet50", "mobilenet_v2", "inception_v3", "xception",
                 "efficientnet_b0", "densenet121" (keras.applications, weights="imagenet").
    random       "random:NAME" for any name above.
"""

from __future__ import annotations

import collections
import importlib
import itertools
import json
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np

from cnnviz import images as _images

__all__ = [
    "ModelError",
    "ModelRejected",
    "ModelUnavailable",
    "ModelInfo",
    "ASSETS",
    "builtin_names",
    "lecture_names",
    "imagenet_names",
    "model_names",
    "title",
    "load",
    "load_imagenet",
    "info",
    "resolve",
    "prepare_note",
    "predict",
    "top_k",
    "random_variant",
]

#: Where the shipped models and their model cards live.
ASSETS = Path(__file__).resolve().parents[1] / "assets" / "models"
RANDOM_PREFIX = "random:"
LECTURE_PREFIX = "lecture:"
# Seconds a socket may wait during a weights download before we call the network unreachable.
_NET_TIMEOUT_S = 10.0
# After a failed ImageNet download, do not try again for this long (every rerun would wait).
_RETRY_AFTER_S = 600.0
# Models kept in memory by `load` (VGG16 with its top alone is ~550 MB of float32).
_CACHE_SIZE = 3
_PREDICT_BATCH = 64


class ModelError(ValueError):
    """A model name, input or output that cannot be used; the message says what was expected."""


class ModelRejected(ModelError):
    """An uploaded model file failed a safety check; the message gives the reason."""


class ModelUnavailable(ModelError):
    """A model or its weights cannot be had (offline, file missing); the message says what to do."""


@dataclass(frozen=True)
class ModelInfo:
    """What a page needs to know to feed images into a model and read its answer.

    Attributes:
        name: registry name ("digits", "random:vgg16") or, for a bare model, `model.name`.
        input_shape: (height, width, channels) the model expects.
        class_names: one name per output class ([] when the model has no classifier head).
        random_weights: True when the weights were never trained (or were re-initialised).
        note: a sentence to show next to the model (random weights, fallback, ...), or None.
        kind: "built-in", "lecture", "imagenet", "random" or "model" (a bare keras.Model).
        title: a human title for menus.
        preprocessing: what the entry's preprocessing does, in words.
    """

    name: str
    input_shape: tuple[int, int, int]
    class_names: list[str]
    random_weights: bool = False
    note: str | None = None
    kind: str = "model"
    title: str = ""
    preprocessing: str = "fed as float32, unchanged"


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    name: str
    title: str
    kind: str  # "built-in" | "lecture" | "imagenet"
    input_shape: tuple[int, int, int]
    scale: str  # "raw" (0..255 floats), "unit" (/255), "imagenet" (the family's preprocess_input)
    build: Callable[..., keras.Model]
    classes: Callable[[], list[str]]
    invert_dark: bool = False  # digits: flip dark-on-light images to MNIST's white-on-black
    family: str | None = None  # keras.applications module, for preprocess_input/decode_predictions
    weights_file: str | None = None
    weights_url: str | None = None
    note: str | None = None


def _card(name: str) -> dict:
    """The model card of a shipped model (classes, input shape, accuracy, command, ...)."""
    path = ASSETS / f"{name}.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def _card_classes(name: str, fallback: list[str]) -> list[str]:
    card = _card(name)
    for key in ("classes", "class_names"):
        if isinstance(card.get(key), list):
            return [str(c) for c in card[key]]
    return list(fallback)


def _load_builtin(name: str) -> keras.Model:
    path = ASSETS / f"{name}.keras"
    if not path.exists():
        raise ModelUnavailable(
            f"The built-in model {name!r} is not there. Expected the file {path}. "
            f"Create it with: python -m cnnviz.train {name}"
        )
    # Our own shipped file: still loaded in safe mode (no code in it) and without optimizer state.
    return keras.saving.load_model(path, compile=False, safe_mode=True)


def _digit_classes() -> list[str]:
    from cnnviz.datasets import DIGIT_CLASSES

    return _card_classes("digits", DIGIT_CLASSES)


def _shape_classes() -> list[str]:
    from cnnviz.datasets import SHAPE_CLASSES

    return _card_classes("shapes", SHAPE_CLASSES)


def _architectures():
    # The lecture builders live in cnnviz.architectures (shared with cnnviz.train).
    return importlib.import_module("cnnviz.architectures")


def _vgg16_lecture(include_top: bool) -> keras.Model:
    # Seed 003: VGG16(include_top=...), built with random weights so no download is needed;
    # 224×224×3 input so the summary shows the picture's shapes (the parameter count is the same).
    return keras.applications.VGG16(
        weights=None, include_top=include_top, input_shape=(224, 224, 3)
    )


def _imagenet_classes_or_generic() -> list[str]:
    names = _imagenet_class_names()
    return names if names is not None else [f"class {i}" for i in range(1000)]


def _generic(n: int) -> Callable[[], list[str]]:
    return lambda: [f"class {i}" for i in range(n)]


_LECTURE_NOTE = "random weights: a lecture architecture, built to explore its shapes and parameters; it was never trained"
_KERAS_APPS = "https://storage.googleapis.com/tensorflow/keras-applications/"
# name: (title, keras.applications module, builder, input side, weights file, weights URL)
_IMAGENET = {
    "vgg16": ("VGG16", "vgg16", "VGG16", 224, "vgg16_weights_tf_dim_ordering_tf_kernels.h5", "vgg16/"),
    "vgg19": ("VGG19", "vgg19", "VGG19", 224, "vgg19_weights_tf_dim_ordering_tf_kernels.h5", "vgg19/"),
    "resnet50": ("ResNet50", "resnet50", "ResNet50", 224, "resnet50_weights_tf_dim_ordering_tf_kernels.h5", "resnet/"),
    "mobilenet_v2": ("MobileNetV2", "mobilenet_v2", "MobileNetV2", 224, "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5", "mobilenet_v2/"),
    "inception_v3": ("InceptionV3", "inception_v3", "InceptionV3", 299, "inception_v3_weights_tf_dim_ordering_tf_kernels.h5", "inception_v3/"),
    "xception": ("Xception", "xception", "Xception", 299, "xception_weights_tf_dim_ordering_tf_kernels.h5", "xception/"),
    "efficientnet_b0": ("EfficientNetB0", "efficientnet", "EfficientNetB0", 224, "efficientnetb0.h5", None),
    "densenet121": ("DenseNet121", "densenet", "DenseNet121", 224, "densenet121_weights_tf_dim_ordering_tf_kernels.h5", "densenet/"),
}  # fmt: skip


def _imagenet_builder(module: str, builder: str, side: int) -> Callable[..., keras.Model]:
    def build(weights: str | None = "imagenet") -> keras.Model:
        fn = getattr(importlib.import_module(f"keras.applications.{module}"), builder)
        return fn(weights=weights, include_top=True, input_shape=(side, side, 3))

    return build


def _registry() -> dict[str, _Entry]:
    entries = [
        _Entry(
            "digits",
            "Digits CNN (built-in, 28×28 gray)",
            "built-in",
            (28, 28, 1),
            "raw",
            lambda: _load_builtin("digits"),
            _digit_classes,
            invert_dark=True,
        ),
        _Entry(
            "shapes",
            "Shapes CNN (built-in, 64×64 colour)",
            "built-in",
            (64, 64, 3),
            "raw",
            lambda: _load_builtin("shapes"),
            _shape_classes,
        ),
        _Entry(
            "lecture:mnist_cnn",
            "Lecture: MNIST CNN, Flatten + Dense head (93,322)",
            "lecture",
            (28, 28, 1),
            "unit",
            lambda: _architectures().mnist_cnn(head="flatten"),
            _generic(10),
            invert_dark=True,
            note=_LECTURE_NOTE,
        ),
        _Entry(
            "lecture:mnist_cnn_base",
            "Lecture: MNIST CNN, convolutional base only (55,744)",
            "lecture",
            (28, 28, 1),
            "unit",
            lambda: _architectures().mnist_cnn(head=None),
            lambda: [],
            invert_dark=True,
            note=_LECTURE_NOTE,
        ),
        _Entry(
            "lecture:mnist_cnn_gap",
            "Lecture: MNIST CNN, GlobalAveragePooling head (56,394)",
            "lecture",
            (28, 28, 1),
            "unit",
            lambda: _architectures().mnist_cnn(head="gap"),
            _generic(10),
            invert_dark=True,
            note=_LECTURE_NOTE,
        ),
        _Entry(
            "lecture:cats_dogs_cnn",
            "Lecture: cats-vs-dogs CNN (3,453,121)",
            "lecture",
            (150, 150, 3),
            "unit",
            lambda: _architectures().cats_dogs_cnn(),
            lambda: ["cat", "dog"],
            note=_LECTURE_NOTE,
        ),
        _Entry(
            "lecture:vgg16_base",
            "Lecture: VGG16 without top (14,714,688)",
            "lecture",
            (224, 224, 3),
            "imagenet",
            lambda: _vgg16_lecture(False),
            lambda: [],
            family="vgg16",
            note=_LECTURE_NOTE,
        ),
        _Entry(
            "lecture:vgg16",
            "Lecture: VGG16 with top (138,357,544)",
            "lecture",
            (224, 224, 3),
            "imagenet",
            lambda: _vgg16_lecture(True),
            _imagenet_classes_or_generic,
            family="vgg16",
            note=_LECTURE_NOTE,
        ),
    ]
    for name, (title_, module, builder, side, file, folder) in _IMAGENET.items():
        url = (
            f"{_KERAS_APPS}{folder}{file}"
            if folder
            else f"https://storage.googleapis.com/keras-applications/{file}"
        )
        entries.append(
            _Entry(
                name,
                f"ImageNet: {title_}",
                "imagenet",
                (side, side, 3),
                "imagenet",
                _imagenet_builder(module, builder, side),
                _imagenet_classes_or_generic,
                family=module,
                weights_file=file,
                weights_url=url,
            )
        )
    return {e.name: e for e in entries}


_REGISTRY = _registry()


def builtin_names() -> list[str]:
    """The shipped, project-trained models: ["digits", "shapes"]."""
    return [n for n, e in _REGISTRY.items() if e.kind == "built-in"]


def lecture_names() -> list[str]:
    """Seed 003's architectures with random weights ("lecture:mnist_cnn", ...)."""
    return [n for n, e in _REGISTRY.items() if e.kind == "lecture"]


def imagenet_names() -> list[str]:
    """The keras.applications families ("vgg16", ..., "densenet121")."""
    return [n for n, e in _REGISTRY.items() if e.kind == "imagenet"]


def model_names(*, random_variants: bool = False) -> list[str]:
    """All registry names, built-ins first; with `random_variants`, also "random:NAME" for each."""
    names = list(_REGISTRY)
    if random_variants:
        names += [f"{RANDOM_PREFIX}{n}" for n in names if _REGISTRY[n].kind != "lecture"]
    return names


def _entry(name: str) -> tuple[_Entry, bool]:
    """(registry entry, is a random variant) for a name, or ModelError listing the names."""
    if not isinstance(name, str):
        raise ModelError(
            f"Expected a model name (str) or a keras.Model. Received {type(name).__name__}."
        )
    base = name.removeprefix(RANDOM_PREFIX)
    if base not in _REGISTRY:
        raise ModelError(
            f"Unknown model {name!r}. Expected one of: {', '.join(_REGISTRY)} "
            f"(or '{RANDOM_PREFIX}' followed by one of them)."
        )
    return _REGISTRY[base], base != name


def title(name: str) -> str:
    """A menu title for a registry name."""
    entry, random = _entry(name)
    return f"{entry.title}, random weights" if random else entry.title


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------

_lock = threading.RLock()
_cache: collections.OrderedDict[str, keras.Model] = collections.OrderedDict()
# Per name: (random_weights, note) decided at load time (an ImageNet fallback is only known then).
_status: dict[str, tuple[bool, str | None]] = {}
# ImageNet names whose download failed, with the time and the message (no retry for a while).
_failed: dict[str, tuple[float, str]] = {}
# Models this module handed out, so info(model) can still say "random weights" for them.
_known: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def load(name: str) -> keras.Model:
    """The model for a registry name, built or loaded once and kept (a few at a time).

    ImageNet names try weights="imagenet"; if the download fails, the same architecture with
    random weights is returned and `info(name).note` explains how to get the real weights.

    Raises:
        ModelError: unknown name.
        ModelUnavailable: a built-in file is missing, or a lecture builder is not available.
    """
    entry, random = _entry(name)
    with _lock:
        if name in _cache:
            _cache.move_to_end(name)
            return _cache[name]
        model, random_weights, note = _build(entry, random)
        _cache[name] = model
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
        _status[name] = (random_weights, note)
        _known[model] = name
        return model


def _build(entry: _Entry, random: bool) -> tuple[keras.Model, bool, str | None]:
    """(model, random_weights, note) for an entry, or its random variant."""
    if random:
        # ImageNet: the architecture alone (no download); others: clone the loaded model.
        source = entry.build(weights=None) if entry.kind == "imagenet" else load(entry.name)
        note = (
            f"random weights: the {entry.name} architecture with freshly initialised weights; "
            "it has learned nothing (a baseline for sanity checks)"
        )
        return random_variant(source), True, note
    if entry.kind == "imagenet":
        try:
            return load_imagenet(entry.name, fallback=False), False, None
        except ModelUnavailable as err:
            note = f"random weights: {err}"
            return entry.build(weights=None), True, note
    try:
        model = entry.build()
    except ImportError as err:
        raise ModelUnavailable(
            f"The lecture model {entry.name!r} needs cnnviz.architectures, which could not be "
            f"imported ({err})."
        ) from err
    return model, entry.kind == "lecture", entry.note


def load_imagenet(name: str, *, fallback: bool = True) -> keras.Model:
    """An ImageNet model with its trained weights, downloaded once into the Keras cache.

    Args:
        name: one of `imagenet_names()`.
        fallback: when the weights cannot be had, return the architecture with random weights
            instead of raising.

    Raises:
        ModelUnavailable: (fallback=False) the weights could not be downloaded; the message
            names the file and where to put it by hand.
    """
    entry, _ = _entry(name)
    if entry.kind != "imagenet":
        raise ModelError(f"Expected one of {', '.join(imagenet_names())}. Received {name!r}.")
    failed = _failed.get(name)
    if failed is not None and time.monotonic() - failed[0] < _RETRY_AFTER_S:
        reason = failed[1]
    else:
        try:
            model = _fetch_imagenet(entry.build)
            _failed.pop(name, None)
            return model
        except Exception as err:  # noqa: BLE001 - keras raises a bare Exception on URL failures
            reason = f"{type(err).__name__}: {err}"
            _failed[name] = (time.monotonic(), reason)
    if fallback:
        return entry.build(weights=None)
    target = _weights_dir() / entry.weights_file
    raise ModelUnavailable(
        f"The ImageNet weights for {entry.title.removeprefix('ImageNet: ')} could not be "
        f"downloaded ({reason[:300]}). To use the trained network offline, download "
        f"{entry.weights_url} on a computer with internet access and put it, with that exact "
        f"name, at {target} (that is ~/.keras/models/{entry.weights_file}). Until then the "
        "same architecture is shown with random weights"
    )


def _weights_dir() -> Path:
    """Keras' cache folder for application weights (KERAS_HOME/models, else ~/.keras/models)."""
    try:
        from keras.src.backend.config import keras_home

        home = keras_home()
    except ImportError:  # pragma: no cover - older/newer Keras layouts
        home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return Path(os.path.expanduser(home)) / "models"


_socket_lock = threading.Lock()


def _fetch_imagenet(builder: Callable[..., keras.Model]) -> keras.Model:
    """Build with weights="imagenet": Keras downloads the file into its cache the first time.

    This is the only function that touches the network for weights. A short socket timeout
    makes an unreachable network fail in seconds instead of hanging (urllib has no timeout).
    """
    with _socket_lock:
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(_NET_TIMEOUT_S)
        try:
            return builder(weights="imagenet")
        finally:
            socket.setdefaulttimeout(old)


_class_index: list[str] | None = None
_class_index_failed_at: float | None = None


def _imagenet_class_names() -> list[str] | None:
    """The 1000 ImageNet class names via keras' decode_predictions, or None when offline.

    decode_predictions downloads imagenet_class_index.json into the Keras cache once; a failure
    is remembered for a while so an offline page does not wait on every rerun.
    """
    global _class_index, _class_index_failed_at
    if _class_index is not None:
        return _class_index
    if (
        _class_index_failed_at is not None
        and time.monotonic() - _class_index_failed_at < _RETRY_AFTER_S
    ):
        return None
    from keras.applications.imagenet_utils import decode_predictions

    with _socket_lock:
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(_NET_TIMEOUT_S)
        try:
            # One-hot rows: the top-1 decoding of row i is class i.
            rows = decode_predictions(np.eye(1000, dtype=np.float32), top=1)
        except Exception:  # noqa: BLE001 - keras raises a bare Exception on URL failures
            _class_index_failed_at = time.monotonic()
            return None
        finally:
            socket.setdefaulttimeout(old)
    _class_index = [row[0][1].replace("_", " ") for row in rows]
    return _class_index


# --------------------------------------------------------------------------------------------
# Random variants
# --------------------------------------------------------------------------------------------


def random_variant(model: keras.Model, *, seed: int = 0) -> keras.Model:
    """A clone of `model` with freshly initialised weights; `model` itself is not touched.

    Each layer is rebuilt from its config with every initializer given its own seed (derived
    from `seed`), so the variant is the same on every run.

    Args:
        model: a Sequential or Functional model (nested models are re-initialised too).
        seed: base seed.

    Returns:
        A new keras.Model with the same architecture and new weights.
    """
    counter = itertools.count()

    def fresh(layer: keras.layers.Layer) -> keras.layers.Layer:
        # Re-create the layer from its (seeded) config: new variables, new initial values.
        config = _seed_initializers(layer.get_config(), seed, counter)
        return layer.__class__.from_config(config)

    return keras.models.clone_model(model, clone_function=fresh)


def _seed_initializers(config: Any, seed: int, counter: itertools.count) -> Any:
    """A copy of a layer config in which every initializer has a distinct, fixed seed."""
    if isinstance(config, dict):
        out = {k: _seed_initializers(v, seed, counter) for k, v in config.items()}
        inner = out.get("config")
        if (
            out.get("module") == "keras.initializers"
            and isinstance(inner, dict)
            and "seed" in inner
        ):
            out["config"] = {**inner, "seed": seed * 100_003 + next(counter)}
        return out
    if isinstance(config, list):
        return [_seed_initializers(v, seed, counter) for v in config]
    return config


# --------------------------------------------------------------------------------------------
# Info, preprocessing, prediction
# --------------------------------------------------------------------------------------------


def _model_input_shape(model: keras.Model) -> tuple[int, int, int]:
    """(h, w, c) from model.inputs; unknown (None) sides become 224, unknown channels 3."""
    shape = tuple(model.inputs[0].shape)[1:] if model.inputs else ()
    if len(shape) == 2:
        shape = (*shape, 1)
    if len(shape) != 3:
        raise ModelError(
            f"Expected a model that takes images (batch, height, width, channels). Received input "
            f"shape {tuple(model.inputs[0].shape) if model.inputs else None} for {model.name!r}."
        )
    h, w, c = shape
    return (int(h or 224), int(w or 224), int(c or 3))


def _output_classes(model: keras.Model) -> int:
    """Number of classes the model's output scores (0 when its output is not (N, k))."""
    shape = tuple(model.outputs[0].shape)
    if len(shape) != 2:
        return 0
    return 2 if shape[1] == 1 else int(shape[1])


def _preprocessing_text(entry: _Entry) -> str:
    steps = [f"resized to {entry.input_shape[0]}×{entry.input_shape[1]}"]
    steps.append("converted to gray" if entry.input_shape[2] == 1 else "RGB")
    if entry.invert_dark:
        steps.append("inverted when dark on light (MNIST digits are white on black)")
    steps.append(
        {
            "raw": "fed as 0–255 floats (the model rescales inside)",
            "unit": "scaled to 0–1",
            "imagenet": f"keras.applications.{entry.family}.preprocess_input",
        }[entry.scale]
    )
    return ", ".join(steps)


def info(model: str | keras.Model) -> ModelInfo:
    """What a model expects and answers: input shape, class names, random weights, a note.

    A registry name loads the model (cached) because an ImageNet fallback is only known then.
    A bare keras.Model gives name=model.name, its own input shape (None sides -> 224) and
    "class 0", ... names; a model this module handed out keeps its class names and note.
    """
    if isinstance(model, keras.Model):
        known = _known.get(model)
        if known is not None:
            return replace(info(known), name=model.name)
        n = _output_classes(model)
        return ModelInfo(
            name=model.name,
            input_shape=_model_input_shape(model),
            class_names=[f"class {i}" for i in range(n)],
            kind="model",
            title=model.name,
        )
    entry, random = _entry(model)
    load(model)
    random_weights, note = _status[model]
    classes = entry.classes()
    if entry.kind == "imagenet" and _imagenet_class_names() is None:
        extra = "ImageNet class names could not be downloaded, so classes are shown by number"
        note = f"{note}; {extra}" if note else extra
    return ModelInfo(
        name=model,
        input_shape=entry.input_shape,
        class_names=classes,
        random_weights=random_weights,
        note=note,
        kind="random" if random else entry.kind,
        title=title(model),
        preprocessing=_preprocessing_text(entry),
    )


def _as_batch(images: np.ndarray) -> np.ndarray:
    """One image (H, W) / (H, W, C) or a batch (N, H, W) / (N, H, W, C) -> (N, H, W, C)."""
    x = np.asarray(images)
    if x.ndim == 2:
        return x[None, :, :, None]
    if x.ndim == 3:
        # (H, W, C) when the last axis looks like channels, else a batch of gray images.
        return x[None] if x.shape[-1] in (1, 3, 4) else x[..., None]
    if x.ndim == 4:
        return x
    raise ModelError(
        f"Expected an image (H, W[, C]) or a batch (N, H, W[, C]). Received shape {x.shape}."
    )


def _prepare(entry: _Entry, images: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Apply the entry's preprocessing; returns (float32 batch (N, h, w, c), notes)."""
    x = _as_batch(images)
    if x.shape[-1] == 4:
        x = x[..., :3]  # drop alpha
    h, w, c = entry.input_shape
    notes: list[str] = []
    # Resize each image to the model's input size (Pillow's antialiased bicubic).
    if x.shape[1:3] != (h, w):
        notes.append(f"resized {x.shape[2]}×{x.shape[1]} → {w}×{h}")
        planes = x[..., 0] if x.shape[-1] == 1 else x
        x = np.stack([_images.resize(p, (h, w)) for p in planes])
        x = x[..., None] if x.ndim == 3 else x
    x = x.astype(np.float32)
    # Match the channels: luminance for gray models, three equal planes for colour models.
    if c == 1 and x.shape[-1] == 3:
        x = (x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
        notes.append("converted to gray")
    elif c == 3 and x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
        notes.append("gray copied to R, G and B")
    # Digits: MNIST is white on black; a light border means a dark digit on paper, so invert.
    if entry.invert_dark:
        border = np.concatenate(
            [x[:, 0].reshape(len(x), -1), x[:, -1].reshape(len(x), -1),
             x[:, :, 0].reshape(len(x), -1), x[:, :, -1].reshape(len(x), -1)], axis=1
        )  # fmt: skip
        light = np.median(border, axis=1) > 127.5
        if light.any():
            x[light] = 255.0 - x[light]
            notes.append("inverted (dark digit on light background)")
    # Scale the way the model was trained.
    if entry.scale == "unit":
        x = x / 255.0
    elif entry.scale == "imagenet":
        module = importlib.import_module(f"keras.applications.{entry.family}")
        x = np.asarray(module.preprocess_input(x.copy()), np.float32)
    return x.astype(np.float32, copy=False), notes


def _raw(images: np.ndarray) -> np.ndarray:
    x = np.asarray(images, np.float32)
    if x.ndim == 2:
        return x[None, :, :, None]
    return x[None] if x.ndim == 3 else x


def resolve(model: str | keras.Model) -> tuple[keras.Model, Callable[[np.ndarray], np.ndarray]]:
    """THE rule for a `model` argument: (keras.Model, preprocessing function).

    Args:
        model: a registry name or a keras.Model.

    Returns:
        For a name: the loaded model and a function mapping uint8 images (H, W[, 3]) or
        batches (N, H, W[, C]) to the float32 batch (N, h, w, c) the model expects. For a bare
        model: the model unchanged and `np.asarray(images, np.float32)` with a batch axis added
        to a single image ((H, W) -> (1, H, W, 1), (H, W, C) -> (1, H, W, C)).
    """
    if isinstance(model, keras.Model):
        return model, _raw
    entry, _ = _entry(model)
    net = load(model)
    return net, lambda images: _prepare(entry, images)[0]


def prepare_note(model: str | keras.Model, image: np.ndarray) -> str | None:
    """What the preprocessing does to this image, in words (for pages to show), or None."""
    if isinstance(model, keras.Model):
        return None
    entry, _ = _entry(model)
    _, notes = _prepare(entry, image)
    return ", ".join(notes) if notes else None


def _to_probabilities(y: np.ndarray) -> np.ndarray:
    """Model outputs (N, k) -> probabilities: softmax when they are not already a distribution."""
    if y.ndim != 2:
        raise ModelError(
            "Expected a model with a classifier head, whose output is one score per class "
            f"(N, classes). Received output shape {y.shape}: this model has no head."
        )
    if y.shape[1] == 1:
        # A single sigmoid unit (cats vs dogs): p(class 1); class 0 gets the rest.
        p = y[:, 0] if (y.min() >= 0 and y.max() <= 1) else 1 / (1 + np.exp(-y[:, 0]))
        return np.stack([1 - p, p], axis=1).astype(np.float32)
    if y.min() >= 0 and np.allclose(y.sum(axis=1), 1, atol=1e-3):
        return y.astype(np.float32)
    z = np.exp(y - y.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)


def predict(model: str | keras.Model, images: np.ndarray) -> np.ndarray:
    """Class probabilities for images, via `resolve` (thread-safe: no model.predict).

    Args:
        model: a registry name or a keras.Model with a classifier head.
        images: one image or a batch (see `resolve`).

    Returns:
        (N, classes) float32 probabilities (a single sigmoid unit becomes two columns).
    """
    net, prep = resolve(model)
    x = prep(images)
    outs = [
        np.asarray(net(x[i : i + _PREDICT_BATCH], training=False))
        for i in range(0, len(x), _PREDICT_BATCH)
    ]
    return _to_probabilities(np.concatenate(outs) if outs else np.zeros((0, 0), np.float32))


def top_k(model: str | keras.Model, probs: np.ndarray, k: int = 5) -> list[tuple[str, float]]:
    """The k most probable classes of one image's probabilities, as (class name, probability).

    ImageNet names are decoded with the family's own `decode_predictions` when the class index
    is available (downloaded once); offline, classes are named by number.
    """
    p = np.asarray(probs, np.float32).reshape(-1)
    names = info(model).class_names
    if len(names) != len(p):
        names = [f"class {i}" for i in range(len(p))]
    if isinstance(model, str) and _entry(model)[0].scale == "imagenet" and len(p) == 1000:
        if _imagenet_class_names() is not None:
            module = importlib.import_module(f"keras.applications.{_entry(model)[0].family}")
            decoded = module.decode_predictions(p[None], top=k)[0]
            return [(label.replace("_", " "), float(score)) for _, label, score in decoded]
    order = np.argsort(-p, kind="stable")[:k]
    return [(names[i], float(p[i])) for i in order]
