"""Guided backprop and deconvnet: input gradients through a copy with a different ReLU gradient.

Both change only how the gradient passes back through each ReLU (Springenberg et al. 2015,
Fig. 1): plain backprop keeps the gradient where the forward input was positive; the deconvnet
keeps it where the gradient itself is positive; guided backprop keeps it where both are. The
swap is done on a COPY of the model's graph (`cnnviz.layers.with_relu_replaced`) whose ReLUs
are `tf.custom_gradient` ops; the shared model keeps its ordinary gradients.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from cnnviz import layers as layer_tools
from cnnviz.cam.base import CamError, Step
from cnnviz.cam.saliency import BaseSaliency

__all__ = ["guided_relu", "deconv_relu", "GuidedBackprop", "Deconvnet"]


@tf.custom_gradient
def guided_relu(x: tf.Tensor):
    """max(x, 0) whose gradient passes only where the input AND the gradient are positive."""

    def grad(dy: tf.Tensor) -> tf.Tensor:
        # Eq. in Fig. 1 of arXiv:1412.6806: R_l = (f_l > 0) · (R_{l+1} > 0) · R_{l+1}.
        return dy * tf.cast(x > 0, dy.dtype) * tf.cast(dy > 0, dy.dtype)

    return tf.nn.relu(x), grad


@tf.custom_gradient
def deconv_relu(x: tf.Tensor):
    """max(x, 0) whose gradient is the ReLU of the gradient (Zeiler & Fergus's deconvnet)."""

    def grad(dy: tf.Tensor) -> tf.Tensor:
        # Fig. 1 of arXiv:1412.6806: R_l = (R_{l+1} > 0) · R_{l+1}, the forward mask ignored.
        return tf.nn.relu(dy)

    return tf.nn.relu(x), grad


class _ReluSwap(BaseSaliency):
    """The gradient of the class score through a copy whose ReLUs are `relu`."""

    relu = staticmethod(guided_relu)

    def run(self, step: Step) -> tuple[np.ndarray, np.ndarray]:
        def make_copy(features):
            copy, replaced = layer_tools.with_relu_replaced(features, self.relu)
            if replaced == 0:
                raise CamError(
                    f"Expected a model with ReLU activations for {self.title}. Received a model "
                    "without any, for which it is the plain gradient."
                )
            return copy

        gradients = step.explainer.copy_input_gradients(self.name, make_copy)
        grads, logits, class_index = gradients(
            tf.constant(step.x), tf.constant([step.class_index], tf.int32)
        )
        step.logits = np.asarray(logits[0])
        step.class_index = int(class_index[0])
        grad = np.asarray(grads[0], dtype=np.float64)
        # Shown as the largest absolute value over colour channels, like the plain gradient.
        return grad.sum(axis=-1), np.abs(grad).max(axis=-1)


class GuidedBackprop(_ReluSwap):
    """Guided backpropagation.

    References:
        Springenberg, Dosovitskiy, Brox, Riedmiller, "Striving for Simplicity: The All
        Convolutional Net", ICLR Workshop 2015, arXiv:1412.6806 (Sec. 3.4, Fig. 1).
    """

    name = "guided_backprop"
    title = "Guided backprop"
    reference = "Springenberg et al., 2015 (arXiv:1412.6806)"
    explanation = (
        "Guided backprop is the plain gradient with one change: at every ReLU, only positive "
        "gradients flowing back through positive activations are let through. The maps look "
        "sharp and clean, like an edge drawing of the object. But Adebayo et al. (2018) found, "
        "on ImageNet networks, that they barely change when the weights are scrambled: much "
        "of what you see is the picture's edges, not what the network learned. Run the "
        "randomization test to see how it behaves on the network in front of you."
    )
    relu = staticmethod(guided_relu)


class Deconvnet(_ReluSwap):
    """Deconvnet visualisation: only the positive part of the gradient passes each ReLU.

    References:
        Zeiler, Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014,
        arXiv:1311.2901 (Sec. 2.1); as a backward rule, Fig. 1 of arXiv:1412.6806.
    """

    name = "deconvnet"
    title = "Deconvnet"
    reference = "Zeiler & Fergus, ECCV 2014 (arXiv:1311.2901)"
    explanation = (
        "The deconvnet runs the signal backwards through the network, and at every ReLU keeps "
        "only the positive part of what comes back, whatever the forward activation was. It "
        "shows which patterns in the picture would excite the class, and, like guided "
        "backprop, depends strongly on the picture itself."
    )
    relu = staticmethod(deconv_relu)
