"""Activations page: the rerun after switching layer, as a ratio to one forward pass.

Goal: <= 0.3×. Switching layer must only redraw, because the forward pass is cached per
(model, image). Both times are measured here, in the same run, on the same machine:

- forward: one warm `cnnviz.activations.forward` through all the page's layers (extraction
  model already built and compiled), the median of several;
- rerun: the whole page rerun by Streamlit's AppTest after choosing another layer (widgets,
  cache lookups, the channel grid figure, the large channel, downloads), median over layers.

Also printed: the first load (cold cache) and the cache lookup alone. For a tiny model the
forward pass takes a few milliseconds, less than drawing 64 heat maps, so its ratio is large
whatever is cached; the goal is about models whose forward pass is worth caching.

Run: python benchmarks/activations.py [MODEL ...]   (default: the built-ins and vgg16; offline,
vgg16 has random weights, which changes nothing about its speed)
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from streamlit.testing.v1 import AppTest  # noqa: E402

from cnnviz import activations, images, models  # noqa: E402
from cnnviz.ui import cache  # noqa: E402

PAGE = ROOT / "pages" / "activations.py"
REPEATS = 5


def _median_time(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench(name: str) -> dict[str, float]:
    image = images.sample_image("camera")
    # One warm forward pass through every layer the page shows.
    activations.forward(name, image)
    t_forward = _median_time(lambda: activations.forward(name, image))

    # The page: first load (cold cache), then reruns after switching layer.
    cache._forward.clear()
    at = AppTest.from_file(str(PAGE), default_timeout=300)
    at.session_state["model.name"] = name
    t = time.perf_counter()
    at.run()
    t_first = time.perf_counter() - t
    if at.exception:
        raise RuntimeError(f"{name}: {at.exception[0].message}")
    paths = activations.default_layers(models.resolve(name)[0])
    reruns = []
    # Visit other layers in turn (round trip), each rerun served by the cached forward pass.
    for k in list(range(1, len(paths))) * 2:
        if len(reruns) >= 2 * REPEATS:
            break
        at.selectbox(key="activations.layer").set_value(paths[k])
        t = time.perf_counter()
        at.run()
        reruns.append(time.perf_counter() - t)
        if at.exception:
            raise RuntimeError(f"{name}: {at.exception[0].message}")
    t_rerun = statistics.median(reruns)
    t_lookup = _median_time(lambda: cache.forward(name, image))
    return {
        "forward_s": t_forward,
        "first_load_s": t_first,
        "rerun_s": t_rerun,
        "lookup_s": t_lookup,
        "layers": len(paths),
    }


def main(names: list[str]) -> None:
    print(
        f"{'model':<10} {'forward':>9} {'1st load':>9} {'rerun':>9} {'ratio':>7}  lookup ratio  goal"
    )
    for name in names:
        try:
            models.load(name)
        except models.ModelError as err:
            print(f"{name:<10} not available: {err}")
            continue
        r = bench(name)
        ratio = r["rerun_s"] / r["forward_s"]
        print(
            f"{name:<10} {r['forward_s'] * 1e3:8.1f}ms {r['first_load_s']:8.2f}s "
            f"{r['rerun_s'] * 1e3:8.1f}ms {ratio:6.2f}×  {r['lookup_s'] / r['forward_s']:10.4f}×  "
            f"{'ok' if ratio <= 0.3 else 'over 0.3×'}"
        )


if __name__ == "__main__":
    main(sys.argv[1:] or [*models.builtin_names(), "vgg16"])
