"""Serve a whole course: N Streamlit replicas on loopback behind HAProxy.

    python -m cnnviz.serve --replicas 4 --port 8501

One Streamlit process serves one classroom; a course needs several. This launcher starts N
replicas of the app (`streamlit run app.py` on 127.0.0.1, consecutive ports), writes an HAProxy
config from `deploy/haproxy.cfg.tmpl` and runs Debian's `haproxy` in front of them:

- sessions are sticky by the cookie `cnnviz_replica` (a Streamlit session lives in one
  process, over one websocket; HAProxy passes websockets through);
- HAProxy checks each replica's `/_stcore/health` and routes around one that fails;
- the launcher restarts a replica whose process dies (its browsers reconnect to a live
  replica meanwhile, `option redispatch`), and stops everything on Ctrl-C or SIGTERM;
- every replica shares one `CNNVIZ_CACHE_DIR`, so filter pictures and other
  session-independent results computed by one replica are reused by the others.

We chose HAProxy (over writing a balancer in Python) because it is the well-kept tool that
already does sticky cookies, websocket tunnels and health checks, and an operator can reuse the
same template under their own HAProxy. The library part (`render_config`, `Launcher`) never
imports Streamlit.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "ServeError",
    "ServeConfig",
    "render_config",
    "check_frame_ancestors",
    "Launcher",
    "main",
]

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "deploy" / "haproxy.cfg.tmpl"
APP = ROOT / "app.py"
MAX_REPLICAS = 64

# One CSP source expression: a keyword, a scheme ("https:"), or a host source
# ("https://lms.example.edu", "*.example.edu:443"). Anything else (quotes in odd places,
# semicolons, spaces inside, newlines) could inject header text, so it is refused.
_SOURCE = re.compile(
    r"^(?:'self'|'none'|[a-z][a-z0-9+.-]*:|"
    r"(?:[a-z][a-z0-9+.-]*://)?(?:\*\.)?[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*(?::(?:\d{1,5}|\*))?(?:/[\w./-]*)?)$"
)


class ServeError(ValueError):
    """A bad launcher setting, or a tool (haproxy) that is missing."""


def check_frame_ancestors(value: str) -> str:
    """Validate a CSP `frame-ancestors` source list; returns it normalised (single spaces).

    Example: "'self' https://lms.example.edu" lets the app be embedded by that platform.
    """
    tokens = value.split()
    if not tokens:
        raise ServeError("Expected at least one frame-ancestors source, such as 'self'.")
    for token in tokens:
        if not _SOURCE.match(token):
            raise ServeError(
                "Expected frame-ancestors sources like 'self', 'none' or https://lms.example.edu. "
                f"Received {token!r}."
            )
    if "'none'" in tokens and len(tokens) > 1:
        raise ServeError("'none' cannot be combined with other frame-ancestors sources.")
    return " ".join(tokens)


@dataclass
class ServeConfig:
    """What the launcher runs. Ports: the balancer on `port`, replicas from `base_port` on."""

    replicas: int = 2
    port: int = 8501
    bind: str = "127.0.0.1"
    base_port: int | None = None
    frame_ancestors: str = "'self'"
    check_interval: str = "2s"
    maxconn: int = 4096
    log_level: str = "notice"
    haproxy: str = "haproxy"
    app: Path = APP
    streamlit_args: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 1 <= self.replicas <= MAX_REPLICAS:
            raise ServeError(
                f"Expected 1 to {MAX_REPLICAS} replicas. Received replicas={self.replicas}."
            )
        for name in ("port", "base_port"):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= 65535:
                raise ServeError(f"Expected {name} in 1..65535. Received {name}={value}.")
        self.frame_ancestors = check_frame_ancestors(self.frame_ancestors)

    @property
    def replica_ports(self) -> list[int]:
        start = self.base_port if self.base_port is not None else self.port + 1
        ports = list(range(start, start + self.replicas))
        if self.port in ports or ports[-1] > 65535:
            raise ServeError(
                f"Replica ports {ports[0]}..{ports[-1]} clash with the balancer's port "
                f"{self.port} or leave 1..65535; choose another --base-port."
            )
        return ports


def render_config(
    cfg: ServeConfig, template: Path = TEMPLATE, *, stats_socket: Path | None = None
) -> str:
    """Fill `deploy/haproxy.cfg.tmpl` for `cfg`: one `server rI 127.0.0.1:PORT` line a replica."""
    servers = "\n".join(
        f"    server r{i} 127.0.0.1:{port} check cookie r{i}"
        for i, port in enumerate(cfg.replica_ports)
    )
    # X-Frame-Options knows only DENY / SAMEORIGIN; send it where it says the same as the CSP.
    xfo = {"'self'": "SAMEORIGIN", "'none'": "DENY"}.get(cfg.frame_ancestors)
    return string.Template(template.read_text()).substitute(
        maxconn=cfg.maxconn,
        log_level=cfg.log_level,
        bind=cfg.bind,
        port=cfg.port,
        frame_ancestors=cfg.frame_ancestors,
        x_frame_options=f"    http-response set-header X-Frame-Options {xfo}\n" if xfo else "",
        check_interval=cfg.check_interval,
        servers=servers,
        stats_socket=stats_socket or Path(tempfile.gettempdir()) / "cnnviz-haproxy.sock",
    )


def find_haproxy(name: str = "haproxy") -> str | None:
    """The haproxy executable: on PATH, else in /usr/sbin (Debian's place, not on a user's PATH)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def _die_with_parent() -> None:
    # Linux: a child gets SIGTERM when the launcher dies, even by SIGKILL (no orphans left
    # holding ports). prctl(PR_SET_PDEATHSIG=1, SIGTERM).
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except OSError:
        pass


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def healthy(port: int, timeout: float = 2.0) -> bool:
    """True when the replica on `port` answers Streamlit's `/_stcore/health` with 200."""
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/_stcore/health", timeout=timeout
        ) as r:
            return r.status == 200
    except OSError:
        return False


class Launcher:
    """Start, watch and stop the replicas and HAProxy. `run()` blocks until `stop()`."""

    def __init__(self, cfg: ServeConfig, *, run_dir: Path | None = None, log=print):
        self.cfg = cfg
        self.log = log
        self.run_dir = Path(run_dir or tempfile.mkdtemp(prefix="cnnviz-serve-"))
        self.replicas: list[subprocess.Popen | None] = [None] * cfg.replicas
        self.restarts = [0] * cfg.replicas
        self.haproxy: subprocess.Popen | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    @property
    def stats_socket(self) -> Path:
        return self.run_dir / "haproxy.sock"

    def backend_status(self) -> dict[str, str]:
        """HAProxy's view of each replica ({"r0": "UP", "r1": "DOWN", ...}), from its stats socket."""
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(str(self.stats_socket))
                s.sendall(b"show stat\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
        except OSError:
            return {}
        rows = [line.split(",") for line in data.decode("utf-8", "replace").splitlines()]
        # CSV: pxname, svname, ..., status is column 17 (0-based) in every HAProxy 2.x.
        return {
            r[1]: r[17] for r in rows if len(r) > 17 and r[0] == "replicas" and r[1].startswith("r")
        }

    # -- processes ---------------------------------------------------------------------------
    def _spawn(self, args: list[str], log_name: str, env: dict | None = None) -> subprocess.Popen:
        out = open(self.run_dir / log_name, "ab")  # noqa: SIM115 - lives as long as the child
        try:
            return subprocess.Popen(
                args,
                cwd=self.cfg.app.parent,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, no locks taken
            )
        finally:
            out.close()

    def start_replica(self, i: int) -> None:
        port = self.cfg.replica_ports[i]
        env = dict(os.environ, CNNVIZ_REPLICA=str(i))
        args = [
            sys.executable, "-m", "streamlit", "run", str(self.cfg.app),
            "--server.port", str(port),
            "--server.address", "127.0.0.1",
            "--server.headless", "true",
            *self.cfg.streamlit_args,
        ]  # fmt: skip
        with self._lock:
            self.replicas[i] = self._spawn(args, f"replica-{i}.log", env)
        self.log(f"replica r{i}: pid {self.replicas[i].pid} on 127.0.0.1:{port}")

    def start(self) -> None:
        """Start every replica and HAProxy; raise ServeError if haproxy is missing or a port is taken."""
        haproxy = find_haproxy(self.cfg.haproxy)
        if haproxy is None:
            raise ServeError(
                f"{self.cfg.haproxy!r} not found: install Debian's haproxy (`apt-get install "
                "haproxy`), or run the app alone with `streamlit run app.py`."
            )
        for port in (self.cfg.port, *self.cfg.replica_ports):
            if not _port_free(port):
                raise ServeError(
                    f"Port {port} is already in use; choose another --port/--base-port."
                )
        cfg_path = self.run_dir / "haproxy.cfg"
        cfg_path.write_text(render_config(self.cfg, stats_socket=self.stats_socket))
        check = subprocess.run(
            [haproxy, "-c", "-q", "-f", str(cfg_path)], capture_output=True, text=True, check=False
        )
        if check.returncode != 0:
            raise ServeError(f"haproxy refused the generated config:\n{check.stdout}{check.stderr}")
        for i in range(self.cfg.replicas):
            self.start_replica(i)
        # -db: stay in the foreground, so the launcher owns it and sees it exit.
        self.haproxy = self._spawn([haproxy, "-db", "-f", str(cfg_path)], "haproxy.log")
        self.log(
            f"haproxy: pid {self.haproxy.pid} on http://{self.cfg.bind}:{self.cfg.port} "
            f"(logs in {self.run_dir})"
        )

    def wait_healthy(self, timeout: float = 120.0) -> bool:
        """Block until every replica answers its health check and HAProxy has it in rotation
        (True), or `timeout` passes (False)."""
        deadline = time.monotonic() + timeout
        names = {f"r{i}" for i in range(self.cfg.replicas)}
        while time.monotonic() < deadline and not self._stop.is_set():
            status = self.backend_status()
            if all(healthy(p) for p in self.cfg.replica_ports) and all(
                status.get(n, "").startswith("UP") for n in names
            ):
                return True
            time.sleep(0.5)
        return False

    def supervise_once(self) -> None:
        """Restart any replica whose process has exited (one pass of the watch loop)."""
        for i, proc in enumerate(self.replicas):
            if self._stop.is_set():
                return
            if proc is not None and proc.poll() is not None:
                self.restarts[i] += 1
                self.log(f"replica r{i} exited with {proc.returncode}; restarting it")
                self.start_replica(i)
        if self.haproxy is not None and self.haproxy.poll() is not None:
            raise ServeError(
                f"haproxy exited with {self.haproxy.returncode}; see {self.run_dir / 'haproxy.log'}"
            )

    def run(self, poll_s: float = 0.5) -> None:
        """Watch the children until `stop()` (or a signal) is called; then stop them all."""
        try:
            while not self._stop.wait(poll_s):
                self.supervise_once()
        finally:
            self.shutdown()

    def stop(self) -> None:
        self._stop.set()

    def shutdown(self, grace_s: float = 10.0) -> None:
        """SIGTERM every child, then SIGKILL what is still alive after `grace_s`."""
        self._stop.set()
        with self._lock:
            procs = [p for p in (*self.replicas, self.haproxy) if p is not None]
        for p in procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + grace_s
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cnnviz.serve", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--replicas", type=int, default=2, help="app processes (default 2)")
    parser.add_argument("--port", type=int, default=8501, help="the balancer's port (default 8501)")
    parser.add_argument(
        "--bind", default="127.0.0.1", help="the balancer's address (0.0.0.0 for a LAN)"
    )
    parser.add_argument(
        "--base-port", type=int, default=None, help="first replica port (default port+1)"
    )
    parser.add_argument(
        "--frame-ancestors",
        default=os.environ.get("CNNVIZ_FRAME_ANCESTORS", "'self'"),
        help="who may embed the app in a frame (CSP frame-ancestors; default 'self')",
    )
    parser.add_argument("--haproxy", default="haproxy", help="the haproxy executable")
    args = parser.parse_args(argv)
    try:
        cfg = ServeConfig(
            replicas=args.replicas,
            port=args.port,
            bind=args.bind,
            base_port=args.base_port,
            frame_ancestors=args.frame_ancestors,
            haproxy=args.haproxy,
        )
        launcher = Launcher(cfg)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: launcher.stop())
        launcher.start()
    except ServeError as err:
        print(f"cnnviz.serve: {err}", file=sys.stderr)
        return 2
    if launcher.wait_healthy():
        print(f"cnnviz: {cfg.replicas} replicas ready at http://{cfg.bind}:{cfg.port}", flush=True)
    try:
        launcher.run()
    except ServeError as err:
        print(f"cnnviz.serve: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
