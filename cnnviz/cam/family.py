"""The CAM family: a layer's activations weighted by what raises the class score.

Each variant overrides one piece of `BaseCAM` (`get_cam_weights` or `get_cam_image`) and cites
its paper's equation. Seed 003's Grad-CAM: the gradient of the class score with respect to the
last conv layer's feature maps, averaged over space to one weight per channel; the channels
added up with those weights; the positive part kept.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from cnnviz.cam.base import BaseCAM, Step

__all__ = ["GradCAM", "GradCAMPlusPlus", "HiResCAM", "LayerCAM", "ScoreCAM", "EigenCAM"]


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

    def get_cam_weights(self, step: Step) -> np.ndarray:
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

    def get_cam_weights(self, step: Step) -> np.ndarray:
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

    def get_cam_image(self, step: Step, weights: np.ndarray | None) -> np.ndarray:
        # Eq. 5 in arXiv:2011.08891: sum_k dS/dA_k (.) A_k (element-wise).
        return (step.gradients * step.activations).sum(axis=-1)

    def get_cam_weights(self, step: Step) -> None:
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

    def get_cam_image(self, step: Step, weights: np.ndarray | None) -> np.ndarray:
        # Eq. 5-6: w_k(i, j) = ReLU(dS/dA_k(i, j)); map = sum_k w_k (.) A_k.
        return (np.maximum(step.gradients, 0.0) * step.activations).sum(axis=-1)

    def get_cam_weights(self, step: Step) -> None:
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

    def get_cam_weights(self, step: Step) -> np.ndarray:
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

    def get_cam_image(self, step: Step, weights: np.ndarray | None) -> np.ndarray:
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

    def get_cam_weights(self, step: Step) -> None:
        return None
