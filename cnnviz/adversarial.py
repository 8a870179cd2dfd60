"""Adversarial examples: a change too small to see that changes the prediction.

FGSM (Goodfellow et al. 2015) takes one step of size ε along the sign of the loss gradient;
PGD (Madry et al. 2018) takes several smaller steps, projecting back into the L∞ ball of
radius ε around the picture after each. Both work in the picture's own pixel space:

- ε is a fraction of the pixel range: 8/255 means 8 levels of a uint8 picture (0..255), or
  0.031 of a float picture in 0..1;
- the gradient flows through the model's preprocessing. For a picture already at the model's
  input size, every preprocessing in the zoo (scaling, gray conversion, inversion, ImageNet
  centring) is an affine map of each pixel's channels, x_model = A·x + b, which is measured
  by probing `preprocess` once per channel and checked; the pixel gradient is then Aᵀ·∇.
  A user's picture is made like the training data first (`models.fit_picture`): the attack
  works on the pixels the model reads;
- the result is rounded to the picture's dtype and re-clipped, so rounding never leaves the
  ball or the valid range.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from cnnviz import models
from cnnviz.cam.base import Explainer, Progress, get_explainer

__all__ = [
    "AdversarialError",
    "fgsm",
    "pgd",
    "pixel_range",
    "FlipResult",
    "smallest_flipping_epsilon",
]


class AdversarialError(ValueError):
    """Invalid input for an attack; the message says what was expected."""


def pixel_range(image: np.ndarray) -> tuple[float, float]:
    """The valid range of a picture: 0..255 for uint8, 0..1 or 0..255 for floats."""
    img = np.asarray(image)
    if img.dtype == np.uint8:
        return 0.0, 255.0
    if not np.issubdtype(img.dtype, np.floating):
        raise AdversarialError(f"Expected a uint8 or float picture. Received dtype {img.dtype}.")
    if not np.isfinite(img).all():
        raise AdversarialError("Expected finite pixel values. Received NaN or infinity.")
    lo, hi = float(img.min()), float(img.max())
    if lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0
    if lo >= 0.0 and hi <= 255.0:
        return 0.0, 255.0
    raise AdversarialError(
        f"Expected float pixels in 0..1 or 0..255. Received values in {lo:.3g}..{hi:.3g}."
    )


@dataclass(frozen=True)
class _Target:
    """A picture's way into the model: its affine preprocessing and the compiled steps."""

    explainer: Explainer
    x0: np.ndarray  # (1, H, W, c) model-ready picture
    a: np.ndarray  # (C, c): d x_model / d x_pixel per pixel
    pixels: np.ndarray  # (H, W, C) float64 picture
    lo: float
    hi: float

    def to_model(self, pixels: np.ndarray) -> np.ndarray:
        """Model-ready batch (N, H, W, c) of pixel pictures (N, H, W, C)."""
        return (self.x0 + (pixels - self.pixels) @ self.a).astype(np.float32)

    def gradient(self, pixels: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(d loss / d pixels (N, H, W, C), logits (N, classes)); loss = cross-entropy."""
        grads, logits = self.explainer.loss_gradients(
            tf.constant(self.to_model(pixels)), tf.constant(labels, tf.int32)
        )
        # Chain rule through the affine preprocessing: dL/dx_pixel = dL/dx_model · A.
        return np.asarray(grads, np.float64) @ self.a.T, np.asarray(logits)

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        return np.asarray(self.explainer.probabilities(tf.constant(self.to_model(pixels))))


def _target(model: str | keras.Model, image: np.ndarray) -> _Target:
    img = np.asarray(image)
    if img.ndim not in (2, 3) or img.size == 0:
        raise AdversarialError(
            f"Expected one picture (H, W) or (H, W, C). Received an array of shape {img.shape}."
        )
    lo, hi = pixel_range(img)
    # The picture is already at the model's input: no picture fitting (crop, MNIST centring),
    # whose crop would move with the perturbation; `models.fit_picture` does it beforehand.
    net, preprocess = models.resolve(model, pictures=False)
    pixels = (img[..., None] if img.ndim == 2 else img).astype(np.float64)
    expected = tuple(net.input_shape[1:3])
    if pixels.shape[:2] != expected:
        raise AdversarialError(
            f"Expected a picture of the model's input size {expected[1]}×{expected[0]} (an "
            f"attack changes the pixels the model sees). Received {img.shape[1]}×{img.shape[0]}."
        )

    def run(p: np.ndarray) -> np.ndarray:
        q = p[..., 0] if img.ndim == 2 else p
        return np.asarray(preprocess(q.astype(np.float32)), np.float64)

    x0 = run(pixels)
    # Probe each channel with a small step: the columns of the per-pixel affine map A.
    step = (hi - lo) / 255.0
    columns = []
    for c in range(pixels.shape[-1]):
        probe = pixels.copy()
        probe[..., c] += step
        diff = (run(probe) - x0)[0] / step  # (H, W, c)
        column = diff.reshape(-1, diff.shape[-1]).mean(axis=0)
        if not np.allclose(diff, column, atol=1e-3 * (np.abs(column).max() + 1e-12)):
            raise AdversarialError(
                "Expected the model's preprocessing to act on each pixel's channels alone "
                "(scaling, gray conversion, inversion). This model's preprocessing mixes "
                "pixels or changes its decision near this picture, so attacks cannot reach "
                "its pixels."
            )
        columns.append(column)
    explainer = get_explainer(net, None)
    return _Target(explainer, x0.astype(np.float32), np.stack(columns), pixels, lo, hi)


def _check_epsilon(epsilon: float) -> float:
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float | np.number):
        raise AdversarialError(f"Expected epsilon to be a number. Received {epsilon!r}.")
    eps = float(epsilon)
    if not 0.0 <= eps <= 1.0:
        raise AdversarialError(
            f"Expected epsilon in [0, 1] (a fraction of the pixel range, e.g. 8/255). "
            f"Received epsilon={epsilon!r}."
        )
    return eps


def _check_class(t: _Target, value: int | None, what: str) -> int | None:
    if value is None:
        return None
    n = t.explainer.classes
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 0 <= value < n:
        raise AdversarialError(f"Expected {what} in [0, {n - 1}]. Received {what}={value!r}.")
    return int(value)


def _finish(t: _Target, adv: np.ndarray, radius: float, image: np.ndarray) -> np.ndarray:
    """Round to the picture's dtype, then clip into the ball and the valid range again."""
    img = np.asarray(image)
    out = adv[0]
    if np.issubdtype(img.dtype, np.integer):
        # Rounding may step half a level out; the ball's edge on a level grid is floor(radius).
        r = np.floor(radius + 1e-9)
        out = np.clip(np.rint(out), t.pixels - r, t.pixels + r)
    else:
        out = np.clip(out, t.pixels - radius, t.pixels + radius)
    out = np.clip(out, t.lo, t.hi).astype(img.dtype)
    return out[..., 0] if img.ndim == 2 else out


def fgsm(
    model: str | keras.Model,
    image: np.ndarray,
    *,
    epsilon: float,
    class_index: int | None = None,
) -> np.ndarray:
    """Fast gradient sign method: one step of ε along the sign of the loss gradient.

    Args:
        model: a registry name (its preprocessing is part of the gradient) or a bare model.
        image: one picture (H, W[, C]) at the model's input size, uint8 or float.
        epsilon: the L∞ radius as a fraction of the pixel range (8/255: 8 uint8 levels).
        class_index: the class to move away from; None means the picture's top-1 class.

    Returns:
        The adversarial picture, same shape and dtype, within ε of the picture (after
        rounding) and inside the valid range.

    References:
        Goodfellow, Shlens, Szegedy, "Explaining and Harnessing Adversarial Examples",
        ICLR 2015, arXiv:1412.6572 (Eq. 3).
    """
    t = _target(model, image)
    eps = _check_epsilon(epsilon)
    label = _check_class(t, class_index, "class_index")
    radius = eps * (t.hi - t.lo)
    x = t.pixels[None]
    if label is None:
        label = int(np.argmax(t.predict(x)[0]))
    # Eq. 3: x + ε·sign(∇x J(θ, x, y)), raising the loss of the true class.
    grad, _ = t.gradient(x, np.array([label]))
    return _finish(t, x + radius * np.sign(grad), radius, image)


def pgd(
    model: str | keras.Model,
    image: np.ndarray,
    *,
    epsilon: float,
    steps: int = 10,
    step_size: float | None = None,
    target: int | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Projected gradient descent in the L∞ ball (untargeted, or towards `target`).

    Args:
        model: a registry name or a bare model (see `fgsm`).
        image: one picture (H, W[, C]) at the model's input size, uint8 or float.
        epsilon: the L∞ radius as a fraction of the pixel range.
        steps: number of signed gradient steps.
        step_size: each step as a fraction of the range; None means 2.5·ε/steps (Madry et
            al.'s choice, enough to cross the ball and back).
        target: a class to reach (lower its loss); None means move away from the top-1 class.
        progress: progress(steps done, steps).

    Returns:
        The adversarial picture, same shape and dtype, within ε of the picture (after
        rounding) and inside the valid range.

    References:
        Madry, Makelov, Schmidt, Tsipras, Vladu, "Towards Deep Learning Models Resistant to
        Adversarial Attacks", ICLR 2018, arXiv:1706.06083 (Eq. 2).
    """
    t = _target(model, image)
    eps = _check_epsilon(epsilon)
    goal = _check_class(t, target, "target")
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or not 1 <= steps <= 1000:
        raise AdversarialError(f"Expected steps to be an integer in [1, 1000]. Received {steps!r}.")
    if step_size is not None and not 0.0 < float(step_size) <= 1.0:
        raise AdversarialError(
            f"Expected step_size in (0, 1] (a fraction of the pixel range). Received {step_size!r}."
        )
    span = t.hi - t.lo
    radius = eps * span
    alpha = (2.5 * eps / steps if step_size is None else float(step_size)) * span
    x0 = t.pixels[None]
    label = goal if goal is not None else int(np.argmax(t.predict(x0)[0]))
    # Targeted: descend the target's loss; untargeted: ascend the true class's loss.
    sign = -1.0 if goal is not None else 1.0
    x = x0.copy()
    for k in range(int(steps)):
        grad, _ = t.gradient(x, np.array([label]))
        x = x + sign * alpha * np.sign(grad)
        # Eq. 2: project back into the ε ball around the picture, and the valid range.
        x = np.clip(np.clip(x, x0 - radius, x0 + radius), t.lo, t.hi)
        if progress is not None:
            progress(k + 1, int(steps))
    return _finish(t, x, radius, image)


@dataclass(frozen=True)
class FlipResult:
    """The smallest ε (to `tolerance`) whose attack changes the top-1 class.

    Attributes:
        epsilon: the smallest flipping ε found, or None when even `max_epsilon` does not flip.
        image: the adversarial picture at that ε (None when nothing flips).
        original_class: the picture's top-1 class; new_class: the class after the attack.
        tried: (ε, flipped) for every attack run, in order.
    """

    epsilon: float | None
    image: np.ndarray | None
    original_class: int
    new_class: int | None
    tried: list[tuple[float, bool]]


def smallest_flipping_epsilon(
    model: str | keras.Model,
    image: np.ndarray,
    *,
    method: str = "pgd",
    max_epsilon: float = 32 / 255,
    tolerance: float = 0.5 / 255,
    steps: int = 10,
    progress: Progress | None = None,
) -> FlipResult:
    """Bisection on ε for the smallest attack that changes the top-1 class.

    Assumes that an attack that flips at ε also flips at any larger ε (true in practice for
    PGD; FGSM can be non-monotone, so its answer is an upper end of a flipping interval).

    Args:
        model: a registry name or a bare model.
        image: one picture at the model's input size.
        method: "pgd" or "fgsm".
        max_epsilon: the largest ε tried.
        tolerance: stop when the interval is narrower than this.
        steps: PGD steps per attack.
        progress: progress(attacks done, attacks planned).
    """
    if method not in ("pgd", "fgsm"):
        raise AdversarialError(f'Expected method "pgd" or "fgsm". Received {method!r}.')
    hi = _check_epsilon(max_epsilon)
    if not 0.0 < float(tolerance) < hi:
        raise AdversarialError(
            f"Expected tolerance in (0, max_epsilon). Received tolerance={tolerance!r}."
        )
    t = _target(model, image)
    original = int(np.argmax(t.predict(t.pixels[None])[0]))
    planned = 1 + int(np.ceil(np.log2(hi / float(tolerance))))
    tried: list[tuple[float, bool]] = []

    def attack(eps: float) -> tuple[np.ndarray, int]:
        if method == "pgd":
            adv = pgd(model, image, epsilon=eps, steps=steps)
        else:
            adv = fgsm(model, image, epsilon=eps, class_index=original)
        a = np.asarray(adv, np.float64)
        a = a[..., None] if a.ndim == 2 else a
        cls = int(np.argmax(t.predict(a[None])[0]))
        tried.append((eps, cls != original))
        if progress is not None:
            progress(min(len(tried), planned), planned)
        return adv, cls

    best, best_cls = attack(hi)
    if best_cls == original:
        return FlipResult(None, None, original, None, tried)
    lo = 0.0
    while hi - lo > float(tolerance):
        mid = (lo + hi) / 2
        adv, cls = attack(mid)
        if cls != original:
            hi, best, best_cls = mid, adv, cls
        else:
            lo = mid
    return FlipResult(hi, best, original, best_cls, tried)
