"""The one door to the Neurons page's expensive results: datasets, layer maxima, the feature map.

Per (model, dataset) the page needs, once:
- each layer's table of every image's strongest response per channel (`neurons.layer_maxima`),
  from which every neuron's top and lowest examples, its firing rate and the layer grid are read;
- the map of the feature space: penultimate features, their 2-D embedding and the model's
  predictions (for the "misclassified" marks).

They go to the on-disk cache (`cnnviz.diskcache`, keyed by the model's content hash, the
dataset's key and the settings), so a second replica or a restart reads them back, and to a
small in-process table, so a rerun of the page (another channel) does not even read the disk.
The computation runs outside any st.cache (the page's progress bar draws into it live), inside
one of the server's heavy-work slots. Two sessions that miss at once both compute; the second
write replaces the first with an identical file.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import keras
import numpy as np
import streamlit as st

from cnnviz import datasets, diskcache, imageset, models, neurons
from cnnviz.ui import mapview
from cnnviz.ui.cache import content_key
from cnnviz.ui.slots import heavy_slot

__all__ = [
    "Dataset",
    "BUILTIN_DATASETS",
    "dataset_size",
    "builtin_dataset",
    "uploaded_dataset",
    "layer_maxima",
    "feature_map",
    "FeatureMap",
    "feature_map_ready",
    "umap_available",
    "class_name",
    "sample_link",
    "gradcam_link",
    "dataset_sample",
    "thumbnails",
]

#: The generated sets, with a seed neither built-in model trained, validated or was tested on.
BUILTIN_DATASETS = {"shapes": "generated shapes", "digits": "generated digits"}
DATASET_SEED = 4242
_MEMORY = 24  # results kept in this process (a layer table of 2,000 images is ~1-2 MB)
_LOCK = threading.Lock()
_RECENT: OrderedDict[str, object] = OrderedDict()

Progress = Callable[[int, int], None] | None


def dataset_size() -> int:
    """Images per generated set: $CNNVIZ_NEURONS_IMAGES (default 2000, 50 to 5000)."""
    try:
        n = int(os.environ.get("CNNVIZ_NEURONS_IMAGES", "") or 2000)
    except ValueError:
        n = 2000
    return int(np.clip(n, 50, 5000))


@dataclass(frozen=True)
class Dataset:
    """Images the page looks through, with a key that names them in the disk cache."""

    key: str
    title: str
    images: np.ndarray  # (N, H, W, 3) uint8, read-only
    labels: np.ndarray | None
    class_names: list[str]
    names: list[str] | None = None  # members of an uploaded zip


def _readonly(*arrays: np.ndarray | None) -> None:
    for a in arrays:
        if a is not None:
            a.setflags(write=False)


def builtin_dataset(kind: str, n: int | None = None) -> Dataset:
    """Generated digits or shapes (deterministic), RGB uint8, shared read-only by all sessions.

    `n` defaults to `dataset_size()`, read now (so the cache key holds the real size).
    """
    return _builtin(kind, dataset_size() if n is None else int(n))


@st.cache_resource(max_entries=4, show_spinner=False)
def _builtin(kind: str, n: int) -> Dataset:
    if kind == "shapes":
        imgs, labels, _ = datasets.shapes(n, seed=DATASET_SEED)
        names = list(datasets.SHAPE_CLASSES)
    elif kind == "digits":
        gray, labels = datasets.digits(n, seed=DATASET_SEED)
        imgs = np.repeat(gray[..., None], 3, axis=-1)
        names = [str(d) for d in range(10)]
    else:
        raise ValueError(f"Expected a dataset in {', '.join(BUILTIN_DATASETS)}. Received {kind!r}.")
    imgs, labels = np.ascontiguousarray(imgs, np.uint8), np.asarray(labels, np.int64)
    _readonly(imgs, labels)
    return Dataset(f"{kind}:{n}:seed{DATASET_SEED}", BUILTIN_DATASETS[kind], imgs, labels, names)


@st.cache_resource(max_entries=4, ttl=3600, show_spinner=False)
def _uploaded(digest: str, _data: bytes, size: tuple[int, int]) -> tuple[Dataset, list[str]]:
    found = imageset.load_zip(_data, size=size)
    _readonly(found.images, found.labels)
    return Dataset(
        f"zip:{digest}:{size[0]}x{size[1]}",
        "your images",
        found.images,
        found.labels,
        found.class_names,
        found.names,
    ), found.skipped


def uploaded_dataset(data: bytes, size: tuple[int, int]) -> tuple[Dataset, list[str]]:
    """A student's zip (checked by `cnnviz.imageset.load_zip`), resized to the model's input.

    Returns the set and the members that were skipped (with why). Raises ImageSetError.
    """
    digest = hashlib.sha256(data).hexdigest()
    return _uploaded(digest, data, (int(size[0]), int(size[1])))


# --------------------------------------------------------------------------------------------


def _remember(key: str, value=None):
    with _LOCK:
        if value is None:
            hit = _RECENT.get(key)
            if hit is not None:
                _RECENT.move_to_end(key)
            return hit
        _RECENT[key] = value
        while len(_RECENT) > _MEMORY:
            _RECENT.popitem(last=False)
        return value


def _cached(key: str, compute: Callable[[], dict[str, np.ndarray]], what: str) -> dict:
    """Memory, then disk, then `compute()` in a heavy slot (stored in both)."""
    hit = _remember(key)
    if hit is not None:
        return hit
    cache = diskcache.default_cache()
    found = cache.get(key)
    if found is None:
        with heavy_slot(what):
            found = compute()
        cache.put(key, found)
    _readonly(*found.values())
    return _remember(key, found)


def layer_maxima(
    model: str | keras.Model, layer: str, data: Dataset, *, progress: Progress = None
) -> neurons.LayerMaxima:
    """`neurons.layer_maxima` over the dataset, computed once per (model, layer, dataset)."""
    key = diskcache.make_key("neurons.maxima/1", content_key(model), layer, data.key)

    def compute() -> dict[str, np.ndarray]:
        m = neurons.layer_maxima(model, layer, data.images, progress=progress)
        return {"values": m.values, "positions": m.positions}

    found = _cached(key, compute, f"the examples of {layer}")
    return neurons.LayerMaxima(layer, found["values"], found["positions"])


@dataclass(frozen=True)
class FeatureMap:
    """The dataset on a 2-D map.

    Attributes:
        points: (N, 2) embedding; features: (N, D) the layer's features (to place new images);
        predicted: (N,) the model's class per image; confidence: (N,) its probability.
    """

    points: np.ndarray
    features: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray
    layer: str


def _map_key(model: str | keras.Model, data: Dataset, method: str, layer: str | None) -> tuple:
    path = layer or neurons.penultimate_layer(model)
    # Version 2: the features are embedded unscaled (no longer standardised).
    return path, diskcache.make_key("neurons.map/2", content_key(model), path, data.key, method, 0)


def feature_map_ready(
    model: str | keras.Model, data: Dataset, *, method: str = "tsne", layer: str | None = None
) -> bool:
    """Whether the map is already computed (here or, through the disk, by another server)."""
    _, key = _map_key(model, data, method, layer)
    return _remember(key) is not None or diskcache.default_cache().path(key).exists()


def feature_map(
    model: str | keras.Model,
    data: Dataset,
    *,
    method: str = "tsne",
    layer: str | None = None,
    progress: Progress = None,
) -> FeatureMap:
    """The embedding of the dataset's penultimate (or chosen) features, once per settings."""
    path, key = _map_key(model, data, method, layer)

    def compute() -> dict[str, np.ndarray]:
        feats = neurons.features(model, data.images, layer=path, progress=progress)
        probs = models.predict(model, data.images)
        return {
            "points": neurons.embed(feats, method, seed=0),
            "features": feats,
            "predicted": probs.argmax(axis=1).astype(np.int64),
            "confidence": probs.max(axis=1).astype(np.float32),
        }

    found = _cached(key, compute, "the feature map")
    return FeatureMap(
        found["points"], found["features"], found["predicted"], found["confidence"], path
    )


def thumbnails(data: Dataset) -> tuple[bytes, int, int]:
    """The dataset's sprite sheet for the map's hover pictures (`mapview.thumbnail_sheet`), once."""
    key = f"neurons.sheet/1:{data.key}"
    return _remember(key) or _remember(key, mapview.thumbnail_sheet(data.images))


def umap_available() -> bool:
    """Whether the optional umap-learn package is installed (the map then offers UMAP)."""
    import importlib.util  # noqa: PLC0415

    return importlib.util.find_spec("umap") is not None


def class_name(info: models.ModelInfo, index: int) -> str:
    """The model's name for a class index ("class 7" when it has none)."""
    names = list(info.class_names or [])
    return names[index] if 0 <= index < len(names) else f"class {index}"


def sample_link(kind: str, index: int) -> str:
    """The `sample=` value that names one picture of a generated set: "dataset:shapes:17"."""
    return f"dataset:{kind}:{int(index)}"


def gradcam_link(model_name: str, kind: str) -> str:
    """The Grad-CAM page's address for one picture of a generated set, with "{index}" to fill:
    "gradcam?model=shapes&sample=dataset:shapes:{index}"."""
    if kind not in BUILTIN_DATASETS:
        raise ValueError(f"Expected a dataset in {', '.join(BUILTIN_DATASETS)}. Received {kind!r}.")
    return f"gradcam?model={quote(str(model_name), safe='')}&sample=dataset:{kind}:{{index}}"


def dataset_sample(value: str) -> np.ndarray | None:
    """The picture a `sample_link` names (RGB uint8), or None for anything else.

    For the Grad-CAM page's picker, so a point clicked on the map opens there. Untrusted: only
    the built-in kinds and an index inside the current set are accepted.
    """
    parts = str(value).split(":")
    if len(parts) != 3 or parts[0] != "dataset" or parts[1] not in BUILTIN_DATASETS:
        return None
    try:
        index = int(parts[2])
    except ValueError:
        return None
    data = builtin_dataset(parts[1])
    return data.images[index] if 0 <= index < len(data.images) else None
