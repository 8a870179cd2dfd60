"""Grad-CAM and its family over one base, saliency methods, and tools that test explanations.

Seed 003 explains VGG16's "African elephant" (class 386) with Grad-CAM at block5_conv3: take
the gradient of the class score with respect to the last conv layer's feature maps, average it
over space to get one weight per channel, add up the channels with those weights, keep the
positive part, upscale and lay it over the photo. This module does that for any Sequential,
Functional or nested Keras 3 model and any layer with a spatial output, in the shape of
pytorch-grad-cam's `base_cam.py`:

- One base (`BaseCAM`) runs ONE compiled step that returns the layer's activations A, the
  gradients dS/dA of the class score S and the logits. The step is built once per
  (model, layer) from `cnnviz.layers.feature_model` (which reaches inside nested bases) and
  kept in a small thread-safe cache, so a warm Grad-CAM costs about one forward pass.
- Each variant overrides one small piece (`get_cam_weights` or `get_cam_image`) and cites its
  paper: Grad-CAM, Grad-CAM++, HiResCAM, LayerCAM, Score-CAM (batched), Eigen-CAM.
- Saliency methods work on the input instead of a layer: vanilla gradient, SmoothGrad,
  Integrated Gradients.
- S is the pre-softmax score. When the model ends in a softmax (or sigmoid), the logits are
  computed by composition on the extraction path: the last Dense layer's input is extracted
  and its kernel and bias are applied without the activation. The shared model is never
  changed (the keras.io recipe's `model.layers[-1].activation = None` would change it for
  every browser session at once).
- A map that is empty everywhere (e.g. a class whose weights are all negative) comes back as
  zeros with a reason, never NaN.

Honesty tools: `randomization_test` (Adebayo et al. 2018) re-initialises the layers of a copy
from the top down and measures how much the map changes; `deletion_insertion` (Petsiuk et al.
2018) measures how fast the class probability falls when the "important" pixels are removed
(and rises when they are inserted), against a random map.

Only the TensorFlow backend is supported: the step uses `tf.GradientTape` and `tf.function`.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf
from scipy import ndimage, special, stats
from skimage.transform import resize as _sk_resize

from cnnviz import layers as layer_tools
from cnnviz import models

__all__ = [
    "CamError",
    "EmptyMapWarning",
    "Explanation",
    "MethodInfo",
    "METHODS",
    "BaseCAM",
    "GradCAM",
    "GradCAMPlusPlus",
    "HiResCAM",
    "LayerCAM",
    "ScoreCAM",
    "EigenCAM",
    "BaseSaliency",
    "VanillaGradient",
    "SmoothGrad",
    "IntegratedGradients",
    "grad_cam",
    "compute",
    "method_info",
    "RandomizationStage",
    "RandomizationResult",
    "randomization_test",
    "randomized_copy",
    "Faithfulness",
    "deletion_insertion",
    "clear_cache",
]

#: progress(done, total), called after each batch of work.
Progress = Callable[[int, int], None]


class CamError(ValueError):
    """Invalid input for an explanation; the message says what was expected."""


class EmptyMapWarning(UserWarning):
    """`grad_cam` returned an all-zero map; the message says why."""


@dataclass(frozen=True)
class Explanation:
    """One explanation of one image.

    Attributes:
        heatmap: (H, W) float32 in [0, 1], the size of the model's input; zeros when empty.
        raw: the signed map the heat map is drawn from, before ReLU/absolute value,
            upsampling and scaling: (h, w) at the layer's resolution for CAM methods, (H, W)
            channel-summed attributions for saliency methods.
        method: the method's name in `METHODS`.
        class_index: the class explained.
        layer: the layer path explained, or None for saliency methods.
        score: the class's pre-softmax score for the image.
        probabilities: (classes,) the model's class probabilities for the image.
        reason: why the map is empty, or None when it is not.
    """

    heatmap: np.ndarray
    raw: np.ndarray
    method: str
    class_index: int
    layer: str | None
    score: float
    probabilities: np.ndarray
    reason: str | None = None


# --------------------------------------------------------------------------------------------
# The pre-softmax score, found by reading the graph (never by changing the model)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Head:
    """How to get logits from the extraction outputs.

    kind: "softmax" / "sigmoid" (logits composed from `pre_path`), "linear" (the model output
    is already a score) or "log" (a squashing layer we cannot undo exactly: log-probability).
    """

    kind: str
    pre_path: str | None = None
    dense: keras.layers.Layer | None = None


def _squash_name(layer: keras.layers.Layer) -> str | None:
    """ "softmax" or "sigmoid" when the layer ends in one, else None."""
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    name = getattr(getattr(layer, "activation", None), "__name__", None)
    return name if name in ("softmax", "sigmoid") else None


def _final_layer(model: keras.Model, prefix: str = "") -> tuple[keras.layers.Layer, int, str]:
    """The layer that produces the model's (first) output, descending into nested models."""
    layer, node_index, _ = model.outputs[0]._keras_history
    if isinstance(layer, keras.Model):
        return _final_layer(layer, f"{prefix}{layer.name}/")
    return layer, node_index, prefix


def _find_head(model: keras.Model) -> _Head:
    """Where the logits are: the input of a final softmax/sigmoid, read from the graph."""
    last, node_index, prefix = _final_layer(model)
    squash = _squash_name(last)
    if squash is None:
        return _Head("linear")
    # The tensor that feeds the last layer, and the layer that made it.
    source = last._inbound_nodes[node_index].input_tensors[0]._keras_history.operation
    dense_ok = isinstance(last, keras.layers.Dense) and len(last.kernel.shape) == 2
    plain = isinstance(last, keras.layers.Activation | keras.layers.Softmax)
    if isinstance(source, keras.layers.InputLayer) or not (dense_ok or plain):
        return _Head("log")
    return _Head(squash, pre_path=f"{prefix}{source.name}", dense=last if dense_ok else None)


# --------------------------------------------------------------------------------------------
# The compiled steps, built once per (model, layer) and cached (the pattern of
# cnnviz.activations: keyed by id(model) with a weak reference beside it, since a dead
# model's id can be reused; a finaliser drops a dead model's entries).
# --------------------------------------------------------------------------------------------


class _Explainer:
    """Compiled functions for one (model, layer): activations + gradients, input gradients,
    class probabilities and Score-CAM's masked scores. Reads the model's variables, so a copy
    whose weights are re-assigned in place (the randomization test) needs no rebuild."""

    def __init__(self, model: keras.Model, layer: str | None) -> None:
        # No reference to the model itself: the cache's weak reference must be able to die.
        self.layer = layer
        self.head = _find_head(model)
        paths = ([layer] if layer else []) + ([self.head.pre_path] if self.head.pre_path else [])
        self._features = layer_tools.feature_model(model, paths)
        if layer is not None:
            shape = self._features.outputs[0].shape
            if len(shape) != 4:
                raise CamError(
                    f"Expected a layer with a spatial output (batch, height, width, channels). "
                    f"Received layer {layer!r} with output shape {tuple(shape)}."
                )
        out_shape = tuple(self._features.outputs[-1].shape)
        if len(out_shape) != 2:
            raise CamError(
                "Expected a model with a classifier head, whose output is one score per class "
                f"(batch, classes). Received output shape {out_shape} for model {model.name!r}."
            )
        self.binary = out_shape[-1] == 1
        self.classes = 2 if self.binary else int(self._features.outputs[-1].shape[-1])
        self.input_shape = tuple(self._features.inputs[0].shape[1:])
        x_spec = tf.TensorSpec((None, *self.input_shape), tf.float32)
        c_spec = tf.TensorSpec((None,), tf.int32)
        # Fixed signatures: one trace serves every batch size. No autograph: the steps have no
        # tensor-dependent Python control flow, and tracing reads no source files.
        maps_spec = tf.TensorSpec((None, None, None), tf.float32)

        def compile_(fn, *spec):
            return tf.function(fn, input_signature=list(spec), autograph=False)

        self.cam_step = compile_(self._cam_step, x_spec, c_spec)
        self.input_gradients = compile_(self._input_gradients, x_spec, c_spec)
        self.probabilities = compile_(self._probabilities, x_spec)
        self.masked_probabilities = compile_(self._masked_probabilities, x_spec, maps_spec, c_spec)
        if layer is not None:
            # Trace the gradient step now: a layer without a gradient path is refused here.
            self._disconnected = False
            self.cam_step.get_concrete_function()
            if self._disconnected:
                raise CamError(
                    f"Expected a layer whose output the class score depends on through "
                    f"differentiable operations (a convolution, pooling or activation layer). "
                    f"Received {layer!r} ({type(layer_tools.get_layer(model, layer)).__name__}), "
                    "which gives no gradient."
                )

    # -- graph pieces ----------------------------------------------------------------------

    def _logits(self, outs: list) -> tf.Tensor:
        """(N, classes) pre-softmax scores; a single sigmoid unit z becomes [-z/2, z/2]."""
        head = self.head
        if head.kind == "linear":
            z = outs[-1]
        elif head.kind == "log":
            # Probabilities we cannot un-squash exactly: log-odds for one unit, else log p.
            p = tf.clip_by_value(outs[-1], 1e-30, 1.0)
            z = tf.math.log(p) - tf.math.log1p(-p + 1e-30) if self.binary else tf.math.log(p)
        elif head.dense is None:
            z = outs[-2]  # an Activation/Softmax layer: its input is the logits
        else:
            # The last Dense's kernel and bias, applied to its input without the activation.
            z = tf.matmul(outs[-2], head.dense.kernel)
            z = z + head.dense.bias if head.dense.use_bias else z
        # Two classes, as cnnviz.models.predict reports them: softmax([-z/2, z/2]) = [1-p, p].
        return tf.concat([-z / 2, z / 2], axis=-1) if self.binary else z

    def _to_probabilities(self, logits: tf.Tensor) -> tf.Tensor:
        if self.head.kind == "sigmoid" and not self.binary:
            return tf.sigmoid(logits)  # independent labels
        return tf.nn.softmax(logits, axis=-1)

    def numpy_probabilities(self, logits: np.ndarray) -> np.ndarray:
        """The same as `_to_probabilities`, for one image's logits in NumPy."""
        if self.head.kind == "sigmoid" and not self.binary:
            return special.expit(logits)
        return special.softmax(logits)

    @staticmethod
    def _pick(logits: tf.Tensor, class_index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        # A negative index means "the top-1 class", decided inside the same step.
        top = tf.argmax(logits, axis=-1, output_type=tf.int32)
        class_index = tf.where(class_index < 0, top, class_index)
        return tf.gather(logits, class_index, axis=1, batch_dims=1), class_index

    # -- compiled steps --------------------------------------------------------------------

    def _cam_step(self, x: tf.Tensor, class_index: tf.Tensor):
        with tf.GradientTape() as tape:
            outs = self._features(x, training=False)
            logits = self._logits(outs)
            score, class_index = self._pick(logits, class_index)
        # dS/dA: how much each activation raises the class score (one score per image).
        grads = tape.gradient(score, outs[0])
        if grads is None:
            # Seen at trace time (in __init__); raised there, outside the graph.
            self._disconnected = True
            grads = tf.zeros_like(outs[0])
        return outs[0], grads, logits, class_index

    def _input_gradients(self, x: tf.Tensor, class_index: tf.Tensor):
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = self._logits(self._features(x, training=False))
            score, class_index = self._pick(logits, class_index)
        return tape.gradient(score, x), logits, class_index

    def _probabilities(self, x: tf.Tensor) -> tf.Tensor:
        return self._to_probabilities(self._logits(self._features(x, training=False)))

    def _masked_probabilities(self, x: tf.Tensor, maps: tf.Tensor, class_index: tf.Tensor):
        # Upsample each map to the input size and scale it to [0, 1] (Eq. 3, arXiv:1910.01279).
        up = tf.image.resize(maps[..., None], tf.shape(x)[1:3], method="bilinear")
        lo = tf.reduce_min(up, axis=[1, 2, 3], keepdims=True)
        hi = tf.reduce_max(up, axis=[1, 2, 3], keepdims=True)
        masks = tf.math.divide_no_nan(up - lo, hi - lo)
        # Show the model the image seen through each mask; read the class probability.
        probs = self._probabilities(x * masks)
        return tf.gather(probs, class_index[0], axis=1)


_CACHE_SIZE = 16
_LOCK = threading.RLock()  # re-entrant: a weakref callback may fire while this thread holds it
_CACHE: OrderedDict[tuple[int, str | None], tuple[weakref.ref, _Explainer]] = OrderedDict()


def _forget(model_id: int) -> None:
    with _LOCK:
        for key in [k for k in _CACHE if k[0] == model_id]:
            del _CACHE[key]


def clear_cache() -> None:
    """Drop every cached compiled step (tests and memory pressure)."""
    with _LOCK:
        _CACHE.clear()


def _explainer(model: keras.Model, layer: str | None) -> _Explainer:
    """The compiled steps for (model, layer), built once."""
    key = (id(model), layer)
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None and hit[0]() is model:
            _CACHE.move_to_end(key)
            return hit[1]
        # Build while holding the lock, so Keras never records call nodes on the shared layers
        # from two threads at a time.
        built = _Explainer(model, layer)
        model_id = id(model)
        _CACHE[key] = (weakref.ref(model, lambda _ref: _forget(model_id)), built)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
        return built


# --------------------------------------------------------------------------------------------
# Method family. Every method turns (explainer, input, class) into a raw map; `_explain`
# upsamples and scales it the same way for all.
# --------------------------------------------------------------------------------------------


@dataclass
class _Step:
    """What a method needs for one image: filled by the base, read by the overrides."""

    explainer: _Explainer
    x: np.ndarray  # (1, H, W, C) float32, model-ready
    class_index: int
    options: dict[str, Any]
    progress: Progress | None
    activations: np.ndarray | None = None  # (h, w, K) float64
    gradients: np.ndarray | None = None  # (h, w, K) float64, dS/dA
    logits: np.ndarray | None = None  # (classes,)


class _Method:
    name: ClassVar[str]
    title: ClassVar[str]
    reference: ClassVar[str]
    explanation: ClassVar[str]
    uses_layer: ClassVar[bool]
    class_specific: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {}

    def run(self, step: _Step) -> tuple[np.ndarray, np.ndarray]:
        """Returns (raw signed map, non-negative map to show), both 2-D."""
        raise NotImplementedError


class BaseCAM(_Method):
    """Class activation maps from one layer's activations A (h, w, K) and gradients dS/dA.

    The map is ReLU(sum_k w_k A_k) with per-channel weights w (`get_cam_weights`); a variant
    overrides the weights or the whole combination (`get_cam_image`).
    """

    uses_layer = True

    def run(self, step: _Step) -> tuple[np.ndarray, np.ndarray]:
        # One compiled step: the layer's activations, their gradients, and the logits.
        acts, grads, logits, class_index = step.explainer.cam_step(
            tf.constant(step.x), tf.constant([step.class_index], tf.int32)
        )
        step.activations = np.asarray(acts[0], dtype=np.float64)
        step.gradients = np.asarray(grads[0], dtype=np.float64)
        step.logits = np.asarray(logits[0])
        step.class_index = int(class_index[0])
        # Weight the channels, add them up, keep what raises the score.
        weights = self.get_cam_weights(step)
        cam = self.get_cam_image(step, weights)
        return cam, np.maximum(cam, 0.0)

    def get_cam_weights(self, step: _Step) -> np.ndarray:
        """(K,) one weight per channel."""
        raise NotImplementedError

    def get_cam_image(self, step: _Step, weights: np.ndarray | None) -> np.ndarray:
        """(h, w) the weighted sum of the channels (before the ReLU)."""
        return step.activations @ weights


class GradCAM(BaseCAM):
    """Grad-CAM: channel weight = gradient averaged over space.

    References:
        Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
        Localization", ICCV 2017, arXiv:1610.02391 (Eq. 1-2).
    """

    name = "gradcam"
    title = "Grad-CAM"
    reference = "Selvaraju et al., ICCV 2017 (arXiv:1610.02391)"
    explanation = (
        "Grad-CAM asks, for every channel of the chosen layer, how much the class score would "
        "rise if that channel's feature map grew a little: the gradient, averaged over the map. "
        "Channels that help the class get a positive weight. It then adds up the feature maps "
        "with these weights and keeps only the positive part, so bright regions are where the "
        "layer saw evidence *for* the class. The map has the layer's coarse resolution, "
        "upscaled to the image."
    )

    def get_cam_weights(self, step: _Step) -> np.ndarray:
        # Eq. 1 in arXiv:1610.02391: alpha_k = mean over (i, j) of dS/dA_k(i, j).
        return step.gradients.mean(axis=(0, 1))


class GradCAMPlusPlus(BaseCAM):
    """Grad-CAM++: pixel-weighted positive gradients, better with several objects.

    References:
        Chattopadhay et al., "Grad-CAM++: Improved Visual Explanations for Deep Convolutional
        Networks", WACV 2018, arXiv:1710.11063 (Eq. 19, with the exponential-score closed form).
    """

    name = "gradcam++"
    title = "Grad-CAM++"
    reference = "Chattopadhay et al., WACV 2018 (arXiv:1710.11063)"
    explanation = (
        "Grad-CAM++ changes how the channel weights are made. Instead of averaging all "
        "gradients, it counts only positive ones and gives each location its own weight, so "
        "that a channel which fires strongly on a small object is not drowned out by a large "
        "one. It often covers more of the object, and several objects of the same class."
    )

    def get_cam_weights(self, step: _Step) -> np.ndarray:
        g, a = step.gradients, step.activations
        g2, g3 = g**2, g**3
        # Eq. 19 in arXiv:1710.11063: alpha = g^2 / (2 g^2 + sum_ab A_ab * g^3).
        denom = 2.0 * g2 + a.sum(axis=(0, 1)) * g3
        alpha = np.where((g != 0) & (denom != 0), g2 / np.where(denom != 0, denom, 1.0), 0.0)
        # Weight = sum over locations of alpha * ReLU(gradient).
        return (alpha * np.maximum(g, 0.0)).sum(axis=(0, 1))


class HiResCAM(BaseCAM):
    """HiResCAM: gradient times activation at each location, then summed over channels.

    References:
        Draelos and Carin, "Use HiResCAM instead of Grad-CAM for faithful explanations of
        convolutional neural networks", arXiv:2011.08891 (Eq. 5).
    """

    name = "hirescam"
    title = "HiResCAM"
    reference = "Draelos & Carin, 2020 (arXiv:2011.08891)"
    explanation = (
        "HiResCAM skips Grad-CAM's averaging step: it multiplies each activation by its own "
        "gradient, location by location, and adds up the channels. For a model that ends in "
        "global average pooling and one dense layer, this is exactly how much each location "
        "adds to the score, so the map cannot highlight a place the model did not use."
    )

    def get_cam_image(self, step: _Step, weights: np.ndarray | None) -> np.ndarray:
        # Eq. 5 in arXiv:2011.08891: sum_k dS/dA_k (.) A_k (element-wise).
        return (step.gradients * step.activations).sum(axis=-1)

    def get_cam_weights(self, step: _Step) -> None:
        return None


class LayerCAM(BaseCAM):
    """LayerCAM: positive gradient times activation, location by location.

    References:
        Jiang et al., "LayerCAM: Exploring Hierarchical Class Activation Maps for
        Localization", IEEE TIP 30, 2021, doi:10.1109/TIP.2021.3089943 (Eq. 5-6).
    """

    name = "layercam"
    title = "LayerCAM"
    reference = "Jiang et al., IEEE TIP 2021"
    explanation = (
        "LayerCAM weights every location of every channel by its own positive gradient before "
        "adding the channels up. Because it keeps fine detail, it also gives sharp, useful maps "
        "for early layers, where Grad-CAM's single weight per channel becomes noisy. Try it in "
        "the compare-layers strip."
    )

    def get_cam_image(self, step: _Step, weights: np.ndarray | None) -> np.ndarray:
        # Eq. 5-6: w_k(i, j) = ReLU(dS/dA_k(i, j)); map = sum_k w_k (.) A_k.
        return (np.maximum(step.gradients, 0.0) * step.activations).sum(axis=-1)

    def get_cam_weights(self, step: _Step) -> None:
        return None


class ScoreCAM(BaseCAM):
    """Score-CAM: channel weight = class probability when the image is seen through that
    channel's map. Gradient-free; one forward pass per channel, batched.

    References:
        Wang et al., "Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural
        Networks", CVPR Workshops 2020, arXiv:1910.01279 (Eq. 3-5; the authors' code uses the
        masked image's softmax probability as the weight).
    """

    name = "scorecam"
    title = "Score-CAM"
    reference = "Wang et al., CVPRW 2020 (arXiv:1910.01279)"
    explanation = (
        "Score-CAM uses no gradients at all. It takes each channel's feature map, stretches it "
        "to the image size, and shows the model the image seen through that map as a stencil. "
        "If the model is still sure about the class, the channel must cover something "
        "important, so it gets a large weight. It is slower (one forward pass per channel) but "
        "does not suffer from noisy or saturated gradients."
    )
    defaults = {"batch_size": 32}

    def get_cam_weights(self, step: _Step) -> np.ndarray:
        acts = step.activations
        k = acts.shape[-1]
        weights = np.zeros(k)
        # A flat channel makes an all-zero stencil; skip it (its weight stays 0).
        flat = acts.reshape(-1, k)
        live = np.flatnonzero(flat.max(axis=0) > flat.min(axis=0))
        batch = max(1, int(step.options["batch_size"]))
        x = tf.constant(step.x)
        class_index = tf.constant([step.class_index], tf.int32)
        for start in range(0, live.size, batch):
            idx = live[start : start + batch]
            maps = tf.constant(np.moveaxis(acts[..., idx], -1, 0).astype(np.float32))
            # Eq. 4: the class probability of the image masked by each upsampled map.
            weights[idx] = np.asarray(step.explainer.masked_probabilities(x, maps, class_index))
            if step.progress is not None:
                step.progress(min(start + batch, live.size), live.size)
        return weights


class EigenCAM(BaseCAM):
    """Eigen-CAM: the first principal component of the activations. Class-independent.

    References:
        Muhammad and Yeasin, "Eigen-CAM: Class Activation Map using Principal Components",
        IJCNN 2020, arXiv:2008.00299 (Eq. 6-7).
    """

    name = "eigencam"
    title = "Eigen-CAM"
    reference = "Muhammad & Yeasin, IJCNN 2020 (arXiv:2008.00299)"
    class_specific = False
    explanation = (
        "Eigen-CAM ignores the class and the gradients. It looks for the one pattern that "
        "explains most of the layer's activity across its channels (the first principal "
        "component) and shows where that pattern is strong. It answers 'what stands out to this "
        "layer?', not 'why this class?', so it looks the same whichever class you pick."
    )

    def get_cam_image(self, step: _Step, weights: np.ndarray | None) -> np.ndarray:
        acts = step.activations
        h, w, k = acts.shape
        flat = acts.reshape(h * w, k)
        # Eq. 6-7: project the (locations x channels) matrix on its first right singular vector.
        _, _, vt = np.linalg.svd(flat, full_matrices=False)
        proj = flat @ vt[0]
        # A singular vector's sign is arbitrary: choose the one that agrees with total activity.
        if proj @ flat.sum(axis=1) < 0:
            proj = -proj
        return proj.reshape(h, w)

    def get_cam_weights(self, step: _Step) -> None:
        return None


class BaseSaliency(_Method):
    """Saliency from gradients of the class score with respect to the input pixels."""

    uses_layer = False

    def gradients(self, step: _Step, x: np.ndarray) -> np.ndarray:
        """dS/dx for a batch (N, H, W, C) of inputs, for the step's class: (N, H, W, C)."""
        batch = max(1, int(step.options.get("batch_size", 16)))
        out = []
        for start in range(0, x.shape[0], batch):
            chunk = x[start : start + batch]
            classes = np.full(chunk.shape[0], step.class_index, dtype=np.int32)
            grads, _, _ = step.explainer.input_gradients(tf.constant(chunk), tf.constant(classes))
            out.append(np.asarray(grads, dtype=np.float64))
            if step.progress is not None:
                step.progress(min(start + batch, x.shape[0]), x.shape[0])
        return np.concatenate(out)

    def run(self, step: _Step) -> tuple[np.ndarray, np.ndarray]:
        # First the clean image: its logits and, by default, its top-1 class.
        grads, logits, class_index = step.explainer.input_gradients(
            tf.constant(step.x), tf.constant([step.class_index], tf.int32)
        )
        step.logits = np.asarray(logits[0])
        step.class_index = int(class_index[0])
        return self.attribute(step, np.asarray(grads[0], dtype=np.float64))

    def attribute(self, step: _Step, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(raw channel-summed map, non-negative map to show) from the clean gradient."""
        raise NotImplementedError


class VanillaGradient(BaseSaliency):
    """Gradient saliency: |dS/dx|, largest over colour channels.

    References:
        Simonyan, Vedaldi, Zisserman, "Deep Inside Convolutional Networks: Visualising Image
        Classification Models and Saliency Maps", ICLR Workshop 2014, arXiv:1312.6034 (Sec. 3.1).
    """

    name = "gradient"
    title = "Vanilla gradient"
    reference = "Simonyan et al., 2014 (arXiv:1312.6034)"
    explanation = (
        "The plain gradient asks: if I changed this one pixel a little, how much would the class "
        "score change? Pixels with a large answer (either direction) are bright. It has full "
        "image resolution but is usually speckled and noisy, because a network's score is a "
        "bumpy function of individual pixels."
    )

    def attribute(self, step: _Step, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Sec. 3.1 of arXiv:1312.6034: M(i, j) = max over channels of |dS/dx(i, j, c)|.
        return grad.sum(axis=-1), np.abs(grad).max(axis=-1)


class SmoothGrad(BaseSaliency):
    """SmoothGrad: the gradient averaged over noisy copies of the image.

    References:
        Smilkov et al., "SmoothGrad: removing noise by adding noise", arXiv:1706.03825 (Eq. 3;
        noise 10-20 % of the input range, 50 samples in the paper).
    """

    name = "smoothgrad"
    title = "SmoothGrad"
    reference = "Smilkov et al., 2017 (arXiv:1706.03825)"
    explanation = (
        "SmoothGrad adds a little random noise to the image many times, takes the plain "
        "gradient of each noisy copy, and averages them. The speckles, which change from copy "
        "to copy, cancel out; the pixels that matter in every copy remain. The result is a "
        "cleaner, full-resolution saliency map."
    )
    defaults = {"samples": 25, "noise": 0.15, "batch_size": 16, "seed": 0}

    def attribute(self, step: _Step, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = step.x[0]
        n = max(1, int(step.options["samples"]))
        # Noise with sigma = noise level x the input's range (Sec. 3 of arXiv:1706.03825).
        sigma = float(step.options["noise"]) * float(x.max() - x.min())
        rng = np.random.default_rng(step.options["seed"])
        noisy = (x[None] + rng.normal(0.0, sigma, (n, *x.shape))).astype(np.float32)
        # Eq. 3: the mean of the noisy copies' gradients.
        mean = self.gradients(step, noisy).mean(axis=0)
        return mean.sum(axis=-1), np.abs(mean).max(axis=-1)


class IntegratedGradients(BaseSaliency):
    """Integrated Gradients from a zero (black) baseline.

    References:
        Sundararajan, Taly, Yan, "Axiomatic Attribution for Deep Networks", ICML 2017,
        arXiv:1703.01365 (Eq. 1 and its Riemann-sum approximation, Eq. 3).
    """

    name = "integrated_gradients"
    title = "Integrated Gradients"
    reference = "Sundararajan et al., ICML 2017 (arXiv:1703.01365)"
    explanation = (
        "Integrated Gradients fades the image in from a blank (all-zero) input in small steps, "
        "takes the gradient at every step, and adds them up along the way, times how much each "
        "pixel changed. The attributions of all pixels add up to the score of the image minus "
        "the score of the blank input, so every bit of the prediction is accounted for."
    )
    defaults = {"steps": 32, "batch_size": 16}

    def attribute(self, step: _Step, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = step.x[0].astype(np.float64)
        m = max(1, int(step.options["steps"]))
        # Points on the straight path from the baseline x' = 0 to x (Eq. 1).
        alphas = np.linspace(0.0, 1.0, m + 1)
        path = (alphas[:, None, None, None] * x[None]).astype(np.float32)
        grads = self.gradients(step, path)
        # Eq. 3 with the trapezoid rule: the average gradient along the path ...
        avg = (grads[0] / 2 + grads[1:-1].sum(axis=0) + grads[-1] / 2) / m
        # ... times (x - x'). Channel sums add up to S(x) - S(x').
        total = (x * avg).sum(axis=-1)
        return total, np.abs(total)


#: Every method by name.
METHODS: dict[str, _Method] = {
    cls.name: cls()
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
    m = _method(name)
    return MethodInfo(m.name, m.title, m.reference, m.explanation, m.uses_layer, m.class_specific)


def _method(name: str) -> _Method:
    if name not in METHODS:
        raise CamError(f"Unknown method {name!r}. Expected one of: {', '.join(METHODS)}.")
    return METHODS[name]


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


def _prepare(model: str | keras.Model, image: np.ndarray) -> tuple[keras.Model, np.ndarray]:
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


def _options(method: _Method, options: dict[str, Any]) -> dict[str, Any]:
    unknown = set(options) - set(method.defaults)
    if unknown:
        known = ", ".join(method.defaults) or "none"
        raise CamError(
            f"Unknown option(s) {', '.join(sorted(unknown))} for method {method.name!r}. "
            f"Expected: {known}."
        )
    return {**method.defaults, **options}


def _explain(
    net: keras.Model,
    x: np.ndarray,
    method: str,
    *,
    class_index: int | None,
    layer: str | None,
    progress: Progress | None,
    options: dict[str, Any],
    explainer: _Explainer | None = None,
) -> Explanation:
    """Run a method on a model-ready image (1, H, W, C) and scale its map for display."""
    m = _method(method)
    path = (layer or layer_tools.last_conv_layer(net)) if m.uses_layer else None
    explainer = explainer or _explainer(net, path)
    n_classes = explainer.classes
    if class_index is not None and not 0 <= int(class_index) < n_classes:
        raise CamError(
            f"Expected class_index in [0, {n_classes - 1}] for model {net.name!r}. "
            f"Received {class_index}."
        )
    step = _Step(
        explainer=explainer,
        x=x,
        class_index=-1 if class_index is None else int(class_index),
        options=_options(m, options),
        progress=progress,
    )
    raw, positive = m.run(step)
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
    positive: np.ndarray, method: _Method, layer: str | None
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
            "gradient", "smoothgrad" or "integrated_gradients".
        model: a registry name (its preprocessing is applied, see `cnnviz.models.resolve`) or a
            bare keras.Model (the image is fed as float32, unchanged).
        image: one image (H, W[, C]) as `cnnviz.images.load_image` returns it for a name;
            model-ready for a bare keras.Model.
        class_index: the class to explain; None means the top-1 class.
        layer: the layer path for CAM methods ("name" or "base/name"); None means the last
            convolution layer. Ignored by saliency methods.
        progress: progress(done, total) for the slow methods (Score-CAM, SmoothGrad, IG).
        **options: method options: `batch_size` (Score-CAM, SmoothGrad, IG), `samples`,
            `noise`, `seed` (SmoothGrad), `steps` (IG).

    Returns:
        An `Explanation`; `heatmap` is (H, W) float32 in [0, 1] at the model's input size,
        zeros with a `reason` when the map is empty. Never NaN.

    Raises:
        CamError: unknown method or option, an image that does not fit, a class out of range,
            a layer without a spatial output.
        cnnviz.layers.LayerError: no such layer, or a model without a convolution layer.
    """
    net, x = _prepare(model, image)
    return _explain(
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


# --------------------------------------------------------------------------------------------
# Model randomization sanity check (Adebayo et al. 2018)
# --------------------------------------------------------------------------------------------

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
    net, x = _prepare(model, image)
    m = _method(method)
    path = (layer or layer_tools.last_conv_layer(net)) if m.uses_layer else None
    # The original map, from the shared model (read-only).
    first = _explain(
        net, x, method, class_index=class_index, layer=path, progress=None, options=options
    )
    # A private deep copy with its own compiled steps (not cached: it dies with this call).
    copy = _clone(net)
    explainer = _Explainer(copy, path)
    stages_total = len(_weighted_layers_top_down(copy)) + 1

    def stage(randomized: tuple[str, ...]) -> RandomizationStage:
        result = _explain(
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


# --------------------------------------------------------------------------------------------
# Faithfulness: deletion and insertion (RISE, Petsiuk et al. 2018)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Faithfulness:
    """Deletion and insertion curves of one map, and of random maps for comparison.

    Attributes:
        fractions: (steps + 1,) fraction of pixels removed (deletion) or inserted (insertion).
        deletion, insertion: (steps + 1,) the class probability along the way for the map.
        random_deletion, random_insertion: the same for random maps (mean over repeats).
        *_auc: areas under the curves (trapezoid rule over fractions in [0, 1]). A faithful map
            has a LOWER deletion AUC and a HIGHER insertion AUC than the random maps.
    """

    method: str
    class_index: int
    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    random_deletion: np.ndarray
    random_insertion: np.ndarray
    deletion_auc: float
    insertion_auc: float
    random_deletion_auc: float
    random_insertion_auc: float


def _curves(
    explainer: _Explainer,
    x: np.ndarray,
    blurred: np.ndarray,
    order: np.ndarray,
    steps: int,
    class_index: int,
    batch: int,
    tick: Callable[[], None],
) -> tuple[np.ndarray, np.ndarray]:
    """Deletion and insertion curves for one pixel order (most important first)."""
    h, w = x.shape[1:3]
    counts = np.round(np.linspace(0, h * w, steps + 1)).astype(np.int64)
    rank = np.empty(h * w, dtype=np.int64)
    rank[order] = np.arange(h * w)
    rank = rank.reshape(h, w)
    curves = []
    for start_img, end_img in ((x[0], np.zeros_like(x[0])), (blurred, x[0])):
        # Image k: pixels ranked below counts[k] switched from the start to the end picture.
        switched = rank[None] < counts[:, None, None]  # (steps + 1, h, w)
        batch_imgs = np.where(switched[..., None], end_img[None], start_img[None])
        probs = []
        for lo in range(0, steps + 1, batch):
            p = explainer.probabilities(tf.constant(batch_imgs[lo : lo + batch], tf.float32))
            probs.append(np.asarray(p)[:, class_index])
        curves.append(np.concatenate(probs).astype(np.float64))
        tick()
    return curves[0], curves[1]


def deletion_insertion(
    model: str | keras.Model,
    image: np.ndarray,
    *,
    method: str = "gradcam",
    class_index: int | None = None,
    layer: str | None = None,
    heatmap: np.ndarray | None = None,
    steps: int = 20,
    random_repeats: int = 2,
    seed: int = 0,
    batch_size: int = 32,
    progress: Progress | None = None,
    **options: Any,
) -> Faithfulness:
    """Deletion and insertion curves and their AUC for a method's map, with a random baseline.

    Deletion removes the pixels the map ranks highest first (sets them to 0, black for the
    built-ins) and follows the class probability down: a faithful map makes it fall fast
    (low AUC). Insertion starts from a blurred copy and puts the top-ranked pixels back first:
    the probability should rise fast (high AUC). Random maps give the baseline to beat.

    Args:
        model: a registry name or a bare keras.Model (see `compute`).
        image: one image (H, W[, C]).
        method: the method whose map is tested (ignored when `heatmap` is given).
        class_index: the class; None means the top-1 class.
        layer: the layer for CAM methods.
        heatmap: an already computed (H, W) map at the model's input size, to skip recomputing.
        steps: points on each curve after the start (resolution of the curve).
        random_repeats: how many random maps to average for the baseline.
        seed: seed of the random maps and of the tie-breaking between equal map values.
        batch_size: images per forward pass.
        progress: progress(curves done, curves total).
        **options: method options, see `compute`.

    Returns:
        `Faithfulness`.

    References:
        Petsiuk, Das, Saenko, "RISE: Randomized Input Sampling for Explanation of Black-box
        Models", BMVC 2018, arXiv:1806.07421 (Sec. 4.1, deletion and insertion metrics).
    """
    if steps < 1 or random_repeats < 1 or batch_size < 1:
        raise CamError(
            "Expected steps, random_repeats and batch_size >= 1. "
            f"Received steps={steps}, random_repeats={random_repeats}, batch_size={batch_size}."
        )
    net, x = _prepare(model, image)
    size = x.shape[1:3]
    if heatmap is None:
        result = _explain(
            net, x, method, class_index=class_index, layer=layer, progress=None, options=options
        )
        heatmap, class_index = result.heatmap, result.class_index
    heatmap = np.asarray(heatmap, dtype=np.float64)
    if heatmap.shape != size:
        raise CamError(f"Expected a heat map of shape {size}. Received {heatmap.shape}.")
    explainer = _explainer(net, None)
    if class_index is None:
        class_index = int(np.argmax(np.asarray(explainer.probabilities(tf.constant(x)))[0]))
    rng = np.random.default_rng(seed)
    # Insertion's starting canvas: the image blurred (RISE: sigma 5 px at 224 px).
    sigma = max(1.0, 5.0 * max(size) / 224.0)
    blurred = ndimage.gaussian_filter(x[0], sigma=(sigma, sigma, 0))
    total = 2 * (1 + random_repeats)
    done = [0]

    def tick() -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], total)

    # Most important pixels first; equal values (e.g. the zeros of a CAM) in random order.
    order = np.lexsort((rng.random(heatmap.size), -heatmap.ravel()))
    args = (explainer, x, blurred)
    deletion, insertion = _curves(*args, order, steps, class_index, batch_size, tick)
    randoms = [
        _curves(*args, rng.permutation(heatmap.size), steps, class_index, batch_size, tick)
        for _ in range(random_repeats)
    ]
    random_deletion = np.mean([r[0] for r in randoms], axis=0)
    random_insertion = np.mean([r[1] for r in randoms], axis=0)
    fractions = np.linspace(0.0, 1.0, steps + 1)
    auc = lambda curve: float(np.trapezoid(curve, fractions))  # noqa: E731
    return Faithfulness(
        method=method,
        class_index=int(class_index),
        fractions=fractions,
        deletion=deletion,
        insertion=insertion,
        random_deletion=random_deletion,
        random_insertion=random_insertion,
        deletion_auc=auc(deletion),
        insertion_auc=auc(insertion),
        random_deletion_auc=auc(random_deletion),
        random_insertion_auc=auc(random_insertion),
    )
