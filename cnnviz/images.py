"""Safe image loading, sample images, resizing and overlays.

Uploaded bytes are hostile until proven otherwise: `load_image` sniffs the format from the
content (never the filename), refuses decompression bombs, and always returns a plain
HxWx3 uint8 RGB array or raises `ImageError` with a message a student can act on.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageOps

__all__ = [
    "ImageError",
    "MAX_PIXELS",
    "MAX_ASPECT",
    "DISPLAY_MAX_SIDE",
    "load_image",
    "sample_names",
    "sample_image",
    "to_gray",
    "to_float",
    "downscale_for_display",
    "resize",
    "normalize",
    "overlay",
    "colorize",
    "colormap_lut",
    "to_png_bytes",
]

#: Largest image we decode (about 40 megapixels: a big phone photo fits, a bomb does not).
MAX_PIXELS = 40_000_000
#: Widest aspect ratio we decode (long side : short side). A 50:1 image shown at 1024 pixels
#: is already a 20-pixel strip, and a 77 KB 1×40,000,000 PNG is all decoder work and no picture.
MAX_ASPECT = 50
#: Thin strips up to this long are harmless (a 1×8192 RGB line is 24 KB) and stay accepted.
STRIP_MAX_SIDE = 8192
#: Longest side we compute on in the interactive pages; larger images are downscaled with a note.
DISPLAY_MAX_SIDE = 1024
_ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")


class ImageError(ValueError):
    """The bytes are not an image we can safely use; the message says why."""


def load_image(data: bytes) -> np.ndarray:
    """Decode untrusted image bytes into an RGB array.

    Accepts PNG, JPEG, WebP, BMP and GIF only, sniffed from the content. Applies the EXIF
    orientation, composites transparency onto white, rescales 16-bit data to 8 bits and keeps
    the first frame of an animation.

    Args:
        data: the raw file content.

    Returns:
        (H, W, 3) uint8 array.

    Raises:
        ImageError: empty, unknown, truncated, oversized or otherwise unreadable input.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ImageError(f"Expected the image file's bytes. Received {type(data).__name__}.")
    data = bytes(data)
    if not data:
        raise ImageError("The file is empty. Expected a PNG, JPEG, WebP, BMP or GIF image.")
    try:
        with warnings.catch_warnings():
            # Pillow warns above MAX_IMAGE_PIXELS and raises above twice that; make both errors.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=_ALLOWED_FORMATS)
            w, h = img.size
            if w < 1 or h < 1:
                raise ImageError(f"The image has no pixels ({w}×{h}).")
            if w * h > MAX_PIXELS:
                raise ImageError(
                    f"The image is too large: {w}×{h} = {w * h:,} pixels. "
                    f"Expected at most {MAX_PIXELS:,} pixels; please resize it first."
                )
            if max(w, h) > STRIP_MAX_SIDE and max(w, h) > MAX_ASPECT * min(w, h):
                raise ImageError(
                    f"The image is {w}×{h}, a {max(w, h) / min(w, h):,.0f}:1 strip. Expected an "
                    f"aspect ratio of at most {MAX_ASPECT}:1; please crop it first."
                )
            img.seek(0)  # first frame of an animated GIF/WebP
            img.load()
            ImageOps.exif_transpose(img, in_place=True)  # in place: no second full-size copy
            return _to_rgb_array(img)
    except ImageError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as err:
        raise ImageError(f"The image is too large to open safely ({err}).") from err
    except Image.UnidentifiedImageError as err:
        raise ImageError(
            "This file is not an image we can read. Expected PNG, JPEG, WebP, BMP or GIF "
            "(other formats such as TIFF, EPS, SVG or HEIC are refused)."
        ) from err
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError, IndexError) as err:
        raise ImageError(
            f"The image file is damaged or truncated and cannot be decoded ({err})."
        ) from err
    except Exception as err:  # noqa: BLE001 - a hostile file must never crash a page
        raise ImageError(f"The image could not be decoded ({type(err).__name__}).") from err


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    """Convert any Pillow mode to (H, W, 3) uint8 RGB, never holding a float64 copy.

    Peak memory is Pillow's own buffer plus the uint8 result and one block of rows: a 6324²
    16-bit PNG (77 KB on disk) used to pass through three full-size float64 arrays (+0.9 GB),
    and an RGBA one through four full-size Pillow copies.
    """
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16-bit or float data: rescale its real range to 0..255 instead of clipping at 255.
        gray = _rescale_to_uint8(np.asarray(img))
        return np.repeat(gray[..., None], 3, axis=2)
    alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        mode == "P" and "transparency" in img.info
    )
    w, h = img.size
    out = np.empty((h, w, 3), dtype=np.uint8)
    rows = max(1, _BLOCK_VALUES // w)
    for r in range(0, h, rows):
        # One block of rows at a time: converting a crop never copies the whole image.
        block = img.crop((0, r, w, min(h, r + rows)))
        if alpha:
            rgba = np.asarray(block.convert("RGBA"), dtype=np.uint16)
            a = rgba[..., 3:]
            # Composite onto white: c·α + 255·(1 − α), rounded, in integers.
            out[r : r + rows] = (rgba[..., :3] * a + 255 * (255 - a) + 127) // 255
        else:
            out[r : r + rows] = np.asarray(block if block.mode == "RGB" else block.convert("RGB"))
    return out


# Rows per block when rescaling wide-range data: float64 scratch stays near 8 MB.
_BLOCK_VALUES = 1 << 20


def _rescale_to_uint8(arr: np.ndarray) -> np.ndarray:
    """Min-max scale any real array to uint8; NaN and ±inf count as 0 (never a float64 copy).

    16-bit data goes through a 65,536-entry lookup table; wider types are scaled a block of
    rows at a time.
    """
    arr = np.asarray(arr)
    if arr.dtype.kind == "u" and arr.dtype.itemsize <= 2:
        lo, hi = int(arr.min()), int(arr.max())
        if hi <= lo:
            return np.zeros(arr.shape, dtype=np.uint8)
        levels = np.arange(2 ** (8 * arr.dtype.itemsize), dtype=np.float64)
        lut = np.round(np.clip((levels - lo) / (hi - lo), 0.0, 1.0) * 255.0).astype(np.uint8)
        return lut[arr]
    rows = max(1, _BLOCK_VALUES // max(1, arr[:1].size))
    blocks = [slice(r, r + rows) for r in range(0, arr.shape[0], rows)]

    def finite(block: np.ndarray) -> np.ndarray:
        return np.nan_to_num(block.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)

    lo = min(float(finite(arr[b]).min()) for b in blocks)
    hi = max(float(finite(arr[b]).max()) for b in blocks)
    out = np.zeros(arr.shape, dtype=np.uint8)
    if hi <= lo:
        return out
    for b in blocks:
        # Halved before subtracting, so that a ±1.8e308 range cannot overflow to inf.
        t = (finite(arr[b]) / 2 - lo / 2) / (hi / 2 - lo / 2)
        out[b] = np.round(np.clip(t, 0.0, 1.0) * 255.0)
    return out


# --------------------------------------------------------------------------------------------
# Sample images: scikit-image ships these, so they work offline.
# --------------------------------------------------------------------------------------------


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def get() -> np.ndarray:
        from skimage import data  # imported lazily: skimage.data is slow to import

        return getattr(data, name)()

    return get


_SAMPLES: dict[str, tuple[Callable[[], np.ndarray], str]] = {
    "astronaut": (_skimage("astronaut"), "Astronaut Eileen Collins (RGB portrait)"),
    "camera": (_skimage("camera"), "Cameraman (the seed's 512×512 grayscale image)"),
    "chelsea": (_skimage("chelsea"), "Chelsea the cat"),
    "coffee": (_skimage("coffee"), "A cup of coffee"),
    "coins": (_skimage("coins"), "Greek coins on a dark background"),
    "horse": (_skimage("horse"), "Horse silhouette (binary)"),
    "rocket": (_skimage("rocket"), "A rocket on its launch pad"),
    "brick": (_skimage("brick"), "Brick wall texture"),
    "grass": (_skimage("grass"), "Grass texture"),
    "page": (_skimage("page"), "A page of printed text"),
    "checkerboard": (_skimage("checkerboard"), "Checkerboard (sharp edges)"),
    "text": (_skimage("text"), "Text on a textured background"),
}


def sample_names() -> list[str]:
    """Names of the built-in sample images (all ship with scikit-image, no download)."""
    return list(_SAMPLES)


def sample_description(name: str) -> str:
    """A one-line description of a sample image."""
    return _SAMPLES[name][1]


def sample_image(name: str) -> np.ndarray:
    """A sample image as (H, W, 3) uint8 RGB.

    Raises:
        ImageError: unknown name.
    """
    if name not in _SAMPLES:
        raise ImageError(f"Unknown sample image {name!r}. Expected one of {', '.join(_SAMPLES)}.")
    arr = np.asarray(_SAMPLES[name][0]())
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.dtype != np.uint8:
        arr = _rescale_to_uint8(arr)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return np.ascontiguousarray(arr[..., :3])


# --------------------------------------------------------------------------------------------
# Conversions
# --------------------------------------------------------------------------------------------


def to_gray(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) or (H, W) -> (H, W) float32 luminance in the input's range (ITU-R 601-2)."""
    img = np.asarray(img)
    if img.ndim == 2:
        return img.astype(np.float32)
    rgb = img[..., :3].astype(np.float32)
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def to_float(img: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [0, 1]; float input is returned as float32 unchanged."""
    img = np.asarray(img)
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    return img.astype(np.float32)


def resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (H, W[, C]) to size=(height, width) with Pillow's antialiased bicubic filter.

    uint8 stays uint8; float input is resized per channel in float32.
    """
    h, w = int(size[0]), int(size[1])
    if h < 1 or w < 1:
        raise ImageError(f"Expected a positive target size. Received {h}×{w}.")
    img = np.asarray(img)
    if img.shape[0] == h and img.shape[1] == w:
        return img.copy()
    if img.dtype == np.uint8:
        pil = Image.fromarray(img)
        return np.asarray(pil.resize((w, h), Image.Resampling.BICUBIC))
    chans = img[..., None] if img.ndim == 2 else img
    out = np.stack(
        [
            np.asarray(
                Image.fromarray(chans[..., c].astype(np.float32)).resize(
                    (w, h), Image.Resampling.BICUBIC
                )
            )
            for c in range(chans.shape[-1])
        ],
        axis=-1,
    )
    return out[..., 0] if img.ndim == 2 else out


def downscale_for_display(
    img: np.ndarray, max_side: int = DISPLAY_MAX_SIDE
) -> tuple[np.ndarray, str | None]:
    """Shrink an image whose longest side exceeds `max_side`.

    Returns:
        (image, note): the note says what was done, or is None when nothing was.
    """
    h, w = img.shape[:2]
    if max(h, w) <= max_side:
        return img, None
    scale = max_side / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    return resize(img, (nh, nw)), f"Large image {w}×{h} was downscaled to {nw}×{nh} for speed."


def normalize(x: np.ndarray) -> np.ndarray:
    """Min-max scale to [0, 1] as float32; a constant array maps to zeros (never NaN)."""
    x = np.nan_to_num(np.asarray(x, dtype=np.float32))
    lo, hi = float(x.min()) if x.size else 0.0, float(x.max()) if x.size else 0.0
    if hi - lo <= 1e-12:
        return np.zeros_like(x, dtype=np.float32)
    return (x - lo) / (hi - lo)


def overlay(
    image: np.ndarray, heat: np.ndarray, *, alpha: float = 0.45, cmap: str = "viridis"
) -> np.ndarray:
    """Blend a [0, 1] heat map (h, w) over an RGB image, resizing the map to the image.

    Returns:
        (H, W, 3) uint8.
    """
    rgb = np.asarray(image)
    if rgb.ndim == 3 and rgb.shape[2] == 1:
        rgb = rgb[..., 0]
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    rgb = to_float(rgb)
    if rgb.max() > 1.0:
        rgb = normalize(rgb)
    heat = np.clip(np.nan_to_num(np.asarray(heat, dtype=np.float32)), 0.0, 1.0)
    if heat.shape != rgb.shape[:2]:
        heat = np.clip(resize(heat, rgb.shape[:2]), 0.0, 1.0)
    colored = colormap_lut(cmap)[np.round(heat * 255).astype(np.int64)]
    out = (1 - alpha) * rgb + alpha * colored
    return np.clip(np.round(out * 255), 0, 255).astype(np.uint8)


def colormap_lut(name: str = "viridis") -> np.ndarray:
    """A (256, 3) float32 lookup table in [0, 1] for a plotly colour scale name.

    We reuse plotly's colour scales (already a dependency) rather than adding matplotlib.
    """
    from plotly.colors import get_colorscale, unlabel_rgb  # noqa: PLC0415 - slow import

    scale = get_colorscale(name)
    pos = np.array([p for p, _ in scale], dtype=np.float64)
    cols = []
    for _, c in scale:
        if c.startswith("#"):
            c = "rgb" + str(tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)))
        cols.append(unlabel_rgb(c))
    cols = np.array(cols, dtype=np.float64) / 255.0
    t = np.linspace(0, 1, 256)
    return np.stack([np.interp(t, pos, cols[:, k]) for k in range(3)], axis=1).astype(np.float32)


def colorize(
    x: np.ndarray, *, cmap: str = "viridis", vmin: float | None = None, vmax: float | None = None
) -> np.ndarray:
    """Map a 2-D array through a colour scale to (H, W, 3) uint8.

    The limits default to the range of the finite values; a non-finite limit is treated as
    not given. Values beyond the limits saturate, so +inf takes the top colour and −inf the
    bottom one; NaN takes the bottom colour. Constant input gives the bottom colour, or the
    middle one when both limits are given and equal (values beyond them still saturate).
    Never raises or warns on any float input.
    """
    x = np.asarray(x, dtype=np.float64)
    finite = x[np.isfinite(x)]
    given_lo = vmin is not None and np.isfinite(vmin)
    given_hi = vmax is not None and np.isfinite(vmax)
    lo = float(vmin) if given_lo else (float(finite.min()) if finite.size else 0.0)
    hi = float(vmax) if given_hi else (float(finite.max()) if finite.size else 0.0)
    # Halve before subtracting: hi − lo of limits like ±1e308 would overflow to inf.
    half_span = hi / 2 - lo / 2
    if half_span <= 5e-13:
        t = np.full(x.shape, 0.5 if given_lo and given_hi else 0.0)
        t[x > hi], t[x < lo] = 1.0, 0.0  # no range to scale over: only saturation is left
    else:
        with np.errstate(invalid="ignore"):
            t = (np.clip(x, lo, hi) / 2 - lo / 2) / half_span
        t = np.clip(np.nan_to_num(t, nan=0.0), 0.0, 1.0)
    rgb = colormap_lut(cmap)[np.round(t * 255).astype(np.int64)]
    return np.round(rgb * 255).astype(np.uint8)


def to_png_bytes(img: np.ndarray) -> bytes:
    """Encode (H, W), (H, W, 1) or (H, W, 3) to PNG; float data is min-max scaled to 0..255."""
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.dtype != np.uint8:
        arr = np.round(normalize(arr) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()
