"""Saliency methods: gradients of the class score with respect to the input pixels.

Vanilla gradient, SmoothGrad and Integrated Gradients share `BaseSaliency`, which takes the
clean image's gradient (and its top-1 class) in one compiled step and batches the gradients of
noisy or interpolated copies.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from cnnviz.cam.base import Method, Step

__all__ = ["BaseSaliency", "VanillaGradient", "SmoothGrad", "IntegratedGradients"]


class BaseSaliency(Method):
    """Saliency from gradients of the class score with respect to the input pixels."""

    uses_layer = False

    def gradients(self, step: Step, x: np.ndarray) -> np.ndarray:
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

    def run(self, step: Step) -> tuple[np.ndarray, np.ndarray]:
        # First the clean image: its logits and, by default, its top-1 class.
        grads, logits, class_index = step.explainer.input_gradients(
            tf.constant(step.x), tf.constant([step.class_index], tf.int32)
        )
        step.logits = np.asarray(logits[0])
        step.class_index = int(class_index[0])
        return self.attribute(step, np.asarray(grads[0], dtype=np.float64))

    def attribute(self, step: Step, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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

    def attribute(self, step: Step, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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

    def attribute(self, step: Step, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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

    def attribute(self, step: Step, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
