"""Real-input accuracy of the built-in models, next to their accuracy on the project's own data.

Run by hand: `python benchmarks/real_input.py` (about a minute on two cores). Every picture
goes through the same door as a user's upload, `cnnviz.models.predict(NAME, pictures)`, so
the model's own preprocessing has to find, invert and normalise what it is given.

Issue 14's bars: digits ≥ 99 % on its own held-out data, ≥ 98 % on real 28×28 white-on-black
handwriting and ≥ 97 % as dark ink on light paper at 140 px (a hidden set; the rows below are
the guides: MNIST digits held out of training, scikit-learn's 8×8 digits from 43 writers and
the independent `cnnviz.evaldigits.drawn_digits`, none of them trained on).

One function per model returns its rows; `print_table` prints them all.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnnviz import datasets, evaldigits, models  # noqa: E402

# Fresh own data: not the training (0), validation (1) or model card's held-out (10000) seed.
FRESH_SEED = 2024


def _classify(name: str):
    return lambda pictures: models.predict(name, pictures).argmax(axis=1)


def digits_rows(n_own: int = 2000, n_drawn: int = 1000) -> list[tuple[str, str, str, int, float]]:
    """(model, data, feed, n, accuracy) rows for the digits model."""
    classify = _classify("digits")
    x, y = datasets.digits(n_own, seed=FRESH_SEED)
    rows = [
        (
            "digits",
            f"own generator (cnnviz.datasets.digits, seed {FRESH_SEED})",
            "28×28, white on black",
            int(y.size),
            float(np.mean(classify(x) == y)),
        )
    ]
    # The MNIST digits the training command held out (same split as `python -m cnnviz.train`).
    _, _, hx, hy = datasets.mnist_sample_split(seed=0)
    found = evaldigits.real_input_rows(classify, mnist_heldout=(hx, hy), n_drawn=n_drawn)
    for row in found.values():
        rows.append(("digits", row["data"], row["feed"], row["n"], row["accuracy"]))
    return rows


def print_table(rows: list[tuple[str, str, str, int, float]]) -> None:
    """Print the rows as an aligned table."""
    head = ("model", "data", "fed as", "n", "accuracy")
    cells = [head] + [(m, d, f, str(n), f"{a:.2%}") for m, d, f, n, a in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    for i, r in enumerate(cells):
        print(
            "  ".join(
                c.ljust(w) if j < 3 else c.rjust(w)
                for j, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
        if i == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    print_table(digits_rows())
