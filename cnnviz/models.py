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
                 "lecture:small_cifar_cnn" (605,610, seed 001),
                 "lecture:vgg16_base" (14,714,688), "lecture:vgg16" (138,357,544): seed 003's
                 architectures with random weights, for exploring shapes and parameter counts.
    ImageNet     "vgg16", "vgg19", "resnet50", "mobilenet_v2", "inception_v3", "xception",
                 "efficientnet_b0", "densenet121" (keras.applications, weights="imagenet").
    random       "random:NAME" for any name above.
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import io
import itertools
import json
import os
import re
import socket
import tempfile
import threading
import time
import weakref
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np

from cnnviz import images as _images
from cnnviz import userinput as _userinput

__all__ = [
    "ModelError",
    "BlankImage",
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
    "to_probabilities",
    "top_k",
    "LECTURE_PARAMS",
    "random_variant",
    "MAX_PARAMS",
    "load_uploaded",
    "summary",
    "totals",
    "shape_flow",
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


class BlankImage(ModelError):
    """A picture with nothing in it (no ink, no drawing) given to a built-in model."""


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
    # Users' pictures first made like the training data (cnnviz.userinput): "digit" (MNIST's
    # normalisation) or "drawing" (a square crop around the drawing); None: as they are.
    fit: str | None = None
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


def _cifar_classes() -> list[str]:
    from cnnviz.datasets import KERAS_DATASETS

    return list(KERAS_DATASETS["cifar10"])


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


#: The parameter counts the lecture slides print (seed 003; seed 001 for the CIFAR network).
LECTURE_PARAMS = {
    "lecture:mnist_cnn": 93_322,
    "lecture:mnist_cnn_base": 55_744,
    "lecture:mnist_cnn_gap": 56_394,
    "lecture:cats_dogs_cnn": 3_453_121,
    "lecture:small_cifar_cnn": 605_610,
    "lecture:vgg16_base": 14_714_688,
    "lecture:vgg16": 138_357_544,
}
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
            fit="digit",
        ),
        _Entry(
            "shapes",
            "Shapes CNN (built-in, 64×64 colour)",
            "built-in",
            (64, 64, 3),
            "raw",
            lambda: _load_builtin("shapes"),
            _shape_classes,
            fit="drawing",
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
            "lecture:small_cifar_cnn",
            "Lecture: small CIFAR-10 CNN (605,610)",
            "lecture",
            (32, 32, 3),
            "unit",
            lambda: _architectures().small_cifar_cnn(),
            _cifar_classes,
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
            return load_imagenet(entry.name), False, None
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


def load_imagenet(name: str) -> keras.Model:
    """An ImageNet model with its trained weights, downloaded once into the Keras cache.

    `load(name)` is what pages use: it falls back to random weights, labelled in `info`.

    Args:
        name: one of `imagenet_names()`.

    Raises:
        ModelUnavailable: the weights could not be downloaded; the message names the file and
            where to put it by hand. A failure is remembered for 10 minutes (no new attempt).
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


@contextlib.contextmanager
def _short_socket_timeout() -> Iterator[None]:
    """Keras downloads with urllib, which waits forever by default on an unreachable network.

    A default socket timeout (process-wide, so downloads take turns) makes it fail in seconds.
    """
    with _socket_lock:
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(_NET_TIMEOUT_S)
        try:
            yield
        finally:
            socket.setdefaulttimeout(old)


def _fetch_imagenet(builder: Callable[..., keras.Model]) -> keras.Model:
    """Build with weights="imagenet": Keras downloads the file into its cache the first time.

    This is the only function that fetches weights from the network (tests cut it off).
    """
    with _short_socket_timeout():
        return builder(weights="imagenet")


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

    try:
        with _short_socket_timeout():
            # One-hot rows: the top-1 decoding of row i is class i.
            rows = decode_predictions(np.eye(1000, dtype=np.float32), top=1)
    except Exception:  # noqa: BLE001 - keras raises a bare Exception on URL failures
        _class_index_failed_at = time.monotonic()
        return None
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
    steps = {
        "digit": ["normalised as MNIST (ink found against the paper, cropped, fitted into "
                  "20×20, centred by mass in 28×28)"],
        "drawing": ["a large picture cropped to the drawing"],
    }.get(entry.fit, [])  # fmt: skip
    steps.append(f"resized to {entry.input_shape[0]}×{entry.input_shape[1]}")
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

    A registry name loads the model the first time, because an ImageNet fallback is only known
    then.
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
    if model not in _status:
        load(model)  # the status is kept after the model leaves the cache: no rebuild
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


def _prepare(
    entry: _Entry, images: np.ndarray, pictures: bool = True
) -> tuple[np.ndarray, list[str]]:
    """Apply the entry's preprocessing; returns (float32 batch (N, h, w, c), notes)."""
    x = _as_batch(images)
    if x.shape[-1] == 4:
        x = x[..., :3]  # drop alpha
    h, w, c = entry.input_shape
    notes: list[str] = []
    if pictures and entry.fit is not None:
        x, note = _fit_pictures(entry, x)
        if note:
            notes.append(note)
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


def _fit_pictures(entry: _Entry, x: np.ndarray) -> tuple[np.ndarray, str | None]:
    """Users' pictures made like the entry's training data (`cnnviz.userinput`).

    Digits: every picture is normalised as MNIST (28×28 white on black). Drawings: a picture
    more than twice the model's side (a canvas, a photo) is cropped to a square around the
    drawing; smaller ones are taken as framed. Raises BlankImage for an empty picture.
    """
    planes = x[..., 0] if x.shape[-1] == 1 else x
    try:
        if entry.fit == "digit":
            fitted = np.stack([_userinput.digit_input(p) for p in planes])[..., None]
            return fitted, (
                "normalised as MNIST (ink found against the paper, cropped, fitted into 20×20, "
                "centred by mass in 28×28, white on black)"
            )
        if max(x.shape[1:3]) <= 2 * max(entry.input_shape[:2]):
            return x, None
        side = entry.input_shape[:2]
        crops = [_images.resize(_crop_uint8(_userinput.drawing_input(p)), side) for p in planes]
        fitted = np.stack(crops)
    except _userinput.BlankPicture as err:
        raise BlankImage(str(err)) from None
    return (fitted[..., None] if fitted.ndim == 3 else fitted), "cropped to the drawing"


def _crop_uint8(a: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def _raw(images: np.ndarray) -> np.ndarray:
    x = np.asarray(images, np.float32)
    if x.ndim == 2:
        return x[None, :, :, None]
    return x[None] if x.ndim == 3 else x


def resolve(
    model: str | keras.Model, *, pictures: bool = True
) -> tuple[keras.Model, Callable[[np.ndarray], np.ndarray]]:
    """THE rule for a `model` argument: (keras.Model, preprocessing function).

    Args:
        model: a registry name or a keras.Model.
        pictures: the images are users' pictures, so a built-in model first makes them like
            its training data (digits: MNIST's normalisation; shapes: a crop to the drawing).
            False for arrays that already are model inputs (feature visualisation's probes).

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
    return net, lambda images: _prepare(entry, images, pictures)[0]


def prepare_note(model: str | keras.Model, image: np.ndarray) -> str | None:
    """What the preprocessing does to this image, in words (for pages to show), or None."""
    if isinstance(model, keras.Model):
        return None
    entry, _ = _entry(model)
    _, notes = _prepare(entry, image)
    return ", ".join(notes) if notes else None


def to_probabilities(y: np.ndarray) -> np.ndarray:
    """Model outputs (N, k) -> probabilities: softmax when they are not already a distribution.

    A single sigmoid unit (N, 1) becomes two columns (1 - p, p).

    Raises:
        ModelError: the output is not (N, classes): the model has no classifier head.
    """
    y = np.asarray(y, np.float32)
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
    return to_probabilities(np.concatenate(outs) if outs else np.zeros((0, 0), np.float32))


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


# --------------------------------------------------------------------------------------------
# Uploaded models: every check runs before Keras sees the file
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Summaries: a Keras-style table plus receptive field and jump per layer
# --------------------------------------------------------------------------------------------

# (rf_h, rf_w, jump_h, jump_w) of a tensor; None when it sees the whole input (after Flatten,
# Dense, global pooling).
_Field = tuple[int, int, int, int] | None


def _pair(v: Any, n: int = 2) -> tuple[int, ...]:
    v = tuple(v) if isinstance(v, list | tuple) else (v,) * n
    return (int(v[0]), int(v[1] if len(v) > 1 else v[0]))


def _layer_field(layer: keras.layers.Layer, field: _Field) -> _Field:
    """Receptive field and jump after `layer`, given those of its input (Araujo et al. 2019).

    A window of k taps (dilated: d·(k − 1) + 1) at stride s: rf_out = rf_in + (k_eff − 1)·jump_in,
    jump_out = jump_in · s. Upsampling divides the jump; layers that mix all positions
    (Flatten, Dense, global pooling) see the whole input.
    """
    name = type(layer).__name__
    if field is None or name.startswith(("Global", "Flatten")) or name in ("Dense", "Reshape"):
        return None
    rh, rw, jh, jw = field
    cfg = layer.get_config()
    if "kernel_size" in cfg or "pool_size" in cfg:
        kh, kw = _pair(cfg.get("kernel_size", cfg.get("pool_size")))
        sh, sw = _pair(cfg.get("strides") or cfg.get("pool_size") or 1)
        dh, dw = _pair(cfg.get("dilation_rate", 1))
        if name.endswith("Transpose"):
            # A transposed convolution spreads each input over k outputs at 1/s spacing.
            return (
                rh + (kh - 1) * jh // sh,
                rw + (kw - 1) * jw // sw,
                max(jh // sh, 1),
                max(jw // sw, 1),
            )
        return (rh + (dh * (kh - 1)) * jh, rw + (dw * (kw - 1)) * jw, jh * sh, jw * sw)
    if name.startswith("UpSampling"):
        uh, uw = _pair(cfg.get("size", 2))
        return (rh, rw, max(jh // uh, 1), max(jw // uw, 1))
    return field


def _fields(model: keras.Model, start: _Field = (1, 1, 1, 1)) -> dict[int, _Field]:
    """Receptive field of every layer's output (by id), following the graph, nested bases too.

    Where branches meet (Add, Concatenate), the widest field and the largest jump win.
    """
    out: dict[int, _Field] = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            out[id(layer)] = start
            continue
        # The fields of this layer's inputs: the layers that produced them, in this graph.
        nodes = getattr(layer, "_inbound_nodes", [])
        parents = [t._keras_history.operation for t in nodes[0].input_tensors] if nodes else []  # noqa: SLF001
        ins = [out.get(id(p), start) for p in parents] or [start]
        field = (
            None
            if any(f is None for f in ins)
            else tuple(max(vals) for vals in zip(*ins, strict=True))
        )
        if isinstance(layer, keras.Model):
            inner = _fields(layer, field)
            out.update(inner)
            outputs = layer.outputs[0]._keras_history.operation  # noqa: SLF001
            out[id(layer)] = inner.get(id(outputs), field)
        else:
            out[id(layer)] = _layer_field(layer, field)
    return out


def _fmt_field(v: _Field, i: int) -> str:
    if v is None:
        return "whole input" if i == 0 else "—"
    a, b = v[i], v[i + 1]
    return str(a) if a == b else f"{a}×{b}"


def summary(model: str | keras.Model) -> list[dict]:
    """One row per layer, as Keras' model.summary(), plus receptive field and jump.

    Args:
        model: a registry name or a keras.Model (Sequential, Functional, nested).

    Returns:
        Dicts with keys: "layer" (path, "base/name" inside nested models), "type",
        "output_shape" (tuple, batch axis None), "params", "trainable", "depth",
        "receptive_field" (input pixels one output value sees) and "jump" (input pixels between
        neighbouring outputs), as text: "5", or "5×3" when height and width differ; after
        Flatten / Dense / global pooling the field is "whole input" and the jump "—".
    """
    from cnnviz.layers import iter_layers, list_layers

    net = resolve(model)[0]
    fields = _fields(net)
    layers = {path: layer for path, layer, _ in iter_layers(net)}
    rows = []
    for item in list_layers(net):
        layer = layers[item.path]
        field = fields.get(id(layer), (1, 1, 1, 1))
        image_like = item.output_shape is not None and len(item.output_shape) == 4
        rows.append(
            {
                "layer": item.path,
                "type": item.class_name,
                "output_shape": item.output_shape,
                "params": item.params,
                "trainable": bool(layer.trainable),
                "depth": item.depth,
                "receptive_field": _fmt_field(field, 0) if image_like or field is None else "",
                "jump": _fmt_field(field, 2) if image_like or field is None else "",
            }
        )
    return rows


def totals(model: str | keras.Model) -> dict[str, int]:
    """Total, trainable and non-trainable parameters (BatchNorm statistics are non-trainable)."""
    net = resolve(model)[0]
    trainable = sum(int(np.prod(w.shape)) for w in net.trainable_weights)
    total = int(net.count_params())
    return {"total": total, "trainable": trainable, "non_trainable": total - trainable}


def shape_flow(model: str | keras.Model) -> list[tuple[str, tuple]]:
    """(layer path, output shape without the batch axis), from "input" through every layer.

    Layers inside nested bases are listed in place of the base (their shapes are what flows).
    This is the 224×224×3 → 224×224×64 → 112×112×64 … picture of seed 004.
    """
    from cnnviz.layers import list_layers

    net = resolve(model)[0]
    flow = [("input", tuple(net.inputs[0].shape)[1:])]
    flow += [
        (item.path, tuple(item.output_shape)[1:])
        for item in list_layers(net)
        if not item.is_model and item.output_shape is not None
    ]
    return flow
