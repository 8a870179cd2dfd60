"""Gabor bank speed against looping skimage.filters.gabor, and the Gabor page's rerun time.

Run by hand: `python benchmarks/gabor.py [--full] [--repeats 15]`. Goals (issue 3):
- `gabor_bank` for 4 frequencies × 8 orientations on a 512² image at least 40× faster than
  looping `skimage.filters.gabor` over the same 32 filters, both measured in this run;
- a page rerun after moving one slider in at most 300 ms (median, AppTest).

The skimage loop takes about 40 s, so by default it is timed on 12 of the 32 filters: for each
frequency, one orientation per kernel size. With σx = σy the kernel side depends on θ only
through max(|cos θ|, |sin θ|), so among θ = kπ/8 the sizes of k = 0, 1, 2 repeat 2, 4 and 2
times; each measured time is multiplied by that count (the script checks the sizes).
`--full` times all 32 instead.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bare import quiet_streamlit  # noqa: E402

quiet_streamlit()

from skimage import data  # noqa: E402
from skimage.filters import gabor as sk_gabor  # noqa: E402

from cnnviz import gabor  # noqa: E402

FREQS = [0.05, 0.1, 0.2, 0.4]
THETAS = gabor.even_thetas(8)
# θ index measured -> how many of the 8 orientations share its kernel size.
SIZE_CLASSES = {0: (0, 4), 1: (1, 3, 5, 7), 2: (2, 6)}


def median_s(fn, repeats: int) -> float:
    """Median wall time of fn() in seconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def skimage_loop_s(x: np.ndarray, full: bool) -> tuple[float, str, dict]:
    """Seconds for the 32-filter skimage loop (measured or scaled), a note, and the responses."""
    sk_gabor(x, 0.4, 0.0)  # warm-up: imports and first-call costs
    total, measured, refs = 0.0, 0, {}
    for i, f in enumerate(FREQS):
        picks = {j: (j,) for j in range(len(THETAS))} if full else SIZE_CLASSES
        for j, same in picks.items():
            sizes = {gabor.gabor_kernel(f, THETAS[k]).shape for k in same}
            assert len(sizes) == 1, f"kernel sizes differ within a class: {sizes}"
            t0 = time.perf_counter()
            re, im = sk_gabor(x, f, THETAS[j])
            total += (time.perf_counter() - t0) * len(same)
            measured += 1
            refs[(i, j)] = re + 1j * im
    note = (
        "all 32 filters timed"
        if full
        else f"{measured} filters timed (one per kernel size), scaled to 32"
    )
    return total, note, refs


def bank_ratio(full: bool, repeats: int) -> None:
    x = data.camera().astype(np.float64)  # 512×512, the seed's image
    print(
        f"Bank: {len(FREQS)} frequencies × {len(THETAS)} orientations on {x.shape}, mode 'reflect'"
    )
    sk_s, note, refs = skimage_loop_s(x, full)
    ours64 = median_s(lambda: gabor.gabor_bank(x, FREQS, THETAS), repeats)
    x32 = x.astype(np.float32)
    ours32 = median_s(lambda: gabor.gabor_bank(x32, FREQS, THETAS), repeats)
    direct = median_s(lambda: gabor.gabor_bank(x, FREQS, THETAS, engine="direct"), 1)
    # Check the result against the measured skimage filters while we are here.
    bank = gabor.gabor_bank(x, FREQS, THETAS)
    err = max(
        float(np.abs(bank[i, j] - ref).max() / np.abs(ref).max()) for (i, j), ref in refs.items()
    )
    print(f"  skimage.filters.gabor loop   {sk_s:8.2f} s   ({note})")
    print(
        f"  gabor_bank float64 (FFT)     {ours64:8.3f} s   ratio {sk_s / ours64:6.1f}×   goal ≥ 40× "
        f"{'OK' if sk_s / ours64 >= 40 else 'MISSED'}"
    )
    print(f"  gabor_bank float32 (FFT)     {ours32:8.3f} s   ratio {sk_s / ours32:6.1f}×")
    print(
        f"  gabor_bank engine='direct'   {direct:8.2f} s   ratio {sk_s / direct:6.1f}×   "
        "(conv2d per filter and part: scipy FFT from 8×8 taps, so also fast here)"
    )
    print(f"  largest difference from skimage: {err:.1e} of the largest magnitude")


def page_rerun(repeats: int) -> None:
    from streamlit.testing.v1 import AppTest  # noqa: PLC0415 - only this part needs it

    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.py"
        empty.write_text("import streamlit as st\n")
        at_empty = AppTest.from_file(str(empty), default_timeout=60)
        empty_s = median_s(at_empty.run, repeats)

    def rerun_ms(view: str, key: str, values: list) -> float:
        at = AppTest.from_file(str(ROOT / "pages" / "gabor.py"), default_timeout=120)
        at.session_state["gabor.view"] = view
        at.run()
        state = {"i": 0}

        def move() -> None:
            state["i"] += 1
            at.session_state[key] = values[state["i"] % len(values)]
            at.run()

        ms = median_s(move, repeats) * 1e3
        if at.exception:
            raise RuntimeError(f"The page failed: {at.exception[0].message}")
        return ms

    print()
    print("Page rerun after moving one slider (AppTest, whole script, median):")
    print(f"  reference: AppTest rerun of an empty script   {empty_s * 1e3:7.1f} ms")
    rows = [
        ("One filter: frequency slider", "One filter", "gabor.frequency", [0.3, 0.35, 0.4, 0.46]),
        ("One filter: theta slider", "One filter", "gabor.theta", [0.5, 1.0, 1.5, 2.0]),
        # Nine orientation counts > the cache's six entries: every move recomputes the bank.
        ("Bank: number of orientations", "A bank of filters", "gabor.n_thetas", list(range(4, 13))),
        ("Dataset: how many images", "On a dataset", "gabor.n_images", [8, 12, 16, 20]),
    ]
    for label, view, key, values in rows:
        ms = rerun_ms(view, key, values)
        print(
            f"  {label:34s} {ms:7.1f} ms  (÷ empty {ms / (empty_s * 1e3):4.1f})  goal ≤ 300 ms "
            f"{'OK' if ms <= 300 else 'MISSED'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="time all 32 skimage filters")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    bank_ratio(args.full, max(3, args.repeats // 3))
    page_rerun(args.repeats)


if __name__ == "__main__":
    main()
