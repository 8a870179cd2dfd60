"""A real balancer for tests: two app replicas behind HAProxy, supervised in a thread."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

from cnnviz import serve


def free_ports(n: int) -> list[int]:
    """n ports that were free a moment ago (bound together, so they differ)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@contextlib.contextmanager
def running_balancer(run_dir: Path, replicas: int = 2) -> Iterator[tuple[serve.Launcher, str]]:
    """Start the launcher, wait until HAProxy has every replica in rotation, stop at exit."""
    port, base = free_ports(2)
    cfg = serve.ServeConfig(replicas=replicas, port=port, base_port=base, check_interval="1s")
    launcher = serve.Launcher(cfg, run_dir=run_dir, log=lambda *_: None)
    launcher.start()
    thread = threading.Thread(target=launcher.run, kwargs={"poll_s": 0.3}, daemon=True)
    thread.start()
    try:
        assert launcher.wait_healthy(180), "replicas did not come up"
        yield launcher, f"http://127.0.0.1:{port}"
    finally:
        launcher.stop()
        thread.join(30)
