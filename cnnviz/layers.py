"""Find layers anywhere in a Keras model, nested bases included, and read their outputs.

Keras 3 gives a layer inside a nested base (a VGG16 inside a Sequential) an output tensor that
lives in the base's own graph, so `keras.Model(outer.inputs, inner.output)` fails
(keras-io#1903, tf-keras-vis#36). `feature_model` instead re-runs the outer graph on a fresh
input and, when it reaches a nested model that holds a wanted layer, re-runs that model's graph
the same way, capturing the wanted tensors on the way. The shared model is never changed:
no weights, activations or attributes are touched (Keras only records the new call nodes).

Paths: a top-level layer is addressed by its name ("conv1"); a layer inside a nested model by
"base_name/layer_name" (any depth).

This module is the ONE fence around Keras' private graph attributes (`_keras_history`,
`_inbound_nodes`, `_run_through_graph`, `_functional`, ...): everything else in cnnviz walks
the graph through its public helpers (`feature_model`, `output_layer`, `final_layer`,
`inbound_layers`, `input_source`, `logits_head`), so a Keras upgrade that renames them breaks
one file. tests/test_keras_fence.py fails if any other file reaches into them.
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
    "output_layer",
    "final_layer",
    "inbound_layers",
    "input_source",
    "LogitsHead",
    "logits_head",
]

_CONV_TYPES = ("Conv2D", "SeparableConv2D", "DepthwiseConv2D", "Conv2DTranspose")

# The private Keras 3 attributes this module reads (the fence test lists the same names).
# A KerasTensor's `_keras_history` is (operation, node_index, tensor_index): the layer that
# made it and which of that layer's calls. A layer's `_inbound_nodes` are its calls, in order.


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


# --------------------------------------------------------------------------------------------
# Reading the graph: which layer feeds which, and where the class scores are
# --------------------------------------------------------------------------------------------


def _history(tensor) -> tuple[keras.layers.Layer, int]:
    """(layer that produced the tensor, index of that layer's call) in Keras' graph."""
    try:
        operation, node_index, _ = tensor._keras_history  # noqa: SLF001 - the fence
    except (AttributeError, TypeError, ValueError) as err:
        raise LayerError(
            f"Expected a symbolic Keras tensor with a graph history. Received {type(tensor).__name__}."
        ) from err
    return operation, node_index


def output_layer(model: keras.Model) -> keras.layers.Layer:
    """The layer of `model`'s own graph that produces its (first) output.

    A nested model is returned as it is (see `final_layer` to descend into it).
    """
    return _history(_graph(model).outputs[0])[0]


def _final(model: keras.Model, prefix: str) -> tuple[keras.layers.Layer, int, str]:
    layer, node_index = _history(_graph(model).outputs[0])
    if _is_nested(layer):
        return _final(layer, f"{prefix}{layer.name}/")
    return layer, node_index, prefix


def final_layer(model: keras.Model) -> tuple[str, keras.layers.Layer]:
    """(path, layer) of the layer that produces the model's (first) output, nested bases included.

    For `Sequential([base, Dense(...)])` it is the Dense; for a model that ends in a nested model,
    the nested model's own final layer ("head/predictions").
    """
    layer, _, prefix = _final(model, "")
    return f"{prefix}{layer.name}", layer


def inbound_layers(layer: keras.layers.Layer, call: int = 0) -> list[keras.layers.Layer]:
    """The layers whose outputs feed `layer`'s `call`-th call (its first by default), in order.

    An input placeholder appears as its `keras.layers.InputLayer`. A layer that was never
    called on symbolic tensors has no inbound layers: [].
    """
    nodes = getattr(layer, "_inbound_nodes", None) or []  # noqa: SLF001 - the fence
    if call >= len(nodes):
        return []
    return [_history(t)[0] for t in nodes[call].input_tensors]


def input_source(model: keras.Model, path: str) -> str | None:
    """Path of the layer whose output feeds the layer at `path`; None for the model's input.

    The input of a nested model is whatever feeds that nested model, so
    `input_source(outer, "base/block1_conv1")` is the layer before "base" (or None).

    Raises:
        LayerError: no such layer, or a layer with several inputs (Add, Concatenate).
    """
    parts = path.split("/")
    layer = get_layer(model, path)
    sources = inbound_layers(layer)
    if len(sources) != 1:
        raise LayerError(
            f"Expected layer {path!r} to have one input. Received a layer with {len(sources)}."
        )
    if not isinstance(sources[0], keras.layers.InputLayer):
        return "/".join([*parts[:-1], sources[0].name])
    return None if len(parts) == 1 else input_source(model, "/".join(parts[:-1]))


def _squash_name(layer: keras.layers.Layer) -> str | None:
    """ "softmax" or "sigmoid" when the layer ends in one, else None."""
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    name = getattr(getattr(layer, "activation", None), "__name__", None)
    return name if name in ("softmax", "sigmoid") else None


@dataclass(frozen=True)
class LogitsHead:
    """Where a classifier's pre-softmax scores are, read from its graph (never by changing it).

    Attributes:
        kind: "softmax" / "sigmoid": the final layer squashes; the logits are composed from the
            output of `source` (`logits(source_output)`). "linear": the model's output already
            is a score. "log": a squashing layer that cannot be undone exactly (its input is
            the model input, or it is not a Dense/Softmax/Activation layer).
        path: the final layer's path (see `final_layer`); layer: that layer.
        source: for "softmax"/"sigmoid", the path of the layer that feeds the final one.
        dense: the final Dense layer whose kernel and bias `logits` applies, or None when the
            final layer is a bare Softmax/Activation (its input is the logits).
    """

    kind: str
    path: str
    layer: keras.layers.Layer
    source: str | None = None
    dense: keras.layers.Layer | None = None

    def logits(self, source_output):
        """Pre-softmax scores from the output of `source`: the last Dense without its activation."""
        if self.dense is None:
            return source_output
        z = keras.ops.matmul(source_output, self.dense.kernel)
        return z + self.dense.bias if self.dense.use_bias else z


def logits_head(model: keras.Model) -> LogitsHead:
    """How to get the logits of `model` without touching it (the keras.io recipe's
    `model.layers[-1].activation = None` would change a shared model for every session).

    The logits are the input of a final softmax/sigmoid: for a Dense(activation="softmax"),
    its kernel and bias applied to its input; for a Softmax or Activation layer, its input.
    """
    last, node_index, prefix = _final(model, "")
    path = f"{prefix}{last.name}"
    squash = _squash_name(last)
    if squash is None:
        return LogitsHead("linear", path, last)
    # The layer that makes the tensor feeding the final layer's call in this graph.
    sources = inbound_layers(last, node_index)
    dense_ok = isinstance(last, keras.layers.Dense) and len(last.kernel.shape) == 2
    plain = isinstance(last, keras.layers.Activation | keras.layers.Softmax)
    if len(sources) != 1 or isinstance(sources[0], keras.layers.InputLayer):
        return LogitsHead("log", path, last)
    if not (dense_ok or plain):
        return LogitsHead("log", path, last)
    return LogitsHead(
        squash, path, last, source=f"{prefix}{sources[0].name}", dense=last if dense_ok else None
    )
