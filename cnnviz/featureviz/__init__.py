"""Activation maximisation: the picture a filter, a neuron or a class likes best.

Seed 003 finds what a filter looks for by gradient ascent in input space: start from a grey,
slightly noisy image x and repeat x ← x + η ∂L/∂x, where L is the filter's mean activation
(40 plain steps). The keras.io recipe does the same with normalised gradients, 30 steps, one
filter at a time. Plain ascent finds high-frequency noise that the network likes but a person
cannot read. Lucid (Olah et al., 2017) gets far cleaner pictures by changing three things, and
this package keeps them apart the way lucent's `optvis` does, one module each:

- **param**: *how the image is made* from what is optimised. `pixel_image` optimises pixels;
  `fft_image` optimises a Fourier spectrum scaled by 1/frequency (so low frequencies move as
  fast as high ones) and mixes colours through a decorrelated basis. Both return an
  `ImageParam`, which unpacks as lucent's `(params, image_fn)`; `image_fn()` gives
  (n, H, W, C) floats in [0, 1].
- **objectives**: *what is optimised*, composable with + - and scalars:
  `channel(layer, filters) - 0.05 * total_variation()`. `channel` (the default) is a filter's
  mean activation, `neuron` its centre unit, `class_logit` a class's pre-softmax score. A
  ReLU filter that is silent on the starting image has no gradient; `revive=True` ascends its
  value before the ReLU until it fires (the purpose of lucid's "redirected ReLU").
- **transforms**: small closures `(images, seed) -> images` applied before every step (`pad`,
  `jitter`, `random_scale`, `random_rotate`), so the picture must work when moved a little.
  Their randomness is stateless and seeded, so a run is repeatable.
- **regularisers** (Yosinski et al., 2015): an L2 pull towards grey and total variation are
  objectives; periodic blur is a step of the loop (`blur_every`).
- **feed**: the model side, from an image in [0, 1] to the activations and logits the
  objectives read (the zoo's preprocessing as a differentiable affine map; the extraction
  model built once per model and layer set, in `cnnviz.compiled`).
- **render** is only the loop: one compiled `tf.function` step that optimises every requested
  filter at once, as one batch (image i is optimised for filter i), with a Keras optimiser
  (Adam by default). The last `polish` fraction of the steps skips the transforms, so the
  picture the transforms shaped is finally fitted exactly as it is scored.

`visualize(model, layer, filters)` (in `render`) puts these together with sensible defaults.
The weights themselves (seed 001's AlexNet 11×11×3 kernels) are not gradient ascent: see
`cnnviz.weights`. The shared model is never changed: activations and logits come from new
functional models over its layers.

References:
    Olah, Mordvintsev, Schubert, "Feature Visualization", Distill 2017.
    Mordvintsev, Pezzotti, Schubert, Olah, "Differentiable Image Parameterizations", Distill
    2018 (FFT parameterisation, decorrelated colour).
    Yosinski, Clune, Nguyen, Fuchs, Lipson, "Understanding Neural Networks Through Deep
    Visualization", ICML Deep Learning Workshop 2015 (L2 decay, periodic blur).
    Chollet, "Visualizing what convnets learn", keras.io (the plain recipe).
"""

from cnnviz.featureviz.errors import FeatureVizError
from cnnviz.featureviz.feed import suggested_input_range
from cnnviz.featureviz.objectives import (
    Objective,
    channel,
    class_logit,
    l2_penalty,
    neuron,
    total_variation,
)
from cnnviz.featureviz.param import ImageParam, fft_image, pixel_image
from cnnviz.featureviz.render import (
    MAX_STEPS_ENV,
    PLAIN_OPTIONS,
    capped_steps,
    plain_gradient_ascent,
    render,
    visualize,
)
from cnnviz.featureviz.transforms import (
    jitter,
    pad,
    random_rotate,
    random_scale,
    standard_transforms,
)

__all__ = [
    "FeatureVizError",
    "MAX_STEPS_ENV",
    "ImageParam",
    "pixel_image",
    "fft_image",
    "Objective",
    "channel",
    "neuron",
    "class_logit",
    "total_variation",
    "l2_penalty",
    "pad",
    "jitter",
    "random_scale",
    "random_rotate",
    "standard_transforms",
    "capped_steps",
    "render",
    "visualize",
    "plain_gradient_ascent",
    "PLAIN_OPTIONS",
    "suggested_input_range",
]
