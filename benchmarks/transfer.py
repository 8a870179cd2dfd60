"""Transfer learning on new classes, measured: `python benchmarks/transfer.py`.

The seeds' experiment: the built-in shapes model (trained on circle, square, ...) as a base,
and four shapes it never saw (`cnnviz.datasets.NOVEL_CLASSES`: pentagon, arrow, crescent,
ring). For 5, 20 and 100 training pictures per class, three models are trained with the same
seed and the same number of gradient steps (`cnnviz.transfer.compare`):

- scratch:  the shapes architecture with fresh random weights, everything learns (Adam 1e-3,
            batch-norm momentum 0.9: see `transfer.SCRATCH_BN_MOMENTUM`);
- frozen:   the shapes model's convolutional part copied and frozen, a new GAP+Dense head;
- finetune: the same copy; the Keras guide's two phases: half the steps the head alone (Adam
            1e-3), then conv4 and its batch norm learn too (Adam 1e-4).

Each is measured on the same seeded held-out set of 400 new pictures (chance: 25 %).
Prints one table; asserts nothing (numbers depend on the seed; `--seeds 3` averages).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from cnnviz import transfer  # noqa: E402

MODES = ("scratch", "frozen", "finetune")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, nargs="+", default=[5, 20, 100])
    parser.add_argument("--steps", type=int, default=200, help="gradient steps per model")
    parser.add_argument("--seeds", type=int, default=1, help="training sets / seeds to average")
    parser.add_argument("--base", default="shapes")
    args = parser.parse_args(argv)

    rows = []
    t0 = time.perf_counter()
    for k in args.per_class:
        accs = {m: [] for m in MODES}
        for seed in range(args.seeds):
            task = transfer.novel_task(k, seed=seed)
            res = transfer.compare(
                args.base, task, modes=MODES, steps=args.steps, seed=seed, validate=False
            )
            for m in MODES:
                accs[m].append(res[m]["accuracy"])
        rows.append((k, {m: float(np.mean(v)) for m, v in accs.items()}))
        print(f"  {k} per class done ({time.perf_counter() - t0:.0f} s)", flush=True)

    print()
    print(
        f"New classes {', '.join(task.classes)} from base {args.base!r}: held-out accuracy "
        f"on {len(task.y_test)} pictures (chance 25 %), {args.steps} steps, "
        f"{args.seeds} seed(s)"
    )
    print(f"{'per class':>9} | {'scratch':>8} | {'frozen':>8} | {'finetune':>8} | best")
    print("-" * 52)
    for k, acc in rows:
        best = max(acc, key=acc.get)
        print(
            f"{k:>9} | {acc['scratch']:>8.1%} | {acc['frozen']:>8.1%} | "
            f"{acc['finetune']:>8.1%} | {best}"
        )
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
