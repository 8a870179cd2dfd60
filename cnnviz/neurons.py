"""What a neuron responds to: its dataset examples, and a 2-D map of the feature space.

Gradient-ascent pictures (`cnnviz.featureviz`) show what a channel would like to see; dataset
examples show what, among real images, excites it most. OpenAI Microscope, the Deep
Visualization Toolbox (Yosinski et al. 2015) and Distill's "Feature Visualization" (Olah et
al. 2017) always put the two side by side.

- `layer_maxima(model, layer, images)` runs the images through the network in chunks (one
  batched forward pass each) and keeps, for every image and every channel, the channel's
  MAXIMUM over positions and where it is. Everything else is read from that table, so the
  whole layer costs one pass over the data.
- `top_examples(model, layer, channel, images)` sorts the images by that maximum and cuts out
  each one's patch under the unit's receptive field (from the layer geometry of
  `cnnviz.models.summary`: receptive field and jump).
- `embedding(model, images)` maps the penultimate layer's features to 2-D with t-SNE, PCA or
  UMAP, so images the network treats alike land close together.

The `model` argument follows the project's rule (`cnnviz.models.resolve`): a registry name
applies that model's preprocessing to the images; a bare keras.Model is fed them as float32.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np

from cnnviz import activations, models
from cnnviz import layers as layer_tools

__all__ = [
    "NeuronError",
    "Geometry",
    "LayerMaxima",
    "Examples",
    "METHODS",
    "layer_geometry",
    "layer_maxima",
    "examples_from_maxima",
    "top_examples",
    "receptive_box",
    "crop_patch",
    "penultimate_layer",
    "features",
    "embed",
    "embedding",
    "place",
    "default_neuron",
]

#: Embedding methods `embedding` accepts.
METHODS = ("tsne", "pca", "umap")

# Values per forward chunk: layer outputs of ~16 M floats (64 MB) at most, 16 to 512 images.
_CHUNK_VALUES = 16 * 1024 * 1024
_CHUNK_MIN, _CHUNK_MAX = 16, 512

Progress = Callable[[int, int], None] | None


class NeuronError(ValueError):
    """Invalid input for the neuron tools; the message says what was expected."""


@dataclass(frozen=True)
class Geometry:
    """Where a layer's units look in the model's input (pixels of the input, float).

    Attributes:
        receptive_field: (rows, cols) of input pixels one unit sees.
        jump: (rows, cols) of input pixels between neighbouring units.
        start: centre of unit (0, 0) in input pixel coordinates.
        input_size: the model input's (rows, cols).
        map_size: the layer output's (rows, cols).
    """

    receptive_field: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[float, float]
    input_size: tuple[int, int]
    map_size: tuple[int, int]


@dataclass(frozen=True)
class LayerMaxima:
    """Each image's strongest response per channel.

    Attributes:
        layer: the layer path.
        values: (N, C) float32, the channel's maximum over positions for each image.
        positions: (N, C, 2) int32, the (row, col) of that maximum in the layer's map (the
            first one in row-major order when it is reached several times).
    """

    layer: str
    values: np.ndarray
    positions: np.ndarray

    def fire_rate(self) -> np.ndarray:
        """(C,): the share of images where the channel's maximum is above 0."""
        return (self.values > 0).mean(axis=0)


@dataclass(frozen=True)
class Examples:
    """A channel's dataset examples, strongest first (weakest first when `lowest`).

    Attributes:
        layer, channel: which unit.
        indices: (n,) int, which images, by the channel's maximum activation over positions.
        positions: (n, 2) int, the (row, col) of that maximum in the layer's map.
        values: (n,) float32, the maxima.
        patches: (n, ph, pw[, C]) uint8 (the images' dtype), each image's crop under the unit's
            receptive field at that position; parts that fall outside the image are `fill`.
        boxes: (n, 4) int, (top, left, bottom, right) of that field in the image, clipped to
            the image (bottom and right exclusive), for outlining it on the whole image.
        fire_rate: share of ALL the images where the channel's maximum is above 0.
        geometry: the layer's `Geometry`.
    """

    layer: str
    channel: int
    indices: np.ndarray
    positions: np.ndarray
    values: np.ndarray
    patches: np.ndarray
    boxes: np.ndarray
    fire_rate: float
    geometry: Geometry


# --------------------------------------------------------------------------------------------
# Geometry: from the summary's receptive field and jump to boxes in the image
# --------------------------------------------------------------------------------------------


def _pair_text(text: str, what: str, layer: str) -> tuple[int, int]:
    # The summary writes "5" or "5×3"; "whole input" / "—" means the layer has no map.
    try:
        parts = [int(p) for p in str(text).split("×")]
    except ValueError:
        raise NeuronError(
            f"Expected a layer with feature maps (N, H, W, C). Received {layer!r}, whose "
            f"{what} is {text!r}: it mixes every position."
        ) from None
    return (parts[0], parts[-1])


def layer_geometry(model: str | keras.Model, layer: str) -> Geometry:
    """The layer's receptive field and jump (from `cnnviz.models.summary`) and its grid.

    The summary gives each unit's field size and the step between units. Where the grid sits
    (the centre of unit (0, 0)) it does not: we centre the map's grid on the input,
    start = (input − 1 − (map − 1) · jump) / 2. That is exact for "same" padding and for
    "valid" chains that divide evenly (the shipped shapes model, and digits up to pool1); where a
    pooling layer drops a remainder row (digits' pool2: 11 → 5), it is off by half a jump at most.
    """
    net, _ = models.resolve(model)
    rows = {r["layer"]: r for r in models.summary(model)}
    if layer not in rows:
        layer_tools.get_layer(net, layer)  # raises LayerError listing the layers
    row = rows[layer]
    shape = row["output_shape"]
    if shape is None or len(shape) != 4:
        raise NeuronError(
            f"Expected a layer with feature maps (N, H, W, C). Received {layer!r} with output "
            f"shape {shape}."
        )
    rf = _pair_text(row["receptive_field"], "receptive field", layer)
    jump = _pair_text(row["jump"], "jump", layer)
    in_h, in_w = (int(s) for s in net.input_shape[1:3])
    map_h, map_w = int(shape[1]), int(shape[2])
    start = (
        (in_h - 1 - (map_h - 1) * jump[0]) / 2,
        (in_w - 1 - (map_w - 1) * jump[1]) / 2,
    )
    return Geometry(rf, jump, start, (in_h, in_w), (map_h, map_w))


def receptive_box(
    geometry: Geometry, position: Sequence[int], image_size: Sequence[int]
) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the unit's field in an image of `image_size`, UNclipped.

    The field is computed in model-input pixels and scaled to the image when the model resizes
    it (a registry model's preprocessing); bottom and right are exclusive.
    """
    out = []
    for axis in (0, 1):
        scale = image_size[axis] / geometry.input_size[axis]
        rf = geometry.receptive_field[axis]
        centre = geometry.start[axis] + int(position[axis]) * geometry.jump[axis]
        lo = math.floor(centre - (rf - 1) / 2 + 1e-9)  # first input pixel under the field
        out.append((round(lo * scale), round(lo * scale) + max(1, round(rf * scale))))
    (top, bottom), (left, right) = out
    return top, left, bottom, right


def crop_patch(image: np.ndarray, box: Sequence[int], fill: int | float = 0) -> np.ndarray:
    """The image under `box` (top, left, bottom, right), of the box's full size.

    Where the box reaches past the image border, the patch is `fill` (default 0, black: the
    zeros a "same"-padded layer sees outside the picture), so every patch of a layer has the
    same size and the object keeps its place inside it.
    """
    top, left, bottom, right = (int(v) for v in box)
    h, w = image.shape[:2]
    patch = np.full((bottom - top, right - left, *image.shape[2:]), fill, dtype=image.dtype)
    t, lft, b, r = max(top, 0), max(left, 0), min(bottom, h), min(right, w)
    if b > t and r > lft:
        patch[t - top : b - top, lft - left : r - left] = image[t:b, lft:r]
    return patch


# --------------------------------------------------------------------------------------------
# One pass over the data: every channel's maximum per image
# --------------------------------------------------------------------------------------------


def _as_images(images: np.ndarray) -> np.ndarray:
    x = np.asarray(images)
    if x.ndim not in (3, 4) or len(x) == 0:
        raise NeuronError(
            "Expected a non-empty batch of images (N, H, W) or (N, H, W, C). "
            f"Received shape {x.shape}."
        )
    return x


def _batch(x: np.ndarray) -> np.ndarray:
    # Always 4-D to the forward pass: a one-image chunk of gray pictures (1, H, W) would
    # otherwise read as one (H, W, C) image and come back without its batch axis.
    return x[..., None] if x.ndim == 3 else x


def _chunk_size(values_per_image: int) -> int:
    return int(np.clip(_CHUNK_VALUES // max(1, values_per_image), _CHUNK_MIN, _CHUNK_MAX))


def layer_maxima(
    model: str | keras.Model,
    layer: str,
    images: np.ndarray,
    *,
    batch_size: int | None = None,
    progress: Progress = None,
) -> LayerMaxima:
    """Every channel's maximum over positions, and where it is, for every image.

    Args:
        model: a registry name or a bare keras.Model (see the module docstring).
        layer: a layer path with a feature-map output.
        images: (N, H, W[, C]) as `cnnviz.datasets` or `load_image` give them (for a name).
        batch_size: images per forward pass; default: as many as fit in ~64 MB of maps.
        progress: called as progress(images done, total) after each chunk.

    Returns:
        `LayerMaxima` with values (N, C) and positions (N, C, 2).
    """
    x = _as_images(images)
    geometry = layer_geometry(model, layer)
    net, _ = models.resolve(model)
    channels = int(layer_tools.get_layer(net, layer).output.shape[-1])
    per_image = geometry.map_size[0] * geometry.map_size[1] * channels
    size = int(batch_size) if batch_size else _chunk_size(per_image)
    n = len(x)
    values = np.empty((n, channels), np.float32)
    positions = np.empty((n, channels, 2), np.int32)
    for lo in range(0, n, size):
        chunk = x[lo : lo + size]
        # One batched forward pass for the chunk (the extraction model is built once).
        maps = activations.forward(model, _batch(chunk), [layer]).maps[layer]  # (B, H', W', C)
        b, mh, mw, c = maps.shape
        flat = maps.reshape(b, mh * mw, c)
        # The strongest position of each channel, then its value and its (row, col).
        where = flat.argmax(axis=1)  # (B, C)
        values[lo : lo + b] = np.take_along_axis(flat, where[:, None, :], axis=1)[:, 0, :]
        positions[lo : lo + b, :, 0] = where // mw
        positions[lo : lo + b, :, 1] = where % mw
        if progress is not None:
            progress(min(lo + b, n), n)
    return LayerMaxima(layer=layer, values=values, positions=positions)


def examples_from_maxima(
    maxima: LayerMaxima,
    geometry: Geometry,
    channel: int,
    images: np.ndarray,
    *,
    n: int = 9,
    lowest: bool = False,
    fill: int | float = 0,
) -> Examples:
    """`top_examples` from a `layer_maxima` table already computed for these images."""
    x = _as_images(images)
    count = maxima.values.shape[1]
    if not 0 <= int(channel) < count:
        raise NeuronError(
            f"Expected a channel from 0 to {count - 1} for layer {maxima.layer!r}. "
            f"Received {channel}."
        )
    if len(x) != len(maxima.values):
        raise NeuronError(
            f"Expected the {len(maxima.values)} images the maxima were computed on. "
            f"Received {len(x)}."
        )
    column = maxima.values[:, channel]
    # Descending by maximum (ascending for the lowest); a stable sort keeps ties in image order.
    order = np.argsort(column if lowest else -column, kind="stable")[: max(0, int(n))]
    positions = maxima.positions[order, channel]
    boxes, patches = [], []
    for i, pos in zip(order, positions, strict=True):
        box = receptive_box(geometry, pos, x.shape[1:3])
        patches.append(crop_patch(x[i], box, fill))
        top, left, bottom, right = box
        h, w = x.shape[1:3]
        boxes.append((max(top, 0), max(left, 0), min(bottom, h), min(right, w)))
    shape = (0, *(patches[0].shape if patches else x.shape[1:]))
    return Examples(
        layer=maxima.layer,
        channel=int(channel),
        indices=order.astype(np.int64),
        positions=positions.astype(np.int64),
        values=column[order].astype(np.float32),
        patches=np.stack(patches) if patches else np.zeros(shape, x.dtype),
        boxes=np.array(boxes, np.int64).reshape(-1, 4),
        fire_rate=float((column > 0).mean()),
        geometry=geometry,
    )


def top_examples(
    model: str | keras.Model,
    layer: str,
    channel: int,
    images: np.ndarray,
    *,
    n: int = 9,
    lowest: bool = False,
    progress: Progress = None,
) -> Examples:
    """The images that excite one channel most (or least), with the patch that did it.

    Args:
        model: a registry name or a bare keras.Model (see the module docstring).
        layer: a layer path with a feature-map output, e.g. "conv1".
        channel: the channel (filter) number.
        images: (N, H, W[, C]) images; a few thousand is fine (chunked forward passes).
        n: how many examples.
        lowest: the n images whose maximum is smallest instead, weakest first.
        progress: called as progress(images done, total).

    Returns:
        `Examples`: indices, positions, values, patches (n, rf_h, rf_w[, C]) and boxes.
    """
    maxima = layer_maxima(model, layer, images, progress=progress)
    return examples_from_maxima(
        maxima, layer_geometry(model, layer), channel, images, n=n, lowest=lowest
    )


# --------------------------------------------------------------------------------------------
# The map of the feature space
# --------------------------------------------------------------------------------------------


def penultimate_layer(model: str | keras.Model) -> str:
    """The layer that feeds the classifier: the one before the last layer with weights."""
    net, _ = models.resolve(model)
    top = [info for info in layer_tools.list_layers(net) if info.depth == 0]
    weighted = [info for info in top if info.params > 0]
    # The classifier is the last layer with weights (a separate softmax Activation has none);
    # what feeds it, following the graph, is the layer we want.
    source = layer_tools.input_source(net, weighted[-1].path) if weighted else None
    if source is None:
        raise NeuronError(
            f"Expected a model with a layer before its classifier. Model {net.name!r} has none; "
            "pass layer= explicitly."
        )
    return source


def features(
    model: str | keras.Model,
    images: np.ndarray,
    *,
    layer: str | None = None,
    progress: Progress = None,
) -> np.ndarray:
    """(N, D) float32: the layer's output per image, flattened (penultimate layer by default)."""
    x = _as_images(images)
    path = layer or penultimate_layer(model)
    net, _ = models.resolve(model)
    shape = layer_tools.get_layer(net, path).output.shape
    size = _chunk_size(int(np.prod([s or 1 for s in shape[1:]])))
    out = []
    for lo in range(0, len(x), size):
        maps = activations.forward(model, _batch(x[lo : lo + size]), [path]).maps[path]
        out.append(np.asarray(maps, np.float32).reshape(len(maps), -1))
        if progress is not None:
            progress(min(lo + size, len(x)), len(x))
    return np.concatenate(out)


def embed(feats: np.ndarray, method: str = "tsne", *, seed: int = 0) -> np.ndarray:
    """(N, D) features -> (N, 2) points.

    scikit-learn's TSNE and PCA: a well-kept, BSD-licensed library with the Barnes-Hut t-SNE
    (van der Maaten 2014) that embeds 2,000 points in seconds on a CPU, already a dependency of
    the scientific stack we use, and deterministic for a seed. UMAP (McInnes et al. 2018) needs
    the optional umap-learn package.
    """
    x = np.asarray(feats, np.float64)
    if x.ndim != 2 or len(x) < 3:
        raise NeuronError(
            f"Expected at least 3 feature vectors (N, D) to embed. Received shape {x.shape}."
        )
    if method not in METHODS:
        raise NeuronError(f"Expected method one of {', '.join(METHODS)}. Received {method!r}.")
    from sklearn.decomposition import PCA  # noqa: PLC0415 - only the map needs scikit-learn

    # The features as the network has them, not rescaled: the classifier is a linear function
    # of exactly these values, so their distances are the ones it acts on. Rescaling each unit
    # to unit variance gives quiet, near-dead units as much say as the loud ones the classifier
    # weighs; whitening (every direction equal) is the extreme of that. Measured on the
    # 24,000 × 7 shapes model, 3 fresh sets of 400 pictures, the share of points whose 5 map
    # neighbours all share its class (`python benchmarks/neurons.py --settings`): unscaled
    # 0.883, standardised 0.878, PCA-whitened 0.49, cosine metric 0.875, perplexity 15 / 50:
    # 0.887 / 0.868, 3,000 iterations 0.885. What it misses is mostly the network's own
    # errors: a misclassified picture sits among the class it was taken for; away from those
    # the share is 0.97. The more accurate 36,000 × 8 model scores 0.917-0.922 unscaled.
    x = x - x.mean(axis=0)
    if method == "pca":
        pts = PCA(n_components=2, random_state=seed).fit_transform(x)
        return pts.astype(np.float32)
    # t-SNE and UMAP on the first 50 principal components: the usual denoising step, and faster.
    if x.shape[1] > 50:
        x = PCA(n_components=min(50, len(x)), random_state=seed).fit_transform(x)
    if method == "umap":
        try:
            import umap  # noqa: PLC0415
        except ImportError:
            raise NeuronError(
                "UMAP needs the optional package umap-learn (pip install umap-learn); "
                "choose t-SNE or PCA instead."
            ) from None
        pts = umap.UMAP(n_components=2, random_state=seed).fit_transform(x)
        return np.asarray(pts, np.float32)
    from sklearn.manifold import TSNE  # noqa: PLC0415
    from threadpoolctl import threadpool_limits  # noqa: PLC0415 - comes with scikit-learn

    perplexity = float(min(30.0, (len(x) - 1) / 3))
    tsne = TSNE(
        n_components=2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=seed
    )
    # One OpenMP thread: on a server whose cores are busy (TensorFlow, other sessions), t-SNE's
    # spinning OpenMP threads made 400 points take 66 s instead of 5 s (measured on 2 cores).
    with threadpool_limits(limits=1, user_api="openmp"):
        pts = tsne.fit_transform(x)
    return pts.astype(np.float32)


def embedding(
    model: str | keras.Model,
    images: np.ndarray,
    *,
    layer: str | None = None,
    method: str = "tsne",
    seed: int = 0,
    progress: Progress = None,
) -> np.ndarray:
    """A 2-D map of the images as the network sees them: (N, 2) float32.

    Args:
        model: a registry name or a bare keras.Model (see the module docstring).
        images: (N, H, W[, C]), N ≥ 3.
        layer: whose features; default the penultimate layer (`penultimate_layer`).
        method: "tsne" (default), "pca" or "umap" (needs umap-learn).
        seed: makes t-SNE / UMAP repeatable.
        progress: called as progress(images done, total) during the forward passes.
    """
    if method not in METHODS:
        raise NeuronError(f"Expected method one of {', '.join(METHODS)}. Received {method!r}.")
    return embed(features(model, images, layer=layer, progress=progress), method, seed=seed)


def place(new: np.ndarray, feats: np.ndarray, points: np.ndarray, *, k: int = 5) -> np.ndarray:
    """Put new images on an existing map: (M, D) features -> (M, 2).

    t-SNE has no formula for a point it was not fitted on, so each new image goes to the mean
    map position of its k nearest images in FEATURE space (Euclidean on the same unscaled
    features `embed` uses): where the network would put it among the images it has seen.
    """
    f = np.asarray(feats, np.float64)
    q = np.atleast_2d(np.asarray(new, np.float64))
    if q.shape[1] != f.shape[1] or len(f) != len(points):
        raise NeuronError(
            f"Expected new features with {f.shape[1]} values, for a map of {len(f)} points. "
            f"Received {q.shape} and a map of {len(points)}."
        )
    d = ((q[:, None, :] - f[None, :, :]) ** 2).sum(-1)
    nearest = np.argsort(d, axis=1)[:, : max(1, min(k, len(f)))]
    return np.asarray(points, np.float32)[nearest].mean(axis=1)


def default_neuron(maxima: LayerMaxima, labels: np.ndarray | None, *, n: int = 9) -> int:
    """A channel worth showing first: its top n examples share one class most often.

    Ties go to the most selective channel (its top values far above its typical maximum), so
    the first page a student sees is a unit whose examples obviously have something in common.
    Without labels, selectivity alone decides.
    """
    v = maxima.values
    order = np.argsort(-v, axis=0, kind="stable")[:n]  # (n, C)
    typical = np.median(v, axis=0)
    selectivity = (v[order, np.arange(v.shape[1])].mean(axis=0) - typical) / (
        np.abs(typical) + v.std(axis=0) + 1e-6
    )
    if labels is None:
        return int(np.argmax(selectivity))
    lab = np.asarray(labels)[order]  # (n, C)
    purity = np.array([np.bincount(col).max() for col in lab.T]) / len(lab)
    alive = v.max(axis=0) > 0
    score = np.where(alive, purity + 1e-3 * selectivity, -np.inf)
    return int(np.argmax(score))
