"""How long one step of the Step-by-step page takes to rerun, measured with AppTest.

Run by hand: `python benchmarks/steps.py [--repeats 30]`. The goal (issue 4) is a median of at
most 100 ms per step. Times depend on the machine, so each is also printed as a ratio to
references measured in the same run: an AppTest rerun of a one-line script (Streamlit's own
floor) and one `conv2d` call on a 28×28 image.

Two ways of rerunning are timed for each configuration:
- "full": `AppTest.run()`, the whole page script. This is an upper bound: AppTest also
  recompiles the script on every run (it makes a new ScriptCache each time; a server does not).
- "fragment": only the stepper fragment, the way the browser reruns it after a click on
  Previous / Next, a slider move or a play-timer tick (the page wraps the stepper in
  `st.fragment`). AppTest has no public call for this, so the rerun request is given the
  fragment's id, as Streamlit's own session does.
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

import streamlit.testing.v1.local_script_runner as lsr  # noqa: E402
from streamlit.runtime.scriptrunner import RerunData  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from cnnviz import conv  # noqa: E402

PAGE = ROOT / "pages" / "steps.py"
STEP = "steps.step"

# (label, session-state settings applied before the first run)
CONFIGS = [
    ("seed 5×5 conv (default)", {}),
    (
        "28×28 digit, 3×3 conv, same",
        {"steps.input": "An image at digit size (28×28)", "steps.padding": "same"},
    ),
    (
        "28×28 RGB, 3×3 conv, same",
        {
            "steps.input": "An image at digit size (28×28)",
            "steps.colour": "RGB",
            "steps.padding": "same",
        },
    ),
    (
        "28×28 digit, 2×2 max pool",
        {"steps.input": "An image at digit size (28×28)", "steps.op": "Max pooling"},
    ),
]


def median_ms(fn, repeats: int) -> float:
    """Median wall time of fn() in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


class FragmentReruns:
    """Make AppTest's next runs rerun only the given fragment (the browser's stepping path)."""

    def __init__(self, fragment_id: str) -> None:
        self.fragment_id = fragment_id

    def __enter__(self) -> None:
        def rerun_data(**kwargs) -> RerunData:
            return RerunData(**kwargs, fragment_id_queue=[self.fragment_id])

        lsr.RerunData = rerun_data  # type: ignore[assignment]

    def __exit__(self, *exc) -> None:
        lsr.RerunData = RerunData  # type: ignore[assignment]


def page_after(settings: dict) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=120)
    for key, value in settings.items():
        at.session_state[key] = value
    at.run()
    if at.exception:
        raise RuntimeError(f"The page failed: {at.exception[0].message}")
    return at


def step_ms(at: AppTest, repeats: int) -> float:
    """Median time to move one step on and rerun, cycling through the steps."""
    n = int(at.slider(key=STEP).max)

    def one_step() -> None:
        at.session_state[STEP] = at.session_state[STEP] % n + 1
        at.run()

    return median_ms(one_step, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()

    # References measured in this run.
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.py"
        empty.write_text("import streamlit as st\n")
        at_empty = AppTest.from_file(str(empty), default_timeout=60)
        empty_ms = median_ms(at_empty.run, args.repeats)
    x = np.random.default_rng(0).random((28, 28))
    k = np.ones((3, 3)) / 9
    conv_ms = median_ms(lambda: conv.conv2d(x, k, padding="same"), args.repeats * 10)
    print(f"reference: AppTest rerun of an empty script  {empty_ms:8.1f} ms")
    print(f"reference: conv2d 28×28, 3×3 kernel         {conv_ms:8.3f} ms")
    print()
    print(
        f"{'configuration':34s} {'full ms':>8s} {'÷ empty':>8s} {'fragment ms':>12s} {'÷ empty':>8s} {'÷ conv2d':>9s}"
    )
    for label, settings in CONFIGS:
        at = page_after(settings)
        full = step_ms(at, args.repeats)
        storage = at._fragment_storage._fragments  # noqa: SLF001 - the page has one fragment
        (fragment_id,) = storage
        with FragmentReruns(fragment_id):
            frag = step_ms(at, args.repeats)
        if at.exception:
            raise RuntimeError(f"The page failed: {at.exception[0].message}")
        print(
            f"{label:34s} {full:8.1f} {full / empty_ms:8.1f} {frag:12.1f} {frag / empty_ms:8.1f} {frag / conv_ms:9.0f}"
        )
    print()
    print("Goal: one step reruns in ≤ 100 ms (median); the browser reruns only the fragment.")


if __name__ == "__main__":
    main()
