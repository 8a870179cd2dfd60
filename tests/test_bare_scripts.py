"""Benchmarks run bare (`python benchmarks/x.py`) print no Streamlit bare-mode noise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import sys
sys.path.insert(0, {root!r})
if {quiet}:
    from benchmarks.bare import quiet_streamlit
    quiet_streamlit()
from streamlit.testing.v1 import AppTest
at = AppTest.from_string("import streamlit as st\\nst.text(st.session_state.get('n', 0))")
at.session_state["n"] = 3  # a write between runs, as the benchmarks do
at.run()
assert not at.exception
import logging
logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").warning("other")
print("ran", at.text[0].value)
"""


def _run(quiet: bool) -> subprocess.CompletedProcess:
    code = SCRIPT.format(root=str(ROOT), quiet=quiet)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("quiet", [False, True])
def test_bare_mode_warning_is_dropped_and_nothing_else(quiet):
    run = _run(quiet)
    assert run.returncode == 0, run.stderr
    assert "ran 3" in run.stdout
    noisy = "missing ScriptRunContext" in run.stdout + run.stderr
    # Without the helper Streamlit does print it (so this test can fail); with it, never.
    assert noisy is not quiet
    assert "other" in run.stdout + run.stderr  # other messages from that logger still show


def test_every_benchmark_that_drives_streamlit_quiets_it():
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        text = path.read_text()
        if "streamlit.testing" in text or "cnnviz.ui" in text:
            assert "quiet_streamlit()" in text, f"{path.name} drives Streamlit bare but is noisy"
