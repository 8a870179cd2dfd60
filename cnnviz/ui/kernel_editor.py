"""The kernel chooser shared by the Kernels and Step-by-step pages: preset, grid or text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from cnnviz import kernels

__all__ = ["kernel_editor", "fit_kernel"]


def fit_kernel(k: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Centre-crop or zero-pad a kernel to (rows, cols), keeping its centre where it was."""
    out = np.zeros((rows, cols))
    kr, kc = k.shape
    r0, c0 = (rows - kr) // 2, (cols - kc) // 2
    src = k[max(0, -r0) : max(0, -r0) + min(rows, kr), max(0, -c0) : max(0, -c0) + min(cols, kc)]
    out[max(0, r0) : max(0, r0) + src.shape[0], max(0, c0) : max(0, c0) + src.shape[1]] = src
    return out


def kernel_editor(
    prefix: str,
    *,
    default: str = "sobel x",
    extra: dict[str, tuple[np.ndarray, str]] | None = None,
) -> tuple[np.ndarray | None, str]:
    """Choose a kernel from presets, a grid editor or typed text.

    Args:
        prefix: the page's widget-key prefix.
        default: the preset selected on first load.
        extra: page-specific kernels listed before the presets, {name: (kernel, description)}
            (the Step-by-step page adds seed 001's worked-example kernel).

    Returns:
        (kernel or None when the typed text is invalid (an error is shown), a short label).
    """
    extra = extra or {}
    names = [*extra, *kernels.preset_names()]
    source = st.radio(
        "Kernel from",
        ["Preset", "Edit grid", "Type text"],
        horizontal=True,
        key=f"{prefix}.kernel_source",
        help="Start from a preset, then change numbers in the grid or type your own matrix.",
    )
    name = st.selectbox(
        "Preset" if source == "Preset" else "Start from preset",
        names,
        index=names.index(default) if default in names else 0,
        key=f"{prefix}.preset",
    )
    base = np.array(extra[name][0], dtype=np.float64) if name in extra else kernels.preset(name)
    if source == "Preset":
        st.caption(extra[name][1] if name in extra else kernels.preset_description(name))
        return base, name
    if source == "Edit grid":
        c1, c2 = st.columns(2)
        rows = c1.number_input(
            "Rows", 1, kernels.MAX_KERNEL_SIDE, int(base.shape[0]), key=f"{prefix}.rows"
        )
        cols = c2.number_input(
            "Columns", 1, kernels.MAX_KERNEL_SIDE, int(base.shape[1]), key=f"{prefix}.cols"
        )
        start = pd.DataFrame(
            fit_kernel(base, int(rows), int(cols)), columns=[str(c) for c in range(int(cols))]
        )
        edited = st.data_editor(
            start,
            key=f"{prefix}.grid.{name}.{rows}x{cols}",
            hide_index=False,
            width="stretch",
            column_config={
                str(c): st.column_config.NumberColumn(format="%.4g") for c in range(int(cols))
            },
        )
        # An emptied cell counts as 0; a huge typed number is refused like typed text.
        try:
            k = kernels.check_kernel(np.nan_to_num(np.asarray(edited, dtype=np.float64), nan=0.0))
        except kernels.KernelError as err:
            st.error(str(err))
            return None, "invalid"
        return k, f"custom {k.shape[0]}×{k.shape[1]}"
    text = st.text_area(
        "Kernel (rows on lines or separated by ';')",
        value=kernels.format_kernel(base),
        key=f"{prefix}.text.{name}",
        height=130,
        help="Numbers separated by spaces or commas, e.g. '1 0 -1; 2 0 -2; 1 0 -1'. Fractions like 1/9 work.",
    )
    try:
        k = kernels.parse_kernel(text)
    except kernels.KernelError as err:
        st.error(str(err))
        return None, "invalid"
    return k, f"typed {k.shape[0]}×{k.shape[1]}"
