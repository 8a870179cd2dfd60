"""The errors of the model zoo (all ValueError subclasses, so a page shows st.error) and ModelInfo."""

from __future__ import annotations

from dataclasses import dataclass


class ModelError(ValueError):
    """A model name, input or output that cannot be used; the message says what was expected."""


class ModelRejected(ModelError):
    """An uploaded model file failed a safety check; the message gives the reason."""


class ModelUnavailable(ModelError):
    """A model or its weights cannot be had (offline, file missing); the message says what to do."""


class BlankImage(ModelError):
    """A picture with nothing in it (no ink, no drawing) given to a built-in model."""


class ModelOutputNotFinite(ModelError):
    """A model produced NaN or inf for an input: its answer cannot be shown."""


@dataclass(frozen=True)
class ModelInfo:
    """What a page needs to know to feed images into a model and read its answer.

    Attributes:
        name: registry name ("digits", "random:vgg16") or, for a bare model, `model.name`.
        input_shape: (height, width, channels) the model expects.
        class_names: one name per output class ([] when the model has no classifier head).
        random_weights: True when the weights were never trained (or were re-initialised).
        note: a sentence to show next to the model (random weights, fallback, ...), or None.
        kind: "built-in", "lecture", "imagenet", "random" or "model" (a bare keras.Model).
        title: a human title for menus.
        preprocessing: what the entry's preprocessing does, in words.
    """

    name: str
    input_shape: tuple[int, int, int]
    class_names: list[str]
    random_weights: bool = False
    note: str | None = None
    kind: str = "model"
    title: str = ""
    preprocessing: str = "fed as float32, unchanged"
