"""Feeding a model as it expects: info, resolve, preprocessing, predictions and top-k."""

from __future__ import annotations

import collections
import hashlib
import importlib
import threading
from collections.abc import Callable
from dataclasses import replace

import keras
import numpy as np

from cnnviz import images as _images
from cnnviz import userinput as _userinput
from cnnviz.models import loading
from cnnviz.models.applications import _imagenet_class_names
from cnnviz.models.errors import BlankImage, ModelError, ModelInfo, ModelOutputNotFinite
from cnnviz.models.registry import _Entry, _entry, _preprocessing_text, title

_PREDICT_BATCH = 64
# The last few preprocessed inputs: a page that writes the note and then feeds the same image
# (to a cached forward pass, Grad-CAM, a prediction) preprocesses it once per rerun.
_RECENT_SIZE = 4
_RECENT_MAX_BYTES = 8 * 2**20  # one picture, not a data set: a big batch is never kept
_recent: collections.OrderedDict[tuple, tuple[np.ndarray, list[str]]] = collections.OrderedDict()
_recent_lock = threading.Lock()


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


def info(model: str | keras.Model) -> ModelInfo:
    """What a model expects and answers: input shape, class names, random weights, a note.

    A registry name loads the model the first time, because an ImageNet fallback is only known
    then.
    A bare keras.Model gives name=model.name, its own input shape (None sides -> 224) and
    "class 0", ... names; a model this module handed out keeps its class names and note.
    """
    if isinstance(model, keras.Model):
        known = loading._known.get(model)
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
    if model not in loading._status:
        loading.load(model)  # the status is kept after the model leaves the cache: no rebuild
    random_weights, note = loading._status[model]
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
    """Apply the entry's preprocessing once per input; returns (float32 batch, notes).

    The same pixels given again (the next call of the same rerun) get a copy of the stored
    batch, so a caller may change what it receives.
    """
    raw = np.ascontiguousarray(images)
    if raw.nbytes > _RECENT_MAX_BYTES:
        return _preprocess(entry, raw, pictures)
    key = (
        entry.name,
        pictures,
        raw.shape,
        raw.dtype.str,
        hashlib.blake2b(raw.data, digest_size=16).digest(),
    )
    with _recent_lock:
        hit = _recent.get(key)
        if hit is not None:
            _recent.move_to_end(key)
            return hit[0].copy(), list(hit[1])
    x, notes = _preprocess(entry, raw, pictures)
    if x.nbytes > _RECENT_MAX_BYTES:
        return x, notes
    with _recent_lock:
        _recent[key] = (x.copy(), list(notes))
        while len(_recent) > _RECENT_SIZE:
            _recent.popitem(last=False)
    return x, notes


def _preprocess(
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


def _raw(images: np.ndarray) -> np.ndarray:
    x = np.asarray(images, np.float32)
    if x.ndim == 2:
        return x[None, :, :, None]
    return x[None] if x.ndim == 3 else x


def _fit_pictures(entry: _Entry, x: np.ndarray) -> tuple[np.ndarray, str | None]:
    """Users' pictures made like the entry's training data (`cnnviz.userinput`).

    Digits: every picture is normalised as MNIST (28×28 white on black; one already in that
    form is kept). Drawings: a picture more than twice the model's side (a canvas, a photo)
    is cropped to a square around the drawing; smaller ones are taken as framed.

    Raises:
        BlankImage: a picture with nothing in it.
    """
    planes = x[..., 0] if x.shape[-1] == 1 else x
    try:
        if entry.fit == "digit":
            fitted = np.stack([_userinput.digit_input(p) for p in planes])[..., None]
            same = fitted.shape == x.shape and np.array_equal(fitted, x)
            return fitted, None if same else (
                "normalised as MNIST (ink found against the paper, cropped, resized to fit "
                "20×20, centred by mass in 28×28, white on black)"
            )
        if max(x.shape[1:3]) <= 2 * max(entry.input_shape[:2]):
            return x, None
        side = entry.input_shape[:2]
        crops = [
            _images.resize(
                np.clip(np.rint(_userinput.drawing_input(p)), 0, 255).astype(np.uint8), side
            )
            for p in planes
        ]
    except _userinput.BlankPicture as err:
        raise BlankImage(str(err)) from None
    fitted = np.stack(crops)
    note = f"cropped to the drawing, resized to {side[1]}×{side[0]}"
    return (fitted[..., None] if fitted.ndim == 3 else fitted), note


def fit_picture(model: str | keras.Model, image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """One user's picture made like a built-in model's training data, as a uint8 picture.

    Digits: MNIST's 28×28 frame, white on black, (28, 28); shapes: a big canvas cropped to
    the drawing at 64×64. Other models, and pictures that need nothing, come back unchanged
    with None. Feeding the result again changes nothing more, so a page can show, overlay
    and explain exactly the picture the model reads.

    Returns:
        (picture, a sentence saying what was done, or None).

    Raises:
        BlankImage: a picture with nothing in it.
    """
    if isinstance(model, keras.Model):
        return image, None
    entry, _ = _entry(model)
    if entry.fit is None:
        return image, None
    x = _as_batch(image)
    if x.shape[0] != 1:
        raise ModelError(f"Expected one picture. Received a batch of shape {x.shape}.")
    x = x[..., :3] if x.shape[-1] == 4 else x
    fitted, note = _fit_pictures(entry, x)
    if note is None:
        return image, None
    out = np.clip(np.rint(fitted[0]), 0, 255).astype(np.uint8)
    return (out[..., 0] if out.shape[-1] == 1 else out), note


def resolve(
    model: str | keras.Model, *, pictures: bool = True
) -> tuple[keras.Model, Callable[[np.ndarray], np.ndarray]]:
    """THE rule for a `model` argument: (keras.Model, preprocessing function).

    Args:
        model: a registry name or a keras.Model.
        pictures: the images are users' pictures, so a built-in model first makes them like
            its training data (digits: MNIST's normalisation; shapes: a big canvas cropped to
            the drawing). False for arrays that already are model inputs (feature
            visualisation's probes and renders).

    Returns:
        For a name: the loaded model and a function mapping uint8 images (H, W[, 3]) or
        batches (N, H, W[, C]) to the float32 batch (N, h, w, c) the model expects. For a bare
        model: the model unchanged and `np.asarray(images, np.float32)` with a batch axis added
        to a single image ((H, W) -> (1, H, W, 1), (H, W, C) -> (1, H, W, C)).
    """
    if isinstance(model, keras.Model):
        return model, _raw
    entry, _ = _entry(model)
    net = loading.load(model)
    return net, lambda images: _prepare(entry, images, pictures)[0]


def prepare(model: str | keras.Model, images: np.ndarray) -> tuple[np.ndarray, str | None]:
    """The batch the model is fed and what was done to get it, from ONE preprocessing pass.

    Args:
        model: a registry name or a keras.Model.
        images: one image or a batch (see `resolve`).

    Returns:
        (float32 batch (N, h, w, c), a sentence such as "resized 150×100 → 64×64" or None).
        A bare keras.Model gets `resolve`'s unchanged float32 batch and None.
    """
    if isinstance(model, keras.Model):
        return _raw(images), None
    entry, _ = _entry(model)
    x, notes = _prepare(entry, images)
    return x, (", ".join(notes) if notes else None)


def prepare_note(model: str | keras.Model, image: np.ndarray) -> str | None:
    """What the preprocessing does to this image, in words (for pages to show), or None.

    A page that also feeds the image should call `prepare` once instead: it returns both.
    """
    return prepare(model, image)[1]


def check_finite(y: np.ndarray, what: str = "this model") -> np.ndarray:
    """`y` unchanged when every value is finite; else ModelOutputNotFinite.

    A model with overflowing weights or a huge rescaling answers NaN or inf; a page must say so
    instead of drawing a bar of NaN (st.progress(nan) raises).

    Raises:
        ModelOutputNotFinite: "this model produces NaN for this image" (or inf).
    """
    arr = np.asarray(y)
    if np.issubdtype(arr.dtype, np.number) and not np.isfinite(arr).all():
        kind = "NaN" if np.isnan(arr).any() else "inf"
        rows = arr.reshape(len(arr), -1) if arr.ndim >= 2 else arr.reshape(1, -1)
        bad = int((~np.isfinite(rows)).any(axis=1).sum())
        which = "this image" if len(rows) == 1 else f"{bad} of these {len(rows)} images"
        raise ModelOutputNotFinite(
            f"Expected finite outputs. Received {kind}: {what} produces {kind} for {which} "
            "(its weights or a layer overflow float32), so there is nothing to show."
        )
    return y


def to_probabilities(y: np.ndarray) -> np.ndarray:
    """Model outputs (N, k) -> probabilities: softmax when they are not already a distribution.

    A single sigmoid unit (N, 1) becomes two columns (1 - p, p).

    Raises:
        ModelError: the output is not (N, classes): the model has no classifier head.
        ModelOutputNotFinite: the output holds NaN or inf.
    """
    y = check_finite(np.asarray(y, np.float32))
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

    Raises:
        ModelOutputNotFinite: the model answers NaN or inf for an image.
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
