"""Memory after many reruns of the Grad-CAM page (issue 10: growth < 50 MB after 100 reruns).

Runs the page in this process with Streamlit's AppTest (the same script runner the server
uses), warms it up, then reruns it 100 times while moving the overlay slider and switching
the colour map and method, and prints the resident set size (RSS) before and after.

Run: python benchmarks/memory.py [RERUNS]
"""

import gc
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bare import quiet_streamlit  # noqa: E402

quiet_streamlit()

from streamlit.testing.v1 import AppTest  # noqa: E402


def rss_mb() -> float:
    """Resident set size of this process, from /proc (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main(reruns: int = 100) -> None:
    at = AppTest.from_file(str(ROOT / "pages" / "gradcam.py"), default_timeout=300)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    methods = ["gradcam", "gradcam++", "layercam"]
    # Warm-up: every method and colour map once, so caches are filled before we measure.
    for m in methods:
        at.selectbox(key="gradcam.method").set_value(m).run()
    gc.collect()
    before = rss_mb()
    for i in range(reruns):
        at.slider(key="gradcam.alpha").set_value(0.3 + 0.4 * (i % 2)).run()
        if i % 10 == 0:
            at.selectbox(key="gradcam.method").set_value(methods[(i // 10) % len(methods)]).run()
        assert not at.exception, [e.value for e in at.exception]
    gc.collect()
    after = rss_mb()
    growth = after - before
    print(
        f"Grad-CAM page, {reruns} reruns: RSS {before:.0f} MB -> {after:.0f} MB, "
        f"growth {growth:+.1f} MB (goal < 50 MB {'OK' if growth < 50 else 'MISSED'})"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
