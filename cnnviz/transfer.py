"""Transfer learning: a new classifier head on the convolutional part of a trained network.

Seed 001 ends with "Transfer Learning from Famous Pre-trained Networks" and seed 003 with a
frozen VGG16 base on cats vs dogs, then fine-tuning. `build` makes the three models a student
compares, following the Keras guide "Transfer learning & fine-tuning":

- ``"frozen"``: the base's weights are copied and never change (``trainable=False``, and the
  base runs in inference mode, so batch-norm statistics stay put); only the head learns;
- ``"finetune"``: the same copy, but the layers from ``finetune_from`` on learn too, with a
  ten times lower learning rate (`FINETUNE_LEARNING_RATE`) so the pre-trained filters are
  adjusted, not destroyed;
- ``"scratch"``: the same architecture with fresh random weights, everything learns.

The model is built on a copy (`keras.models.clone_model` + `set_weights`): the shared cached
model that `cnnviz.models.load` hands out is never changed. The base's preprocessing goes
inside the new model (a fixed 1×1 convolution for the per-channel affine maps of
keras.applications' ``preprocess_input``), so the result takes 0..255 pixels like the
built-ins and every other page can feed and explain it as a bare keras.Model.

Layout of a built model (Functional): ``input`` → [``preprocess``] → ``base`` (a nested model,
the copied convolutional part) → ``gap`` (GlobalAveragePooling2D) → ``predictions``
(Dense softmax). It is returned compiled (Adam, sparse categorical cross-entropy, accuracy),
so `cnnviz.train.train_model` keeps the mode's learning rate.
"""

from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Callable
from typing import NamedTuple

import keras
import numpy as np

from cnnviz import layers as cnn_layers
from cnnviz import models

__all__ = [
    "TransferError",
    "MODES",
    "HEAD_LEARNING_RATE",
    "FINETUNE_LEARNING_RATE",
    "learning_rate",
    "cut_layer",
    "build",
    "base_of",
    "fit",
    "NovelTask",
    "novel_task",
    "compare",
    "OwnData",
    "MAX_OWN_CLASSES",
    "MAX_IMAGES_PER_CLASS",
    "own_classes",
    "near_chance",
    "export",
    "PhotoError",
    "CATS_DOGS_URL",
    "cats_vs_dogs",
    "folder_task",
]

MODES = ("frozen", "finetune", "scratch")
#: Adam's step size for a head on a frozen base, and for a network trained from scratch.
HEAD_LEARNING_RATE = 1e-3
#: Fine-tuning moves pre-trained weights: ten times smaller steps (the Keras guide uses 1e-5
#: after a 1e-3 head phase; one phase at 1e-4 trains a small head too in a few epochs).
FINETUNE_LEARNING_RATE = 1e-4
#: keras.applications bases that can be rebuilt at another input size (96–160 px is quick).
_RESIZABLE = {"mobilenet_v2": "MobileNetV2"}
_MAX_CLASSES = 1000


class TransferError(ValueError):
    """A base, mode, layer or class count that cannot be used; the message says what was expected."""


def learning_rate(mode: str) -> float:
    """The Adam learning rate `build` compiles a model of this mode with."""
    _check_mode(mode)
    return FINETUNE_LEARNING_RATE if mode == "finetune" else HEAD_LEARNING_RATE


def _check_mode(mode: object) -> None:
    if mode not in MODES:
        raise TransferError(
            f"Expected mode to be one of {', '.join(MODES)}. Received mode={mode!r}."
        )


def cut_layer(model: keras.Model) -> str:
    """Where the convolutional part ends: the last layer with a spatial (4-D) output that
    follows the last convolution (its batch norm and activation included), before any global
    pooling, flatten or dense layer.

    Raises:
        TransferError: the model has no convolution layer.
    """
    infos = cnn_layers.list_layers(model)
    conv = [i for i, info in enumerate(infos) if info.is_conv and info.depth == 0]
    if not conv:
        raise TransferError(
            f"Expected a base with a convolution layer at its top level. Model {model.name!r} has none."
        )
    end = conv[-1]
    for j in range(end + 1, len(infos)):
        shape = infos[j].output_shape
        if infos[j].depth != 0:
            continue
        if shape is None or len(shape) != 4:
            break
        end = j
    return infos[end].path


def _affine_preprocess(name: str, channels: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The registry entry's preprocessing as a per-pixel affine map y = x @ A + b, or None when
    it is the identity (a built-in rescales inside) or not affine (then the caller feeds as is).

    Found by probing `models.resolve(name)`'s preprocess with constant images, the public way
    the zoo says how it feeds a model, and checked on a random image.
    """
    _, pre = models.resolve(name)
    if channels != 3:
        return None  # gray bases (digits): their fed images are converted by the pages

    def at(img: np.ndarray) -> np.ndarray:
        return np.asarray(pre(img), np.float64)[0, 0, 0]

    zero = np.zeros((8, 8, 3), np.uint8)
    b = at(zero)
    a = np.stack([(at(zero + np.eye(3, dtype=np.uint8)[j] * 100) - b) / 100 for j in range(3)])
    rng = np.random.default_rng(0)
    probe = rng.integers(0, 256, (3,), dtype=np.uint8)
    if not np.allclose(at(np.broadcast_to(probe, (8, 8, 3)).copy()), probe @ a + b, atol=1e-3):
        return None
    if np.allclose(a, np.eye(3)) and np.allclose(b, 0):
        return None
    return a.astype(np.float32), b.astype(np.float32)


def _features(base: keras.Model) -> keras.Model:
    """A new model from the base's input to its cut layer; it still shares the base's layers."""
    return cnn_layers.feature_model(base, [cut_layer(base)], include_output=False)


#: Batch-norm momentum of a network trained from scratch here. Keras' 0.99 makes the moving
#: statistics lag far behind a fast-changing fresh network in a few hundred steps (measured:
#: 82 % training but 25 % held-out accuracy after 200 steps); 0.9 follows it.
SCRATCH_BN_MOMENTUM = 0.9


def _fresh_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
    config = layer.get_config()
    if isinstance(layer, keras.layers.BatchNormalization):
        config["momentum"] = SCRATCH_BN_MOMENTUM
    return layer.__class__.from_config(config)


def _copy(features: keras.Model, *, weights: bool) -> keras.Model:
    """An independent copy (new layers, new variables); with `weights`, the same values,
    without, freshly initialised (and quicker batch-norm statistics, see above)."""
    clone = keras.models.clone_model(features, clone_function=None if weights else _fresh_layer)
    if weights:
        clone.set_weights(features.get_weights())
    return clone


def _resized_application(name: str, side: int) -> keras.Model:
    """A keras.applications base rebuilt at side×side, with the loaded model's weights copied by
    layer name (convolution weights do not depend on the picture size)."""
    builder = getattr(keras.applications, _RESIZABLE[name])
    shared = models.load(name)
    fresh = builder(weights=None, include_top=False, input_shape=(side, side, 3))
    for layer in fresh.layers:
        if layer.weights:
            layer.set_weights(shared.get_layer(layer.name).get_weights())
    return fresh


def build(
    base: str | keras.Model,
    n_classes: int,
    *,
    mode: str = "frozen",
    finetune_from: str | None = None,
    input_size: int | None = None,
) -> keras.Model:
    """A new GAP + Dense softmax head on a copy of a base's convolutional part.

    Args:
        base: a registry name ("shapes", "digits", "mobilenet_v2", ...), which brings its own
            preprocessing (built into the new model), or a keras.Model fed as it is.
        n_classes: number of output classes, 2..1000.
        mode: "frozen", "finetune" or "scratch" (see the module docstring).
        finetune_from: "finetune" only: the name of the first base layer that learns (default:
            the last convolution layer). Layers before it stay frozen.
        input_size: "mobilenet_v2" only: rebuild it at input_size×input_size (32..224).

    Returns:
        A compiled keras.Model, input (H, W, C) 0..255 pixels, output (N, n_classes)
        probabilities; its nested base is `base_of(model)`.

    Raises:
        TransferError: bad mode, class count, layer name or size.
        cnnviz.models.ModelError: unknown registry name or a model that cannot be loaded.
    """
    _check_mode(mode)
    if isinstance(n_classes, bool) or not isinstance(n_classes, int | np.integer):
        raise TransferError(f"Expected n_classes to be an integer. Received {n_classes!r}.")
    if not 2 <= n_classes <= _MAX_CLASSES:
        raise TransferError(
            f"Expected n_classes between 2 and {_MAX_CLASSES}. Received n_classes={n_classes}."
        )
    if finetune_from is not None and mode != "finetune":
        raise TransferError(
            f"finetune_from is for mode='finetune' only. Received mode={mode!r}, "
            f"finetune_from={finetune_from!r}."
        )
    if not isinstance(base, str | keras.Model):
        raise TransferError(
            f"Expected base to be a registry name or a keras.Model. Received {type(base).__name__}."
        )
    if input_size is not None and (not isinstance(base, str) or base not in _RESIZABLE):
        raise TransferError(
            f"input_size works for {', '.join(_RESIZABLE)} only. Received base={base!r}."
        )
    if input_size is not None and not (isinstance(input_size, int) and 32 <= input_size <= 224):
        raise TransferError(f"Expected input_size between 32 and 224. Received {input_size!r}.")

    # 1. The convolutional part of the base, as an independent copy (the shared model stays).
    if isinstance(base, str):
        if input_size is not None:
            features = _resized_application(base, input_size)  # already a fresh model
        else:
            features = _features(models.load(base))
        source_name = base
    else:
        features = _features(base)
        source_name = base.name
    copied = _copy(features, weights=mode != "scratch")
    # One nested model named "base" over the copied layers (a name the pages can find).
    copy = keras.Model(copied.inputs[0], copied.outputs[0], name="base")
    shape = tuple(copy.input_shape[1:])
    affine = _affine_preprocess(base, shape[-1]) if isinstance(base, str) else None

    # 2. Which layers learn.
    if mode == "frozen":
        copy.trainable = False
    elif mode == "finetune":
        names = [layer.name for layer in copy.layers]
        start = finetune_from or cnn_layers.last_conv_layer(copy).split("/")[-1]
        if start not in names:
            raise TransferError(
                f"Unknown layer {start!r} for finetune_from. Expected one of the base's "
                f"layers: {', '.join(n for n in names[1:])}."
            )
        first = names.index(start)
        for i, layer in enumerate(copy.layers):
            layer.trainable = i >= first

    # 3. The new model: preprocessing inside, the base, then the new head.
    inputs = keras.Input(shape=shape, name="input")
    x = inputs
    if affine is not None:
        a, b = affine
        pre = keras.layers.Conv2D(3, 1, name="preprocess", trainable=False)
        x = pre(x)
        pre.set_weights([a[None, None], b])
    # Frozen and fine-tuned bases run in inference mode: batch norm keeps the base's statistics
    # (the Keras guide's advice); a scratch network trains its batch norm as usual.
    x = copy(x, training=False) if mode != "scratch" else copy(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name=f"{_safe(source_name)}_{mode}_{n_classes}")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate(mode)),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)[:40]


def base_of(model: keras.Model) -> keras.Model:
    """The nested base (the copied convolutional part) of a model `build` made."""
    try:
        return model.get_layer("base")
    except ValueError:
        raise TransferError(
            f"Expected a model made by cnnviz.transfer.build. Model {model.name!r} has no 'base'."
        ) from None


def fit(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int = 10,
    batch_size: int = 32,
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    progress: Callable[[int, dict[str, float]], None] | None = None,
    stop: Callable[[], bool] | None = None,
    max_steps: int | None = None,
) -> dict[str, list[float]]:
    """Train a built model with `cnnviz.train.train_model` (curves, Stop, CNNVIZ_MAX_STEPS).

    Labels must lie in 0..n_classes-1; the model keeps the learning rate `build` chose.

    Returns:
        The per-epoch history ("loss", "accuracy", "val_loss", "val_accuracy").
    """
    from cnnviz.train import train_model  # noqa: PLC0415 (train imports the registry)

    y = np.asarray(y)
    n = int(model.output_shape[-1])
    if y.size and (y.min() < 0 or y.max() >= n):
        raise TransferError(
            f"Expected labels in 0..{n - 1} for this {n}-class model. "
            f"Received labels {int(y.min())}..{int(y.max())}."
        )
    return train_model(
        model,
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=validation_data,
        progress=progress,
        stop=stop,
        max_steps=max_steps,
    )


# ------------------------------------------------------------------ the seeds' experiment


class NovelTask(NamedTuple):
    """Few-shot data for new classes: train, validation (curves) and held-out (the table)."""

    x: np.ndarray
    y: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]


#: Seeds of the validation and held-out sets: far from any training seed.
VAL_SEED, TEST_SEED = 20_001, 20_002


def novel_task(
    per_class: int, *, seed: int = 0, n_val: int = 100, n_test: int = 400, size: int = 64
) -> NovelTask:
    """The new-classes task: `per_class` pictures of each `datasets.NOVEL_CLASSES` shape to
    learn from, a validation set for the curves and a fixed, seeded held-out set (the same for
    every `per_class` and `seed`, so the numbers compare)."""
    from cnnviz import datasets  # noqa: PLC0415

    if isinstance(per_class, bool) or not isinstance(per_class, int) or not 1 <= per_class <= 5000:
        raise TransferError(f"Expected per_class between 1 and 5000. Received {per_class!r}.")
    k = len(datasets.NOVEL_CLASSES)
    x, y = datasets.novel_shapes(per_class * k, seed=seed, size=size)
    xv, yv = datasets.novel_shapes(n_val, seed=VAL_SEED, size=size)
    xt, yt = datasets.novel_shapes(n_test, seed=TEST_SEED, size=size)
    f = np.float32
    return NovelTask(
        x.astype(f), y, xv.astype(f), yv, xt.astype(f), yt, list(datasets.NOVEL_CLASSES)
    )


def _head_only(model: keras.Model, lr: float) -> list[bool]:
    """Phase 1 of fine-tuning: the base frozen, the head at lr; returns the base's per-layer
    trainable flags for phase 2."""
    base = base_of(model)
    flags = [layer.trainable for layer in base.layers]
    base.trainable = False
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return flags


def _unfreeze(model: keras.Model, flags: list[bool]) -> None:
    """Phase 2: the layers `build` made trainable learn again, at the fine-tuning rate."""
    base = base_of(model)
    base.trainable = True
    for layer, flag in zip(base.layers, flags, strict=True):
        layer.trainable = flag
    model.compile(
        optimizer=keras.optimizers.Adam(FINETUNE_LEARNING_RATE),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )


def _epochs_for(n: int, batch_size: int, steps: int) -> int:
    # The same number of gradient steps for every data size (small sets get more epochs).
    return max(1, math.ceil(steps / math.ceil(n / batch_size)))


def compare(
    base: str | keras.Model,
    task: NovelTask,
    *,
    modes: tuple[str, ...] = ("scratch", "frozen", "finetune"),
    steps: int = 200,
    batch_size: int = 16,
    seed: int = 0,
    progress: Callable[[str, int, int, dict[str, float]], None] | None = None,
    stop: Callable[[], bool] | None = None,
    max_steps: int | None = None,
    validate: bool = True,
    input_size: int | None = None,
) -> dict[str, dict]:
    """Train one model per mode on the task and measure it on the held-out set.

    Every mode gets the same seed, the same data and the same number of gradient steps.

    Args:
        input_size: passed to `build` (MobileNetV2 at the task's picture size).
        validate: measure the validation set after every epoch (the curves); a benchmark
            that only needs the final table can skip it.
        progress: called as progress(mode, epoch, epochs, logs) after each epoch.

    Returns:
        {mode: {"history": per-epoch curves, "accuracy": held-out accuracy, "model": model}}.
    """
    from cnnviz.train import evaluate  # noqa: PLC0415

    for mode in modes:
        _check_mode(mode)
    if not isinstance(steps, int) or steps < 1:
        raise TransferError(f"Expected steps to be a positive integer. Received {steps!r}.")
    epochs = _epochs_for(len(task.x), batch_size, steps)
    results: dict[str, dict] = {}
    for mode in modes:
        keras.utils.set_random_seed(seed)
        model = build(base, len(task.classes), mode=mode, input_size=input_size)
        # Fine-tuning follows the Keras guide's two phases: first the new head alone on the
        # frozen base (a random head would send large gradients into the pre-trained layers),
        # then the unfrozen layers too, at the lower rate. Half of the steps each.
        phases = [(epochs, None)]
        if mode == "finetune":
            first = max(1, epochs // 2)
            phases = [(first, HEAD_LEARNING_RATE), (max(1, epochs - first), None)]
        history: dict[str, list[float]] = {}
        done, flags = 0, None
        for n_epochs, head_lr in phases:
            if head_lr is not None:
                flags = _head_only(model, head_lr)
            elif flags is not None:
                _unfreeze(model, flags)
            part = fit(
                model,
                task.x,
                task.y,
                epochs=n_epochs,
                batch_size=batch_size,
                validation_data=(task.x_val, task.y_val) if validate else None,
                progress=None
                if progress is None
                else (lambda e, logs, m=mode, d=done: progress(m, d + e, epochs, logs)),
                stop=stop,
                max_steps=max_steps,
            )
            for key, values in part.items():
                history.setdefault(key, []).extend(values)
            done += n_epochs
            if stop is not None and stop():
                break
        results[mode] = {
            "history": history,
            "accuracy": evaluate(model, task.x_test, task.y_test),
            "model": model,
        }
        if stop is not None and stop():
            break
    return results


# ------------------------------------------------------------------ your own classes


MIN_OWN_CLASSES, MAX_OWN_CLASSES = 2, 5
#: A handful to a few dozen pictures per class (bounded: every picture is held in memory).
MIN_IMAGES_PER_CLASS, MAX_IMAGES_PER_CLASS = 2, 60
_MAX_NAME = 40


class OwnData(NamedTuple):
    """A student's classes, resized for the base: train and validation split per class."""

    x: np.ndarray
    y: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    classes: list[str]


def own_classes(
    pictures: dict[str, list[np.ndarray]], input_shape: tuple[int, int, int], *, seed: int = 0
) -> OwnData:
    """Turn {class name: [RGB uint8 pictures]} into training data for a base's input.

    Each picture is resized to the base's input (Pillow bicubic) and, for a gray base, turned
    gray. One picture in five of each class (at least one) is kept back for validation, so a
    class needs two pictures at least.

    Raises:
        TransferError: fewer than 2 or more than 5 classes, an empty or repeated name, a class
            with fewer than 2 or more than `MAX_IMAGES_PER_CLASS` pictures, or a picture that
            is not an (H, W, 3) uint8 array.
    """
    from cnnviz import images  # noqa: PLC0415

    names = [str(n).strip() for n in pictures]
    if not MIN_OWN_CLASSES <= len(names) <= MAX_OWN_CLASSES:
        raise TransferError(
            f"Expected {MIN_OWN_CLASSES} to {MAX_OWN_CLASSES} classes. Received {len(names)}."
        )
    if any(not n for n in names) or len({n.lower() for n in names}) != len(names):
        raise TransferError("Expected every class to have its own, non-empty name.")
    if any(len(n) > _MAX_NAME for n in names):
        raise TransferError(f"Expected class names of at most {_MAX_NAME} characters.")
    h, w, c = input_shape
    rng = np.random.default_rng(seed)
    xs, ys, xv, yv = [], [], [], []
    for label, (name, pics) in enumerate(zip(names, pictures.values(), strict=True)):
        if len(pics) < MIN_IMAGES_PER_CLASS:
            raise TransferError(
                f"Class {name!r} has {len(pics)} picture(s). Expected at least "
                f"{MIN_IMAGES_PER_CLASS}: one to learn from and one to check the model on."
            )
        if len(pics) > MAX_IMAGES_PER_CLASS:
            raise TransferError(
                f"Class {name!r} has {len(pics)} pictures. Expected at most {MAX_IMAGES_PER_CLASS}."
            )
        fitted = []
        for pic in pics:
            pic = np.asarray(pic)
            if pic.dtype != np.uint8 or pic.ndim != 3 or pic.shape[2] != 3:
                raise TransferError(
                    f"Expected (H, W, 3) uint8 pictures in class {name!r}. "
                    f"Received {pic.dtype} {pic.shape}."
                )
            pic = images.resize(pic, (h, w))
            fitted.append(images.to_gray(pic)[..., None] if c == 1 else pic)
        order = rng.permutation(len(fitted))
        n_val = max(1, len(fitted) // 5)
        for i, j in enumerate(order):
            (xv if i < n_val else xs).append(fitted[j])
            (yv if i < n_val else ys).append(label)
    f = np.float32
    return OwnData(
        np.stack(xs).astype(f), np.array(ys), np.stack(xv).astype(f), np.array(yv), names
    )


def near_chance(accuracy: float, n_classes: int, n_val: int) -> bool:
    """True when a validation accuracy is within two standard errors of guessing.

    Guessing among k classes scores 1/k on average, with a binomial standard error of
    sqrt(p (1 - p) / n) on n validation pictures.
    """
    p = 1.0 / n_classes
    return accuracy <= p + 2 * math.sqrt(p * (1 - p) / max(1, n_val))


def export(model: keras.Model, class_names: list[str]) -> tuple[bytes, bytes]:
    """The model as a `.keras` file and its class names as JSON (output index → name).

    Keras' format has no field for class names, so they travel next to it, in the form of
    the built-in models' cards ({"classes": [...], "input_shape": [...]}).
    """
    import json  # noqa: PLC0415
    import tempfile  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    if len(class_names) != int(model.output_shape[-1]):
        raise TransferError(
            f"Expected {model.output_shape[-1]} class names. Received {len(class_names)}."
        )
    # The same layers in an uncompiled model: no optimizer in the file (an upload of it must
    # pass `models.load_uploaded`, which refuses optimizer objects), and the model is unchanged.
    plain = keras.Model(model.inputs, model.outputs, name=model.name)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        plain.save(path)
        data = path.read_bytes()
    card = {
        "name": model.name,
        "classes": list(class_names),
        "input_shape": list(model.input_shape[1:]),
        "preprocessing": {"range": [0, 255], "rescaling": "inside the model"},
    }
    return data, json.dumps(card, indent=2).encode()


# ------------------------------------------------------------------ photos: cats vs dogs, a zip


class PhotoError(TransferError):
    """Photos that cannot be had (offline, a zip without two class folders); says what to do."""


#: Seed 003's data (and the Keras / TensorFlow transfer-learning tutorials'): 2,000 training
#: and 1,000 validation JPEGs of cats and dogs from the Kaggle competition, 68 MB.
CATS_DOGS_URL = "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip"
_CATS_DOGS_FILE = "cats_and_dogs_filtered.zip"
_CATS_DOGS_CLASSES = ("cats", "dogs")
#: Held-out pictures per class (from the zip's validation folder: never trained on).
CATS_DOGS_TEST, CATS_DOGS_VAL = 100, 25
_MAX_PHOTOS_PER_CLASS = 500


def _read_members(
    archive: zipfile.ZipFile, names: list[str], size: tuple[int, int]
) -> list[np.ndarray]:
    """Decode zip members as hostile pictures (size caps, content sniffing) at `size`."""
    from cnnviz import images, imageset  # noqa: PLC0415

    out = []
    for name in names:
        info = archive.getinfo(name)
        if info.file_size > imageset.MAX_MEMBER_BYTES:
            raise PhotoError(f"Refused: {name[:80]!r} declares {info.file_size / 2**20:.1f} MB.")
        with archive.open(info) as f:
            raw = f.read(info.file_size + 1)  # one byte more than declared: a liar is caught
        if len(raw) > info.file_size:
            raise PhotoError(f"Refused: {name[:80]!r} is bigger than it declares.")
        try:
            out.append(images.resize(images.load_image(raw), size))
        except images.ImageError as err:
            raise PhotoError(f"Refused: {name[:80]!r}: {err}") from None
    return out


def cats_vs_dogs(
    per_class: int,
    *,
    size: int = 128,
    seed: int = 0,
    url: str = CATS_DOGS_URL,
    cache_dir: str | None = None,
) -> NovelTask:
    """Seed 003's cats vs dogs as a few-shot task: `per_class` training photos of each.

    The zip is downloaded once with `keras.utils.get_file` into Keras' cache (~/.keras/datasets,
    or `cache_dir`) under the model loader's short socket timeout, so an offline machine gets a
    PhotoError in seconds, never a hang. It is read in place (never extracted to disk), and only
    the photos used are decoded, each as a hostile picture. Training photos are drawn with
    `seed` from the zip's train folder; the validation (`CATS_DOGS_VAL` per class) and held-out
    (`CATS_DOGS_TEST` per class) photos are fixed, from its validation folder.

    Raises:
        PhotoError: the download failed, or the file is not the expected zip.
        TransferError: per_class or size out of range.
    """
    from keras.utils import get_file  # noqa: PLC0415

    from cnnviz.models.applications import _short_socket_timeout  # noqa: PLC0415

    if isinstance(per_class, bool) or not isinstance(per_class, int):
        raise TransferError(f"Expected per_class to be an integer. Received {per_class!r}.")
    if not 1 <= per_class <= _MAX_PHOTOS_PER_CLASS:
        raise TransferError(
            f"Expected per_class between 1 and {_MAX_PHOTOS_PER_CLASS}. Received {per_class}."
        )
    if isinstance(size, bool) or not isinstance(size, int) or not 32 <= size <= 224:
        raise TransferError(f"Expected size between 32 and 224. Received {size!r}.")
    if cache_dir is not None:
        # Keras falls back to /tmp/.keras when the folder is missing (not writable).
        os.makedirs(cache_dir, exist_ok=True)
    try:
        with _short_socket_timeout():
            path = get_file(_CATS_DOGS_FILE, url, cache_dir=cache_dir, cache_subdir="datasets")
    except Exception as err:  # noqa: BLE001 - keras raises a bare Exception on URL failures
        raise PhotoError(
            f"Could not download seed 003's cats-vs-dogs photos from {url} "
            f"({type(err).__name__}: {str(err)[:160]}). No network here? Upload a zip with "
            "two class folders instead, or use the offline shapes experiment."
        ) from None
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise PhotoError(
            f"{path} is not the cats-vs-dogs zip ({err}). Delete it and retry."
        ) from None
    rng = np.random.default_rng(seed)
    parts: dict[str, list] = {"train": [], "val": [], "test": []}
    with archive:
        names = archive.namelist()
        for label, cls in enumerate(_CATS_DOGS_CLASSES):

            def folder(split: str, c: str = cls) -> list[str]:
                return sorted(
                    n
                    for n in names
                    if f"/{split}/{c}/" in f"/{n}" and n.lower().endswith((".jpg", ".jpeg"))
                )

            train, valid = folder("train"), folder("validation")
            if len(train) < per_class or len(valid) < CATS_DOGS_TEST + CATS_DOGS_VAL:
                raise PhotoError(
                    f"Expected the zip to hold {per_class} training and "
                    f"{CATS_DOGS_TEST + CATS_DOGS_VAL} validation photos of {cls}. "
                    f"Found {len(train)} and {len(valid)}."
                )
            chosen = [train[i] for i in sorted(rng.choice(len(train), per_class, replace=False))]
            for key, members in (
                ("train", chosen),
                ("test", valid[:CATS_DOGS_TEST]),
                ("val", valid[CATS_DOGS_TEST : CATS_DOGS_TEST + CATS_DOGS_VAL]),
            ):
                parts[key] += [(p, label) for p in _read_members(archive, members, (size, size))]

    def stack(key: str) -> tuple[np.ndarray, np.ndarray]:
        pics, labels = zip(*parts[key], strict=True)
        return np.stack(pics).astype(np.float32), np.array(labels)

    (x, y), (xv, yv), (xt, yt) = stack("train"), stack("val"), stack("test")
    return NovelTask(x, y, xv, yv, xt, yt, ["cat", "dog"])


def folder_task(
    pictures: np.ndarray,
    folders: list[str],
    per_class: int,
    *,
    seed: int = 0,
    test_fraction: float = 0.25,
) -> NovelTask:
    """A few-shot task from pictures sorted into class folders (an uploaded zip).

    A class is a folder's last name, so ``train/cats`` and ``validation/cats`` (seed 003's
    layout) are one class, "cats". Per class, a fixed `test_fraction` (at least one picture,
    drawn with a fixed seed) is held out; it is also the validation set of the curves. The
    `per_class` training pictures are drawn with `seed` from the rest (all of it if fewer).

    Args:
        pictures: (N, H, W, 3) uint8, already the base's size (`imageset.load_zip(size=...)`).
        folders: (N,) each picture's folder path inside the zip.

    Raises:
        PhotoError: not 2..5 classes, or a class with fewer than 2 pictures.
    """
    pictures = np.asarray(pictures)
    leaves = [str(f).rstrip("/").rsplit("/", 1)[-1] for f in folders]
    classes = sorted(set(leaves) - {""})
    if len(leaves) != len(pictures) or "" in leaves:
        raise PhotoError(
            "Expected every picture inside a class folder (cats/1.jpg, dogs/2.jpg). "
            "Some lie at the top of the zip."
        )
    if not MIN_OWN_CLASSES <= len(classes) <= MAX_OWN_CLASSES:
        raise PhotoError(
            f"Expected {MIN_OWN_CLASSES} to {MAX_OWN_CLASSES} class folders in the zip. "
            f"Found {len(classes)}: {', '.join(classes[:8]) or 'none'}."
        )
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise TransferError(f"Expected per_class to be a positive integer. Received {per_class!r}.")
    labels = np.array([classes.index(leaf) for leaf in leaves])
    fixed, rng = np.random.default_rng(TEST_SEED), np.random.default_rng(seed)
    train, test = [], []
    for label, cls in enumerate(classes):
        idx = fixed.permutation(np.flatnonzero(labels == label))
        if len(idx) < 2:
            raise PhotoError(
                f"Class folder {cls!r} has {len(idx)} picture(s). Expected at least 2: one to "
                "learn from and one to check the model on."
            )
        n_test = max(1, round(len(idx) * test_fraction))
        test += idx[:n_test].tolist()
        rest = idx[n_test:]
        train += rng.choice(rest, min(per_class, len(rest)), replace=False).tolist()
    f = np.float32
    x, y = pictures[train].astype(f), labels[train]
    xt, yt = pictures[test].astype(f), labels[test]
    return NovelTask(x, y, xt, yt, xt, yt, classes)
