"""What the SERVER pays per student interaction, for N = 1, 5 and 20 sessions (issue 19).

`benchmarks/load.py` times 20 browsers on the same two cores as the server, so its latencies
mostly measure the browsers. This script reads the server process's own CPU time from
/proc/<pid>/stat (user + system, the process only: the browsers are other processes and are
never counted) before and after every session has done one interaction, and divides by N:

  open      open the Kernels page (a light page, no TensorFlow)
  slider    move the Kernels stride slider (one rerun of a light page)
  upload    upload a photo to Activations (a forward pass, 64 maps)
  gradcam   open Grad-CAM (computes a Grad-CAM of a generated picture on the shapes model)
  draw      one stroke on the Network page's canvas (only if pages/network.py exists)

It also prints the server's RSS per open session and what a session keeps after its browser
disconnects. A warm-up session runs every interaction first, so TensorFlow's one-off tracing
is reported separately ("cold") and not spread over the class.

Run: python benchmarks/classroom.py [--sizes 1 5 20] [--url URL --pid PID]
From the numbers: a box with C cores serves about C / (cpu_s per interaction × interactions
per student-second) students at once; the README's capacity paragraph quotes this script.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import ARGS, CHROMIUM, TIMEOUT_MS, WATCH, idle, rss_mb, start_server, upload_and_wait  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")
# A rerun that has not even started after 5 minutes was lost (the browser starved): a miss.
RERUN_TIMEOUT_MS = 300_000


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of the server process itself (fields 14 and 15 of stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


async def rerun_after(page, action) -> None:
    await page.evaluate(WATCH)
    await action()
    await page.wait_for_function("() => window.__sawRun === true", timeout=RERUN_TIMEOUT_MS)
    await idle(page)


async def do_open(page, url: str, photo: str) -> None:
    await page.goto(f"{url}/kernels", wait_until="domcontentloaded")
    await idle(page)


async def do_slider(page, url: str, photo: str) -> None:
    thumb = page.locator(".st-key-kernels-stride input[type=range]").first
    await thumb.focus()
    await rerun_after(page, lambda: thumb.press("ArrowRight"))


async def prepare_upload(page, url: str, photo: str) -> None:
    await page.goto(f"{url}/activations", wait_until="domcontentloaded")
    await idle(page)


async def do_upload(page, url: str, photo: str) -> None:
    await upload_and_wait(page, ".st-key-activations-upload input[type=file]", photo)


async def do_gradcam(page, url: str, photo: str) -> None:
    await page.goto(f"{url}/gradcam?model=shapes", wait_until="domcontentloaded")
    await idle(page)
    await page.get_by_text("score before softmax").first.wait_for(timeout=TIMEOUT_MS)


async def prepare_draw(page, url: str, photo: str) -> None:
    await page.goto(f"{url}/network?model=digits&source=draw", wait_until="domcontentloaded")
    await idle(page)


async def do_draw(page, url: str, photo: str) -> None:
    # The drawing layer of streamlit-drawable-canvas: fabric.js stacks an upper canvas that
    # gets the mouse, in the page itself (not an iframe) on this Streamlit.
    await page.wait_for_selector("canvas.upper-canvas", timeout=TIMEOUT_MS)
    box = await page.locator("canvas.upper-canvas").first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.25

    async def stroke():
        await page.mouse.move(x, y)
        await page.mouse.down()
        for k in range(1, 11):
            await page.mouse.move(x, y + box["height"] * 0.05 * k)
        await page.mouse.up()

    await rerun_after(page, stroke)


# (name, set-up not counted, the counted interaction)
STEPS = [
    ("open", None, do_open),
    ("slider", None, do_slider),
    ("upload", prepare_upload, do_upload),
    ("gradcam", None, do_gradcam),
]
if (ROOT / "pages" / "network.py").exists():
    STEPS.append(("draw", prepare_draw, do_draw))


async def _counted(action, page, url: str, photo: str) -> bool:
    """One student's interaction; False (a miss, reported) when its browser saw no rerun in
    time: on two cores shared with twenty browsers a page can starve, and one starved page
    must not throw away every other session's measurement."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    try:
        await action(page, url, photo)
    except PlaywrightTimeout:
        return False
    return True


async def measure(browser, url: str, pid: int, n: int, photo: str) -> dict:
    contexts = [
        await browser.new_context(viewport={"width": 1280, "height": 900}) for _ in range(n)
    ]
    pages = [await c.new_page() for c in contexts]
    for p in pages:
        p.set_default_timeout(TIMEOUT_MS)
        p.set_default_navigation_timeout(TIMEOUT_MS)
    rss0 = rss_mb(pid)
    out: dict[str, float] = {}
    for name, setup, action in STEPS:
        if setup is not None:
            await asyncio.gather(*(setup(p, url, photo) for p in pages))
        c0, t0 = cpu_s(pid), time.perf_counter()
        done = await asyncio.gather(*(_counted(action, p, url, photo) for p in pages))
        await asyncio.sleep(0.5)  # let the last reruns' bookkeeping finish on the server
        # Divide by the interactions that finished: a browser that gave up is reported as a
        # miss, not spread over the class as if its rerun had been free.
        out[name] = (cpu_s(pid) - c0) / max(sum(done), 1)
        out[name + "_wall"] = time.perf_counter() - t0
        out[name + "_missed"] = n - sum(done)
    rss_open = rss_mb(pid)
    for c in contexts:
        await c.close()
    await asyncio.sleep(15)  # Streamlit drops a disconnected session's script thread
    out["rss_per_session"] = (rss_open - rss0) / n
    out["rss_kept_per_session"] = (rss_mb(pid) - rss0) / n
    out["rss_total"] = rss_open
    return out


async def run(sizes: list[int], url: str, pid: int) -> None:
    from playwright.async_api import async_playwright

    with tempfile.TemporaryDirectory() as tmp:
        yy, xx = np.mgrid[0:200, 0:260]
        arr = np.stack([(xx % 50 < 25) * 200 + 30, (yy % 40 < 20) * 180 + 40, (xx + yy) % 255], -1)
        photo = str(Path(tmp) / "photo.jpg")
        Image.fromarray(arr.astype(np.uint8)).save(photo, quality=92)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            cold = await measure(browser, url, pid, 1, photo)
            rows = [("cold (first ever)", 1, cold)]
            _report(rows)
            for n in sizes:
                rows.append((f"N={n}", n, await measure(browser, url, pid, n, photo)))
                _report(rows)  # after every size, so a later failure keeps what was measured
            await browser.close()


def _report(rows) -> None:
    names = [name for name, _, _ in STEPS]
    print("server CPU-seconds per interaction (the server process only, browsers excluded)")
    print(f"{'':<18}" + "".join(f"{n:>10}" for n in names) + f"{'RSS/sess':>11}{'kept/sess':>11}")
    for label, _, r in rows:
        print(
            f"{label:<18}"
            + "".join(f"{r[n]:>10.3f}" for n in names)
            + f"{r['rss_per_session']:>9.1f}MB{r['rss_kept_per_session']:>9.1f}MB"
        )
    print("wall seconds for the whole class to finish each interaction (browsers included):")
    for label, _, r in rows:
        print(f"{label:<18}" + "".join(f"{r[n + '_wall']:>10.1f}" for n in names))
    missed = {
        label: {n: r[n + "_missed"] for n in names if r[n + "_missed"]} for label, _, r in rows
    }
    if any(missed.values()):
        print("browsers that saw no rerun in time (not counted above):", missed)
    warm = rows[-1][2]
    cores = os.cpu_count() or 1
    print(
        f"capacity on this {cores}-core box (from the largest N): "
        f"{cores / max(warm['slider'], 1e-3):.0f} slider moves/s, "
        f"{cores / max(warm['gradcam'], 1e-3):.1f} Grad-CAM pages/s, "
        f"{cores / max(warm['upload'], 1e-3):.1f} Activations uploads/s",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 5, 20])
    ap.add_argument("--url", help="an already running server (give its --pid too)")
    ap.add_argument("--pid", type=int, help="the running server's process id")
    args = ap.parse_args()
    proc = None
    url, pid = args.url, args.pid
    if url is None:
        proc, url = start_server()
        pid = proc.pid
    elif pid is None:
        raise SystemExit("--url needs --pid: the server's CPU is read from /proc/PID/stat")
    try:
        asyncio.run(run(args.sizes, url, pid))
    finally:
        if proc is not None:
            proc.terminate()


if __name__ == "__main__":
    main()
