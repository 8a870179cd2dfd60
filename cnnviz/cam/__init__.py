"""Grad-CAM and its family over one base, saliency methods, and tools that test explanations.

Seed 003 explains VGG16's "African elephant" (class 386) with Grad-CAM at block5_conv3: take
the gradient of the class score with respect to the last conv layer's feature maps, average it
over space to get one weight per channel, add up the channels with those weights, keep the
positive part, upscale and lay it over the photo. This module does that for any Sequential,
Functional or nested Keras 3 model and any layer with a spatial output, in the shape of
pytorch-grad-cam, one concern per module:

- `base`: one base (`BaseCAM`) runs ONE compiled step that returns the layer's activations A,
  the gradients dS/dA of the class score S and the logits. The step is built once per
  (model, layer) from `cnnviz.layers.feature_model` (which reaches inside nested bases) and
  kept in the shared `cnnviz.compiled` cache, so a warm Grad-CAM costs about one forward pass.
- `family`: each CAM variant overrides one small piece (`get_cam_weights` or
  `get_cam_image`) and cites its paper: Grad-CAM, Grad-CAM++, HiResCAM, LayerCAM, Score-CAM
  (batched), Eigen-CAM.
- `saliency`: methods that work on the input instead of a layer: vanilla gradient,
  SmoothGrad, Integrated Gradients; `guided`: guided backprop and deconvnet (the gradient
  through a copy whose ReLUs pass gradients differently); `occlusion`: occlusion sensitivity
  (`occlusion_map`, and method "occlusion"), which needs forward passes only.
- `explain`: the registry `METHODS` (name -> class) and the entry points `compute` and
  `grad_cam`. S is the pre-softmax score (`cnnviz.layers.logits_head`): when the model ends in
  a softmax (or sigmoid), the logits are composed on the extraction path, and the shared model
  is never changed (the keras.io recipe's `model.layers[-1].activation = None` would change it
  for every browser session at once). A map that is empty everywhere (e.g. a class whose
  weights are all negative) comes back as zeros with a reason, never NaN.

Honesty tools, each its own module: `sanity.randomization_test` (Adebayo et al. 2018)
re-initialises the layers of a copy from the top down and measures how much the map changes;
`faithfulness.deletion_insertion` (Petsiuk et al. 2018) measures how fast the class
probability falls when the "important" pixels are removed (and rises when they are
inserted), against a random map.

Only the TensorFlow backend is supported: the step uses `tf.GradientTape` and `tf.function`.
"""

from cnnviz.cam.base import (
    BaseCAM,
    CamError,
    EmptyMapWarning,
    Explanation,
    Method,
    Progress,
    clear_cache,
)
from cnnviz.cam.explain import METHODS, MethodInfo, compute, grad_cam, method_info
from cnnviz.cam.faithfulness import Faithfulness, deletion_insertion, pointing, pointing_tolerance
from cnnviz.cam.family import (
    EigenCAM,
    GradCAM,
    GradCAMPlusPlus,
    HiResCAM,
    LayerCAM,
    ScoreCAM,
)
from cnnviz.cam.guided import Deconvnet, GuidedBackprop
from cnnviz.cam.occlusion import Occlusion, occlusion_map
from cnnviz.cam.saliency import BaseSaliency, IntegratedGradients, SmoothGrad, VanillaGradient
from cnnviz.cam.sanity import (
    RandomizationResult,
    RandomizationStage,
    randomization_test,
    randomized_copy,
)

__all__ = [
    "CamError",
    "EmptyMapWarning",
    "Explanation",
    "MethodInfo",
    "METHODS",
    "Method",
    "Progress",
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
    "GuidedBackprop",
    "Deconvnet",
    "Occlusion",
    "occlusion_map",
    "grad_cam",
    "compute",
    "method_info",
    "RandomizationStage",
    "RandomizationResult",
    "randomization_test",
    "randomized_copy",
    "Faithfulness",
    "deletion_insertion",
    "pointing",
    "pointing_tolerance",
    "clear_cache",
]
