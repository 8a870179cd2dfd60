"""The optimisation loop (lucent's `render`), and `visualize`, which puts the parts together.

`render` is only the loop: one compiled `tf.function` step that optimises every requested
filter at once, as one batch (image i is optimised for filter i), with a Keras optimiser
(Adam by default). The last `polish` fraction of the steps skips the transforms, so the
picture the transforms shaped is finally fitted exactly as it is scored. Periodic blur
(Yosinski et al., 2015) is a step of the loop (`blur_every`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from cnnviz import layers as layer_tools
from cnnviz.featureviz.errors import FeatureVizError
from cnnviz.featureviz.feed import build_feed, input_shape, resolve
from cnnviz.featureviz.objectives import (
    Objective,
    channel,
    class_logit,
    l2_penalty,
    neuron,
    total_variation,
)
from cnnviz.featureviz.param import ImageParam, fft_image, pixel_image
from cnnviz.featureviz.transforms import Transform, standard_transforms

__all__ = [
    "MAX_STEPS_ENV",
    "capped_steps",
    "render",
    "visualize",
    "plain_gradient_ascent",
    "PLAIN_OPTIONS",
]

#: Environment variable that caps every optimisation loop (tests set it to keep runs short).
MAX_STEPS_ENV = "CNNVIZ_MAX_STEPS"


def capped_steps(steps: int) -> int:
    """`steps`, lowered to $CNNVIZ_MAX_STEPS when that variable is set (tests keep runs short)."""
    cap = os.environ.get(MAX_STEPS_ENV, "").strip()
    if cap:
        try:
            return max(1, min(int(steps), int(cap)))
        except ValueError as err:
            raise FeatureVizError(
                f"Expected ${MAX_STEPS_ENV} to be an integer. Received {cap!r}."
            ) from err
    return int(steps)


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------


def _normalise_per_image(g: tf.Tensor) -> tf.Tensor:
    # keras.io's recipe: a unit-RMS gradient, here for each image of the batch separately.
    rms = tf.sqrt(tf.reduce_mean(tf.square(g), axis=list(range(1, g.shape.rank)), keepdims=True))
    return g / (rms + 1e-8)


def render(
    model,
    objective: Objective,
    param: ImageParam,
    *,
    transforms: Sequence[Transform] = (),
    optimizer: str | keras.optimizers.Optimizer = "adam",
    learning_rate: float = 0.2,
    steps: int = 128,
    blur_every: int = 0,
    blur_sigma: float = 0.5,
    polish: float = 0.0,
    normalize_gradients: bool = False,
    input_range: tuple[float, float] | None = None,
    score: Objective | None = None,
    seed: int = 0,
    progress: Callable[[int, int, np.ndarray], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Maximise `objective` over `param`'s images: the optimisation loop and nothing else.

    Every step is one compiled call: make the images, transform them, run the model, and take
    one optimiser step on the negated sum of the per-image objectives (images do not interact,
    so this is n independent ascents).

    Args:
        model: a model name (`cnnviz.models`) or a keras.Model.
        objective: what to maximise, one value per image.
        param: the parameterisation (`pixel_image`, `fft_image`).
        transforms: applied in order before every step; their randomness is seeded by `seed`
            and the step number.
        optimizer: a Keras optimiser or its name ("adam", "sgd", "rmsprop", ...).
        learning_rate: used when `optimizer` is a name.
        steps: number of steps (capped by $CNNVIZ_MAX_STEPS when set).
        blur_every: blur the image every this many steps (0: never).
        blur_sigma: the blur's standard deviation in pixels.
        polish: fraction of the steps, at the end, taken without the transforms: the image
            keeps the structure the transforms gave it and is then fitted to the objective
            exactly as it is scored.
        normalize_gradients: scale each image's gradient to unit RMS before the step.
        input_range: map [0, 1] linearly to (lo, hi) before the model; default: the zoo's
            preprocessing for a name, [0, 1] unchanged for a keras.Model.
        score: objective evaluated on the final images, untransformed (default: `objective`).
        seed: seeds the transforms.
        progress: called as progress(step, total, preview) after every step, preview being
            the images (n, H, W, C) in [0, 1] before that step's update.

    Returns:
        images: (n, H, W, C) float32 in [0, 1].
        scores: (n,) float32, `score` on the final images.

    Raises:
        FeatureVizError: the objective or the image became NaN or infinite.
    """
    n, h, w, c = param.shape
    steps = capped_steps(steps)
    if not 0.0 <= polish <= 1.0:
        raise FeatureVizError(f"Expected polish between 0 and 1. Received polish={polish!r}.")
    score = score or objective
    feed = build_feed(model, [objective, score], input_range, c)
    params, image_fn = param
    if isinstance(optimizer, str):
        try:
            # A fresh optimiser of the named kind: its state belongs to this run only.
            opt = type(keras.optimizers.get(optimizer))(learning_rate=learning_rate)
        except ValueError as err:
            raise FeatureVizError(
                f"Expected an optimiser name such as 'adam' or 'sgd'. Received {optimizer!r}."
            ) from err
    else:
        opt = optimizer
    opt.build(params)
    seed_t = tf.constant(int(seed) % (2**31 - 1), tf.int32)

    transformed_steps = steps - round(polish * steps) if transforms else 0

    def transformed(img: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        x = img
        for k, transform in enumerate(transforms):
            x = transform(x, tf.stack([seed_t, step * 16 + k]))
        # Back to the image's size, so every step feeds the model the same shape.
        return x if tuple(x.shape[1:3]) == (h, w) else tf.image.resize(x, (h, w))

    # autograph=False: the bodies branch on Python values only (tf.cond where a tensor decides),
    # and autograph would re-read this file's source at trace time.
    @tf.function(autograph=False, reduce_retracing=True)
    def step_fn(step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            # Make the images from the parameters.
            img = image_fn()
            # Move them a little, with randomness fixed by (seed, step, transform); the last
            # `polish` part of the run optimises the image exactly as it will be scored.
            x = img
            if transforms:
                x = tf.cond(step < transformed_steps, lambda: transformed(img, step), lambda: img)
            # Ask the model how much each image excites its filter; ascend on the sum.
            values = objective(feed(x, image=img))
            loss = -tf.reduce_sum(values)
        grads = tape.gradient(loss, params)
        if normalize_gradients:
            grads = [_normalise_per_image(g) for g in grads]
        opt.apply_gradients(zip(grads, params, strict=True))
        param.project()
        return values, img

    blur = tf.function(lambda: param.blur(blur_sigma), autograph=False) if blur_every else None
    for i in range(steps):
        values, preview = step_fn(tf.constant(i, tf.int32))
        values = values.numpy()
        if not np.all(np.isfinite(values)):
            raise FeatureVizError(
                f"The objective became NaN or infinite at step {i + 1} of {steps}. Expected "
                f"finite activations; try a smaller learning rate (now {learning_rate:g})."
            )
        if blur is not None and (i + 1) % blur_every == 0:
            blur()
        if progress is not None:
            progress(i + 1, steps, preview.numpy())
    # Score the final images as they are (one eager forward pass: no second trace to pay).
    final = image_fn()
    images, scores = final.numpy(), score(feed(final)).numpy()
    if not (np.all(np.isfinite(images)) and np.all(np.isfinite(scores))):
        raise FeatureVizError(
            "The image or its score became NaN or infinite. Expected finite values; try a "
            f"smaller learning rate (now {learning_rate:g})."
        )
    return images.astype(np.float32), scores.astype(np.float32)


# --------------------------------------------------------------------------------------------
# visualize: the defaults put together
# --------------------------------------------------------------------------------------------

#: Seed 003's method as `visualize` options (Chollet, Deep Learning with Python, 5.4.2, which
#: the seed's code follows): the image itself is optimised from grey with faint noise, with
#: gradient steps of unit RMS and size 1 on the 0..255 scale (1/255 here, where the image is
#: in [0, 1]), on the layer's own output after its ReLU; no transforms, no regularisers. We
#: clip to [0, 1] after each step so that the image stays a valid picture.
PLAIN_OPTIONS: dict = {
    "param": "clipped",
    "decorrelate": False,
    "transforms": "none",
    "tv": 0.0,
    "l2": 0.0,
    "blur_every": 0,
    "optimizer": "sgd",
    "learning_rate": 1 / 255,
    "normalize_gradients": True,
    "revive": False,
}

_PARAMS = ("fft", "pixel", "clipped")
_OBJECTIVES = ("channel", "neuron", "class")


def _size_pair(size: int | tuple[int, int] | None, keras_model: keras.Model) -> tuple[int, int]:
    h, w, _ = input_shape(keras_model)
    if size is None:
        # The model's own input size; 128 for models that take any size (cheap on a CPU).
        return (h or 128, w or 128)
    pair = (size, size) if isinstance(size, int | np.integer) else tuple(size)
    if len(pair) != 2 or not all(isinstance(v, int | np.integer) and 8 <= v <= 1024 for v in pair):
        raise FeatureVizError(
            f"Expected size to be an integer or (height, width) between 8 and 1024. Received {size!r}."
        )
    return int(pair[0]), int(pair[1])


def _channels_of(keras_model: keras.Model, layer: str | None, objective: str) -> int:
    if objective == "class":
        return int(keras_model.output_shape[-1])
    out = layer_tools.get_layer(keras_model, layer).output
    return int(out.shape[-1])


def _filter_list(filters: int | Sequence[int] | range, count: int, what: str) -> list[int]:
    arr = np.atleast_1d(np.asarray(list(filters) if isinstance(filters, range) else filters))
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise FeatureVizError(
            f"Expected {what} as an integer, a range or a list of integers. Received {filters!r}."
        )
    bad = [int(f) for f in arr if not 0 <= f < count]
    if bad:
        raise FeatureVizError(
            f"Expected {what} between 0 and {count - 1}. Received {bad[:5]}{' …' if len(bad) > 5 else ''}."
        )
    return [int(f) for f in arr]


def visualize(
    model,
    layer: str | None,
    filters: int | Sequence[int] | range,
    *,
    steps: int = 128,
    size: int | tuple[int, int] | None = None,
    seed: int = 0,
    progress: Callable[[int, int, np.ndarray], None] | None = None,
    objective: str = "channel",
    param: str = "fft",
    decorrelate: bool = True,
    transforms: str | Sequence[Transform] = "standard",
    tv: float = 0.0,
    l2: float = 0.0,
    blur_every: int = 0,
    blur_sigma: float = 0.5,
    polish: float = 0.3,
    optimizer: str = "adam",
    learning_rate: float = 0.2,
    normalize_gradients: bool = False,
    input_range: tuple[float, float] | None = None,
    revive: bool = True,
    batch_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The image each filter of `layer` responds to most, all filters optimised as one batch.

    Args:
        model: a model name (built-in, registry) or a Sequential, Functional or nested
            keras.Model.
        layer: layer path ("conv3", "base/block3_conv1"); ignored for objective="class".
        filters: channel indices (or class indices for objective="class").
        steps: optimisation steps (capped by $CNNVIZ_MAX_STEPS when set).
        size: image side, or (height, width); default the model's input size (128 for models
            that take any size). Models with a fixed input size see the image resized to it.
        seed: seeds the initial image and the transforms: same seed, same images.
        progress: progress(step, total, preview) after every step; preview is (n, H, W, C).
        objective: "channel" (mean activation, default), "neuron" (the centre unit) or
            "class" (the class's pre-softmax score).
        param: "fft" (lucid's spectrum), "pixel" (pixels through a sigmoid) or "clipped"
            (seed 003: the image itself, clipped to [0, 1]).
        decorrelate: mix colours through the decorrelated basis ("fft" and "pixel").
        transforms: "standard" (`standard_transforms`), "none", or a list of transforms.
        tv: weight of the total-variation penalty.
        l2: weight of the L2 pull towards grey.
        blur_every: blur the image every this many steps (0: never); blur_sigma in pixels.
        polish: fraction of the steps, at the end, without transforms (see `render`).
        optimizer: Keras optimiser name; learning_rate its step size.
        normalize_gradients: unit-RMS gradient per image before each step.
        input_range: (lo, hi) the model expects for [0, 1]; default: the zoo's preprocessing
            for a name, the image unchanged for a keras.Model (see the module docstring).
        revive: while a filter is silent after its built-in ReLU (no gradient), optimise it
            before the ReLU (see `channel`); the score is always taken after it.
        batch_size: optimise at most this many filters at once (memory); default all.

    Returns:
        images: (n, H, W, C) float32 in [0, 1]; C is 1 for one-channel models (gray).
        scores: (n,) float32 per image on its final image: the filter's mean activation over
            its whole map ("channel"), the centre unit ("neuron") or the logit ("class").

    Raises:
        FeatureVizError, cnnviz.layers.LayerError: bad arguments; an optimisation that
            diverged (NaN).
    """
    if param not in _PARAMS or objective not in _OBJECTIVES:
        raise FeatureVizError(
            f"Expected param in {_PARAMS} and objective in {_OBJECTIVES}. "
            f"Received param={param!r}, objective={objective!r}."
        )
    keras_model, _ = resolve(model)
    h, w = _size_pair(size, keras_model)
    c = input_shape(keras_model)[2]
    what = "classes" if objective == "class" else f"filters of {layer!r}"
    wanted = _filter_list(filters, _channels_of(keras_model, layer, objective), what)
    if isinstance(transforms, str):
        if transforms not in ("standard", "none"):
            raise FeatureVizError(
                f"Expected transforms 'standard', 'none' or a list. Received {transforms!r}."
            )
        transforms = standard_transforms(min(h, w)) if transforms == "standard" else []
    batch = len(wanted) if batch_size is None else max(1, int(batch_size))
    per_chunk = capped_steps(steps)
    total = per_chunk * math.ceil(len(wanted) / batch)
    images = np.full((len(wanted), h, w, c), 0.5, np.float32)
    scores = np.zeros(len(wanted), np.float32)

    for lo in range(0, len(wanted), batch):
        chunk = wanted[lo : lo + batch]
        # What to maximise: the filter (revived while silent), minus the regularisers'
        # penalties; what to report: the filter's own output.
        if objective == "class":
            main = full = class_logit(chunk)
        elif objective == "neuron":
            main = neuron(layer, chunk)
            full = neuron(layer, chunk, revive=revive)
        else:
            main = channel(layer, chunk)
            full = channel(layer, chunk, revive=revive)
        if tv:
            full = full - float(tv) * total_variation()
        if l2:
            full = full - float(l2) * l2_penalty()
        # How the image is made, seeded per chunk.
        # Each image's start depends on (seed, its filter) only, not on its batch-mates.
        chunk_seed = [(int(seed), f) for f in chunk]
        if param == "fft":
            made = fft_image(len(chunk), h, w, c, seed=chunk_seed, decorrelate=decorrelate)
        else:
            made = pixel_image(
                len(chunk),
                h,
                w,
                c,
                seed=chunk_seed,
                sigmoid=param == "pixel",
                decorrelate=decorrelate,
            )

        def report(step: int, _total: int, preview: np.ndarray, lo: int = lo) -> None:
            # Show the whole grid: finished chunks, this chunk's preview, grey for the rest.
            images[lo : lo + preview.shape[0]] = preview
            progress(lo // batch * per_chunk + step, total, images)

        imgs, vals = render(
            model,
            full,
            made,
            transforms=transforms,
            optimizer=optimizer,
            learning_rate=learning_rate,
            steps=steps,
            blur_every=blur_every,
            blur_sigma=blur_sigma,
            polish=polish,
            normalize_gradients=normalize_gradients,
            input_range=input_range,
            score=main,
            seed=seed + lo,
            progress=report if progress is not None else None,
        )
        images[lo : lo + len(chunk)] = imgs
        scores[lo : lo + len(chunk)] = vals
    return images, scores


def plain_gradient_ascent(
    model,
    layer: str | None,
    filters: int | Sequence[int] | range,
    *,
    steps: int = 40,
    size: int | tuple[int, int] | None = None,
    seed: int = 0,
    progress: Callable[[int, int, np.ndarray], None] | None = None,
    **options,
) -> tuple[np.ndarray, np.ndarray]:
    """Seed 003's naive method (`PLAIN_OPTIONS`) through `visualize`, for comparison."""
    return visualize(
        model,
        layer,
        filters,
        steps=steps,
        size=size,
        seed=seed,
        progress=progress,
        **{**PLAIN_OPTIONS, **options},
    )
