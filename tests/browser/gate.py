"""Whether the real-browser tests can run here, and what to do when they cannot.

Without a browser the tests are skipped with one reason that says how to get one, so a fresh
clone's `pytest` is green; with CNNVIZ_REQUIRE_BROWSER=1 (set by .ci/run) a missing browser is a
failure, so CI can never go green without them."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CHROMIUM = "/usr/bin/chromium"


@dataclass(frozen=True)
class BrowserGate:
    chromium: str | None  # the executable to drive, or None when there is none
    required: bool  # CNNVIZ_REQUIRE_BROWSER=1: a missing browser fails instead of skipping
    reason: str  # why the browser tests cannot run (empty when they can)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _executable(path: str) -> str | None:
    found = shutil.which(path)
    if found:
        return found
    p = Path(path)
    return str(p) if p.is_file() and os.access(p, os.X_OK) else None


def browser_gate(environ: Mapping[str, str] = os.environ) -> BrowserGate:
    """Find the chromium to drive: CNNVIZ_CHROMIUM if set, else Debian's /usr/bin/chromium."""
    wanted = environ.get("CNNVIZ_CHROMIUM") or DEFAULT_CHROMIUM
    required = _truthy(environ.get("CNNVIZ_REQUIRE_BROWSER"))
    found = _executable(wanted)
    if found:
        return BrowserGate(found, required, "")
    reason = (
        f"no chromium at {wanted}: install Debian's chromium (`apt-get install chromium`) "
        "or set CNNVIZ_CHROMIUM=/path/to/chromium"
    )
    return BrowserGate(None, required, reason)
