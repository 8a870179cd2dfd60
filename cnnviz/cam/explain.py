"""The registry of methods and the entry points: `compute` any method, `grad_cam`.

Every method runs through `explain`: the base's compiled step gives a raw map, which is
upsampled to the input size and scaled to [0, 1]; a map that is empty everywhere (e.g. a class
whose weights are all negative) comes back as zeros with a reason, never NaN.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from skimage.transform import resize as _sk_resize

from cnnviz import layers as layer_tools
from cnnviz import models
from cnnviz.cam.base import (
    CamError,
    EmptyMapWarning,
    Explainer,
    Explanation,
    Method,
    Progress,
    Step,
    get_explainer,
)
from cnnviz.cam.family import (
    EigenCAM,
    GradCAM,
    GradCAMPlusPlus,
    HiResCAM,
    LayerCAM,
    ScoreCAM,
)
from cnnviz.cam.guided import Deconvnet, GuidedBackprop
from cnnviz.cam.occlusion import Occlusion
from cnnviz.cam.saliency import IntegratedGradients, SmoothGrad, VanillaGradient

__all__ = [
    "METHODS",
    "MethodInfo",
    "method_info",
    "get_method",
    "prepare",
    "explain",
    "compute",
    "grad_cam",
]

#: Every method by name, in the order the pages list them. Adding one: write its class
#: (see `cnnviz.cam.base`) and add it here.
METHODS: dict[str, type[Method]] = {
    cls.name: cls
    for cls in (
        GradCAM,
        GradCAMPlusPlus,
        HiResCAM,
        LayerCAM,
        ScoreCAM,
        EigenCAM,
        VanillaGradient,
        SmoothGrad,
        IntegratedGradients,
        GuidedBackprop,
        Deconvnet,
        Occlusion,
    )
}


@dataclass(frozen=True)
class MethodInfo:
    """What a page shows about a method."""

    name: str
    title: str
    reference: str
    explanation: str
    uses_layer: bool
    class_specific: bool


def method_info(name: str) -> MethodInfo:
    """Title, paper, one-paragraph plain explanation and kind of a method."""
    m = get_method(name)
    return MethodInfo(m.name, m.title, m.reference, m.explanation, m.uses_layer, m.class_specific)


def get_method(name: str) -> type[Method]:
    """The method's class in `METHODS`; an unknown name gives a `CamError` listing them."""
    if name not in METHODS:
        raise CamError(f"Unknown method {name!r}. Expected one of: {', '.join(METHODS)}.")
    return METHODS[name]


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


def prepare(model: str | keras.Model, image: np.ndarray) -> tuple[keras.Model, np.ndarray]:
    """The zoo's rule, then a check that one model-ready image came out: (model, (1, H, W, C))."""
    net, preprocess = models.resolve(model)
    x = np.asarray(preprocess(image), dtype=np.float32)
    expected = tuple(net.input_shape[1:])
    fits = (
        x.ndim == 4
        and x.shape[0] == 1
        and len(expected) == 3
        and all(e is None or e == r for e, r in zip(expected, x.shape[1:], strict=True))
    )
    if not fits:
        shape = "×".join("any" if e is None else str(e) for e in expected)
        raise CamError(
            f"Expected one image of shape {shape} for model {net.name!r}. "
            f"Received an array of shape {np.shape(image)} (model-ready: {x.shape})."
        )
    if not np.isfinite(x).all():
        raise CamError("Expected finite pixel values. Received an image with NaN or infinity.")
    return net, x


def check_class(explainer: Explainer, net: keras.Model, class_index: int | None) -> None:
    """A `CamError` unless class_index is None or one of the model's classes."""
    n_classes = explainer.classes
    if class_index is not None and not 0 <= int(class_index) < n_classes:
        raise CamError(
            f"Expected class_index in [0, {n_classes - 1}] for model {net.name!r}. "
            f"Received {class_index}."
        )


def _options(method: type[Method], options: dict[str, Any]) -> dict[str, Any]:
    unknown = set(options) - set(method.defaults)
    if unknown:
        known = ", ".join(method.defaults) or "none"
        raise CamError(
            f"Unknown option(s) {', '.join(sorted(unknown))} for method {method.name!r}. "
            f"Expected: {known}."
        )
    return {**method.defaults, **options}


def explain(
    net: keras.Model,
    x: np.ndarray,
    method: str,
    *,
    class_index: int | None,
    layer: str | None,
    progress: Progress | None,
    options: dict[str, Any],
    explainer: Explainer | None = None,
) -> Explanation:
    """Run a method on a model-ready image (1, H, W, C) and scale its map for display."""
    m = get_method(method)
    path = (layer or layer_tools.last_conv_layer(net)) if m.uses_layer else None
    explainer = explainer or get_explainer(net, path)
    check_class(explainer, net, class_index)
    step = Step(
        explainer=explainer,
        x=x,
        class_index=-1 if class_index is None else int(class_index),
        options=_options(m, options),
        progress=progress,
    )
    raw, positive = m().run(step)
    # Upsample the layer's map to the input size (bilinear, half-pixel centres, as
    # pytorch-grad-cam's cv2.resize; scikit-image does it without an OpenCV dependency).
    size = x.shape[1:3]
    if positive.shape != size:
        positive = _sk_resize(positive, size, order=1, mode="edge", anti_aliasing=False)
    heatmap, reason = _scale(positive, m, path)
    logits = step.logits.astype(np.float64)
    return Explanation(
        heatmap=heatmap,
        raw=raw.astype(np.float32),
        method=m.name,
        class_index=step.class_index,
        layer=path,
        score=float(logits[step.class_index]),
        probabilities=explainer.numpy_probabilities(logits).astype(np.float32),
        reason=reason,
    )


def _scale(
    positive: np.ndarray, method: type[Method], layer: str | None
) -> tuple[np.ndarray, str | None]:
    """Min-max scale a non-negative map to [0, 1]; an empty or flat map gives zeros + why."""
    positive = np.nan_to_num(np.asarray(positive, dtype=np.float64), nan=0.0, posinf=0.0)
    lo, hi = float(positive.min()), float(positive.max())
    if hi <= 0.0:
        where = f"layer {layer!r}" if layer else "the input"
        if method.uses_layer:
            reason = (
                f"The map is empty: nothing in {where} raises this class's score for this image "
                "(all the evidence is negative, as for a class whose weights are all negative). "
                f"{method.title} keeps only positive evidence, so there is nothing to show. "
                "Try another class, another layer, or HiResCAM/LayerCAM."
            )
        else:
            reason = (
                "The map is empty: the class score does not change with any pixel (the gradient "
                "is zero everywhere, e.g. a saturated or dead network)."
            )
        return np.zeros(positive.shape, np.float32), reason
    if hi - lo <= 1e-7 * hi:
        return np.zeros(positive.shape, np.float32), (
            f"The map is the same everywhere, so {method.title} points nowhere in particular."
        )
    return ((positive - lo) / (hi - lo)).astype(np.float32), None


def compute(
    method: str,
    model: str | keras.Model,
    image: np.ndarray,
    *,
    class_index: int | None = None,
    layer: str | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> Explanation:
    """Explain one image with any method in `METHODS`.

    Args:
        method: "gradcam", "gradcam++", "hirescam", "layercam", "scorecam", "eigencam",
            "gradient", "smoothgrad", "integrated_gradients", "guided_backprop", "deconvnet"
            or "occlusion".
        model: a registry name (its preprocessing is applied, see `cnnviz.models.resolve`) or a
            bare keras.Model (the image is fed as float32, unchanged).
        image: one image (H, W[, C]) as `cnnviz.images.load_image` returns it for a name;
            model-ready for a bare keras.Model.
        class_index: the class to explain; None means the top-1 class.
        layer: the layer path for CAM methods ("name" or "base/name"); None means the last
            convolution layer. Ignored by saliency methods.
        progress: progress(done, total) for the slow methods (Score-CAM, SmoothGrad, IG).
        **options: method options: `batch_size` (Score-CAM, SmoothGrad, IG), `samples`,
            `noise`, `seed` (SmoothGrad), `steps` (IG), `patch`, `stride` (occlusion).

    Returns:
        An `Explanation`; `heatmap` is (H, W) float32 in [0, 1] at the model's input size,
        zeros with a `reason` when the map is empty. Never NaN.

    Raises:
        CamError: unknown method or option, an image that does not fit, a class out of range,
            a layer without a spatial output.
        cnnviz.layers.LayerError: no such layer, or a model without a convolution layer.
    """
    net, x = prepare(model, image)
    return explain(
        net, x, method, class_index=class_index, layer=layer, progress=progress, options=options
    )


def grad_cam(
    model: str | keras.Model,
    image: np.ndarray,
    *,
    class_index: int | None = None,
    layer: str | None = None,
) -> np.ndarray:
    """Grad-CAM of one image (seed 003's recipe, for any model kind).

    Args:
        model: a registry name or a bare keras.Model (see `compute`).
        image: one image (H, W[, C]).
        class_index: the class to explain; None means the top-1 class.
        layer: the layer path; None means the last convolution layer.

    Returns:
        (H, W) float32 in [0, 1], the size of the model's input. An empty map (no positive
        evidence) is all zeros and comes with an `EmptyMapWarning` that says why; use
        `compute("gradcam", ...)` to get the reason as a value.
    """
    result = compute("gradcam", model, image, class_index=class_index, layer=layer)
    if result.reason:
        warnings.warn(result.reason, EmptyMapWarning, stacklevel=2)
    return result.heatmap
