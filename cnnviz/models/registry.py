"""The registry: built-in, lecture and ImageNet entries, their names, titles and facts.

The built-in models' facts (input shape, preprocessing, class names) live here once, in
`BUILTINS`; `cnnviz.train` reads them from there when it trains and writes a model card.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras

from cnnviz.models.errors import ModelError, ModelUnavailable

#: Where the shipped models and their model cards live.
ASSETS = Path(__file__).resolve().parents[2] / "assets" / "models"
RANDOM_PREFIX = "random:"
LECTURE_PREFIX = "lecture:"


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
    # normalisation) or "drawing" (a big canvas cropped to the drawing); None: as they are.
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


@dataclass(frozen=True)
class BuiltinFacts:
    """What a built-in model takes and answers: the one source for the registry and the trainer.

    `cnnviz.train` builds, trains and writes the model card from these; the registry feeds
    images to the shipped model by them.
    """

    name: str
    title: str
    input_shape: tuple[int, int, int]
    dataset_classes: str  # the cnnviz.datasets list of class names the generator draws
    invert_dark: bool  # digits: flip dark-on-light images to MNIST's white-on-black
    note: str  # what a good input looks like, for the model card
    fit: str | None  # how users' pictures are made like the training data (see _Entry.fit)
    # The images go in as 0..255 floats; the model rescales inside (a Rescaling(1/255) layer).
    scale: str = "raw"

    def default_classes(self) -> list[str]:
        """The generator's class names (what a freshly trained model answers)."""
        datasets = importlib.import_module("cnnviz.datasets")
        return list(getattr(datasets, self.dataset_classes))

    def classes(self) -> list[str]:
        """The shipped model's class names: its model card's, else the generator's."""
        return _card_classes(self.name, self.default_classes())

    def card_preprocessing(self) -> dict:
        """The model card's "preprocessing" block."""
        return {
            "color": "gray" if self.input_shape[2] == 1 else "rgb",
            "range": [0, 255],
            "resize": list(self.input_shape[:2]),
            "invert_dark_on_light": self.invert_dark,
            "rescaling": "inside the model (Rescaling 1/255)",
            "note": self.note,
        }


# What `fit` does to a user's picture, in words (the model card and `info().preprocessing`).
_FIT_TEXT = {
    "digit": "cnnviz.userinput.digit_input: normalised as MNIST (ink found against the "
    "paper's level at the border, soft threshold, crop to the ink, fitted into 20×20, centre "
    "of mass at (14, 14) of 28×28); a digit already in that form goes in unchanged",
    "drawing": "cnnviz.userinput.drawing_input: a picture over twice the input's side is "
    "cropped to a square around the drawing (the drawing spans 60 % of it)",
}


#: The built-in, project-trained models' facts.
BUILTINS = {
    "digits": BuiltinFacts(
        name="digits",
        title="Digits CNN (built-in, 28×28 gray)",
        input_shape=(28, 28, 1),
        dataset_classes="DIGIT_CLASSES",
        invert_dark=True,
        note="White digit on a black background, its ink box fitted into 20×20 and its "
        "centre of mass at (14, 14) of 28×28, exactly like MNIST. Any picture is made so first "
        "(cnnviz.userinput.digit_input: ink found against the paper's level at the border, in "
        "either polarity, soft threshold, crop to the ink); a digit already in that form goes "
        "in unchanged.",
        fit="digit",
    ),
    "shapes": BuiltinFacts(
        name="shapes",
        title="Shapes CNN (built-in, 64×64 colour)",
        input_shape=(64, 64, 3),
        dataset_classes="SHAPE_CLASSES",
        invert_dark=False,
        note="One drawn object per picture (filled, pen outline or doodle; dark on light "
        "paper or a screen, or light on dark), filling 15-80 % of the frame.",
        fit="drawing",
    ),
}


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
    from cnnviz.models.applications import _imagenet_class_names

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
            facts.name,
            facts.title,
            "built-in",
            facts.input_shape,
            facts.scale,
            lambda name=facts.name: _load_builtin(name),
            facts.classes,
            invert_dark=facts.invert_dark,
            fit=facts.fit,
        )
        for facts in BUILTINS.values()
    ]
    entries += [
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


def _preprocessing_text(entry: _Entry) -> str:
    steps = [_FIT_TEXT[entry.fit].split(": ", 1)[1]] if entry.fit else []
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
