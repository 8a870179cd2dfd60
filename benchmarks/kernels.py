"""Kernels page speed: conv2d vs scipy.ndimage.correlate, and the page's rerun time.

Run by hand: `python benchmarks/kernels.py`. Prints ratios against references measured in the
same run, because absolute times depend on the machine.
Goals (issue 2): rerun ≤ 150 ms median on a 512² RGB image; conv2d ≤ 1.5× ndimage for 3×3 and
≤ 1× for 15×15.
"""

import statistics
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bare import quiet_streamlit  # noqa: E402

quiet_streamlit()

from cnnviz import images  # noqa: E402
from cnnviz.conv import conv2d  # noqa: E402


def median_time(fn, repeats: int = 15) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def conv_ratios() -> None:
    img = images.sample_image("astronaut").astype(np.float64)  # 512×512×3
    rng = np.random.default_rng(0)
    print(f"image {img.shape}, padding 'same' (zeros), stride 1")
    for size, goal in ((3, 1.5), (7, None), (15, 1.0)):
        k = rng.normal(size=(size, size))
        ours = median_time(lambda k=k: conv2d(img, k, padding="same"))
        ref = median_time(lambda k=k: ndimage.correlate(img, k[:, :, None], mode="constant"))
        verdict = (
            "" if goal is None else f"  goal ≤ {goal}× {'OK' if ours / ref <= goal else 'MISSED'}"
        )
        print(
            f"  {size:>2}×{size:<2} conv2d {ours * 1e3:7.1f} ms  ndimage {ref * 1e3:7.1f} ms  ratio {ours / ref:5.2f}×{verdict}"
        )


def rerun_time() -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "pages" / "kernels.py"), default_timeout=120)
    at.run()
    at.selectbox(key="kernels.sample").set_value("astronaut").run()
    at.radio(key="kernels.colour").set_value("Per channel (RGB)").run()
    strides = [1, 2]
    times = []
    for i in range(12):
        t0 = time.perf_counter()
        at.slider(key="kernels.stride").set_value(strides[i % 2]).run()
        times.append(time.perf_counter() - t0)
    assert not at.exception
    empty = AppTest.from_string("import streamlit as st\nst.write('x')")
    empty.run()
    base = median_time(lambda: empty.run(), repeats=12)
    med = statistics.median(times)
    print(
        f"page rerun after moving the stride slider (512×512 RGB): median {med * 1e3:.0f} ms "
        f"(goal ≤ 150 ms {'OK' if med <= 0.150 else 'MISSED'}); an empty script reruns in {base * 1e3:.0f} ms, "
        f"ratio {med / base:.1f}×"
    )


if __name__ == "__main__":
    conv_ratios()
    rerun_time()
