"""The shared "map grid + PNG download" widget: the figure and the PNG show the same tiles."""

from __future__ import annotations

import json

import numpy as np
from streamlit.testing.v1 import AppTest

from cnnviz import grids


def _app() -> None:
    import numpy as np

    from cnnviz.ui.mapgrid import map_grid

    maps = np.arange(12 * 5 * 4, dtype=np.float64).reshape(12, 5, 4)
    used = map_grid(
        maps,
        [f"#{i}" for i in range(12)],
        cols=8,
        choose_cols=True,
        key="t.grid",
        download_key="t.dl",
        file_name="t.png",
    )
    map_grid(maps, cols=8, tiles=used, key="t.under", download_key="t.dl2", file_name="u.png")


MAPS = np.arange(12 * 5 * 4, dtype=np.float64).reshape(12, 5, 4)


def _layout(at: AppTest, key: str) -> dict:
    chart = next(c for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{key}"))
    return json.loads(chart.proto.spec)["layout"]


def _columns(layout: dict) -> int:
    """Distinct x-axis domains: the number of tiles per row."""
    return len({tuple(v["domain"]) for k, v in layout.items() if k.startswith("xaxis")})


def test_default_tiles_and_a_teachers_choice_of_fewer_larger_tiles():
    at = AppTest.from_function(_app, default_timeout=60).run()
    assert not at.exception
    assert at.select_slider(key="t.grid.cols").value == 8
    assert _columns(_layout(at, "t.grid")) == 8
    height_8 = _layout(at, "t.grid")["height"]
    at.select_slider(key="t.grid.cols").set_value(3).run()
    assert not at.exception
    layout = _layout(at, "t.grid")
    assert _columns(layout) == 3
    # 12 maps in 4 rows instead of 2, and each tile larger: the figure more than twice as tall.
    assert layout["height"] > 2 * height_8
    # The grid under it follows the same choice, so its tiles line up.
    assert _columns(_layout(at, "t.under")) == 3


def test_png_is_the_same_tiles_the_figure_shows(monkeypatch):
    from cnnviz.ui import mapgrid

    made = {}
    real = mapgrid.download_image

    def recording(label, img, file_name, *, key):
        made[key] = img
        real(label, img, file_name, key=key)

    monkeypatch.setattr(mapgrid, "download_image", recording)
    at = AppTest.from_function(_app, default_timeout=60).run()
    at.select_slider(key="t.grid.cols").set_value(3).run()
    assert not at.exception
    # The PNG is the maps coloured as the figure colours them, 3 tiles per row like it.
    np.testing.assert_array_equal(made["t.dl"](), grids.tile_maps(MAPS, 3))
    assert made["t.dl"]().shape == (4 * 5 + 3 * 2, 3 * 4 + 2 * 2, 3)
