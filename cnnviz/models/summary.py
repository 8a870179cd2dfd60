"""Summaries: a Keras-style table plus receptive field and jump per layer."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from cnnviz import layers as layer_tools
from cnnviz.models.preprocess import resolve

# (rf_h, rf_w, jump_h, jump_w) of a tensor; None when it sees the whole input (after Flatten,
# Dense, global pooling).
_Field = tuple[int, int, int, int] | None


def _pair(v: Any, n: int = 2) -> tuple[int, ...]:
    v = tuple(v) if isinstance(v, list | tuple) else (v,) * n
    return (int(v[0]), int(v[1] if len(v) > 1 else v[0]))


def _layer_field(layer: keras.layers.Layer, field: _Field) -> _Field:
    """Receptive field and jump after `layer`, given those of its input (Araujo et al. 2019).

    A window of k taps (dilated: d·(k − 1) + 1) at stride s: rf_out = rf_in + (k_eff − 1)·jump_in,
    jump_out = jump_in · s. Upsampling divides the jump; layers that mix all positions
    (Flatten, Dense, global pooling) see the whole input.
    """
    name = type(layer).__name__
    if field is None or name.startswith(("Global", "Flatten")) or name in ("Dense", "Reshape"):
        return None
    rh, rw, jh, jw = field
    cfg = layer.get_config()
    if "kernel_size" in cfg or "pool_size" in cfg:
        kh, kw = _pair(cfg.get("kernel_size", cfg.get("pool_size")))
        sh, sw = _pair(cfg.get("strides") or cfg.get("pool_size") or 1)
        dh, dw = _pair(cfg.get("dilation_rate", 1))
        if name.endswith("Transpose"):
            # A transposed convolution spreads each input over k outputs at 1/s spacing.
            return (
                rh + (kh - 1) * jh // sh,
                rw + (kw - 1) * jw // sw,
                max(jh // sh, 1),
                max(jw // sw, 1),
            )
        return (rh + (dh * (kh - 1)) * jh, rw + (dw * (kw - 1)) * jw, jh * sh, jw * sw)
    if name.startswith("UpSampling"):
        uh, uw = _pair(cfg.get("size", 2))
        return (rh, rw, max(jh // uh, 1), max(jw // uw, 1))
    return field


def _fields(model: keras.Model, start: _Field = (1, 1, 1, 1)) -> dict[int, _Field]:
    """Receptive field of every layer's output (by id), following the graph, nested bases too.

    Where branches meet (Add, Concatenate), the widest field and the largest jump win.
    """
    out: dict[int, _Field] = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            out[id(layer)] = start
            continue
        # The fields of this layer's inputs: the layers that produced them, in this graph.
        parents = layer_tools.inbound_layers(layer)
        ins = [out.get(id(p), start) for p in parents] or [start]
        field = (
            None
            if any(f is None for f in ins)
            else tuple(max(vals) for vals in zip(*ins, strict=True))
        )
        if isinstance(layer, keras.Model):
            inner = _fields(layer, field)
            out.update(inner)
            out[id(layer)] = inner.get(id(layer_tools.output_layer(layer)), field)
        else:
            out[id(layer)] = _layer_field(layer, field)
    return out


def _fmt_field(v: _Field, i: int) -> str:
    if v is None:
        return "whole input" if i == 0 else "—"
    a, b = v[i], v[i + 1]
    return str(a) if a == b else f"{a}×{b}"


def summary(model: str | keras.Model) -> list[dict]:
    """One row per layer, as Keras' model.summary(), plus receptive field and jump.

    Args:
        model: a registry name or a keras.Model (Sequential, Functional, nested).

    Returns:
        Dicts with keys: "layer" (path, "base/name" inside nested models), "type",
        "output_shape" (tuple, batch axis None), "params", "trainable", "depth",
        "receptive_field" (input pixels one output value sees) and "jump" (input pixels between
        neighbouring outputs), as text: "5", or "5×3" when height and width differ; after
        Flatten / Dense / global pooling the field is "whole input" and the jump "—".
    """
    from cnnviz.layers import iter_layers, list_layers

    net = resolve(model)[0]
    fields = _fields(net)
    layers = {path: layer for path, layer, _ in iter_layers(net)}
    rows = []
    for item in list_layers(net):
        layer = layers[item.path]
        field = fields.get(id(layer), (1, 1, 1, 1))
        image_like = item.output_shape is not None and len(item.output_shape) == 4
        rows.append(
            {
                "layer": item.path,
                "type": item.class_name,
                "output_shape": item.output_shape,
                "params": item.params,
                "trainable": bool(layer.trainable),
                "depth": item.depth,
                "receptive_field": _fmt_field(field, 0) if image_like or field is None else "",
                "jump": _fmt_field(field, 2) if image_like or field is None else "",
            }
        )
    return rows


def totals(model: str | keras.Model) -> dict[str, int]:
    """Total, trainable and non-trainable parameters (BatchNorm statistics are non-trainable)."""
    net = resolve(model)[0]
    trainable = sum(int(np.prod(w.shape)) for w in net.trainable_weights)
    total = int(net.count_params())
    return {"total": total, "trainable": trainable, "non_trainable": total - trainable}


def shape_flow(model: str | keras.Model) -> list[tuple[str, tuple]]:
    """(layer path, output shape without the batch axis), from "input" through every layer.

    Layers inside nested bases are listed in place of the base (their shapes are what flows).
    This is the 224×224×3 → 224×224×64 → 112×112×64 … picture of seed 004.
    """
    from cnnviz.layers import list_layers

    net = resolve(model)[0]
    flow = [("input", tuple(net.inputs[0].shape)[1:])]
    flow += [
        (item.path, tuple(item.output_shape)[1:])
        for item in list_layers(net)
        if not item.is_model and item.output_shape is not None
    ]
    return flow
