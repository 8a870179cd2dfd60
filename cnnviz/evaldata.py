"""Evaluation-only data: pictures drawn by code that shares nothing with `cnnviz.datasets`.

A model that only beats its own generator has learnt that generator. These generators are
used to *evaluate* the built-in models, never to train them or to choose their settings, so
they stand in for what students really draw (the MNIST habit of a held-out test set, here
also held out in how the data is made):

- `drawn_shapes`: hand-drawn shapes on paper as a student draws or photographs them: pen
  outlines and coloured-in doodles, drawn on a 192×192 sheet with scikit-image's primitives
  (a pen modelled as disks stamped along the stroke with varying pressure, where training
  uses Pillow's polygons and lines), on notebook, squared, plain, sticky-note paper, a
  whiteboard or a blackboard, photographed (a slight perspective tilt, uneven light, blur,
  noise) and shrunk to 64×64 with scikit-image's anti-aliased resize.

Every shape is defined here again, from its own description, not from the training
generator's polygons (the 8 classes and their order are the only shared thing).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage import draw, filters, transform

from cnnviz.datasets import SHAPE_CLASSES, DatasetError

__all__ = ["drawn_shapes", "drawn_scenes", "photo_crops", "PHOTO_SAMPLES"]

#: scikit-image's bundled photos that `photo_crops` cuts from (no drawings, text or silhouettes).
PHOTO_SAMPLES = ("astronaut", "chelsea", "coffee", "rocket", "brick", "grass", "camera", "coins")

_SHEET = 192  # the sheet is drawn at 3× the model's 64×64 and shrunk like a photo
_MAX_N = 20_000


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 0 <= n <= _MAX_N:
        raise DatasetError(f"Expected n to be an integer in [0, {_MAX_N}]. Received n={n!r}.")
    return int(n)


# --- outlines, each a list of strokes; a stroke is a (k, 2) array of (row, col) in [-1, 1] ---


def _ngon(k: int, rng: np.random.Generator, start: float) -> np.ndarray:
    a = start + np.linspace(0, 2 * np.pi, k + 1)
    return np.stack([-np.cos(a), np.sin(a)], axis=1)  # row up is -, first point at the top


def _outline(name: str, rng: np.random.Generator) -> tuple[list[np.ndarray], bool]:
    """Strokes of one hand-drawn `name` and whether the first stroke encloses the shape."""
    if name == "circle":
        t = np.linspace(0, 2 * np.pi, 90)
        e = rng.uniform(0.88, 1.1)
        return [np.stack([np.sin(t) * e, np.cos(t)], axis=1)], True
    if name == "square":
        return [np.array([[-1, -1], [-1, 1], [1, 1], [1, -1], [-1, -1]], float) * 0.8], True
    if name == "triangle":
        # An isosceles-ish triangle, apex up, its base and apex moved a little by the hand.
        apex = np.array([-1.0, rng.uniform(-0.15, 0.15)])
        h = rng.uniform(0.75, 0.9)
        pts = np.array(
            [apex, [h, 1.0 * rng.uniform(0.95, 1.1)], [h, -1.0 * rng.uniform(0.95, 1.1)]]
        )
        return [np.vstack([pts, pts[:1]])], True
    if name == "star":
        tips = _ngon(5, rng, 0)[:5]
        if rng.random() < 0.4:  # drawn in one stroke, tip to every other tip
            order = [0, 2, 4, 1, 3, 0]
            return [tips[order]], True
        inner = rng.uniform(0.36, 0.5) * _ngon(5, rng, np.pi / 5)[:5]
        pts = np.empty((10, 2))
        pts[0::2], pts[1::2] = tips, inner
        return [np.vstack([pts, pts[:1]])], True
    if name == "cross":
        w = rng.uniform(0.25, 0.36)
        if rng.random() < 0.3:  # two strokes
            return [np.array([[-1.0, 0.0], [1.0, 0.0]]), np.array([[0.0, -1.0], [0.0, 1.0]])], False
        q = np.array([[-1, -w], [-w, -w], [-w, -1], [w, -1], [w, -w], [1, -w],
                      [1, w], [w, w], [w, 1], [-w, 1], [-w, w], [-1, w]])  # fmt: skip
        return [np.vstack([q, q[:1]]).astype(float)], True
    if name == "hexagon":
        return [_ngon(6, rng, np.pi / 6 if rng.random() < 0.5 else 0)], True
    if name == "diamond":
        w = rng.uniform(0.52, 0.7)
        return [np.array([[-1, 0], [0, w], [1, 0], [0, -w], [-1, 0]], float)], True
    if name == "heart":
        # Two round lobes and a V to the tip, drawn in one go from the dip (x right, y up).
        r, cx, cy = rng.uniform(0.45, 0.52), 0.48, 0.3
        a = np.linspace(np.pi, -np.pi / 4, 30)
        right = np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], axis=1)
        xy = np.vstack([right, [[0.0, -1.0]], right[::-1] * [-1, 1]])
        return [np.stack([-xy[:, 1], xy[:, 0]], axis=1)], True
    raise AssertionError(name)


def _hand(stroke: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """Densify a stroke and add tremor plus a slow sway (cumulative random walk, smoothed)."""
    seg = np.hypot(*np.diff(stroke, axis=0).T)
    n = max(8, int(seg.sum() / 0.015))
    s = np.concatenate([[0], np.cumsum(seg)]) / max(seg.sum(), 1e-9)
    t = np.linspace(0, 1, n)
    dense = np.stack([np.interp(t, s, stroke[:, 0]), np.interp(t, s, stroke[:, 1])], 1)
    sway = np.cumsum(rng.normal(0, 1, (n, 2)), axis=0)
    sway = filters.gaussian(sway, sigma=(n / 12, 0), preserve_range=True)
    sway -= np.linspace(sway[0], sway[0], n)
    sway *= amount * 0.05 / (np.abs(sway).max() + 1e-9)
    tremor = rng.normal(0, amount * 0.004, (n, 2))
    return dense + sway + tremor


def _stamp(sheet: np.ndarray, path: np.ndarray, radius: np.ndarray) -> None:
    """Press a round pen along `path` (pixel (row, col)), radius per point; coverage in place."""
    h, w = sheet.shape
    # Keep a stamp every third of the pen's radius along the path (dense enough to be smooth).
    d = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(path, axis=0).T))])
    keep = np.unique(np.searchsorted(d, np.arange(0, d[-1], max(0.5, radius.min() / 3))))
    keep = np.append(keep[keep < len(path)], len(path) - 1)
    for (r, c), rad in zip(path[keep], radius[keep], strict=True):
        rr, cc = draw.disk((r, c), max(rad, 0.7), shape=(h, w))
        sheet[rr, cc] = 1.0


def drawn_shapes(n: int, *, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`n` hand-drawn shapes, as a student draws or photographs them: for evaluation only.

    Args:
        n: number of pictures (at most 20,000).
        seed: seed; the same seed gives the same arrays.

    Returns:
        images: (n, 64, 64, 3) uint8 RGB.
        labels: (n,) int64 indices into `cnnviz.datasets.SHAPE_CLASSES`, balanced.
        masks: (n, 64, 64) bool, the object (enclosed region plus ink).

    Raises:
        DatasetError: n out of range.
    """
    n = _check_n(n)
    rng = np.random.default_rng([seed, 0x5EED])
    labels = rng.permutation(np.arange(n) % len(SHAPE_CLASSES)).astype(np.int64)
    images = np.empty((n, 64, 64, 3), np.uint8)
    masks = np.empty((n, 64, 64), bool)
    for i in range(n):
        images[i], masks[i] = _one(SHAPE_CLASSES[labels[i]], rng)
    return images, labels, masks


def drawn_scenes(n: int, *, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`n` sheets with two different hand-drawn shapes each: for evaluation only.

    Drawn like `drawn_shapes` (same pens, papers and photograph), two shapes of different
    classes side by side on one sheet, each 24-44 % of the side across and at least 4 % of
    the side apart. This is the Grad-CAM paper's "cat and dog" picture as a class draws it;
    it checks that each class's map lights its own object (issue 16's pointing game).

    Args:
        n: number of pictures (at most 20,000).
        seed: seed; the same seed gives the same arrays.

    Returns:
        images: (n, 64, 64, 3) uint8 RGB.
        labels: (n, 2) int64 indices into `cnnviz.datasets.SHAPE_CLASSES`, two different
            classes per row.
        masks: (n, 2, 64, 64) bool, each object (enclosed region plus ink), in label order.

    Raises:
        DatasetError: n out of range.
    """
    n = _check_n(n)
    rng = np.random.default_rng([seed, 0x5CE7E])
    k = len(SHAPE_CLASSES)
    labels = np.empty((n, 2), np.int64)
    images = np.empty((n, 64, 64, 3), np.uint8)
    masks = np.empty((n, 2, 64, 64), bool)
    for i in range(n):
        a = int(rng.integers(k))
        labels[i] = a, (a + int(rng.integers(1, k))) % k
        images[i], masks[i] = _two(labels[i], rng)
    return images, labels, masks


class _NoRoom(Exception):
    pass


def _apart(rng: np.random.Generator, gap: float):
    """A `place` for `_draw` whose drawings' circles keep `gap` apart (rejection sampling)."""
    s = _SHEET
    placed: list[tuple[np.ndarray, float]] = []

    def place(low: float, radius: float) -> np.ndarray:
        for _ in range(200):
            c = rng.uniform(low, max(low, s - low), 2)
            if all(np.hypot(*(c - q)) >= radius + r + gap for q, r in placed):
                placed.append((c, radius))
                return c
        raise _NoRoom

    return place


def _two(pair: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    while True:
        sheet, light = _paper(rng)
        apart = _apart(rng, 0.04 * _SHEET)
        try:
            out, first = _draw(sheet, SHAPE_CLASSES[pair[0]], rng, light, (0.12, 0.22), apart)
            out, second = _draw(out, SHAPE_CLASSES[pair[1]], rng, light, (0.12, 0.22), apart)
        except _NoRoom:
            continue
        return _photograph(out, [first, second], rng)


def _paper(rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """A (S, S, 3) float sheet in 0..1 and whether it is light (dark boards get chalk)."""
    s = _SHEET
    kind = rng.choice(["notebook", "squared", "plain", "sticky", "whiteboard", "board"],
                      p=[0.25, 0.2, 0.25, 0.1, 0.1, 0.1])  # fmt: skip
    base = {
        "notebook": (0.96, 0.96, 0.93), "squared": (0.97, 0.97, 0.97), "plain": (0.93, 0.92, 0.88),
        "sticky": (0.99, 0.93, 0.55), "whiteboard": (0.98, 0.98, 1.0), "board": (0.15, 0.22, 0.18),
    }[kind]  # fmt: skip
    sheet = np.ones((s, s, 3)) * np.array(base) * rng.uniform(0.95, 1.03)
    grain = filters.gaussian(rng.normal(0, 1, (s, s)), 1.2) * rng.uniform(0.01, 0.04)
    sheet += grain[..., None]
    if kind in ("notebook", "squared"):
        gap = rng.uniform(14, 30)
        off = rng.uniform(0, gap)
        colour = np.array([0.55, 0.7, 0.9]) if rng.random() < 0.7 else np.array([0.7, 0.7, 0.7])
        for k in np.arange(off, s, gap):
            rr, cc, val = draw.line_aa(int(k), 0, int(k + rng.uniform(-3, 3)), s - 1)
            ok = (rr >= 0) & (rr < s)
            sheet[rr[ok], cc[ok]] += (colour - sheet[rr[ok], cc[ok]]) * val[ok, None] * 0.6
            if kind == "squared":
                rr, cc, val = draw.line_aa(0, int(k), s - 1, int(k))
                sheet[rr, cc] += (colour - sheet[rr, cc]) * val[:, None] * 0.6
        if kind == "notebook" and rng.random() < 0.4:
            col = int(rng.uniform(10, 40))
            sheet[:, col : col + 2] = [0.9, 0.4, 0.4]
    if kind == "whiteboard":  # faint smudges of old ink
        smudge = filters.gaussian(rng.random((s, s)) < 0.002, 6) * 30
        sheet -= np.clip(smudge, 0, 0.15)[..., None]
    return np.clip(sheet, 0, 1), kind != "board"


def _one(name: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    s = _SHEET
    sheet, light = _paper(rng)

    def anywhere(low: float, radius: float) -> np.ndarray:
        return rng.uniform(low, max(low, s - low), 2)  # equal when the object fills the sheet

    # A size: half-width 15-42 % of the sheet.
    out, obj = _draw(sheet, name, rng, light, (0.15, 0.42), anywhere)
    image, masks = _photograph(out, [obj], rng)
    return image, masks[0]


def _draw(sheet, name, rng, light, half_range, place):
    """Draw one `name` on `sheet` (a copy is returned) and its (S, S) coverage: enclosed
    region plus ink. `place(low, radius)` picks the centre, given the least distance from the
    edges and the radius of the circle around the drawing."""
    s = _SHEET
    strokes, encloses = _outline(name, rng)
    # Place: a size, an angle (mostly upright), a centre.
    half = rng.uniform(*half_range) * s
    angle = rng.normal(0, 0.2) if rng.random() < 0.65 else rng.uniform(-np.pi, np.pi)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    amount = rng.uniform(0.3, 1.0)
    paths = [_hand(st, rng, amount) @ rot.T for st in strokes]
    # Imperfect closure: cut off or run past the start of a closed first stroke.
    if encloses and rng.random() < 0.6:
        p = paths[0]
        k = int(len(p) * rng.uniform(-0.05, 0.06))
        paths[0] = (
            p[: len(p) + k] if k < 0 else np.vstack([p, p[1 : k + 1] + rng.normal(0, 0.02, 2)])
        )
    allp = np.vstack(paths)
    ext = np.abs(allp).max()
    pen_r = rng.uniform(1.0, 6.5)  # at 192 px: 2-13 px wide, about 0.7-4 px at 64
    margin = pen_r + 4
    scale = min(half, (s / 2 - margin) / ext)
    low = scale * ext + margin
    centre = place(low, scale * ext + pen_r)
    px = [p * scale + centre for p in paths]
    # Style: pen outline (55 %), coloured-in doodle (25 %), outline + colouring (20 %).
    style = rng.choice(3, p=[0.55, 0.25, 0.2])
    region = np.zeros((s, s))
    if encloses:
        rr, cc = draw.polygon(px[0][:, 0], px[0][:, 1], shape=(s, s))
        region[rr, cc] = 1.0
    ink = np.zeros((s, s))
    for p in px:
        pressure = 0.75 + 0.25 * np.sin(
            np.linspace(0, rng.uniform(2, 9), len(p)) + rng.uniform(0, 6)
        )
        _stamp(ink, p, pen_r * pressure)
    if light:
        pen = [np.array([0.05, 0.05, 0.08]), np.array([0.1, 0.15, 0.55]), np.array([0.6, 0.08, 0.1]),
               np.array([0.35, 0.35, 0.37])][rng.choice(4, p=[0.45, 0.3, 0.1, 0.15])]  # fmt: skip
    else:
        pen = np.array([0.92, 0.92, 0.9])  # chalk
    out = sheet.copy()
    if style >= 1 and encloses:
        # Colouring in: back-and-forth scribbles clipped to the region, a marker or crayon.
        crayon = rng.uniform(0.1, 0.9, 3) if light else np.array([0.8, 0.8, 0.7])
        cover = np.zeros((s, s))
        step = rng.uniform(3, 7)
        phi = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:s, 0:s]
        u = yy * np.cos(phi) + xx * np.sin(phi)
        cover = (np.abs(((u % step) / step) - 0.5) < rng.uniform(0.3, 0.5)).astype(float)
        cover = np.maximum(cover, rng.uniform(0.55, 1.0)) * region
        cover = filters.gaussian(cover, 0.8)
        out += (crayon - out) * cover[..., None]
        if style == 1 and rng.random() < 0.5:
            pen = crayon * 0.7
    if style != 1 or not encloses or rng.random() < 0.6:
        out += (pen - out) * (filters.gaussian(ink, 0.7) * rng.uniform(0.8, 1.0))[..., None]
    return out, np.maximum(region, ink)


def _photograph(out, objs, rng):
    """Photograph a drawn sheet (a slight perspective tilt, uneven light, blur, noise) and
    shrink it to 64×64; the objects' coverages follow the tilt and become (k, 64, 64) masks."""
    s = _SHEET
    src = np.array([[0, 0], [s, 0], [s, s], [0, s]], float)
    dst = src + rng.uniform(-8, 8, (4, 2))
    tf = transform.ProjectiveTransform.from_estimate(src, dst)
    out = transform.warp(out, tf.inverse, mode="edge")
    objs = [transform.warp(obj, tf.inverse) for obj in objs]
    yy, xx = np.mgrid[0:s, 0:s] / s
    cx, cy = rng.uniform(-0.3, 1.3, 2)
    lightf = 1 - rng.uniform(0, 0.35) * np.hypot(xx - cx, yy - cy) / 1.5
    out = out * lightf[..., None] * rng.uniform(0.9, 1.05, 3)
    out = filters.gaussian(out, rng.uniform(0.5, 3.0), channel_axis=-1)
    out += rng.normal(0, rng.uniform(0, 0.03), out.shape)
    small = transform.resize(out, (64, 64), anti_aliasing=True)
    masks = [
        ndimage.binary_fill_holes(transform.resize(obj, (64, 64), anti_aliasing=True) >= 0.5)
        for obj in objs
    ]
    return (np.clip(small, 0, 1) * 255).round().astype(np.uint8), np.stack(masks)


def photo_crops(n: int, *, seed: int, size: int = 64, textures: float = 0.25) -> np.ndarray:
    """`n` pictures that are neither shapes nor digits: for checking `unfamiliar`.

    A fraction `textures` of them (default one in four) are textures: stripes at a random
    angle and period, checkerboards, smooth noise and white noise, in random colours; the rest
    are random crops (20-100 % of the shorter side, anywhere) of the photos in
    `PHOTO_SAMPLES`, resized to size×size.

    Returns:
        (n, size, size, 3) uint8 RGB.
    """
    from skimage import data

    n = _check_n(n)
    rng = np.random.default_rng([seed, 0xC0FFEE])
    photos = []
    for name in PHOTO_SAMPLES:
        img = getattr(data, name)()
        photos.append(np.repeat(img[..., None], 3, axis=-1) if img.ndim == 2 else img[..., :3])
    out = np.empty((n, size, size, 3), np.uint8)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        if rng.random() >= textures:
            img = photos[rng.integers(len(photos))]
            side = int(min(img.shape[:2]) * rng.uniform(0.2, 1.0))
            r = rng.integers(0, img.shape[0] - side + 1)
            c = rng.integers(0, img.shape[1] - side + 1)
            crop = img[r : r + side, c : c + side] / 255.0
            out[i] = (transform.resize(crop, (size, size), anti_aliasing=True) * 255).round()
            continue
        kind = rng.integers(4)
        phi = rng.uniform(0, np.pi)
        u = xx * np.cos(phi) + yy * np.sin(phi)
        period = rng.uniform(0.05, 0.3)
        if kind == 0:
            t = (np.sin(2 * np.pi * u / period) > 0).astype(float)
        elif kind == 1:
            v = -xx * np.sin(phi) + yy * np.cos(phi)
            t = ((np.floor(u / period) + np.floor(v / period)) % 2).astype(float)
        elif kind == 2:
            t = filters.gaussian(rng.random((size, size)), rng.uniform(1, 6))
            t = (t - t.min()) / (np.ptp(t) + 1e-9)
        else:
            t = rng.random((size, size))
        a, b = rng.random(3), rng.random(3)
        out[i] = ((a + (b - a) * t[..., None]) * 255).round()
    return out
