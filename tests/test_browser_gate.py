"""The browser tests' gate: skipped with a reason without chromium, failing when CI requires it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser.gate import DEFAULT_CHROMIUM, browser_gate

ROOT = Path(__file__).resolve().parents[1]


def test_missing_browser_names_both_ways_to_get_one():
    gate = browser_gate({"CNNVIZ_CHROMIUM": "/nonexistent/chromium"})
    assert gate.chromium is None and not gate.required
    assert "/nonexistent/chromium" in gate.reason
    assert "apt-get install chromium" in gate.reason and "CNNVIZ_CHROMIUM=" in gate.reason


def test_default_is_debians_chromium():
    gate = browser_gate({})
    assert (gate.chromium is None) == (not os.access(DEFAULT_CHROMIUM, os.X_OK))
    if gate.chromium is None:
        assert DEFAULT_CHROMIUM in gate.reason


def test_an_executable_file_is_found_and_a_plain_file_is_not(tmp_path):
    exe = tmp_path / "chromium"
    exe.write_text("#!/bin/sh\n")
    assert browser_gate({"CNNVIZ_CHROMIUM": str(exe)}).chromium is None  # not executable
    exe.chmod(0o755)
    gate = browser_gate({"CNNVIZ_CHROMIUM": str(exe)})
    assert gate.chromium == str(exe) and gate.reason == ""


@pytest.mark.parametrize(
    ("value", "required"),
    [("1", True), ("true", True), ("yes", True), ("0", False), ("", False), ("no", False)],
)
def test_require_flag(value, required):
    env = {"CNNVIZ_CHROMIUM": "/nonexistent", "CNNVIZ_REQUIRE_BROWSER": value}
    assert browser_gate(env).required is required


def _run_browser_suite(**env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k != "CNNVIZ_REQUIRE_BROWSER"}
    full.update(CNNVIZ_CHROMIUM="/nonexistent/chromium", **env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests/browser", "-q"],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_a_browser_the_suite_skips_with_the_reason():
    run = _run_browser_suite()
    assert run.returncode == 0, run.stdout + run.stderr
    assert "skipped" in run.stdout and "passed" not in run.stdout
    assert "apt-get install chromium" in run.stdout and "CNNVIZ_CHROMIUM=" in run.stdout


def test_required_browser_missing_is_a_failure_not_a_skip():
    run = _run_browser_suite(CNNVIZ_REQUIRE_BROWSER="1")
    assert run.returncode != 0, run.stdout + run.stderr
    assert "skipped" not in run.stdout
    assert "CNNVIZ_REQUIRE_BROWSER=1" in run.stdout
