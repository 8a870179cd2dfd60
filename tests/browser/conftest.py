"""A real server and a real browser: `streamlit run app.py` on loopback, driven by Playwright
over Debian's chromium (never a browser download)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from benchmarks.load import WATCH  # the one rerun watcher, shared with the load benchmarks
from tests.browser.gate import browser_gate

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "test-output" / "screenshots"
HERE = Path(__file__).resolve().parent
GATE = browser_gate()
# Streamlit's frontend first probes <page>/_stcore/health and host-config when a page is opened
# by its own URL, then falls back to the root; those two 404s are expected, nothing else is.
EXPECTED_404 = ("/_stcore/health", "/_stcore/host-config")


def pytest_collection_modifyitems(config, items):
    """No browser: skip every browser test with one reason (or fail them when it is required)."""
    if GATE.chromium or GATE.required:
        return
    skip = pytest.mark.skip(reason=f"browser tests skipped: {GATE.reason}")
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(skip)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server():
    port = _free_port()
    env = dict(os.environ, CNNVIZ_MAX_STEPS=os.environ.get("CNNVIZ_MAX_STEPS", "3"))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("streamlit did not start:\n" + (proc.stdout.read() if proc.stdout else ""))
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def browser():
    if GATE.chromium is None:
        # Only reached with CNNVIZ_REQUIRE_BROWSER=1 (otherwise the tests were skipped).
        pytest.fail(f"CNNVIZ_REQUIRE_BROWSER=1 but {GATE.reason}", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=GATE.chromium,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


class PageWatch:
    """Collects console errors, failed requests and Streamlit exception boxes for one page."""

    def __init__(self, page):
        self.page = page
        self.problems: list[str] = []
        # Media (pictures) that 404ed: a problem only if the page still shows them at the end.
        self.missing_media: set[str] = set()
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on("response", self._response)
        page.on("requestfailed", self._failed)

    def _console(self, msg) -> None:
        if msg.type != "error" or "Failed to load resource" in msg.text:
            return
        if "Image source error" in msg.text and "/media/" in msg.text:
            self.missing_media.add(msg.text.rsplit(" ", 1)[-1])
            return
        self.problems.append(f"console error: {msg.text}")

    def _failed(self, request) -> None:
        # A live preview image replaced before it finished loading is cancelled by the
        # browser (net::ERR_ABORTED): not an error. Anything else is.
        if request.failure != "net::ERR_ABORTED":
            self.problems.append(f"request failed ({request.failure}): {request.url}")

    def _response(self, r) -> None:
        if r.status == 404 and "/media/" in r.url:
            # Quick reruns (a slider moved three steps) replace a picture; Streamlit drops the
            # old run's media file, and a fetch of it still in flight gets a 404 while the
            # newer picture shows. Judged in check(): only a picture still on the page counts.
            self.missing_media.add(r.url)
        elif r.status >= 400 and not (r.status == 404 and r.url.endswith(EXPECTED_404)):
            self.problems.append(f"HTTP {r.status}: {r.url}")

    def check(self) -> None:
        if self.missing_media:
            shown = set(self.page.locator("img").evaluate_all("els => els.map(e => e.src)"))
            self.problems += [
                f"missing picture still shown: {u}" for u in self.missing_media & shown
            ]
        boxes = self.page.locator("[data-testid=stException]")
        if boxes.count():
            self.problems.append("streamlit exception: " + boxes.first.inner_text()[:2000])
        assert not self.problems, "\n".join(self.problems)


@pytest.fixture
def open_page(browser, server):
    contexts = []

    def _open(path: str, *, width: int = 1440, height: int = 1000):
        ctx = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(ctx)
        page = ctx.new_page()
        watch = PageWatch(page)
        page.goto(f"{server}/{path}", wait_until="domcontentloaded")
        wait_idle(page)
        return page, watch

    yield _open
    for ctx in contexts:
        ctx.close()


def wait_idle(page, timeout_ms: int = 180_000) -> None:
    """Wait until Streamlit has finished running the script (no 'Running…' indicator)."""
    page.wait_for_selector("[data-testid=stApp]", timeout=timeout_ms)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=stApp]')?.getAttribute('data-test-script-state') === 'notRunning'",
        timeout=timeout_ms,
    )
    page.wait_for_timeout(600)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=stApp]')?.getAttribute('data-test-script-state') === 'notRunning'",
        timeout=timeout_ms,
    )


def after_rerun(page, action, timeout_ms: int = 180_000, *, shows: str | None = None) -> None:
    """Do `action()` and wait for the script rerun it causes to start and then finish (on a
    busy server the rerun can start well after the click).

    A short fragment rerun can start and end within one React render batch, so the app's
    script-state attribute never changes and no watcher can see it (test_steps' Next click
    waited out 180 s in 3 of 4 clean-clone CI runs). When the rerun's effect is known, pass
    `shows`: text the page shows once the rerun is done; seeing it counts as the rerun.
    """
    page.evaluate(WATCH)
    action()
    page.wait_for_function(
        "(text) => window.__sawRun === true || (text !== null && document.body.innerText.includes(text))",
        arg=shows,
        timeout=timeout_ms,
    )
    wait_idle(page, timeout_ms)


def screenshot(page, name: str) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
