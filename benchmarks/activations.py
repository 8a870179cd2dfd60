"""Activations page: the rerun after switching layer, as a ratio to one forward pass.

Goal: <= 0.3×. Switching layer must only redraw, because the forward pass is cached per
(model, image). Both times are measured here, in the same run, on the same machine:

- forward: one warm `cnnviz.activations.forward` through all the page's layers (extraction
  model already built and compiled);
- rerun: the whole page rerun by Streamlit's AppTest after choosing another layer (widgets,
  cache lookups, the channel grid figure, the large channel, downloads).

The two are timed alternately, ten times each, and the medians compared, so that a busy
machine slows both alike.

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

from benchmarks.bare import quiet_streamlit  # noqa: E402

quiet_streamlit()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from streamlit.testing.v1 import AppTest  # noqa: E402

from cnnviz import activations, images, models  # noqa: E402
from cnnviz.ui import cache  # noqa: E402

PAGE = ROOT / "pages" / "activations.py"
REPEATS = 5


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench(name: str) -> dict[str, float]:
    image = images.sample_image("camera")
    activations.forward(name, image)  # build and compile the extraction model once

    # The page: first load (cold cache), then reruns after switching layer.
    cache._forward.clear()
    at = AppTest.from_file(str(PAGE), default_timeout=300)
    at.session_state["model.name"] = name
    t_first = _timed(at.run)
    if at.exception:
        raise RuntimeError(f"{name}: {at.exception[0].message}")
    paths = activations.default_layers(models.resolve(name)[0])
    forwards, reruns, lookups = [], [], []
    # Visit the other layers in turn; each rerun is served by the cached forward pass. A warm
    # forward pass is timed right before each rerun, so both see the same machine load.
    for k in (list(range(1, len(paths))) * REPEATS)[: 2 * REPEATS]:
        forwards.append(_timed(lambda: activations.forward(name, image)))
        lookups.append(_timed(lambda: cache.forward(name, image)))
        at.selectbox(key="activations.layer").set_value(paths[k])
        reruns.append(_timed(at.run))
        if at.exception:
            raise RuntimeError(f"{name}: {at.exception[0].message}")
    return {
        "forward_s": statistics.median(forwards),
        "first_load_s": t_first,
        "rerun_s": statistics.median(reruns),
        "lookup_s": statistics.median(lookups),
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
