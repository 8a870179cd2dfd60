"""The base of every explanation method: one compiled step, one `Method` per paper.

pytorch-grad-cam's `base_cam.py` shape: `Explainer` holds ONE compiled step per (model, layer)
that returns the layer's activations A, the gradients dS/dA of the class score S and the
logits, plus the input gradients, probabilities and Score-CAM's masked scores. It is built
from `cnnviz.layers.feature_model` (which reaches inside nested bases) and kept in the shared
`cnnviz.compiled` cache, so a warm Grad-CAM costs about one forward pass. `BaseCAM.run`
computes A and dS/dA once; a variant overrides `get_cam_weights` or `get_cam_image` only.

S is the pre-softmax score (`cnnviz.layers.logits_head`): when the model ends in a softmax or
sigmoid, the logits are composed on the extraction path and the shared model is never changed.

Adding a method: subclass `BaseCAM` (a layer's activations and gradients), `BaseSaliency`
(`cnnviz.cam.saliency`, gradients with respect to the input) or `Method` (anything else: its
`run` gets a `Step`), set its class attributes, and list the class in
`cnnviz.cam.explain.METHODS`.

Only the TensorFlow backend is supported: the step uses `tf.GradientTape` and `tf.function`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf
from scipy import special

from cnnviz import compiled
from cnnviz import layers as layer_tools

__all__ = [
    "Progress",
    "CamError",
    "EmptyMapWarning",
    "Explanation",
    "Explainer",
    "get_explainer",
    "clear_cache",
    "Step",
    "Method",
    "BaseCAM",
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
# The compiled steps, built once per (model, layer) and kept in cnnviz.compiled
# --------------------------------------------------------------------------------------------


class Explainer:
    """Compiled functions for one (model, layer): activations + gradients, input gradients,
    class probabilities and Score-CAM's masked scores. Reads the model's variables, so a copy
    whose weights are re-assigned in place (the randomization test) needs no rebuild."""

    def __init__(self, model: keras.Model, layer: str | None) -> None:
        # No reference to the model itself: the cache's weak reference must be able to die.
        self.layer = layer
        self.head = layer_tools.logits_head(model)
        paths = ([layer] if layer else []) + ([self.head.source] if self.head.source else [])
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
        self.loss_gradients = compile_(self._loss_gradients, x_spec, c_spec)
        self._compile = lambda fn: compile_(fn, x_spec, c_spec)
        self._copies: dict[str, Callable] = {}
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
        else:
            # The input of the final softmax/sigmoid: the last Dense's kernel and bias applied
            # to its input without the activation (or a bare Softmax/Activation's input).
            z = head.logits(outs[-2])
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

    def _loss_gradients(self, x: tf.Tensor, labels: tf.Tensor):
        # Cross-entropy of the softmax of the logits against `labels` (the attacks' loss).
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = self._logits(self._features(x, training=False))
            loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        return tape.gradient(loss, x), logits

    def copy_input_gradients(self, key: str, make_copy: Callable[[keras.Model], keras.Model]):
        """`input_gradients` through a private copy of this explainer's graph.

        The copy is made once by `make_copy(feature_model)` (guided backprop swaps its ReLUs)
        and its variables are re-assigned from the originals at every call, inside the step,
        so a copy whose weights were re-initialised in place (the randomization test) counts.
        """
        if key not in self._copies:
            copy = make_copy(self._features)
            pairs = list(zip(copy.weights, self._features.weights, strict=True))

            def step(x: tf.Tensor, class_index: tf.Tensor):
                for dst, src in pairs:
                    dst.assign(src.value)
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    logits = self._logits(copy(x, training=False))
                    score, class_index = self._pick(logits, class_index)
                return tape.gradient(score, x), logits, class_index

            self._copies[key] = self._compile(step)
        return self._copies[key]

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


def get_explainer(model: keras.Model, layer: str | None) -> Explainer:
    """The compiled steps for (model, layer), built once (see `cnnviz.compiled`)."""
    return compiled.get(model, ("cam", layer), lambda: Explainer(model, layer))


def clear_cache() -> None:
    """Drop every cached compiled step of the explainers (tests and memory pressure)."""
    compiled.clear("cam")


# --------------------------------------------------------------------------------------------
# The method family. Every method turns (explainer, input, class) into a raw map;
# `cnnviz.cam.explain` upsamples and scales it the same way for all.
# --------------------------------------------------------------------------------------------


@dataclass
class Step:
    """What a method needs for one image: filled by the base, read by the overrides."""

    explainer: Explainer
    x: np.ndarray  # (1, H, W, C) float32, model-ready
    class_index: int
    options: dict[str, Any]
    progress: Progress | None
    activations: np.ndarray | None = None  # (h, w, K) float64
    gradients: np.ndarray | None = None  # (h, w, K) float64, dS/dA
    logits: np.ndarray | None = None  # (classes,)


class Method:
    """One explanation method: its name in `METHODS`, what a page shows about it, and `run`.

    Stateless: `cnnviz.cam.explain` makes an instance per call.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    reference: ClassVar[str]
    explanation: ClassVar[str]
    uses_layer: ClassVar[bool]
    class_specific: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {}

    def run(self, step: Step) -> tuple[np.ndarray, np.ndarray]:
        """Returns (raw signed map, non-negative map to show), both 2-D."""
        raise NotImplementedError


class BaseCAM(Method):
    """Class activation maps from one layer's activations A (h, w, K) and gradients dS/dA.

    The map is ReLU(sum_k w_k A_k) with per-channel weights w (`get_cam_weights`); a variant
    overrides the weights or the whole combination (`get_cam_image`).
    """

    uses_layer = True

    def run(self, step: Step) -> tuple[np.ndarray, np.ndarray]:
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

    def get_cam_weights(self, step: Step) -> np.ndarray:
        """(K,) one weight per channel."""
        raise NotImplementedError

    def get_cam_image(self, step: Step, weights: np.ndarray | None) -> np.ndarray:
        """(h, w) the weighted sum of the channels (before the ReLU)."""
        return step.activations @ weights
