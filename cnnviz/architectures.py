"""Keras builders for the lectures' CNNs and the project's built-in models.

Every builder returns a new, built `keras.Sequential` (an explicit `keras.Input` first) whose
layers have readable names ("conv1", "pool1", ..., "predictions"), so pages can address
them. Parameter counts match the lecture slides exactly:

| builder                          | parameters | seed |
| -------------------------------- | ---------- | ---- |
| `mnist_cnn(head=None)`           | 55,744     | 003  |
| `mnist_cnn(head="flatten")`      | 93,322     | 003  |
| `mnist_cnn(head="gap")`          | 56,394     | 003  |
| `cats_dogs_cnn()`                | 3,453,121  | 003  |
| `small_cifar_cnn()`              | 605,610    | 001  |

`rescale=True` puts a `Rescaling(1/255)` layer first (no parameters), so a saved model takes
raw 0..255 pixels and is self-contained; the shipped models are built that way.
"""

from __future__ import annotations

from typing import Literal

import keras
from keras import layers

__all__ = ["ArchitectureError", "mnist_cnn", "cats_dogs_cnn", "shapes_cnn", "small_cifar_cnn"]


class ArchitectureError(ValueError):
    """Invalid arguments for a builder; the message says what was expected."""


def _start(input_shape: tuple[int, ...], rescale: bool) -> list[layers.Layer]:
    """The input (and the optional 0..255 -> 0..1 rescaling) every builder begins with."""
    if len(input_shape) != 3 or any(int(d) < 1 for d in input_shape):
        raise ArchitectureError(
            f"Expected input_shape (height, width, channels). Received {input_shape!r}."
        )
    first: list[layers.Layer] = [
        keras.Input(shape=tuple(int(d) for d in input_shape), name="input")
    ]
    if rescale:
        first.append(layers.Rescaling(1.0 / 255, name="rescale"))
    return first


def _check_classes(classes: int) -> None:
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise ArchitectureError(
            f"Expected classes to be a positive integer. Received classes={classes!r}."
        )


def mnist_cnn(
    head: Literal["flatten", "gap"] | None = "flatten",
    input_shape: tuple[int, int, int] = (28, 28, 1),
    classes: int = 10,
    *,
    rescale: bool = False,
) -> keras.Sequential:
    """Seed 003's MNIST CNN: three 3×3 convolutions with 2×2 max-pooling between them.

    Conv2D(32) relu → MaxPool 2 → Conv2D(64) relu → MaxPool 2 → Conv2D(64) relu, then
    - head="flatten": Flatten → Dense(64) relu → Dense(classes) softmax (93,322 parameters),
    - head="gap": GlobalAveragePooling2D → Dense(classes) softmax (56,394 parameters),
    - head=None: no classifier; the output is the 3×3×64 feature map (55,744 parameters).

    Input shape: (batch, 28, 28, 1). Output shape: (batch, classes), or (batch, 3, 3, 64).
    """
    if head not in ("flatten", "gap", None):
        raise ArchitectureError(f'Expected head "flatten", "gap" or None. Received head={head!r}.')
    _check_classes(classes)
    stack = _start(input_shape, rescale) + [
        layers.Conv2D(32, (3, 3), activation="relu", name="conv1"),
        layers.MaxPooling2D((2, 2), name="pool1"),
        layers.Conv2D(64, (3, 3), activation="relu", name="conv2"),
        layers.MaxPooling2D((2, 2), name="pool2"),
        layers.Conv2D(64, (3, 3), activation="relu", name="conv3"),
    ]
    if head == "flatten":
        # Flatten the 3×3×64 map to 576 values: most of the extra weights are here.
        stack += [
            layers.Flatten(name="flatten"),
            layers.Dense(64, activation="relu", name="dense1"),
            layers.Dense(classes, activation="softmax", name="predictions"),
        ]
    elif head == "gap":
        # One average per feature map: 64 values, so far fewer weights to learn.
        stack += [
            layers.GlobalAveragePooling2D(name="gap"),
            layers.Dense(classes, activation="softmax", name="predictions"),
        ]
    name = {"flatten": "mnist_cnn", "gap": "mnist_cnn_gap", None: "mnist_cnn_base"}[head]
    return keras.Sequential(stack, name=name)


def cats_dogs_cnn(
    input_shape: tuple[int, int, int] = (150, 150, 3),
    *,
    dropout: bool = False,
    rescale: bool = False,
    classes: int = 1,
    padding: str = "valid",
) -> keras.Sequential:
    """Seed 003's cats-vs-dogs CNN: four conv + pool blocks (32, 64, 128, 128 filters).

    Flatten → [Dropout(0.5), the seed's second version] → Dense(512) relu → Dense(1) sigmoid.
    3,453,121 parameters at 150×150×3 with the defaults.

    Args:
        classes: 1 gives the seed's sigmoid "dog" output; more gives a softmax over classes
            (the Train page's version for digits and shapes).
        padding: "valid" as in the seed; "same" lets small inputs (28×28) pass four poolings.

    Input shape: (batch, *input_shape). Output shape: (batch, classes).
    """
    stack = _start(input_shape, rescale)
    for block, filters in enumerate((32, 64, 128, 128), start=1):
        stack += [
            layers.Conv2D(filters, (3, 3), activation="relu", padding=padding, name=f"conv{block}"),
            layers.MaxPooling2D((2, 2), name=f"pool{block}"),
        ]
    stack.append(layers.Flatten(name="flatten"))
    if dropout:
        stack.append(layers.Dropout(0.5, name="dropout"))
    head = (
        layers.Dense(1, activation="sigmoid", name="predictions")
        if classes == 1
        else layers.Dense(classes, activation="softmax", name="predictions")
    )
    stack += [layers.Dense(512, activation="relu", name="dense1"), head]
    return keras.Sequential(stack, name="cats_dogs_cnn")


def shapes_cnn(
    input_shape: tuple[int, int, int] = (64, 64, 3),
    classes: int = 8,
    *,
    filters: tuple[int, int, int, int] = (16, 32, 64, 64),
    rescale: bool = True,
) -> keras.Sequential:
    """The built-in shapes model: seed 003's four conv blocks, scaled to 64×64, with a CAM head.

    Four blocks of Conv2D(3×3, relu, padding="same") with half the seed's filters (16, 32, 64,
    64), each followed by BatchNormalization (it lets the GAP head train in a few epochs).
    Blocks 1 and 2 end in MaxPool 2, as in the seed; blocks 3 and 4 do not pool, so the last
    feature map stays at 16×16 (one cell per 4×4 pixels) for Grad-CAM, with a 26-pixel
    receptive field that keeps each cell's evidence local. The head is
    GlobalAveragePooling2D → Dense(classes) softmax (Zhou et al. 2016): batch norm after the
    ReLU is an affine map per channel, so Grad-CAM at conv4 equals CAM.

    Input shape: (batch, 64, 64, 3), raw 0..255 pixels when rescale=True.
    Output shape: (batch, classes) probabilities.

    References:
        Zhou et al., "Learning Deep Features for Discriminative Localization", CVPR 2016.
    """
    _check_classes(classes)
    stack = _start(input_shape, rescale)
    for block, n in enumerate(filters, start=1):
        # Convolution, then batch norm on its (non-negative) ReLU output.
        stack += [
            layers.Conv2D(n, (3, 3), padding="same", activation="relu", name=f"conv{block}"),
            layers.BatchNormalization(name=f"bn{block}"),
        ]
        # Pool after blocks 1-2 only (64 → 32 → 16 pixels): the last map stays 16×16.
        if block <= 2:
            stack.append(layers.MaxPooling2D((2, 2), name=f"pool{block}"))
    # Head: one average per feature map, then one linear layer (class activation mapping).
    stack += [
        layers.GlobalAveragePooling2D(name="gap"),
        layers.Dense(classes, activation="softmax", name="predictions"),
    ]
    return keras.Sequential(stack, name="shapes_cnn")


def small_cifar_cnn(
    batch_norm: bool = False,
    dropout: bool = False,
    input_shape: tuple[int, int, int] = (32, 32, 3),
    classes: int = 10,
    *,
    rescale: bool = False,
) -> keras.Sequential:
    """Seed 001's CIFAR-10 demo network (`create_mod`): 2 conv layers + 2 dense layers.

    Conv2D(32) relu → MaxPool 2 → [BatchNorm] → Conv2D(32) relu → MaxPool 2 → Flatten →
    [BatchNorm] → [Dropout 0.5] → Dense(512) relu → [BatchNorm] → [Dropout 0.5] →
    Dense(classes) softmax. The seed compares the four variants: baseline ~70 %, batch norm
    ~74 %, batch norm + dropout ~78 % test accuracy.

    Input shape: (batch, 32, 32, 3). Output shape: (batch, classes) probabilities.
    """
    _check_classes(classes)
    stack = _start(input_shape, rescale) + [
        layers.Conv2D(32, (3, 3), padding="valid", activation="relu", name="conv1"),
        layers.MaxPooling2D((2, 2), name="pool1"),
    ]
    if batch_norm:
        stack.append(layers.BatchNormalization(name="bn1"))
    stack += [
        layers.Conv2D(32, (3, 3), activation="relu", name="conv2"),
        layers.MaxPooling2D((2, 2), name="pool2"),
        layers.Flatten(name="flatten"),
    ]
    if batch_norm:
        stack.append(layers.BatchNormalization(name="bn2"))
    if dropout:
        stack.append(layers.Dropout(0.5, name="dropout1"))
    stack.append(layers.Dense(512, activation="relu", name="dense1"))
    if batch_norm:
        stack.append(layers.BatchNormalization(name="bn3"))
    if dropout:
        stack.append(layers.Dropout(0.5, name="dropout2"))
    stack.append(layers.Dense(classes, activation="softmax", name="predictions"))
    return keras.Sequential(stack, name="small_cifar_cnn")
