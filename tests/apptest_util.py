"""Helpers for AppTest page tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "pages"


def page(name: str) -> str:
    return str(PAGES / name)


def assert_clean(at) -> None:
    """No exception element and no uncaught error on the page."""
    assert not at.exception, [e.value for e in at.exception]


def imports_tensorflow(page_file: str, setup: str = "") -> bool:
    """Run a page once with AppTest in a fresh interpreter and report whether TF got imported."""
    code = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({page(page_file)!r}, default_timeout=120)\n"
        f"{setup}\n"
        "at.run()\n"
        "assert not at.exception, [e.value for e in at.exception]\n"
        "print('TF_LOADED' if 'tensorflow' in sys.modules or 'keras' in sys.modules else 'TF_ABSENT')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return "TF_LOADED" in out.stdout
