"""Shared test set-up: quiet, deterministic, capped loops."""

import os
import socket
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Cap every optimisation / training loop the library runs in tests (tf-keras-vis style).
os.environ.setdefault("CNNVIZ_MAX_STEPS", "3")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# A fresh on-disk cache per test run (cnnviz.diskcache): results from an earlier run, or from a
# developer's own server, must never make a test pass.
os.environ["CNNVIZ_CACHE_DIR"] = tempfile.mkdtemp(prefix="cnnviz-test-cache-")


@pytest.fixture
def no_network(monkeypatch):
    """The network cut off at the socket: DNS lookups and connects raise at once, as they do on
    a machine with no route out. Returns the list of socket default timeouts seen at each
    attempt, so a test can check that nothing was left with a timeout (a hang) set."""
    seen = []

    def refuse(*args, **kwargs):
        seen.append(socket.getdefaulttimeout())
        raise socket.gaierror(-3, "mocked: no network")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return seen
