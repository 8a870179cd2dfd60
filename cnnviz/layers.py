"""Find layers anywhere in a Keras model, nested bases included, and read their outputs.

Keras 3 gives a layer inside a nested base (a VGG16 inside a Sequential) an output tensor that
lives in the base's own graph, so `keras.Model(outer.inputs, inner.output)` fails
(keras-io#1903, tf-keras-vis#36). `feature_model` instead re-runs the outer graph on a fresh
input and, when it reaches a nested model that holds a wanted layer, re-runs that model's graph
the same way, capturing the wanted tensors on the way. The shared model is never changed:
no weights, activations or attributes are touched (Keras only records the new call nodes).

Paths: a top-level layer is addressed by its name ("conv1"); a layer inside a nested model by
"base_name/layer_name" (any depth).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import keras

__all__ = [
    "LayerError",
    "LayerInfo",
    "iter_layers",
    "list_layers",
    "get_layer",
    "conv_layer_paths",
    "last_conv_layer",
    "feature_model",
]

_CONV_TYPES = ("Conv2D", "SeparableConv2D", "DepthwiseConv2D", "Conv2DTranspose")


class LayerError(ValueError):
    """A layer path does not exist or the model's structure is not supported."""


@dataclass(frozen=True)
class LayerInfo:
    """One layer as the pages list it."""

    path: str
    class_name: str
    output_shape: tuple | None
    params: int
    depth: int  # 0 for top level, 1 inside a nested base, ...
    is_conv: bool
    is_model: bool


def _graph(model: keras.Model):
    """The Functional graph behind a Sequential or Functional model."""
    if isinstance(model, keras.Sequential):
        graph = getattr(model, "_functional", None)
        if graph is None:
            raise LayerError(
                f"Model {model.name!r} is a Sequential model that has not been built. "
                "Expected a model created with keras.Input(...) as its first layer or called once."
            )
        return graph
    if hasattr(model, "_run_through_graph") and hasattr(model, "_nodes_by_depth"):
        return model
    raise LayerError(
        f"Model {model.name!r} is a subclassed model ({type(model).__name__}); its layers cannot be "
        "reached from outside. Expected a Sequential or Functional model."
    )


def _is_nested(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, keras.Model)


def iter_layers(
    model: keras.Model, prefix: str = "", depth: int = 0
) -> Iterator[tuple[str, keras.layers.Layer, int]]:
    """Yield (path, layer, depth) for every layer but input placeholders, descending into nested models."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        path = f"{prefix}{layer.name}"
        yield path, layer, depth
        if _is_nested(layer):
            yield from iter_layers(layer, prefix=f"{path}/", depth=depth + 1)


def _output_shape(layer: keras.layers.Layer) -> tuple | None:
    try:
        return tuple(layer.output.shape)
    except (AttributeError, ValueError, RuntimeError):
        return None


def list_layers(model: keras.Model) -> list[LayerInfo]:
    """Every layer (nested ones too) with its type, output shape and parameter count."""
    infos = []
    for path, layer, depth in iter_layers(model):
        shape = _output_shape(layer)
        infos.append(
            LayerInfo(
                path=path,
                class_name=type(layer).__name__,
                output_shape=shape,
                params=int(layer.count_params()) if layer.built else 0,
                depth=depth,
                is_conv=type(layer).__name__ in _CONV_TYPES,
                is_model=_is_nested(layer),
            )
        )
    return infos


def get_layer(model: keras.Model, path: str) -> keras.layers.Layer:
    """The layer at `path` ("name" or "base/name").

    Raises:
        LayerError: no such layer; the message lists a few that exist.
    """
    current: keras.layers.Layer = model
    for part in str(path).split("/"):
        if not _is_nested(current):
            break
        found = [layer for layer in current.layers if layer.name == part]
        if not found:
            break
        current = found[0]
    else:
        if current is not model:
            return current
    known = [p for p, _, _ in iter_layers(model)]
    raise LayerError(
        f"No layer {path!r} in model {model.name!r}. Expected one of: {', '.join(known[:12])}{' …' if len(known) > 12 else ''}."
    )


def conv_layer_paths(model: keras.Model) -> list[str]:
    """Paths of all convolution layers, in graph order, nested bases included."""
    return [info.path for info in list_layers(model) if info.is_conv]


def last_conv_layer(model: keras.Model) -> str:
    """The path of the last convolution layer (Grad-CAM's default target).

    Raises:
        LayerError: the model has no convolution layer.
    """
    paths = conv_layer_paths(model)
    if not paths:
        raise LayerError(
            f"Model {model.name!r} has no convolution layer. Expected at least one Conv2D."
        )
    return paths[-1]


def feature_model(
    model: keras.Model,
    paths: list[str] | tuple[str, ...],
    *,
    include_output: bool = True,
    inputs_of: list[str] | tuple[str, ...] = (),
) -> keras.Model:
    """A new model from the model's input to the outputs of the layers at `paths`.

    Args:
        model: a Sequential or Functional model, possibly with nested models inside.
        paths: layer paths, see the module docstring.
        include_output: also return the model's own output, last.
        inputs_of: layer paths whose INPUT tensor to return as well (what a layer reads, e.g.
            the window a convolution unit sees); a layer with several inputs gives its first.

    Returns:
        keras.Model whose outputs are [output of paths[0], ..., input of inputs_of[0], ...,
        (model output)]. It shares the original layers and weights: nothing is copied or
        changed.
    """
    paths = list(paths)
    inputs_of = list(inputs_of)
    for p in paths + inputs_of:
        get_layer(model, p)  # validate early, with a helpful message
    graph = _graph(model)
    # Always re-run the model's current graph, top-level paths included: `layer.output` is the
    # layer's FIRST call node, and a Sequential model loaded from a .keras file is rebuilt once
    # per added layer, so that node can belong to an earlier, partial graph that is not on the
    # path to the model's output (right values, but no gradient through it).
    inputs = _single([keras.Input(shape=tuple(t.shape[1:]), dtype=t.dtype) for t in graph.inputs])
    captured: dict[str, object] = {}
    read: dict[str, object] = {}
    final = _run_capturing(
        model, inputs, set(paths), captured, prefix="", wanted_inputs=set(inputs_of), read=read
    )
    outs = [captured[p] for p in paths] + [read[p] for p in inputs_of]
    if include_output:
        outs.append(final)
    return keras.Model(inputs, outs, name=f"{model.name}_features")


def _single(tensors: list):
    # A one-input model built from a bare tensor (not a 1-list) accepts a bare array when called.
    return tensors[0] if len(tensors) == 1 else tensors


def _run_capturing(
    model: keras.Model,
    inputs,
    wanted: set[str],
    captured: dict,
    prefix: str,
    wanted_inputs: frozenset[str] | set[str] = frozenset(),
    read: dict | None = None,
):
    """Re-run `model`'s graph on `inputs`, storing the output tensors of wanted layer paths
    (and, in `read`, the input tensors of the paths in `wanted_inputs`)."""
    graph = _graph(model)

    def call(op, *args, **kwargs):
        path = f"{prefix}{op.name}"
        if path in wanted_inputs and read is not None:
            first = args[0] if args else next(iter(kwargs.values()))
            read[path] = first[0] if isinstance(first, list | tuple) else first
        inside = {w for w in wanted | set(wanted_inputs) if w.startswith(f"{path}/")}
        if inside and _is_nested(op):
            # Descend: run the nested model's own graph so its inner tensors connect to ours.
            out = _run_capturing(
                op,
                args[0] if len(args) == 1 else list(args),
                wanted,
                captured,
                f"{path}/",
                wanted_inputs,
                read,
            )
        else:
            out = op(*args, **kwargs)
        if path in wanted:
            captured[path] = out
        return out

    return graph._run_through_graph(inputs, call_fn=call)  # noqa: SLF001 - see module docstring
