"""How long one step of the Step-by-step page takes to rerun, measured with AppTest.

Run by hand: `python benchmarks/steps.py [--repeats 30]`. The goal (issue 4) is a median of at
most 100 ms per step. Times depend on the machine, so each is also printed as a ratio to a
reference measured in the same run: an AppTest rerun of a one-line script (Streamlit's own
floor), on the same clock (wall or CPU).

Two ways of rerunning are timed for each configuration:
- "full": `AppTest.run()`, the whole page script. This is an upper bound: AppTest also
  recompiles the script on every run (it makes a new ScriptCache each time; a server does not).
- "fragment": only the stepper fragment, the way the browser reruns it after a click on
  Previous / Next, a slider move or a play-timer tick (the page wraps the stepper in
  `st.fragment`), with the page compiled once as a server does. AppTest has no public call
  for this, so the rerun request is given the fragment's id, as Streamlit's session does.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bare import quiet_streamlit  # noqa: E402

quiet_streamlit()

import streamlit.testing.v1.local_script_runner as lsr  # noqa: E402
from streamlit.runtime.scriptrunner import RerunData  # noqa: E402
from streamlit.runtime.scriptrunner.script_cache import ScriptCache  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

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


def median_ms(fn, repeats: int) -> tuple[float, float]:
    """Median wall time and median CPU time (all threads) of fn(), in ms, after a warm-up.

    CPU time is printed too because on a shared machine the wall time mostly measures the
    neighbours; the CPU time is what one step costs this process.
    """
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall) * 1e3, statistics.median(cpu) * 1e3


class FragmentReruns:
    """Make AppTest's next runs take the browser's stepping path: rerun only the given
    fragment, with the page's bytecode compiled once (a server keeps one ScriptCache; AppTest
    makes a new one, and so recompiles the page, on every run)."""

    def __init__(self, fragment_id: str) -> None:
        self.fragment_id = fragment_id
        self.cache = ScriptCache()

    def __enter__(self) -> None:
        def rerun_data(**kwargs) -> RerunData:
            return RerunData(**kwargs, fragment_id_queue=[self.fragment_id])

        lsr.RerunData = rerun_data  # type: ignore[assignment]
        lsr.ScriptCache = lambda: self.cache  # type: ignore[assignment]

    def __exit__(self, *exc) -> None:
        lsr.RerunData = RerunData  # type: ignore[assignment]
        lsr.ScriptCache = ScriptCache  # type: ignore[assignment]


def page_after(settings: dict) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=120)
    for key, value in settings.items():
        at.session_state[key] = value
    at.run()
    if at.exception:
        raise RuntimeError(f"The page failed: {at.exception[0].message}")
    return at


def step_ms(at: AppTest, repeats: int) -> tuple[float, float]:
    """Median (wall, CPU) ms to move one step on and rerun, cycling through the steps."""
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
        empty_wall, empty_cpu = median_ms(at_empty.run, args.repeats)
    print(
        f"reference: AppTest rerun of an empty script: wall {empty_wall:.1f} ms, CPU {empty_cpu:.1f} ms"
    )
    print()
    print("median ms per step (× = ratio to the empty-script rerun, same clock)")
    print(
        f"{'configuration':31s} {'full wall':>13s} {'full CPU':>13s} {'fragment wall':>14s} {'fragment CPU':>13s}"
    )
    for label, settings in CONFIGS:
        at = page_after(settings)
        full = step_ms(at, args.repeats)
        (fragment_id,) = at._fragment_storage._fragments  # noqa: SLF001 - the page's one fragment
        with FragmentReruns(fragment_id):
            frag = step_ms(at, args.repeats)
        if at.exception:
            raise RuntimeError(f"The page failed: {at.exception[0].message}")
        cells = [
            f"{full[0]:6.1f} ×{full[0] / empty_wall:4.1f}",
            f"{full[1]:6.1f} ×{full[1] / empty_cpu:4.1f}",
            f"{frag[0]:7.1f} ×{frag[0] / empty_wall:4.1f}",
            f"{frag[1]:6.1f} ×{frag[1] / empty_cpu:4.1f}",
        ]
        print(f"{label:31s} {cells[0]:>13s} {cells[1]:>13s} {cells[2]:>14s} {cells[3]:>13s}")
    print()
    print("Goal: one step reruns in ≤ 100 ms (median); the browser reruns only the fragment.")


if __name__ == "__main__":
    main()
