"""A map of pictures: a Plotly scatter whose points show their picture on hover and open on click.

Plotly's hover label can only hold text, and `st.plotly_chart` cannot run a hover handler, so
the map is a small Streamlit custom component (`mapview.html`): plotly.js draws the same figure
that `cnnviz.figures` builds, and the component adds a tooltip with the point's thumbnail, cut
from one sprite sheet of every picture (one PNG, sent once per map). A click reports the
point's index to the page (which shows the picture beside the map) and opens its link, e.g. the
Grad-CAM page with that picture.

plotly.js comes from the plotly package itself (`plotly.offline.get_plotlyjs()`), so the map
works offline. Streamlit serves a component's files from one directory and refuses anything
outside it (symlinks included), so the page and that copy of plotly.js are written once into a
directory of their own under the cache directory, named by their content.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit.components.v1 as components
from PIL import Image

from cnnviz import diskcache, grids

__all__ = ["THUMB", "thumbnail_sheet", "feature_map_view"]

_HTML = Path(__file__).with_name("mapview.html")
#: Thumbnail side in the sprite sheet (pixels); the tooltip shows it enlarged.
THUMB = 48
_MAX_SHEET_SIDE = 8192  # browsers draw images up to 8k-16k per side; 2,000 thumbs need ~2.2k
_KEEP_SHEETS = 16  # sheet files kept beside the page (the newest; one per dataset shown)


def _write_once(folder: Path, name: str, data: bytes) -> None:
    path = folder / name
    if path.exists() and path.stat().st_size == len(data):
        return
    # Write then rename: a second server starting at the same time never reads half a file.
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; another server on this machine reads it too
    os.replace(tmp, path)


def _component_dir() -> Path:
    import plotly.offline  # noqa: PLC0415 - only to read the bundled plotly.js

    page = _HTML.read_bytes()
    plotly_js = plotly.offline.get_plotlyjs().encode()
    digest = hashlib.sha256(page + plotly_js).hexdigest()[:16]
    for root in (diskcache.cache_dir(), Path(tempfile.gettempdir()) / "cnnviz"):
        folder = root / "components" / f"mapview-{digest}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _write_once(folder, "plotly.min.js", plotly_js)
            _write_once(folder, "index.html", page)
            return folder
        except OSError:
            continue  # a read-only cache directory: the temporary directory instead
    raise OSError("Could not write the feature map's page to the cache or temporary directory.")


_DIR = _component_dir()
_component = components.declare_component("cnnviz_mapview", path=str(_DIR))


def _sheet_file(data: bytes) -> str:
    """Put a sheet beside the component's page (named by its content); its relative URL."""
    name = f"sheet-{hashlib.sha256(data).hexdigest()[:20]}.jpg"
    _write_once(_DIR, name, data)
    (_DIR / name).touch()
    # Bounded: only the newest sheets stay (an uploaded zip's sheet is another file).
    sheets = sorted(_DIR.glob("sheet-*.jpg"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in sheets[_KEEP_SHEETS:]:
        old.unlink(missing_ok=True)
    return name


def thumbnail_sheet(images: np.ndarray, size: int = THUMB) -> tuple[bytes, int, int]:
    """Every picture as a `size`×`size` tile of one JPEG sprite sheet, row by row.

    Args:
        images: (N, H, W) or (N, H, W, 3) uint8.
        size: tile side; pictures smaller than it keep their own size (no blur).

    Returns:
        (JPEG bytes, tiles per row, tile side). Tile i is at row i // cols, column i % cols.
    """
    x = np.asarray(images)
    if x.ndim == 3:
        x = np.repeat(x[..., None], 3, axis=-1)
    side = int(min(size, x.shape[1], x.shape[2]))
    cols = max(1, min(len(x), _MAX_SHEET_SIDE // side, int(np.ceil(np.sqrt(len(x))))))
    # PIL's area-averaging resize (Image.reduce / BOX): thumbnails that keep thin strokes.
    tiles = np.stack(
        [np.asarray(Image.fromarray(im).resize((side, side), Image.Resampling.BOX)) for im in x]
    )
    sheet = grids.tile_images(tiles, cols, gap=0, fill=255)
    buf = io.BytesIO()
    # JPEG: 2,000 noisy 48-px shapes are 1.0 MB as JPEG (quality 85) and 6.9 MB as PNG.
    Image.fromarray(sheet).save(buf, format="JPEG", quality=85)
    return buf.getvalue(), cols, side


def feature_map_view(
    fig: go.Figure,
    sheet: tuple[bytes, int, int],
    captions: Sequence[str],
    *,
    link: str | None,
    key: str,
    height: int = 560,
    zoom: int = 2,
) -> int | None:
    """Draw `fig` with a thumbnail on hover; return the index of the last clicked picture.

    Args:
        fig: a map whose points carry their picture's index as customdata[0]
            (`cnnviz.figures.embedding_figure`); other points (the star) just show their label.
        sheet: `thumbnail_sheet(images)` of the same pictures.
        captions: one line of text per picture for the tooltip (shown as text, never HTML).
        link: a relative address with "{index}" for the clicked picture, opened in a new tab
            (e.g. "gradcam?model=shapes&sample=dataset:shapes:{index}"); None: no link.
        key: the widget key.
        height: the figure's height in pixels.
        zoom: how much the tooltip enlarges the thumbnail.
    """
    jpeg, cols, side = sheet
    value = _component(
        figure=fig.to_json(),
        sheet=_sheet_file(jpeg),
        cols=int(cols),
        thumb=int(side),
        zoom=int(zoom),
        count=len(captions),
        captions=[str(c) for c in captions],
        link=link,
        height=int(height),
        key=key,
        default=None,
    )
    if isinstance(value, dict) and isinstance(value.get("index"), int):
        index = value["index"]
        return index if 0 <= index < len(captions) else None
    return None
