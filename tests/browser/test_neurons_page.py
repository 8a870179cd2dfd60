"""The Neurons page in a real browser: a neuron opened by its link; the map's hover and click."""

from __future__ import annotations

import re
import urllib.parse

import pytest

from tests.browser.conftest import after_rerun, screenshot

pytestmark = pytest.mark.browser


def test_neuron_opens_by_link(open_page):
    page, watch = open_page("neurons?model=shapes&layer=conv3&channel=5")
    page.locator("[data-testid=stImage] img").first.wait_for(timeout=240_000)
    screenshot(page, "neurons")
    # The link chose the layer (conv3 of shapes sees 18×18 pixels) and the channel.
    assert page.get_by_text("Receptive field 18×18 pixels").count()
    channel = page.locator(".st-key-neurons-channel input").input_value()
    assert channel == "5"
    assert page.get_by_text("Top 9 of 2,000 pictures").count()
    assert page.get_by_text("Fires on").count()
    # Top 9 and lowest 9 pictures, the patches and the gradient-ascent picture are all there.
    assert page.locator("[data-testid=stImage] img").count() >= 9 + 9 + 9
    assert "channel=5" in page.url and "layer=conv3" in page.url
    screenshot(page, "neurons")
    watch.check()


def _map_point(page, frame):
    """The centre of one point of the first class's trace, in page coordinates."""
    point = frame.locator(".scatterlayer .trace").first.locator(".points path").nth(3)
    point.wait_for(state="attached", timeout=60_000)
    box = point.bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def test_map_hover_shows_the_picture_and_click_opens_gradcam(open_page):
    page, watch = open_page("neurons?model=shapes")
    page.get_by_role("tab", name="Feature map").click()
    toggle = page.get_by_text("Draw the map of 2,000 pictures")
    if toggle.count():  # not yet computed on this server: switch it on (t-SNE, ~a minute)
        after_rerun(page, toggle.click, timeout_ms=400_000)
    frame = page.frame_locator("iframe[title*=cnnviz_mapview]")
    frame.locator(".scatterlayer .points path").first.wait_for(state="attached", timeout=60_000)
    page.locator("iframe[title*=cnnviz_mapview]").scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    x, y = _map_point(page, frame)
    # Hover: our tooltip appears with the point's caption and its tile of the sprite sheet.
    page.mouse.move(x - 30, y - 30)
    page.mouse.move(x, y)
    tip = frame.locator("[data-testid=mapview-tip]")
    tip.wait_for(state="visible", timeout=20_000)
    # Caption and index read in one go: on a loaded machine plotly may fire a second hover
    # (a neighbouring point) between two separate reads.
    read = "el => [el.dataset.index, el.querySelector('[data-testid=mapview-tiptext]').textContent]"
    shown, text = tip.evaluate(read)
    for _ in range(10):  # until the last hover event (the point under the cursor) has landed
        page.wait_for_timeout(400)
        again = tuple(tip.evaluate(read))
        if again == (shown, text):
            break
        shown, text = again
    match = re.match(r"#(\d+) · a (\w+) · the network says ", text)
    assert match, text
    index = int(match.group(1))
    assert shown == str(index)
    thumb = frame.locator("[data-testid=mapview-thumb]")
    sheet_url = thumb.evaluate("el => getComputedStyle(el).backgroundImage")
    assert "sheet-" in sheet_url and ".jpg" in sheet_url, sheet_url
    src = thumb.evaluate("el => new URL(el.style.backgroundImage.slice(5, -2), location.href).href")
    reply = page.request.get(src)
    assert reply.status == 200 and reply.headers["content-type"].startswith("image/jpeg")
    assert thumb.bounding_box()["width"] == 96  # the 48-px tile, enlarged twice
    screenshot(page, "neurons-map-hover")
    # Leaving the point hides it.
    page.mouse.move(x, y - 400)
    tip.wait_for(state="hidden", timeout=10_000)
    # Click: the picture opens on the Grad-CAM page in a new tab, and shows beside the map.
    page.mouse.move(x, y)
    with page.context.expect_page(timeout=30_000) as opened:
        after_rerun(page, lambda: page.mouse.click(x, y))
    gradcam = opened.value
    gradcam.wait_for_url(re.compile(r"/gradcam\?"), wait_until="commit", timeout=30_000)
    # The Grad-CAM page may already have written its own settings back into the address
    # (adding source=, quoting the colons): compare what the link says, not its spelling.
    opened_url = urllib.parse.urlsplit(gradcam.url)
    query = urllib.parse.parse_qs(opened_url.query)
    assert opened_url.path.endswith("/gradcam")
    assert query["model"] == ["shapes"] and query["sample"] == [f"dataset:shapes:{index}"]
    gradcam.close()
    link = page.get_by_role("link", name="Open it on the Grad-CAM page")
    assert link.get_attribute("href").endswith(
        f"gradcam?model=shapes&sample=dataset:shapes:{index}"
    )
    assert page.get_by_text(f"#{index} · a {match.group(2)}").count()
    screenshot(page, "neurons-map-click")
    watch.check()
