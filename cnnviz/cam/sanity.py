"""Sanity check: does the map depend on what the model learned? (Adebayo et al. 2018)

`randomization_test` re-initialises the layers of a copy from the top down and measures how
much the map changes; the shared model is never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from scipy import stats

from cnnviz import layers as layer_tools
from cnnviz import models
from cnnviz.cam.base import Explainer, Progress
from cnnviz.cam.explain import explain, get_method, prepare

__all__ = ["RandomizationStage", "RandomizationResult", "randomization_test", "randomized_copy"]

# Variable name -> the layer attribute that holds its initializer.
_INITIALIZER_ATTRS = {
    "kernel": "kernel_initializer",
    "bias": "bias_initializer",
    "gamma": "gamma_initializer",
    "beta": "beta_initializer",
    "moving_mean": "moving_mean_initializer",
    "moving_variance": "moving_variance_initializer",
    "depthwise_kernel": "depthwise_initializer",
    "pointwise_kernel": "pointwise_initializer",
    "embeddings": "embeddings_initializer",
}


@dataclass(frozen=True)
class RandomizationStage:
    """One stage of the cascade.

    Attributes:
        randomized: the layer paths re-initialised so far (empty for stage 0), top first.
        heatmap: (H, W) float32 in [0, 1], the map of the partly random copy.
        spearman: Spearman rank correlation with the original map, or None when either map is
            flat (a rank correlation is then undefined).
        reason: why this stage's map is empty, or None.
    """

    randomized: tuple[str, ...]
    heatmap: np.ndarray
    spearman: float | None
    reason: str | None


@dataclass(frozen=True)
class RandomizationResult:
    """The cascade for one method, class and layer; `stages[0]` is the untouched copy."""

    method: str
    class_index: int
    layer: str | None
    original: np.ndarray
    stages: list[RandomizationStage]


def _clone(model: keras.Model) -> keras.Model:
    """A deep copy with its own variables (nested bases included) and the same weights."""
    # recursive=True clones nested models too; otherwise they would be shared, and
    # re-initialising the copy would change the shared model.
    copy = keras.models.clone_model(model, recursive=True)
    copy.set_weights(model.get_weights())
    return copy


def _weighted_layers_top_down(model: keras.Model) -> list[tuple[str, keras.layers.Layer]]:
    """(path, layer) for every layer with its own weights, output end first."""
    found = [
        (path, layer)
        for path, layer, _ in layer_tools.iter_layers(model)
        if not isinstance(layer, keras.Model) and layer.weights
    ]
    return found[::-1]


def _reinitialize(layer: keras.layers.Layer, seed: int) -> None:
    """Assign fresh values from the layer's own initializers (seeded) to all its variables."""
    for i, var in enumerate(layer.weights):
        attr = _INITIALIZER_ATTRS.get(var.name.split("/")[-1])
        init = getattr(layer, attr, None) if attr else None
        if init is None:
            init = keras.initializers.GlorotUniform() if len(var.shape) >= 2 else "zeros"
        init = keras.initializers.get(init)
        config = init.get_config()
        if "seed" in config:
            init = type(init).from_config({**config, "seed": seed * 1000 + i})
        var.assign(init(tuple(var.shape), dtype=var.dtype))


def _cascade(copy: keras.Model, seed: int):
    """Re-initialise the copy's layers one by one from the top; yield the paths so far."""
    done: list[str] = []
    for k, (path, layer) in enumerate(_weighted_layers_top_down(copy)):
        _reinitialize(layer, seed + k)
        done.append(path)
        yield tuple(done)


def randomized_copy(model: str | keras.Model, *, seed: int = 0) -> keras.Model:
    """A copy of the model with every layer re-initialised (the cascade's last stage).

    The copy gets the same values as the last stage of `randomization_test` with this seed.
    The shared model is not touched.
    """
    net, _ = models.resolve(model)
    copy = _clone(net)
    for _ in _cascade(copy, seed):
        pass
    return copy


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rank correlation (scipy), or None when either map is constant."""
    a, b = a.ravel(), b.ravel()
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(stats.spearmanr(a, b).statistic)


def randomization_test(
    model: str | keras.Model,
    image: np.ndarray,
    *,
    method: str = "gradcam",
    class_index: int | None = None,
    layer: str | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    **options: Any,
) -> RandomizationResult:
    """Model randomization test: does the map depend on what the model learned?

    A copy of the model is re-initialised layer by layer, cascading from the output to the
    input; after each stage the same method explains the same class of the same image. A
    faithful method's map decorrelates from the original as the learned weights disappear.
    (Guided backprop famously does not; on simple synthetic pictures even a random network's
    maps can still outline the object, because its edges dominate any random filter's response.)

    Args:
        model: a registry name or a bare keras.Model (see `compute`). It is never changed:
            the test runs on a deep copy.
        image: one image (H, W[, C]).
        method: any name in `METHODS`.
        class_index: the class to explain; None means the original model's top-1 class, which
            is then kept for every stage.
        layer: the layer for CAM methods; None means the last convolution layer.
        seed: seed of the re-initialisation.
        progress: progress(stages done, stages total).
        **options: method options, see `compute`.

    Returns:
        `RandomizationResult` with stage 0 (the unchanged copy, correlation 1) and one stage per
        layer with weights.

    References:
        Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018, arXiv:1810.03292
        (Sec. 3.1, cascading randomization; Spearman rank correlation).
    """
    net, x = prepare(model, image)
    m = get_method(method)
    path = (layer or layer_tools.last_conv_layer(net)) if m.uses_layer else None
    # The original map, from the shared model (read-only).
    first = explain(
        net, x, method, class_index=class_index, layer=path, progress=None, options=options
    )
    # A private deep copy with its own compiled steps (not cached: it dies with this call).
    copy = _clone(net)
    explainer = Explainer(copy, path)
    stages_total = len(_weighted_layers_top_down(copy)) + 1

    def stage(randomized: tuple[str, ...]) -> RandomizationStage:
        result = explain(
            copy,
            x,
            method,
            class_index=first.class_index,
            layer=path,
            progress=None,
            options=options,
            explainer=explainer,
        )
        if progress is not None:
            progress(len(randomized) + 1, stages_total)
        return RandomizationStage(
            randomized=randomized,
            heatmap=result.heatmap,
            spearman=_spearman(first.heatmap, result.heatmap),
            reason=result.reason,
        )

    # Stage 0 is the untouched copy; then re-initialise from the top, one layer per stage.
    stages = [stage(())]
    stages += [stage(done) for done in _cascade(copy, seed)]
    return RandomizationResult(
        method=m.name,
        class_index=first.class_index,
        layer=path,
        original=first.heatmap,
        stages=stages,
    )
