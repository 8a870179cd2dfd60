"""`python -m cnnviz.serve`: four real browsers (each with its own cookie jar) through HAProxy
in front of two replicas. Sticky across reloads, both replicas used, and when one replica's
process is killed its browsers are working again on the other within 10 s while the launcher
brings the dead one back."""

from __future__ import annotations

import time

import pytest

from cnnviz import serve
from tests.browser.conftest import screenshot, wait_idle
from tests.serve_util import running_balancer

pytestmark = pytest.mark.browser

TITLE = "see how a convolutional network works"


@pytest.fixture(scope="module")
def balancer(tmp_path_factory):
    if serve.find_haproxy() is None:
        pytest.fail("haproxy not found: install Debian's haproxy (`apt-get install haproxy`)")
    with running_balancer(tmp_path_factory.mktemp("serve")) as running:
        yield running


def _replica(ctx) -> str | None:
    return next((c["value"] for c in ctx.cookies() if c["name"] == "cnnviz_replica"), None)


def test_four_browsers_stick_spread_and_survive_a_dead_replica(browser, balancer):
    launcher, url = balancer
    contexts = [browser.new_context(viewport={"width": 1200, "height": 800}) for _ in range(4)]
    try:
        pages = []
        for ctx in contexts:
            page = ctx.new_page()
            page.goto(url + "/", wait_until="domcontentloaded")
            wait_idle(page)
            assert TITLE in page.locator("h1").first.inner_text()
            pages.append(page)
        first = [_replica(ctx) for ctx in contexts]
        assert set(first) == {"r0", "r1"}, first
        for page in pages:
            page.reload(wait_until="domcontentloaded")
            wait_idle(page)
        assert [_replica(ctx) for ctx in contexts] == first

        victim = launcher.replicas[0]
        victim.kill()
        victim.wait()
        t0 = time.monotonic()
        for ctx, page, was in zip(contexts, pages, first, strict=True):
            if was != "r0":
                continue
            # Streamlit's page reconnects by itself; HAProxy sends it to r1 and re-stamps it.
            while _replica(ctx) != "r1":
                assert time.monotonic() - t0 < 10, "the browser did not move to r1 within 10 s"
                page.wait_for_timeout(200)
            wait_idle(page)
            assert TITLE in page.locator("h1").first.inner_text()
        screenshot(pages[first.index("r0")], "serve-after-failover")
        deadline = time.monotonic() + 120
        while not (
            launcher.replicas[0] is not victim and serve.healthy(launcher.cfg.replica_ports[0])
        ):
            assert time.monotonic() < deadline, "the launcher did not bring r0 back"
            time.sleep(0.5)
    finally:
        for ctx in contexts:
            ctx.close()
