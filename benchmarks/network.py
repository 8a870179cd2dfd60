"""Network page: server time from a canvas update to the new overview and prediction.

Goal: <= 150 ms median for the built-ins (digits, shapes) on a CPU. A stroke reruns only the
page's live fragment (`st.fragment`), and every stroke is a new picture, so no cache helps:
the time is what the fragment's body does for a new drawing, measured here call by call:

- the drawing as the canvas sends it (a PNG, decoded and composited onto white);
- `cnnviz.network.overview` (one forward pass through every layer), the model's own
  preprocessing for the "what the model reads" picture, the probabilities and the top-1;
- `cnnviz.grids.network_overview` (the figure) and its JSON, which Streamlit sends;
- the default drill-down unit (`explain_unit` + `conv2d_steps` on the chosen filter), which
  the same fragment recomputes, printed separately and in the total.

Reference, in the same run: one warm forward pass (`cnnviz.models.predict` on one image).
Each stroke is a new picture (one more line drawn), timed 20 times after a warm-up; medians.

Run: python benchmarks/network.py [MODEL ...]   (default: digits shapes)
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.bare import quiet_streamlit  # noqa: E402

quiet_streamlit()  # it imports cnnviz.ui outside a script run

import numpy as np  # noqa: E402
import plotly.io as pio  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from cnnviz import conv, grids, models, network  # noqa: E402
from cnnviz.ui.widgets import CANVAS_PX, canvas_to_rgb  # noqa: E402

STROKES = 20


def _strokes(n: int) -> list[bytes]:
    """PNG canvases as the component sends them, each one stroke more than the last."""
    rng = np.random.default_rng(0)
    im = Image.new("RGBA", (CANVAS_PX, CANVAS_PX), (255, 255, 255, 255))
    draw = ImageDraw.Draw(im)
    out = []
    for _ in range(n):
        x0, y0, x1, y1 = rng.integers(30, CANVAS_PX - 30, 4)
        draw.line([(x0, y0), (x1, y1)], fill=(0, 0, 0, 255), width=22)
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def _decode(png: bytes) -> np.ndarray:
    # What CanvasResult.image_data does with the PNG the browser sent.
    return canvas_to_rgb(np.asarray(Image.open(io.BytesIO(png))))


def fragment_body(name: str, png: bytes) -> tuple[float, float]:
    """(overview + prediction seconds, drill-down seconds) for one new drawing."""
    t0 = time.perf_counter()
    img = _decode(png)
    views = network.overview(name, img)
    _, prepare = models.resolve(name)
    seen = np.asarray(prepare(img), np.float32)[0]
    probs = models.to_probabilities(np.asarray(views[-1].output)[None])[0]
    models.top_k(name, probs, k=1)
    fig = grids.network_overview(
        seen,
        [(v.name, v.kind, v.output, v.order) for v in views],
        probs,
        models.info(name).class_names,
    )
    pio.to_json(fig, validate=False)
    t1 = time.perf_counter()
    first = next(v for v in views if v.kind == "conv")
    ch = first.order[0]
    row, col = np.unravel_index(int(np.argmax(first.output[..., ch])), first.shape[:2])
    t = network.explain_unit(name, img, first.name, ch, int(row), int(col))
    conv.conv2d_steps(
        t.layer_input,
        t.kernel,
        bias=t.bias,
        stride=t.config["stride"],
        padding=t.config["padding"],
        dilation=t.config["dilation"],
    )
    return t1 - t0, time.perf_counter() - t1


def bench(name: str) -> None:
    drawings = _strokes(STROKES + 2)
    one = _decode(drawings[0])
    for d in drawings[:2]:  # warm-up: compile the extraction functions
        fragment_body(name, d)
        models.predict(name, one)
    live, drill, fwd = [], [], []
    for d in drawings[2:]:
        a, b = fragment_body(name, d)
        live.append(a)
        drill.append(b)
        picture = _decode(d)
        t = time.perf_counter()
        models.predict(name, picture)
        fwd.append(time.perf_counter() - t)
    m_live, m_drill, m_fwd = (statistics.median(x) * 1000 for x in (live, drill, fwd))
    total = m_live + m_drill
    print(
        f"{name:8s} overview+prediction {m_live:6.1f} ms  drill-down {m_drill:6.1f} ms  "
        f"fragment {total:6.1f} ms  forward {m_fwd:5.1f} ms  ratio {total / m_fwd:5.1f}×  "
        f"goal ≤150 ms: {'met' if total <= 150 else 'MISSED'}"
    )


if __name__ == "__main__":
    for model in sys.argv[1:] or ["digits", "shapes"]:
        bench(model)
