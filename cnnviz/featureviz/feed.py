"""The model side: from an image in [0, 1] to the activations and logits objectives read.

Input range: the image is made in [0, 1]. For a model given by name (a built-in or a registry
model), `cnnviz.models.resolve` supplies the preprocessing that data goes through; that
function is per-pixel affine (0..255 for the built-ins, which rescale inside; the ImageNet
families' own channel order, mean and scale), so we measure it once on a few probe pictures
and apply it as a differentiable map. For a bare `keras.Model` the image is fed as it is, in
[0, 1], unless `input_range=(lo, hi)` says otherwise. The shared model is never changed:
activations and logits come from new functional models over its layers
(`cnnviz.layers.feature_model`, `cnnviz.layers.logits_head`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from cnnviz import compiled
from cnnviz import layers as layer_tools
from cnnviz.featureviz.errors import FeatureVizError
from cnnviz.featureviz.objectives import LOGITS, PRE, Context, Objective

__all__ = ["Feed", "build_feed", "resolve", "input_shape", "suggested_input_range"]


def resolve(model) -> tuple[keras.Model, Callable | None]:
    """keras.Model and, for a model given by name, the zoo's preprocessing function."""
    if isinstance(model, keras.Model):
        return model, None
    if isinstance(model, str):
        from cnnviz import models  # only names need the zoo

        return models.resolve(model, pictures=False)  # it optimises inputs, not pictures
    raise FeatureVizError(
        f"Expected a model name or a keras.Model. Received {type(model).__name__}."
    )


def input_shape(model: keras.Model) -> tuple[int | None, int | None, int]:
    shape = model.input_shape
    if isinstance(shape, list):
        shape = shape[0]
    if len(shape) != 4:
        raise FeatureVizError(
            f"Expected a model that takes images (batch, height, width, channels). "
            f"Received input shape {shape}."
        )
    return shape[1], shape[2], int(shape[3])


def suggested_input_range(model) -> tuple[float, float] | None:
    """(0, 255) for a keras.Model whose first layer is Rescaling(1/255), else None.

    The project's own models (built-in and trained on the Train page) rescale inside, so they
    expect 0..255; a page can pass this as `input_range` for a session-trained model.
    """
    if not isinstance(model, keras.Model):
        return None
    first = next((lay for _, lay, _ in layer_tools.iter_layers(model)), None)
    if type(first).__name__ == "Rescaling":
        scale, offset = np.asarray(first.scale, float), np.asarray(first.offset, float)
        if np.allclose(scale, 1 / 255) and np.allclose(offset, 0):
            return (0.0, 255.0)
    return None


def _probe_affine(prep: Callable, h: int, w: int, c_img: int) -> tuple[np.ndarray, np.ndarray]:
    """Measure a per-pixel affine preprocessing y = x·A + b for x in [0, 1] ((c_img, c), (c,)).

    Probes: black, and black with a large centred square of 255 in one channel (all three for
    a gray model: a light blob on dark, which no digit-inversion rule touches). The corner
    of every probe must come out as black does, or the preprocessing is not per-pixel affine.
    """
    probes = [np.zeros((h, w, 3), np.uint8)]
    for k in range(c_img):
        img = np.zeros((h, w, 3), np.uint8)
        sl = (slice(h // 4, h - h // 4), slice(w // 4, w - w // 4))
        if c_img == 3:
            img[sl + (k,)] = 255
        else:
            img[sl] = 255
        probes.append(img)
    out = np.asarray(prep(np.stack(probes)), np.float64)
    if out.ndim != 4:
        raise FeatureVizError(
            f"Expected the model's preprocessing to return (n, h, w, c). Received shape {out.shape}."
        )
    b = out[0, 0, 0]
    a = np.stack([out[k + 1, out.shape[1] // 2, out.shape[2] // 2] - b for k in range(c_img)])
    corners_ok = np.allclose(out[1:, 0, 0], b, atol=1e-3 * (1 + np.abs(b).max()))
    if not corners_ok or np.abs(a).max() < 1e-6:
        raise FeatureVizError(
            "Expected the model's preprocessing to be a per-pixel affine map (scale, shift, "
            "channel order). Received one that depends on the image; pass input_range=(lo, hi)."
        )
    return a.astype(np.float32), b.astype(np.float32)


def _pre_activation(lay: keras.layers.Layer) -> Callable[[tf.Tensor], tf.Tensor] | None:
    """For a Conv2D or Dense layer with a built-in non-linearity: input -> pre-activation."""
    name = getattr(getattr(lay, "activation", None), "__name__", "linear")
    kind = type(lay).__name__
    if name == "linear" or kind not in ("Conv2D", "Dense"):
        return None
    if getattr(lay, "data_format", "channels_last") != "channels_last":
        return None

    # The layer's own weights, composed without its activation: the shared layer is untouched.
    def fn(x: tf.Tensor) -> tf.Tensor:
        z = lay.convolution_op(x, lay.kernel) if kind == "Conv2D" else tf.matmul(x, lay.kernel)
        return z + lay.bias if lay.use_bias else z

    return fn


def _logits_source(model: keras.Model) -> tuple[str | None, Callable[[tf.Tensor], tf.Tensor]]:
    """(path of what feeds the class scores, fn: its output -> pre-softmax scores)."""
    head = layer_tools.logits_head(model)
    if head.kind in ("softmax", "sigmoid"):
        # The input of the final softmax/sigmoid, through the last Dense without its activation.
        return head.source, head.logits
    if head.kind == "linear" and type(head.layer).__name__ == "Dense":
        # Any other built-in non-linearity of the last Dense is left out as well.
        pre = _pre_activation(head.layer)
        if pre is None:
            return head.path, _identity
        return layer_tools.input_source(model, head.path), pre
    kind = type(head.layer).__name__
    raise FeatureVizError(
        f"Expected the model to end in a Dense layer or a softmax layer to read class scores "
        f"from. Received {kind} ({head.path!r})."
    )


def _identity(t: tf.Tensor) -> tf.Tensor:
    return t


@dataclass
class Feed:
    """Image in [0, 1] -> model input -> the tensors objectives ask for, by key."""

    extractor: keras.Model | None
    targets: tuple[str, ...]  # layer paths the extractor returns, in order
    derived: dict  # key -> (source: layer path, derived key or None (model input), fn)
    size: tuple[int, int] | None  # fixed input size of the model, or None
    colour: np.ndarray  # (c_img, c_model)
    offset: np.ndarray  # (c_model,)

    def __call__(self, x: tf.Tensor, image: tf.Tensor | None = None) -> Context:
        """Context for images `x` (n, H, W, C) in [0, 1]; `image` is what regularisers see."""
        image = x if image is None else image
        # Resize to the model's input size when it has one and the image differs.
        if self.size is not None and tuple(x.shape[1:3]) != self.size:
            x = tf.image.resize(x, self.size, method="bilinear")
        # Map [0, 1] through the model's own preprocessing (a per-pixel affine map).
        x = tf.einsum("nhwc,ck->nhwk", x, tf.constant(self.colour)) + tf.constant(self.offset)
        # One forward pass to every layer we need, then pre-activations and logits from those.
        captured: dict = {None: x}
        if self.extractor is not None:
            outs = self.extractor(x, training=False)
            outs = outs if isinstance(outs, list | tuple) else [outs]
            captured.update(zip(self.targets, outs, strict=True))
        values = dict(captured)

        def value(key):
            # Each derived tensor once, after its source (a pre-activation before its output).
            if key not in values:
                src, fn = self.derived[key]
                values[key] = fn(value(src))
            return values[key]

        return Context({k: value(k) for k in self.derived}, image)


def _wiring(keras_model: keras.Model, keys: tuple[str, ...]) -> tuple:
    """(extractor, targets, derived) for the keys: the part of a feed that depends on the
    model and the objectives' layers only, built once and kept in `cnnviz.compiled`."""
    # Each key is fn(output of a source layer); None as the source is the model's input.
    derived: dict = {}
    for key in keys:
        if key == LOGITS:
            derived[key] = _logits_source(keras_model)
            continue
        path = key.removesuffix(PRE)
        lay = layer_tools.get_layer(keras_model, path)
        pre = _pre_activation(lay)
        if pre is None:
            # A layer without a built-in activation: its output is its pre-activation.
            derived[key] = (path, _identity)
            continue
        # The pre-activation from the layer's input, once; the output as activation(pre).
        derived[path + PRE] = (layer_tools.input_source(keras_model, path), pre)
        if key == path:
            derived[key] = (path + PRE, lay.activation)
    # Layer outputs the extractor must return: every source not computed here.
    targets = tuple(
        dict.fromkeys(
            src for src, _ in derived.values() if src is not None and not src.endswith(PRE)
        )
    )
    extractor = (
        layer_tools.feature_model(keras_model, list(targets), include_output=False)
        if targets
        else None
    )
    return extractor, targets, derived


def build_feed(
    model, objectives: Sequence[Objective], input_range: tuple[float, float] | None, c_img: int
) -> Feed:
    """The feed from images in [0, 1] to what `objectives` read, for `model`.

    The extraction model is built once per (model, layers read) and shared by every chunk,
    run and session (`cnnviz.compiled`); the input map is measured per call (it is cheap, and
    depends on whether the model came by name).
    """
    keras_model, prep = resolve(model)
    h, w, c_model = input_shape(keras_model)
    keys = sorted(set().union(*(o.layers for o in objectives)))
    if any(o.needs_logits for o in objectives):
        keys.append(LOGITS)
    extractor, targets, derived = compiled.get(
        keras_model, ("featureviz", tuple(keys)), lambda: _wiring(keras_model, tuple(keys))
    )
    if input_range is not None:
        lo, hi = (float(v) for v in input_range)
        if not hi > lo:
            raise FeatureVizError(
                f"Expected input_range=(lo, hi) with hi > lo. Received {input_range!r}."
            )
        colour = np.eye(c_img, c_model, dtype=np.float32) * (hi - lo)
        offset = np.full(c_model, lo, np.float32)
    elif prep is not None:
        colour, offset = _probe_affine(prep, h or 64, w or 64, c_img)
    else:
        colour, offset = np.eye(c_img, c_model, dtype=np.float32), np.zeros(c_model, np.float32)
    size = (h, w) if h is not None and w is not None else None
    return Feed(extractor, targets, derived, size, colour, offset)
