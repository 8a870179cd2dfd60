"""The shared model picker and the model caches of the Inside-a-CNN pages.

Pages that need a model call `current_model()` once per run: it draws the sidebar picker
(built-ins first, lecture architectures, ImageNet models, a "random weights" switch, an upload
box and any session-trained model) and returns `(name_or_model, info)`. The choice lives in
`st.session_state["model.name"]`, so it persists when the student switches lesson. Importing
this module imports TensorFlow: pages that need no model must not import it.

Values of "model.name": a registry name ("shapes", "random:vgg16"), "upload" (this session's
uploaded .keras model) or "session:NAME" (a model trained on the Train page).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import threading
from collections.abc import Callable

import keras
import numpy as np
import streamlit as st

from cnnviz import images, models, prefetch
from cnnviz.ui import params
from cnnviz.ui.slots import heavy_slot
from cnnviz.ui.widgets import md_code

__all__ = [
    "KEY",
    "cached_model",
    "model_picker",
    "current_model",
    "model_note",
    "register_session_model",
    "model_samples",
    "model_generator",
    "fit_image",
    "default_model",
    "model_summary",
]

#: Session-state key of the shared choice.
KEY = "model.name"
_SESSION = "model._session_models"  # {name: keras.Model} trained on the Train page
_SESSION_CLASSES = "model._session_classes"  # {name: [class names]} of those models
_UPLOAD = "model._uploaded"  # (file name, sha256, keras.Model) of this session's upload
_IMAGENET = frozenset(models.imagenet_names())
_UPLOAD_PREFIX = "upload"
_SESSION_PREFIX = "session:"


@st.cache_resource(max_entries=3, ttl=3600, show_spinner=False)
def cached_model(name: str) -> keras.Model:
    """A registry model, loaded once and shared read-only by every session (a few at a time)."""
    return models.load(name)


@st.cache_resource(max_entries=2, ttl=3600, show_spinner=False)
def _uploaded(digest: str, _data: bytes) -> keras.Model:
    # Keyed by the bytes' hash: the same file uploaded twice is checked and loaded once.
    return models.load_uploaded(_data)


# Refused uploads by the sha256 of their bytes, for every session of this server (a cache does
# not keep exceptions): the same file again is refused without a second check.
_REFUSED: collections.OrderedDict[str, str] = collections.OrderedDict()
_REFUSED_MAX = 256
_REFUSED_LOCK = threading.Lock()


def _refusal(digest: str) -> str | None:
    with _REFUSED_LOCK:
        return _REFUSED.get(digest)


def _remember_refusal(digest: str, reason: str) -> None:
    with _REFUSED_LOCK:
        _REFUSED[digest] = reason
        while len(_REFUSED) > _REFUSED_MAX:
            _REFUSED.popitem(last=False)


def default_model() -> str:
    """ "shapes" (or "digits") when its shipped file exists, else seed 003's MNIST CNN."""
    for name in ("shapes", "digits"):
        if (models.ASSETS / f"{name}.keras").exists():
            return name
    return "lecture:mnist_cnn"


def register_session_model(
    name: str,
    model: keras.Model,
    *,
    select: bool = True,
    class_names: list[str] | None = None,
) -> str:
    """Make a model trained in this session available in the picker (and choose it).

    Args:
        class_names: the names of its output classes (e.g. the digits), shown instead of
            "class 0", "class 1", ... on the model pages.

    Returns:
        Its picker value, "session:NAME".
    """
    st.session_state.setdefault(_SESSION, {})[name] = model
    if class_names is not None:
        st.session_state.setdefault(_SESSION_CLASSES, {})[name] = list(class_names)
    value = f"{_SESSION_PREFIX}{name}"
    if select:
        st.session_state[KEY] = value
    return value


def _options() -> list[str]:
    base = models.builtin_names() + models.lecture_names() + models.imagenet_names()
    extra = [f"{_SESSION_PREFIX}{n}" for n in st.session_state.get(_SESSION, {})]
    if _UPLOAD in st.session_state:
        extra.append(_UPLOAD_PREFIX)
    return base + extra


def _label(value: str, upload_name: str = "") -> str:
    if value == _UPLOAD_PREFIX:
        # Select-box labels are plain text (not Markdown or HTML): shorten, do not escape.
        return f"Uploaded: {_short(upload_name)}"
    if value.startswith(_SESSION_PREFIX):
        return f"Trained here: {_short(value.removeprefix(_SESSION_PREFIX))}"
    if value in _IMAGENET:
        # Which ImageNet models work in a hall without Wi-Fi (see `python -m cnnviz.prefetch`).
        ready = prefetch.ready_offline(value)
        return f"{models.title(value)} ({'ready offline' if ready else 'downloads when online'})"
    return models.title(value)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _upload_box() -> None:
    upload = st.file_uploader(
        "Upload a .keras model",
        type=["keras"],
        key="model.upload",
        help="A Keras 3 `.keras` file with built-in layers only. It is checked before loading: "
        "no Lambda layers, no custom code, no file paths, at most "
        f"{models.MAX_PARAMS:,} parameters.",
    )
    if upload is None:
        return
    data = upload.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    held = st.session_state.get(_UPLOAD)
    if held is not None and held[1] == digest:
        return
    reason = _refusal(digest)
    if reason is None:
        try:
            # Checking and loading is heavy work: it takes one of the server's slots.
            with heavy_slot("checking the uploaded model"), st.spinner("Checking the model…"):
                model = _uploaded(digest, data)
        except models.ModelRejected as err:
            reason = str(err)
            _remember_refusal(digest, reason)
    if reason is not None:
        st.error(f"{md_code(upload.name, 60)} was refused. {reason}")
        return
    st.session_state[_UPLOAD] = (upload.name, digest, model)
    st.session_state[KEY] = _UPLOAD_PREFIX


def _can_randomise(value: str) -> bool:
    # Lecture models already have random weights; uploads and session models are not named.
    return value in models.builtin_names() + models.imagenet_names()


def model_picker() -> str:
    """The shared sidebar model choice; returns the value stored in session_state["model.name"]."""
    with st.sidebar:
        st.markdown("**Model**")
        with st.expander("Upload your own model", expanded=False):
            _upload_box()
        options = _options()
        # Shareable link: ?model=digits (a registry name; "random:NAME" for an untrained copy).
        params.bind(
            {"model": params.Choice(KEY, lambda: models.model_names(random_variants=True))},
            prefix="model",
        )
        current = st.session_state.get(KEY, default_model())
        base = current.removeprefix(models.RANDOM_PREFIX)
        if base not in options:
            current, base = default_model(), default_model()
        random = current.startswith(models.RANDOM_PREFIX) and _can_randomise(base)
        current = f"{models.RANDOM_PREFIX}{base}" if random else base
        # Put the persisted choice into the widgets before they are drawn (no index=, so
        # Streamlit does not warn about a value set twice).
        st.session_state["model.picker"] = base
        st.session_state["model.random"] = random

        def remember() -> None:
            chosen = st.session_state["model.picker"]
            rand = st.session_state["model.random"] and _can_randomise(chosen)
            st.session_state[KEY] = f"{models.RANDOM_PREFIX}{chosen}" if rand else chosen

        st.selectbox(
            "Network",
            options,
            key="model.picker",
            # The upload's name is bound now: a format_func must not read session_state, which
            # AppTest (and any caller outside the script run) does not have.
            format_func=functools.partial(
                _label, upload_name=(st.session_state.get(_UPLOAD) or ("",))[0]
            ),
            on_change=remember,
            help="Built-ins were trained by this project (offline). Lecture models are the "
            "seeds' architectures with random weights. ImageNet models download their weights "
            "once; offline they run with random weights and say so.",
        )
        st.toggle(
            "Random weights (an untrained copy)",
            key="model.random",
            on_change=remember,
            disabled=not _can_randomise(base),
            help="The same architecture with freshly initialised weights: a baseline showing "
            "what the network looks like before it has learned anything.",
        )
    st.session_state[KEY] = current
    if current in models.model_names(random_variants=True):
        params.sync({"model": params.Choice(KEY, [current])}, prefix="model")
    return current


def current_model(*, picker: bool = True) -> tuple[str | keras.Model, models.ModelInfo]:
    """The chosen model as the library takes it, and its info; draws the picker (once per run).

    A registry choice is returned by name (so `resolve` applies its preprocessing); an upload
    or a session-trained model as its keras.Model. A model that cannot be loaded shows an
    error and stops the page.
    """
    value = model_picker() if picker else st.session_state.get(KEY, default_model())
    try:
        if value == _UPLOAD_PREFIX and _UPLOAD in st.session_state:
            chosen: str | keras.Model = st.session_state[_UPLOAD][2]
        elif value.startswith(_SESSION_PREFIX):
            chosen = st.session_state.get(_SESSION, {})[value.removeprefix(_SESSION_PREFIX)]
        else:
            with st.spinner(f"Loading {models.title(value)}…"):
                cached_model(value)
            chosen = value
        info = models.info(chosen)
        if value.startswith(_SESSION_PREFIX):
            names = st.session_state.get(_SESSION_CLASSES, {}).get(
                value.removeprefix(_SESSION_PREFIX)
            )
            if names is not None and len(names) == len(info.class_names):
                info = dataclasses.replace(info, class_names=names)
    except (KeyError, ValueError) as err:
        st.error(str(err) if isinstance(err, ValueError) else f"Model {value!r} is not here.")
        st.stop()
    model_note(info)
    return chosen, info


def current_network(
    *, picker: bool = True
) -> tuple[str | keras.Model, models.ModelInfo, keras.Model]:
    """`current_model()` plus the loaded network itself (`models.resolve`): (model, info, net).

    The one door for the model pages (Neurons, Filters, Grad-CAM, When it fails): a model that
    cannot be resolved shows its message and stops the page, never a traceback.
    """
    model, info = current_model(picker=picker)
    try:
        net, _ = models.resolve(model)
    except ValueError as err:
        st.error(str(err))
        st.stop()
    return model, info, net


def model_note(info: models.ModelInfo) -> None:
    """The chosen model's note, once, in the sidebar under the picker (pages do not repeat it).

    An ImageNet model that fell back to random weights (offline) gets one short sentence; the
    long story (the download error, where to put the file, `cnnviz.prefetch`) goes into a
    "Details" expander, so it is there for the teacher but not a wall of text for the class.
    """
    if not info.note:
        return
    with st.sidebar:
        if info.kind == "imagenet" and info.random_weights:
            name = info.title.removeprefix("ImageNet: ")
            st.warning(
                f"**{name} has random weights here**: its ImageNet weights are not on "
                "this computer and could not be downloaded, so its answers mean nothing."
            )
            with st.expander("Details", expanded=False):
                # The exception text holds a URL and a path: literal, never Markdown.
                st.code(info.note.removeprefix("random weights: "), language=None, wrap_lines=True)
        else:
            st.warning(info.note)


@st.cache_data(max_entries=32, ttl=3600, show_spinner=False)
def _named_summary(name: str) -> tuple[list[dict], dict[str, int], list[tuple[str, tuple]]]:
    return models.summary(name), models.totals(name), models.shape_flow(name)


def model_summary(
    model: str | keras.Model,
) -> tuple[list[dict], dict[str, int], list[tuple[str, tuple]]]:
    """(summary rows, totals, shape flow) of a model; computed once per registry name."""
    if isinstance(model, str):
        return _named_summary(model)
    return models.summary(model), models.totals(model), models.shape_flow(model)


@st.cache_data(max_entries=4, show_spinner=False)
def _dataset_examples(kind: str, n: int = 6, seed: int = 7) -> list[np.ndarray]:
    from cnnviz import datasets  # noqa: PLC0415

    if kind == "digits":
        imgs, _ = datasets.digits(n, seed=seed)
        return [np.repeat(im[..., None], 3, axis=2) for im in imgs]
    imgs, _, _ = datasets.shapes(n, seed=seed)
    return list(imgs)


def _kind(info: models.ModelInfo) -> str | None:
    shape = info.input_shape[:2]
    return "digits" if shape == (28, 28) else "shapes" if shape == (64, 64) else None


def model_generator(info: models.ModelInfo) -> Callable[[int], np.ndarray] | None:
    """seed -> a new RGB uint8 picture like the model's training data (digits or shapes), for
    the picker's "New generated picture"; None when the model is neither."""
    from cnnviz import datasets  # noqa: PLC0415

    kind = _kind(info)
    if kind == "digits":
        return lambda seed: np.repeat(datasets.digits(1, seed=seed)[0][0][..., None], 3, axis=2)
    if kind == "shapes":
        return lambda seed: datasets.shapes(1, seed=seed)[0][0]
    return None


def model_samples(info: models.ModelInfo) -> dict[str, Callable[[], np.ndarray]]:
    """Example images that suit the model, for `image_picker(extra=...)`.

    The digits model gets generated digits and the shapes model generated shapes (a seed the
    models never trained on), so the first load shows something the model understands.
    """
    kind = (
        "digits"
        if info.input_shape[:2] == (28, 28)
        else "shapes"
        if info.input_shape[:2] == (64, 64)
        else None
    )
    if kind is None:
        return {}
    label = "digit" if kind == "digits" else "shape"
    return {
        f"a generated {label} #{i + 1}": (lambda i=i: _dataset_examples(kind)[i]) for i in range(6)
    }


def fit_image(
    model: str | keras.Model, info: models.ModelInfo, image: np.ndarray
) -> tuple[np.ndarray, str | None]:
    """The image to give the library for this model, and a note on what was done to it.

    A registry model (a name) brings its own preprocessing (`models.resolve`); a built-in
    model's picture is first made like its training data (`models.fit_picture`: MNIST's frame
    for digits, a crop to the drawing for shapes), else it passes unchanged, and the note says
    what that preprocessing does. `models.prepare` keeps
    the batch it made for the note, so the forward pass that follows in the same rerun does not
    preprocess the image again. An uploaded or
    session-trained model is fed as it is (the library's rule for a bare keras.Model), so we
    only resize it to the model's input and match the channels; values stay 0–255 (the Train
    page's models rescale inside).
    """
    if isinstance(model, str):
        # A built-in model's picture is first made like its training data (MNIST's frame,
        # a crop to the drawing), so overlays and maps line up with what the model reads.
        image, fitted = models.fit_picture(model, image)
        note = models.prepare(model, image)[1]
        return image, ", ".join(n for n in (fitted, note) if n) or None
    h, w, c = info.input_shape
    steps = []
    if image.shape[:2] != (h, w):
        steps.append(f"resized {image.shape[1]}×{image.shape[0]} → {w}×{h}")
        image = images.resize(image, (h, w))
    if c == 1 and (image.ndim == 3 and image.shape[2] != 1):
        steps.append("converted to gray")
        image = images.to_gray(image)[..., None]
    steps.append("fed as 0–255 values with no other preprocessing")
    return image, ", ".join(steps)
