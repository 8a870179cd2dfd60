"""cnnviz.serve: the HAProxy config it writes, its input checks, and a real balancer in front
of two real replicas (sticky cookie, failover, restart), driven over HTTP with separate
cookie jars. The same with real browsers is in tests/browser/test_serve_browser.py."""

from __future__ import annotations

import http.cookiejar
import os
import subprocess
import time
import urllib.request

import pytest

from cnnviz import serve
from tests.serve_util import free_ports, running_balancer

HAPROXY = serve.find_haproxy()
_NO_HAPROXY = (
    "haproxy not found: install Debian's haproxy (`apt-get install haproxy`); .ci/run does"
)
needs_haproxy = pytest.mark.skipif(
    HAPROXY is None and os.environ.get("CNNVIZ_REQUIRE_HAPROXY") != "1", reason=_NO_HAPROXY
)


# -- settings and the config text ----------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "'self'; script-src *",  # a second directive smuggled in
        "'self'\r\nSet-Cookie: x=1",  # header injection
        'https://lms.example.edu"',
        "",
        "'none' 'self'",
        "javascript:alert(1) <x>",
    ],
)
def test_frame_ancestors_refuses_anything_but_sources(value):
    with pytest.raises(serve.ServeError):
        serve.check_frame_ancestors(value)


@pytest.mark.parametrize(
    "value",
    ["'self'", "'none'", "'self' https://lms.example.edu", "https://*.moodle.example.org:443"],
)
def test_frame_ancestors_accepts_sources(value):
    assert serve.check_frame_ancestors(value) == value


@pytest.mark.parametrize("replicas", [0, -1, serve.MAX_REPLICAS + 1])
def test_replica_count_is_bounded(replicas):
    with pytest.raises(serve.ServeError, match="replicas"):
        serve.ServeConfig(replicas=replicas)


def test_replica_ports_never_clash_with_the_balancer():
    with pytest.raises(serve.ServeError, match="clash"):
        _ = serve.ServeConfig(replicas=3, port=8600, base_port=8599).replica_ports


def test_config_is_sticky_checks_health_and_lists_every_replica():
    cfg = serve.ServeConfig(replicas=3, port=9000, frame_ancestors="'self' https://lms.example.edu")
    text = serve.render_config(cfg)
    assert "cookie cnnviz_replica insert" in text
    assert "option httpchk GET /_stcore/health" in text
    assert "option redispatch 1" in text
    assert "timeout tunnel" in text  # websockets stay open
    servers = [line.split() for line in text.splitlines() if line.strip().startswith("server ")]
    assert servers == [
        ["server", f"r{i}", f"127.0.0.1:{9001 + i}", "check", "cookie", f"r{i}"] for i in range(3)
    ]
    assert "frame-ancestors 'self' https://lms.example.edu" in text
    assert "set-header X-Frame-Options" not in text  # it cannot say "this platform too"
    assert "set-header X-Frame-Options SAMEORIGIN" in serve.render_config(
        serve.ServeConfig(replicas=1)
    )


@needs_haproxy
def test_haproxy_accepts_the_generated_config(tmp_path):
    assert HAPROXY, _NO_HAPROXY
    path = tmp_path / "haproxy.cfg"
    path.write_text(serve.render_config(serve.ServeConfig(replicas=4, port=9100)))
    check = subprocess.run([HAPROXY, "-c", "-f", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_missing_haproxy_is_a_clear_error(tmp_path):
    cfg = serve.ServeConfig(replicas=1, port=free_ports(1)[0], haproxy="no-such-haproxy-here")
    with pytest.raises(serve.ServeError, match="apt-get install haproxy"):
        serve.Launcher(cfg, run_dir=tmp_path, log=lambda *_: None).start()


# -- a real balancer ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def balancer(tmp_path_factory):
    """Two app replicas behind HAProxy, supervised by the launcher in a thread."""
    if HAPROXY is None:
        if os.environ.get("CNNVIZ_REQUIRE_HAPROXY") == "1":
            pytest.fail(_NO_HAPROXY)
        pytest.skip(_NO_HAPROXY)
    with running_balancer(tmp_path_factory.mktemp("serve")) as running:
        yield running


def _client():
    jar = http.cookiejar.CookieJar()
    return jar, urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))


def _replica(jar) -> str | None:
    return next((c.value for c in jar if c.name == "cnnviz_replica"), None)


def _get(opener, url: str) -> int:
    with opener.open(url, timeout=10) as r:
        r.read()
        return r.status


def test_sessions_stick_use_both_replicas_and_survive_a_dead_one(balancer):
    launcher, url = balancer
    clients = [_client() for _ in range(4)]
    for _jar, opener in clients:
        assert _get(opener, url + "/") == 200
    first = [_replica(jar) for jar, _ in clients]
    assert set(first) == {"r0", "r1"}, first  # together they use both replicas
    for _ in range(3):  # reloads keep each browser on its replica
        for _jar, opener in clients:
            assert _get(opener, url + "/") == 200
    assert [_replica(jar) for jar, _ in clients] == first

    # Kill r0's process: its browsers reach r1 within 10 s, and the launcher brings r0 back.
    victim = launcher.replicas[0]
    victim.kill()
    victim.wait()
    t0 = time.monotonic()
    moved = [c for c, r in zip(clients, first, strict=True) if r == "r0"]
    for jar, opener in moved:
        while True:
            try:
                if _get(opener, url + "/_stcore/health") == 200 and _replica(jar) == "r1":
                    break
            except OSError:
                pass
            assert time.monotonic() - t0 < 10, "a dead replica's sessions did not move within 10 s"
            time.sleep(0.2)
    deadline = time.monotonic() + 120
    while not (launcher.replicas[0] is not victim and serve.healthy(launcher.cfg.replica_ports[0])):
        assert time.monotonic() < deadline, "the launcher did not bring the dead replica back"
        time.sleep(0.5)
    assert launcher.restarts[0] == 1


def test_balancer_sends_the_anti_framing_header(balancer):
    _, url = balancer
    with urllib.request.urlopen(url + "/", timeout=10) as r:
        assert r.headers["Content-Security-Policy"] == "frame-ancestors 'self'"
        assert r.headers["X-Frame-Options"] == "SAMEORIGIN"
