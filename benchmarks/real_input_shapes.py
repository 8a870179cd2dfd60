"""Real-input accuracy of the shapes model next to its own-data accuracy, and its honesty flag.

Run by hand: `python benchmarks/real_input_shapes.py [N]`. Prints, for the shipped shapes
model, the accuracy on fresh pictures from its own generator (cnnviz.datasets.shapes), on
the independent drawn-shapes generator it never trained on (cnnviz.evaldata.drawn_shapes),
and how often `cnnviz.models.unfamiliar` flags each of them and natural photo crops
(issue 14: >= 98 % own, >= 95 % on hand-drawn shapes; flags <= 10 % drawn, >= 90 % photos).
The digits rows belong in benchmarks/real_input.py (helper `digits`), where these rows
move once that script is on main.
"""

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from cnnviz import datasets, evaldata, models  # noqa: E402

FRESH_SEED = 5_550_555  # a seed no model card lists


def main(n: int = 800) -> None:
    t0 = time.perf_counter()
    own_x, own_y, _ = datasets.shapes(n, seed=FRESH_SEED)
    drawn_x, drawn_y, _ = evaldata.drawn_shapes(n, seed=FRESH_SEED)
    photos = evaldata.photo_crops(n // 2, seed=FRESH_SEED)
    print(f"shapes model, {n} pictures per row (data in {time.perf_counter() - t0:.0f} s)")
    print(f"{'data':44s} {'accuracy':>9s} {'flagged':>9s}")
    for label, x, y in (
        ("own generator (cnnviz.datasets.shapes)", own_x, own_y),
        ("independent drawn (cnnviz.evaldata.drawn_shapes)", drawn_x, drawn_y),
        ("photo crops + textures (evaldata.photo_crops)", photos, None),
    ):
        acc = "" if y is None else f"{np.mean(models.predict('shapes', x).argmax(1) == y):9.1%}"
        flagged = np.mean(models.unfamiliar("shapes", x))
        print(f"{label:44s} {acc:>9s} {flagged:9.1%}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 800)
