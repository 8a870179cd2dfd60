"""Projector mode makes every page bigger and cuts nothing (issue 20).

Each page is opened once at 1440×1000, measured, switched to projector mode (the same browser
session, so the only difference is the switch) and measured again: the title's text is larger
and still the largest text on the page, the main picture or chart is at least as wide, and no
select box, button or metric has a label wider than its box. Screenshots of both states go to
test-output/screenshots/projector-*.png.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import ROOT, after_rerun, screenshot, wait_idle

pytestmark = pytest.mark.browser

# Every lesson (the router lists a page only when its file exists); "" is Home.
PAGES = sorted("" if p.stem == "home" else p.stem for p in (ROOT / "pages").glob("*.py"))

# Pictures and charts are drawn after the script run ends (plotly lays out, images load): a
# page is measured once every one of them has a size and the sizes stopped changing.
_DRAWN = """() => {
  const main = document.querySelector('[data-testid=stMain]');
  const charts = [...main.querySelectorAll('[data-testid=stPlotlyChart]')];
  const imgs = [...main.querySelectorAll('[data-testid=stImage] img')];
  if (charts.some(c => !c.querySelector('.main-svg'))) return null;
  if (imgs.some(i => !i.complete || !i.naturalWidth)) return null;
  return JSON.stringify([...charts, ...imgs].map(e => Math.round(e.getBoundingClientRect().width)));
}"""

# What the acceptance compares, measured in the page itself.
_MEASURE = """() => {
  const main = document.querySelector('[data-testid=stMain]');
  const size = e => parseFloat(getComputedStyle(e).fontSize);
  const ownText = e => [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
  // On screen, or reached by scrolling; not in a closed expander or a hidden tab.
  const shown = e => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && e.checkVisibility({contentVisibilityAuto: true});
  };
  const h1 = main.querySelector('h1');
  // The title's own text (Streamlit puts it in a span inside the h1).
  const titleText = h1 && [h1, ...h1.querySelectorAll('*')].find(e => ownText(e) && shown(e));
  let other = 0, otherText = '';
  for (const e of main.querySelectorAll('*')) {
    if ((h1 && h1.contains(e)) || !ownText(e) || !shown(e)) continue;
    const s = size(e);  // SVG text (plotly titles, ticks, annotations) included
    if (s > other) { other = s; otherText = e.textContent.trim().slice(0, 60); }
  }
  const visuals = [...main.querySelectorAll(
    '[data-testid=stImage] img, [data-testid=stPlotlyChart] .js-plotly-plot, canvas'
  )].filter(shown).map(e => Math.round(e.getBoundingClientRect().width));
  // A label is cut when any box inside the widget is narrower than what it holds.
  const cut = [];
  for (const w of document.querySelectorAll(
    '[data-testid=stSelectbox], [data-testid=stMultiSelect], [data-testid^=stBaseButton], ' +
    '[data-testid=stMetricValue]'
  )) {
    if (!shown(w)) continue;
    for (const e of [w, ...w.querySelectorAll('*')]) {
      if (e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1) {
        const label = (e.value || w.innerText || '').trim().slice(0, 60);
        cut.push(`${w.dataset.testid} "${label}": ${e.scrollWidth} px in ${e.clientWidth} px`);
        break;
      }
    }
  }
  return {
    title: titleText ? size(titleText) : null,
    other, otherText, visuals, cut,
  };
}"""


def _whole_page(page, name: str) -> None:
    """A screenshot of the whole page, not only the first screen: Streamlit scrolls inside its
    own container, so the window is made as tall as the page for the picture (same width)."""
    tall = page.evaluate(
        "() => document.querySelector('[data-testid=stMainBlockContainer]').scrollHeight"
    )
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": min(max(tall, size["height"]), 8000)})
    page.wait_for_timeout(800)
    screenshot(page, name)
    page.set_viewport_size(size)
    page.wait_for_timeout(300)


def _measure(page) -> dict:
    wait_idle(page)
    last = None
    for _ in range(120):  # sizes equal twice in a row, 0.5 s apart (at most a minute)
        now = page.evaluate(_DRAWN)
        if now is not None and now == last:
            break
        last = now
        page.wait_for_timeout(500)
    return page.evaluate(_MEASURE)


@pytest.mark.parametrize("path", PAGES, ids=[p or "home" for p in PAGES])
def test_projector_mode_makes_the_page_bigger(open_page, path):
    page, watch = open_page(path)
    off = _measure(page)
    name = path or "home"
    _whole_page(page, f"projector-{name}-off")
    switch = page.locator(".st-key-app-projector label").first
    after_rerun(page, switch.click)
    on = _measure(page)
    _whole_page(page, f"projector-{name}")

    assert off["title"] and on["title"], f"{name}: no title found"
    assert on["title"] > off["title"], f"{name}: title {off['title']} px -> {on['title']} px"
    assert on["title"] > on["other"], (
        f"{name}: the title ({on['title']} px) is not the largest text: "
        f"{on['otherText']!r} is {on['other']} px"
    )
    if off["visuals"]:
        assert on["visuals"], f"{name}: the pictures are gone in projector mode"
        # The main picture (the first one on the page) and the widest one keep their width.
        assert on["visuals"][0] >= off["visuals"][0], (name, off["visuals"], on["visuals"])
        assert max(on["visuals"]) >= max(off["visuals"]), (name, off["visuals"], on["visuals"])
    assert not on["cut"], f"{name}: cut labels in projector mode:\n" + "\n".join(on["cut"])
    watch.check()
