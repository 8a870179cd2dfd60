"""The model zoo: built-in models, lecture architectures, keras.applications, random variants.

Every library function that takes a `model` follows one rule (`resolve`):

- a registry **name** ("digits", "shapes", "lecture:mnist_cnn", "vgg16", "random:digits", ...)
  gives the loaded model and the entry's own preprocessing, which maps images as
  `cnnviz.images.load_image` / `cnnviz.datasets` return them (uint8, (H, W, 3) or (H, W), or a
  batch) to the float32 batch the model expects: resized, gray or colour, digits inverted when
  they are dark on light, and scaled the way the family was trained;
- a bare **keras.Model** is used as it is, fed `np.asarray(images, np.float32)` unchanged
  (only a batch axis is added to a single image).

Models are shared read-only by every browser session: nothing here changes a loaded model.
A "random:NAME" variant is a clone with freshly initialised weights; the original is untouched.

ImageNet weights are downloaded once into the Keras cache (`~/.keras/models`). Offline, the
download fails fast (a short socket timeout) and `load` returns the same architecture with
random weights, labelled as such in `info(...).note`, which also says where to put the weights
file by hand.

Names:
    built-ins    "digits" (28×28×1, 10 classes), "shapes" (64×64×3, 8 classes): trained by
                 `python -m cnnviz.train NAME`, shipped in assets/models/ with a model card.
    lecture      "lecture:mnist_cnn" (93,322 parameters), "lecture:mnist_cnn_base" (55,744),
                 "lecture:mnist_cnn_gap" (56,394), "lecture:cats_dogs_cnn" (3,453,121),
                 "lecture:small_cifar_cnn" (605,610, seed 001),
                 "lecture:vgg16_base" (14,714,688), "lecture:vgg16" (138,357,544): seed 003's
                 architectures with random weights, for exploring shapes and parameter counts.
    ImageNet     "vgg16", "vgg19", "resnet50", "mobilenet_v2", "inception_v3", "xception",
                 "efficientnet_b0", "densenet121" (keras.applications, weights="imagenet").
    random       "random:NAME" for any name above.

The package, one concern per module:
    registry      the entries (built-in, lecture, ImageNet), names, titles, `BUILTINS` facts
    applications  ImageNet weights download with its offline fallback and socket timeout
    loading       `load` (a small cache), `random_variant`
    preprocess    `info`, `resolve`, `prepare` (as the model expects), `predict`, `top_k`
    upload        `load_uploaded`: every check on a hostile file, before Keras reads it
    summary       `summary`, `totals`, `shape_flow` with receptive fields
    errors        ModelError and its subclasses, ModelInfo
    familiarity   `familiarity`, `unfamiliar`: is a picture like the training data (Lee 2018)

`models.summary` is the function; its module is `importlib.import_module("cnnviz.models.summary")`
(or `from cnnviz.models.summary import ...`).
"""

from __future__ import annotations

from cnnviz.models.applications import load_imagenet
from cnnviz.models.errors import (
    BlankImage,
    ModelError,
    ModelInfo,
    ModelOutputNotFinite,
    ModelRejected,
    ModelUnavailable,
)
from cnnviz.models.familiarity import (
    FamiliarityStats,
    FamiliarityUnavailable,
    familiarity,
    unfamiliar,
)
from cnnviz.models.loading import load, random_variant
from cnnviz.models.preprocess import (
    check_finite,
    fit_picture,
    info,
    predict,
    prepare,
    prepare_note,
    resolve,
    to_probabilities,
    top_k,
)
from cnnviz.models.registry import (
    ASSETS,
    BUILTINS,
    LECTURE_PARAMS,
    LECTURE_PREFIX,
    RANDOM_PREFIX,
    builtin_names,
    imagenet_names,
    lecture_names,
    model_names,
    title,
)
from cnnviz.models.summary import shape_flow, summary, totals
from cnnviz.models.upload import (
    CAPS,
    MAX_PARAMS,
    MAX_UPLOAD_BYTES,
    UploadCaps,
    check_activations,
    load_uploaded,
)

__all__ = [
    "ModelError",
    "ModelRejected",
    "ModelUnavailable",
    "BlankImage",
    "ModelOutputNotFinite",
    "ModelInfo",
    "ASSETS",
    "BUILTINS",
    "RANDOM_PREFIX",
    "LECTURE_PREFIX",
    "builtin_names",
    "lecture_names",
    "imagenet_names",
    "model_names",
    "title",
    "load",
    "load_imagenet",
    "info",
    "resolve",
    "prepare",
    "prepare_note",
    "predict",
    "check_finite",
    "fit_picture",
    "to_probabilities",
    "top_k",
    "LECTURE_PARAMS",
    "random_variant",
    "MAX_PARAMS",
    "MAX_UPLOAD_BYTES",
    "load_uploaded",
    "CAPS",
    "UploadCaps",
    "check_activations",
    "summary",
    "totals",
    "shape_flow",
    "familiarity",
    "unfamiliar",
    "FamiliarityStats",
    "FamiliarityUnavailable",
]
