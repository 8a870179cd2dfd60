"""How often `cnnviz.models.unfamiliar` flags each kind of picture, for both built-in models.

Run by hand: `python benchmarks/familiarity.py [digits|shapes]` (a few minutes on two cores).
Every picture goes in as a user's would: `familiarity(NAME, pictures)` applies the model's
own preprocessing (digits: ink found against the paper, MNIST's normalisation).

Issue 14's bar: ≥ 90 % of natural photo crops flagged, ≤ 10 % of real handwriting and real
drawings. None of the sets below is used to fit or calibrate the flag (that uses only the
model's training-like data, see `cnnviz.train.calibrate_builtin`); they only measure it.
The "own data" rows are fresh generated pictures: about the threshold's share should be flagged
(1 % for digits, 5 % for shapes).

A photo crop that the preprocessing refuses (a blank, low-contrast crop: "no ink found")
never reaches the model; it is counted apart, as the page shows a message instead.
"""

import importlib
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnnviz import datasets, evaldata, evaldigits, models  # noqa: E402

fam = importlib.import_module("cnnviz.models.familiarity")

# Fresh seeds: not the training (0), validation (1), held-out (10000), calibration (20000) or
# evaluation-generator (30000) streams of the model cards.
FRESH_SEED = 4_242_424


def _share(name: str, pictures: np.ndarray) -> float:
    return float(fam.unfamiliar(name, pictures).mean())


def _photos(name: str, n: int) -> tuple[float, int, int]:
    """(share flagged, scored, refused) on n photo crops, one at a time."""
    flags, refused = [], 0
    for photo in evaldata.photo_crops(n, seed=11):
        try:
            flags.append(bool(fam.unfamiliar(name, photo)[0]))
        except models.ModelError:  # e.g. BlankImage: the page says so instead
            refused += 1
    return float(np.mean(flags)), len(flags), refused


def rows(name: str) -> list[tuple[str, str, int, float, str]]:
    """(data, feed, n, share flagged, goal) rows for one built-in model."""
    out = []
    typical = f"≈ {fam.stats_for(name).threshold:.0%} (the threshold)"
    share, scored, refused = _photos(name, 300)
    out.append(("photo crops (evaldata.photo_crops)", "64×64 RGB", scored, share, "≥ 90 %"))
    if refused:
        out[-1] = (*out[-1][:4], f"≥ 90 % ({refused} refused by the preprocessing)")
    if name == "digits":
        own = datasets.digits(1000, seed=FRESH_SEED)[0]
        out.append(
            ("own generator (datasets.digits)", "28×28", len(own), _share(name, own), typical)
        )
        sx, _ = evaldigits.sklearn_digits()
        for side, paper in ((28, False), (140, True)):
            feed = f"{side}×{side} " + ("dark on light" if paper else "white on black")
            pics = evaldigits.as_user_pictures(sx, side, dark_on_light=paper)
            out.append(("scikit-learn digits (real)", feed, len(sx), _share(name, pics), "≤ 10 %"))
        hx = datasets.mnist_sample_split(seed=0, heldout_per_class=100)[2]
        for side, paper in ((28, False), (140, True)):
            feed = f"{side}×{side} " + ("dark on light" if paper else "white on black")
            pics = evaldigits.as_user_pictures(hx, side, dark_on_light=paper)
            out.append(
                ("MNIST held out of training (real)", feed, len(hx), _share(name, pics), "≤ 10 %")
            )
        dx = evaldigits.drawn_digits(1000, seed=FRESH_SEED)[0]
        out.append(
            ("evaldigits.drawn_digits", "140×140 paper", len(dx), _share(name, dx), "≤ 10 %")
        )
    else:
        own = datasets.shapes(1000, seed=FRESH_SEED)[0]
        out.append(
            ("own generator (datasets.shapes)", "64×64", len(own), _share(name, own), typical)
        )
        drawn = evaldata.drawn_shapes(1000, seed=FRESH_SEED)[0]
        out.append(("evaldata.drawn_shapes", "64×64", len(drawn), _share(name, drawn), "≤ 10 %"))
    return out


def main(names: list[str]) -> None:
    for name in names:
        stats = fam.stats_for(name)
        print(f"\n{name}: layers {', '.join(stats.layers)}; flag below {stats.threshold}")
        print(f"{'data':38s} {'feed':22s} {'n':>5s} {'flagged':>8s}  goal")
        for data, feed, n, share, goal in rows(name):
            print(f"{data:38s} {feed:22s} {n:5d} {share:8.1%}  {goal}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["digits", "shapes"])
