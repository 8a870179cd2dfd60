"""The whole network at a glance, and one unit's arithmetic from the model's real weights.

CNN Explainer (Wang et al., "CNN Explainer: Learning Convolutional Neural Networks with
Interactive Visualization", IEEE VIS 2020) shows every neuron of a small CNN as a tile, in
columns from the input to the class scores, and lets a student click one to see the input
window it reads, the kernel, the products and the sum. This module computes both views for any
Sequential, Functional or nested Keras model:

- `overview(model, image)`: one `LayerView` per layer, in the order the image flows through
  them (a layer inside a nested base is "base/layer", as in `cnnviz.layers`), with its kind,
  its output for this image and the order in which to show its channels (strongest first when
  there are many).
- `explain_unit(model, image, layer, channel, row, col)`: a `UnitTrace` with the unit's value
  (exactly what `cnnviz.activations.activations` gives), the input window it reads (honouring
  the layer's padding, stride and dilation), the kernel, every product, the bias, the sum
  before the activation and the activation's name. Pooling units get the window and the max
  winner (or the average); dense units the products with the flattened input; a softmax unit
  the real logits of its layer and the formula.

Everything is read from one forward pass (`cnnviz.activations.forward`, which also returns
what each layer READ, through `cnnviz.layers.feature_model(inputs_of=...)`) and from public
Keras APIs (`get_config`, `get_weights`); the shared model is never changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from cnnviz import activations as acts
from cnnviz import conv, models
from cnnviz import layers as layer_tools

__all__ = [
    "NetworkError",
    "LayerView",
    "UnitTrace",
    "KINDS",
    "layer_kind",
    "overview",
    "explain_unit",
    "apply_activation",
]


class NetworkError(ValueError):
    """A layer or unit that cannot be shown or explained; the message says why."""


#: Layer class -> the kind the overview shows it as.
KINDS: dict[str, str] = {
    **{n: "conv" for n in ("Conv2D", "SeparableConv2D", "DepthwiseConv2D", "Conv2DTranspose")},
    **{n: "activation" for n in ("Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax")},
    **{
        n: "pooling"
        for n in (
            "MaxPooling2D",
            "AveragePooling2D",
            "GlobalAveragePooling2D",
            "GlobalMaxPooling2D",
        )
    },
    "Dense": "dense",
    **{n: "reshape" for n in ("Flatten", "Reshape")},
    **{n: "normalization" for n in ("BatchNormalization", "LayerNormalization")},
    **{n: "dropout" for n in ("Dropout", "SpatialDropout2D", "GaussianNoise")},
    **{n: "preprocessing" for n in ("Rescaling", "Resizing", "Normalization", "CenterCrop")},
    **{n: "merge" for n in ("Add", "Concatenate", "Multiply", "Average", "Subtract")},
}

#: More channels than this and the overview orders them strongest first.
MANY = 16


@dataclass(frozen=True)
class LayerView:
    """One layer of the overview.

    Attributes:
        name: the layer path ("conv1", "base/block1_conv1").
        kind: "conv", "activation", "pooling", "dense", "reshape", "normalization", "dropout",
            "preprocessing", "merge" or "other".
        class_name: the Keras class ("Conv2D").
        shape: the output for one image, (H, W, C) or (C,).
        order: channel indices in the order to show them: strongest (largest maximum) first
            when there are more than `many`, else 0, 1, 2, ...
        output: the layer's output for this image, shaped as `shape` (read-only view).
        activation: the activation function's name for layers that have one, else None.
    """

    name: str
    kind: str
    class_name: str
    shape: tuple[int, ...]
    order: tuple[int, ...]
    output: np.ndarray
    activation: str | None


@dataclass(frozen=True)
class UnitTrace:
    """Every number behind one unit (one value of one layer's output).

    Attributes:
        layer: the layer path; kind: its kind (see `LayerView.kind`).
        unit: (row, col, channel) for a map, (channel,) for a vector.
        value: the layer's output at the unit, exactly what `activations()` gives.
        pre_activation: the sum before the activation (conv, dense); the pooled value (pooling).
        computed: the activation applied to `pre_activation` here, in numpy float64: equals
            `value` up to float32 rounding.
        bias: the bias added (0 when the layer has none or for pooling).
        terms: conv: (kh, kw, C_in) products kernel · window; dense: (C_in,) products
            weight · input; pooling: the window's real cells (padding is NaN); so that
            `terms.sum() + bias == pre_activation` for conv and dense.
        window: conv: (kh, kw, C_in) the input cells under the taps (zeros on padding);
            pooling: (kh, kw) for this channel; dense: (C_in,) the flat input.
        kernel: conv: (kh, kw, C_in) this channel's weights; dense: (C_in,); pooling: None.
        activation: its name ("relu", "linear", "softmax", ...); pooling: "max" or "average".
        rows, cols: conv and pooling: the input rows and columns the taps read (may be
            negative or past the edge on padding).
        inside: (kh, kw) bool, False where a tap lies on padding.
        winner: max pooling: the tap (a, b) of the winning cell.
        logits: softmax: (classes,) the layer's real pre-softmax scores; else None.
        layer_input: the whole input the layer read for this image (for stepping the window).
        config: stride, padding, dilation (conv/pooling), for `cnnviz.conv`'s step traces.
    """

    layer: str
    kind: str
    unit: tuple[int, ...]
    value: float
    pre_activation: float
    computed: float
    bias: float
    terms: np.ndarray
    window: np.ndarray
    kernel: np.ndarray | None
    activation: str
    rows: tuple[int, ...] = ()
    cols: tuple[int, ...] = ()
    inside: np.ndarray | None = None
    winner: tuple[int, int] | None = None
    logits: np.ndarray | None = None
    layer_input: np.ndarray | None = None
    config: dict | None = None

    def equation(self, max_terms: int = 12) -> str:
        """The arithmetic written out, e.g. "0.5·(−1) + … + 0.2 = 1.3; relu(1.3) = 1.3"."""
        if self.kind == "pooling":
            cells = self.terms[~np.isnan(self.terms)]
            name = "max" if self.activation == "max" else "mean"
            return f"{name}({_join([_num(v) for v in cells.ravel()], ', ', max_terms)}) = {_num(self.value)}"
        if self.kind == "activation":
            return f"{self.activation}({_num(self.pre_activation)}) = {_num(self.value)}"
        w = self.window.ravel()
        k = self.kernel.ravel() if self.kernel is not None else np.ones_like(w)
        parts = [f"{_num(a)}·{_num(b, paren=True)}" for a, b in zip(w, k, strict=True)]
        bias = f" + {_num(self.bias, paren=True)}" if self.bias != 0 else ""
        line = f"{_join(parts, ' + ', max_terms)}{bias} = {_num(self.pre_activation)}"
        if self.activation == "softmax" and self.logits is not None:
            z = self.logits
            return (
                f"{line}\nsoftmax: e^{_num(z[self.unit[-1]], paren=True)} / Σⱼ e^zⱼ = "
                f"{_num(np.exp(z[self.unit[-1]] - z.max()))} / {_num(np.exp(z - z.max()).sum())}"
                f" = {_num(self.value)}"
            )
        if self.activation not in ("linear", None):
            line += f"\n{self.activation}({_num(self.pre_activation)}) = {_num(self.value)}"
        return line


def _num(v: float, *, paren: bool = False) -> str:
    s = f"{float(v):.4g}".replace("-", "−")
    s = "0" if s in ("−0", "0") else s
    return f"({s})" if paren and s.startswith("−") else s


def _join(terms: list[str], sep: str, max_terms: int) -> str:
    if len(terms) <= max_terms:
        return sep.join(terms)
    return sep.join([*terms[: max(1, max_terms - 2)], "…", *terms[-2:]])


def layer_kind(class_name: str) -> str:
    """The overview's kind for a Keras layer class ("Conv2D" -> "conv"); "other" if unknown."""
    return KINDS.get(class_name, "other")


def _activation_name(layer: keras.layers.Layer) -> str | None:
    config = layer.get_config()
    if "activation" in config:
        act = config["activation"]
        if isinstance(act, dict):  # a serialised activation: {"class_name": ..., "config": ...}
            return str(act.get("config", {}).get("name", act.get("class_name", "activation")))
        return str(act)
    name = type(layer).__name__
    return {"ReLU": "relu", "LeakyReLU": "leaky_relu", "ELU": "elu", "Softmax": "softmax"}.get(name)


def apply_activation(name: str | None, x: np.ndarray) -> np.ndarray:
    """Apply an activation by name to a float64 array (softmax over the last axis).

    ReLU, linear and softmax are written out here (the lecture's formulas); any other name is
    Keras's own function (`keras.activations.get`).
    """
    x = np.asarray(x, np.float64)
    if name == "relu":
        return np.maximum(x, 0.0)
    if name in ("linear", None):
        return x
    if name == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    fn = keras.activations.get(name)
    return np.asarray(keras.ops.convert_to_numpy(fn(x.astype(np.float32)))).astype(np.float64)


def _paths(net: keras.Model) -> list[layer_tools.LayerInfo]:
    """Every layer whose output the overview can show, in graph order (nested bases opened)."""
    return [
        info
        for info in layer_tools.list_layers(net)
        if not info.is_model and info.output_shape is not None and len(info.output_shape) in (2, 4)
    ]


def overview(model: str | keras.Model, image: np.ndarray, *, many: int = MANY) -> list[LayerView]:
    """Every layer's output for one image, in order, ready to be drawn as columns of tiles.

    Args:
        model: a registry name (its preprocessing is applied) or a keras.Model (fed as is).
        image: one image, as `cnnviz.activations.forward` takes it.
        many: with more channels than this, `order` puts the strongest (largest max) first.

    Returns:
        One `LayerView` per layer (input placeholders and nested-model wrappers left out):
        output (H, W, C) or (C,).

    Raises:
        NetworkError: the model has no layer with an output to show.
    """
    net, _ = models.resolve(model)
    infos = _paths(net)
    if not infos:
        raise NetworkError(
            f"Model {net.name!r} has no layer with a feature-map or vector output to show."
        )
    result = acts.forward(model, image, [i.path for i in infos])
    views = []
    for info in infos:
        out = np.asarray(result.maps[info.path])
        if out.ndim not in (1, 3):
            raise NetworkError(
                f"Expected one image. Received a batch: layer {info.path!r} gave shape {out.shape}."
            )
        n = out.shape[-1]
        if n > many:
            # Strongest first: the channels that respond most to this image lead the column.
            strength = out.reshape(-1, n).max(axis=0)
            order = tuple(int(i) for i in np.argsort(-strength, kind="stable"))
        else:
            order = tuple(range(n))
        layer = layer_tools.get_layer(net, info.path)
        views.append(
            LayerView(
                name=info.path,
                kind=layer_kind(info.class_name),
                class_name=info.class_name,
                shape=tuple(int(s) for s in out.shape),
                order=order,
                output=out,
                activation=_activation_name(layer),
            )
        )
    return views


def _check_unit(shape: tuple[int, ...], channel: int, row: int, col: int, path: str) -> None:
    if len(shape) == 3:
        h, w, c = shape
        if not (0 <= row < h and 0 <= col < w and 0 <= channel < c):
            raise NetworkError(
                f"Expected 0 ≤ row < {h}, 0 ≤ col < {w} and 0 ≤ channel < {c} for layer "
                f"{path!r}. Received row={row}, col={col}, channel={channel}."
            )
    elif not 0 <= channel < shape[0]:
        raise NetworkError(
            f"Expected 0 ≤ channel < {shape[0]} for layer {path!r}. Received channel={channel}."
        )


def explain_unit(
    model: str | keras.Model,
    image: np.ndarray,
    layer: str,
    channel: int,
    row: int = 0,
    col: int = 0,
) -> UnitTrace:
    """The arithmetic behind one unit of one layer, from the model's real weights.

    Args:
        model: a registry name or a keras.Model (see `overview`).
        image: one image.
        layer: the layer path ("conv1", "base/conv1").
        channel: the output channel (the unit, for a dense layer).
        row, col: the position in the output map (ignored for vector outputs).

    Returns:
        A `UnitTrace`. Conv2D: window, kernel, products, bias, pre-activation and activation.
        Max/average pooling: the window and the winner. Dense: products with the flat input;
        softmax with the layer's real logits. Activation layers: the input and the function.

    Raises:
        NetworkError: an unknown layer, a unit outside the output, or a layer type with no
        trace here (e.g. batch normalisation, depthwise or grouped convolutions).
    """
    net, _ = models.resolve(model)
    try:
        target = layer_tools.get_layer(net, layer)
    except layer_tools.LayerError as err:
        raise NetworkError(str(err)) from err
    name = type(target).__name__
    kind = layer_kind(name)
    supported = {"Conv2D", "Dense", "MaxPooling2D", "AveragePooling2D"}
    if name not in supported and kind != "activation":
        raise NetworkError(
            f"Layer {layer!r} is a {name}: a unit trace covers Conv2D, Dense, max and average "
            "pooling and activation layers."
        )
    # One pass: what the layer read, and what it gave (the value the overview shows).
    result = acts.forward(model, image, [layer], inputs_of=[layer])
    out = np.asarray(result.maps[layer])
    x = np.asarray(result.layer_inputs[layer], np.float64)
    if out.ndim not in (1, 3):
        raise NetworkError(f"Expected one image. Received an output of shape {out.shape}.")
    _check_unit(out.shape, channel, row, col, layer)
    unit = (row, col, channel) if out.ndim == 3 else (channel,)
    value = float(out[unit])
    config = target.get_config()
    if config.get("data_format", "channels_last") != "channels_last":
        raise NetworkError(f"Expected a channels-last layer. Layer {layer!r} is channels-first.")
    if name == "Conv2D":
        return _conv_unit(target, config, x, layer, unit, value)
    if name == "Dense":
        return _dense_unit(target, x, layer, unit, value)
    if kind == "pooling":
        return _pool_unit(name, config, x, layer, unit, value)
    act = _activation_name(target) or name.lower()
    pre = float(x[unit])
    if name in ("Activation",) and act != "softmax":
        computed = float(apply_activation(act, np.array([pre]))[0])
    else:
        # Layers with their own parameters (LeakyReLU's slope, PReLU's weights) or softmax
        # (which needs the whole vector): run the layer itself on what it read.
        computed = float(np.asarray(target(x[None].astype(np.float32)))[0][unit])
    return UnitTrace(
        layer=layer,
        kind="activation",
        unit=unit,
        value=value,
        pre_activation=pre,
        computed=computed,
        bias=0.0,
        terms=np.array([pre]),
        window=np.array([pre]),
        kernel=None,
        activation=act,
        layer_input=x,
    )


def _conv_unit(layer, config: dict, x: np.ndarray, path: str, unit, value: float) -> UnitTrace:
    if int(config.get("groups", 1)) != 1:
        raise NetworkError(f"Layer {path!r} is a grouped convolution; a unit trace needs groups=1.")
    weights = layer.get_weights()
    kernel4 = np.asarray(weights[0], np.float64)  # (kh, kw, C_in, C_out), Keras's layout
    bias_all = np.asarray(weights[1], np.float64) if config.get("use_bias", True) else None
    row, col, channel = unit
    kh, kw = kernel4.shape[:2]
    stride = tuple(int(s) for s in config["strides"])
    dilation = tuple(int(d) for d in config["dilation_rate"])
    padding = str(config["padding"]).lower()
    # The layer's padding rule (TensorFlow's SAME puts an odd extra cell after), from cnnviz.conv.
    top, _bottom, left, _right = conv.resolve_padding(
        x.shape[:2], (kh, kw), stride=stride, padding=padding, dilation=dilation
    )
    rows = tuple(row * stride[0] + a * dilation[0] - top for a in range(kh))
    cols = tuple(col * stride[1] + b * dilation[1] - left for b in range(kw))
    inside = np.array(
        [[0 <= r < x.shape[0] and 0 <= c < x.shape[1] for c in cols] for r in rows], bool
    )
    # The cells under the taps; padded cells read 0 (Keras pads with zeros).
    window = np.zeros((kh, kw, x.shape[2]))
    for a, r in enumerate(rows):
        for b, c in enumerate(cols):
            if inside[a, b]:
                window[a, b] = x[r, c]
    kernel = kernel4[:, :, :, channel]
    # Multiply every tap by its weight, add them all up, add the bias, apply the activation.
    terms = window * kernel
    bias = float(bias_all[channel]) if bias_all is not None else 0.0
    pre = float(terms.sum() + bias)
    act = _activation_name(layer) or "linear"
    return UnitTrace(
        layer=path,
        kind="conv",
        unit=unit,
        value=value,
        pre_activation=pre,
        computed=float(apply_activation(act, np.array([pre]))[0]),
        bias=bias,
        terms=terms,
        window=window,
        kernel=kernel,
        activation=act,
        rows=rows,
        cols=cols,
        inside=inside,
        layer_input=x,
        config={"stride": stride, "padding": padding, "dilation": dilation},
    )


def _dense_unit(layer, x: np.ndarray, path: str, unit, value: float) -> UnitTrace:
    if x.ndim != 1:
        raise NetworkError(
            f"Expected layer {path!r} to read a flat vector. Received an input of shape {x.shape}."
        )
    weights = layer.get_weights()
    w = np.asarray(weights[0], np.float64)  # (C_in, units)
    b = np.asarray(weights[1], np.float64) if len(weights) > 1 else np.zeros(w.shape[1])
    channel = unit[0]
    terms = x * w[:, channel]
    pre = float(terms.sum() + b[channel])
    act = _activation_name(layer) or "linear"
    # Softmax is not one unit's function: it needs every logit of the layer.
    logits = x @ w + b if act == "softmax" else None
    computed = (
        float(apply_activation("softmax", logits)[channel])
        if logits is not None
        else float(apply_activation(act, np.array([pre]))[0])
    )
    return UnitTrace(
        layer=path,
        kind="dense",
        unit=unit,
        value=value,
        pre_activation=pre,
        computed=computed,
        bias=float(b[channel]),
        terms=terms,
        window=x,
        kernel=w[:, channel],
        activation=act,
        logits=logits,
        layer_input=x,
    )


def _pool_unit(name: str, config: dict, x: np.ndarray, path: str, unit, value: float) -> UnitTrace:
    if name not in ("MaxPooling2D", "AveragePooling2D"):
        raise NetworkError(f"Layer {path!r} is a {name}; a unit trace covers 2-D pooling windows.")
    op = "max" if name == "MaxPooling2D" else "avg"
    size = tuple(int(s) for s in config["pool_size"])
    stride = tuple(int(s) for s in (config.get("strides") or size))
    padding = str(config["padding"]).lower()
    row, col, channel = unit
    top, _b, left, _r = conv.resolve_padding(x.shape[:2], size, stride=stride, padding=padding)
    rows = tuple(row * stride[0] + a - top for a in range(size[0]))
    cols = tuple(col * stride[1] + b - left for b in range(size[1]))
    inside = np.array(
        [[0 <= r < x.shape[0] and 0 <= c < x.shape[1] for c in cols] for r in rows], bool
    )
    # Padded cells take no part (TensorFlow's rule): NaN marks them.
    cells = np.full(size, np.nan)
    for a, r in enumerate(rows):
        for b, c in enumerate(cols):
            if inside[a, b]:
                cells[a, b] = x[r, c, channel]
    if op == "max":
        flat = np.where(inside, cells, -np.inf).ravel()
        win = int(np.argmax(flat))  # the first largest real cell, row-major
        winner = divmod(win, size[1])
        pooled = float(flat[win])
    else:
        winner = None
        pooled = float(np.nanmean(cells))
    return UnitTrace(
        layer=path,
        kind="pooling",
        unit=unit,
        value=value,
        pre_activation=pooled,
        computed=pooled,
        bias=0.0,
        terms=cells,
        window=cells,
        kernel=None,
        activation="max" if op == "max" else "average",
        rows=rows,
        cols=cols,
        inside=inside,
        winner=winner,
        layer_input=x,
        config={"stride": stride, "padding": padding, "size": size, "op": op},
    )
