"""The Neurons page in a real browser: a neuron opened by its link."""

from __future__ import annotations

import pytest

from tests.browser.conftest import screenshot

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
