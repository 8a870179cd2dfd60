"""A class at once: N real browser sessions against one running server (issue 10).

Starts `streamlit run app.py` on a loopback port (or uses --url), then opens N browser
contexts in Debian's chromium at the same moment. Each session, like a student:
1. opens Activations, uploads a photo, and reads the model's top prediction;
2. opens Grad-CAM, switches to "your own upload", uploads the photo, and reads the
   explanation's line (class, score before softmax, probability).
It reports how many completed, errors, p50/p95 latency per action, the server's RSS, and
whether every session's results equal a serial run's (one session alone, run first).

Run: python benchmarks/load.py [-n 20] [--url http://127.0.0.1:8501]
Goal: N=20 all complete, 0 errors, results equal to serial.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CNNVIZ_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IDLE = (
    "() => document.querySelector('[data-testid=stApp]')"
    "?.getAttribute('data-test-script-state') === 'notRunning'"
)
TIMEOUT_MS = 600_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server() -> tuple[subprocess.Popen, str]:
    port = free_port()
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
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the server did not start")


def rss_mb(pid: int) -> float:
    """RSS of the server process and its children, from /proc."""
    total = 0
    pids = [pid]
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
        pids += [int(p) for p in out.stdout.split()]
    except OSError:
        pass
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


# Sets window.__sawRun once a script rerun has started (the browser tests use it too). A fast
# rerun can switch the state to "running" and back within one task, before the observer's
# callback runs: so look at each record's old value too, not only the current one.
WATCH = """() => {
  const app = document.querySelector('[data-testid=stApp]');
  const attr = 'data-test-script-state';
  window.__sawRun = false;
  if (!window.__runWatch) {
    window.__runWatch = new MutationObserver((records) => {
      for (const r of records) {
        if (r.oldValue === 'running' || app.getAttribute(attr) === 'running') window.__sawRun = true;
      }
    });
    window.__runWatch.observe(app, {attributes: true, attributeFilter: [attr], attributeOldValue: true});
  }
}"""


async def upload_and_wait(page, selector: str, path: str) -> None:
    """Upload a file and wait for the rerun it causes to finish (not just for any idle moment:
    on a busy server the rerun can start well after the upload)."""
    await page.evaluate(WATCH)
    await page.locator(selector).set_input_files(path)
    await page.wait_for_function("() => window.__sawRun === true", timeout=TIMEOUT_MS)
    await idle(page)


async def idle(page) -> None:
    await page.wait_for_timeout(800)
    await page.wait_for_function(IDLE, timeout=TIMEOUT_MS)
    await page.wait_for_timeout(300)
    await page.wait_for_function(IDLE, timeout=TIMEOUT_MS)


async def student(
    browser, url: str, photo: str, timings: dict[str, list[float]]
) -> tuple[str, str]:
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await ctx.new_page()
    # Twenty browsers on two cores: give the server time rather than fail on a slow first byte.
    page.set_default_navigation_timeout(TIMEOUT_MS)
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        t0 = time.perf_counter()
        await page.goto(f"{url}/activations", wait_until="domcontentloaded")
        await idle(page)
        await upload_and_wait(page, ".st-key-activations-upload input[type=file]", photo)
        timings["activations"].append(time.perf_counter() - t0)
        top = (await page.locator("[data-testid=stProgress]").first.inner_text()).strip()

        t0 = time.perf_counter()
        await page.goto(f"{url}/gradcam", wait_until="domcontentloaded")
        await idle(page)
        source = page.locator(".st-key-gradcam-source")
        if await source.count():
            await page.evaluate(WATCH)
            await source.get_by_text("A sample photo or your own upload").click()
            await page.wait_for_function("() => window.__sawRun === true", timeout=TIMEOUT_MS)
            await idle(page)
        await upload_and_wait(page, ".st-key-gradcam-upload input[type=file]", photo)
        line = await page.get_by_text("score before softmax").first.inner_text()
        timings["gradcam"].append(time.perf_counter() - t0)
        if await page.locator("[data-testid=stException]").count():
            errors.append(await page.locator("[data-testid=stException]").first.inner_text())
        if errors:
            raise RuntimeError("; ".join(errors))
        return top, line.strip()
    finally:
        await ctx.close()


async def run(n: int, url: str, server_pid: int | None) -> int:
    from playwright.async_api import async_playwright

    with tempfile.TemporaryDirectory() as tmp:
        yy, xx = np.mgrid[0:200, 0:260]
        arr = np.stack([(xx % 50 < 25) * 200 + 30, (yy % 40 < 20) * 180 + 40, (xx + yy) % 255], -1)
        photo = str(Path(tmp) / "photo.jpg")
        Image.fromarray(arr.astype(np.uint8)).save(photo, quality=92)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            serial_t: dict[str, list[float]] = {"activations": [], "gradcam": []}
            serial = await student(browser, url, photo, serial_t)
            print(f"serial: top '{serial[0]}'; Grad-CAM '{serial[1]}'")
            rss0 = rss_mb(server_pid) if server_pid else float("nan")
            timings: dict[str, list[float]] = {"activations": [], "gradcam": []}
            t0 = time.perf_counter()
            results = await asyncio.gather(
                *(student(browser, url, photo, timings) for _ in range(n)), return_exceptions=True
            )
            wall = time.perf_counter() - t0
            rss1 = rss_mb(server_pid) if server_pid else float("nan")
            await browser.close()
    errors = [r for r in results if isinstance(r, BaseException)]
    done = [r for r in results if not isinstance(r, BaseException)]
    same = sum(r == serial for r in done)
    print(
        f"N={n}: {len(done)} completed, {len(errors)} errors, {same}/{len(done)} equal to serial, "
        f"wall {wall:.1f} s"
    )
    for r in sorted({r for r in done if r != serial})[:5]:
        print(f"  differs: top '{r[0]}'; Grad-CAM '{r[1]}'")
    for err in errors[:5]:
        print(f"  error: {type(err).__name__}: {str(err)[:300]}")
    for action, ts in timings.items():
        if ts:
            q = statistics.quantiles(ts, n=20) if len(ts) > 1 else [ts[0]] * 19
            print(
                f"  {action:<12} p50 {statistics.median(ts):6.1f} s   p95 {q[18]:6.1f} s   "
                f"(serial {serial_t[action][0]:.1f} s)"
            )
    print(f"  server RSS {rss0:.0f} MB before the class, {rss1:.0f} MB after")
    ok = not errors and same == len(done) == n
    print("goal (all complete, 0 errors, equal to serial):", "OK" if ok else "MISSED")
    return 0 if ok else 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=20, help="concurrent sessions")
    ap.add_argument("--url", help="an already running server (else one is started)")
    args = ap.parse_args()
    proc = None
    url = args.url
    if url is None:
        proc, url = start_server()
    try:
        code = asyncio.run(run(args.n, url, proc.pid if proc else None))
    finally:
        if proc is not None:
            proc.terminate()
    raise SystemExit(code)


if __name__ == "__main__":
    main()
