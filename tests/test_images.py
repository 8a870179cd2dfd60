"""cnnviz.images: the bad-image suite, sample images and conversions.

Every hostile or odd file must give the right RGB array or an ImageError, never any other
exception. Each file is built here with Pillow or by hand.
"""

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from cnnviz import images
from cnnviz.images import ImageError, load_image


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size (a decompression bomb's calling card)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _with_orientation(orientation: int) -> bytes:
    # 4 wide × 2 high; the top-left pixel is red, everything else black.
    arr = np.zeros((2, 4, 3), np.uint8)
    arr[0, 0] = (255, 0, 0)
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _save(img, "PNG", exif=exif.tobytes())


# --------------------------------------------------------------------------------------------
# Inputs that must be refused with ImageError
# --------------------------------------------------------------------------------------------


def _truncated_jpeg() -> bytes:
    data = _save(
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)),
        "JPEG",
    )
    return data[: len(data) // 3]


def _tiff() -> bytes:
    return _save(Image.new("RGB", (8, 8), "red"), "TIFF")


def _eps() -> bytes:
    return b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nnewpath 0 0 moveto 8 8 lineto stroke\nshowpage\n"


REFUSED = {
    "empty": lambda: b"",
    "garbage": lambda: bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8)),
    "text": lambda: b"print('hello')\n" * 50,
    "truncated jpeg": _truncated_jpeg,
    "png header claiming 30000x30000": lambda: _png_claiming(30000, 30000),
    "tiff renamed .png": _tiff,
    "eps renamed .png": _eps,
    "svg": lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>',
    "png signature only": lambda: b"\x89PNG\r\n\x1a\n",
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_bad_inputs_raise_image_error(name):
    with pytest.raises(ImageError) as info:
        load_image(REFUSED[name]())
    assert str(info.value)  # a message a student can read
    assert isinstance(info.value, ValueError)


def test_pixel_cap_is_enforced_below_pillows_bomb_limit():
    # 7000 × 7000 = 49 Mpx: under Pillow's own bomb limit but over ours.
    with pytest.raises(ImageError, match="too large"):
        load_image(_png_claiming(7000, 7000))


def test_non_bytes_is_refused():
    with pytest.raises(ImageError, match="bytes"):
        load_image("not bytes")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Inputs that must decode to the right RGB array
# --------------------------------------------------------------------------------------------


def test_cmyk_jpeg_becomes_rgb():
    img = Image.new("CMYK", (6, 5), (0, 255, 255, 0))  # pure red in CMYK
    out = load_image(_save(img, "JPEG", quality=100))
    assert out.shape == (5, 6, 3) and out.dtype == np.uint8
    assert out[..., 0].mean() > 200 and out[..., 1].mean() < 60 and out[..., 2].mean() < 60


def test_16_bit_png_is_rescaled_not_clipped():
    arr = np.array([[0, 1000], [2000, 4000]], dtype=np.uint16)
    img = Image.fromarray(arr)
    assert img.mode == "I;16"
    out = load_image(_save(img, "PNG"))
    assert out.shape == (2, 2, 3)
    # Clipping at 255 would make three pixels white; rescaling keeps their order and spread.
    np.testing.assert_array_equal(out[..., 0], np.round(arr / 4000 * 255).astype(np.uint8))


def test_palette_with_transparency_composites_on_white():
    img = Image.new("P", (4, 4), 0)
    img.putpalette([0, 0, 0] + [255, 0, 0] * 255)
    img.putpixel((1, 1), 1)
    data = _save(img, "PNG", transparency=0)
    out = load_image(data)
    assert tuple(out[0, 0]) == (255, 255, 255)  # transparent black -> white
    assert tuple(out[1, 1]) == (255, 0, 0)


def test_la_composites_alpha_on_white():
    img = Image.new("LA", (3, 3), (0, 0))  # black, fully transparent
    img.putpixel((0, 0), (0, 255))  # black, opaque
    out = load_image(_save(img, "PNG"))
    assert tuple(out[0, 0]) == (0, 0, 0)
    assert tuple(out[2, 2]) == (255, 255, 255)


def test_rgba_half_transparent_is_blended():
    img = Image.new("RGBA", (2, 2), (0, 0, 0, 128))
    out = load_image(_save(img, "PNG"))
    assert 120 <= int(out[0, 0, 0]) <= 135


def test_one_bit_image():
    img = Image.new("1", (5, 3), 0)
    img.putpixel((4, 2), 1)
    out = load_image(_save(img, "PNG"))
    assert out.shape == (3, 5, 3)
    assert tuple(out[2, 4]) == (255, 255, 255) and tuple(out[0, 0]) == (0, 0, 0)


def test_exif_orientation_6_rotates_clockwise():
    out = load_image(_with_orientation(6))
    assert out.shape == (4, 2, 3)  # width and height swapped
    assert tuple(out[0, 1]) == (255, 0, 0)  # top-left went to top-right


def test_exif_orientation_8_rotates_counter_clockwise():
    out = load_image(_with_orientation(8))
    assert out.shape == (4, 2, 3)
    assert tuple(out[3, 0]) == (255, 0, 0)  # top-left went to bottom-left


def test_animated_gif_takes_first_frame():
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    out = load_image(buf.getvalue())
    assert out.shape == (4, 4, 3)
    assert out[..., 0].min() > 200 and out[..., 2].max() < 50


@pytest.mark.parametrize("size", [(1, 1), (1, 5000), (5000, 1)])
def test_extreme_aspect_ratios(size):
    w, h = size
    out = load_image(_save(Image.new("RGB", (w, h), (10, 20, 30)), "PNG"))
    assert out.shape == (h, w, 3)
    assert tuple(out[0, 0]) == (10, 20, 30)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "GIF"])
def test_every_accepted_format_round_trips(fmt):
    arr = np.zeros((8, 10, 3), np.uint8)
    arr[:, 5:] = 255
    out = load_image(
        _save(Image.fromarray(arr), fmt, **({"quality": 100} if fmt in ("JPEG", "WEBP") else {}))
    )
    assert out.shape == (8, 10, 3) and out.dtype == np.uint8
    assert abs(int(out[4, 8, 0]) - 255) < 40 and int(out[4, 1, 0]) < 40


# --------------------------------------------------------------------------------------------
# Samples and helpers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", images.sample_names())
def test_sample_images_are_rgb_uint8(name):
    img = images.sample_image(name)
    assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8
    assert img.max() > img.min()


def test_camera_is_the_seeds_512_image():
    assert images.sample_image("camera").shape == (512, 512, 3)


def test_unknown_sample():
    with pytest.raises(ImageError, match="astronaut"):
        images.sample_image("nope")


def test_downscale_for_display_notes_what_it_did():
    big = np.zeros((3000, 1500, 3), np.uint8)
    small, note = images.downscale_for_display(big, 1000)
    assert small.shape == (1000, 500, 3) and "downscaled" in note
    same, none = images.downscale_for_display(np.zeros((10, 10, 3), np.uint8), 1000)
    assert same.shape == (10, 10, 3) and none is None


def test_normalize_constant_is_zero_not_nan():
    out = images.normalize(np.full((4, 4), 7.0))
    assert np.all(out == 0) and not np.isnan(out).any()


def test_overlay_shapes_and_range():
    img = np.full((20, 30, 3), 100, np.uint8)
    heat = np.linspace(0, 1, 6).reshape(2, 3)
    out = images.overlay(img, heat, alpha=0.5)
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8


def test_to_gray_matches_pillow_luminance():
    rng = np.random.default_rng(3)
    arr = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    ref = np.asarray(Image.fromarray(arr).convert("L"), dtype=np.float32)
    assert np.abs(images.to_gray(arr) - ref).max() <= 1.0


def test_png_bytes_round_trip():
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    back = np.asarray(Image.open(io.BytesIO(images.to_png_bytes(arr))))
    np.testing.assert_array_equal(back, arr)


# --------------------------------------------------------------------------------------------
# Small files that decode to huge arrays (issue 21)
# --------------------------------------------------------------------------------------------

_MEASURE = r"""
import resource, struct, sys, zlib

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

def png(width, height, depth, colour, channels):
    # Built with zlib in 1 MB pieces, so making the file does not raise the peak measured below.
    co, parts, left = zlib.compressobj(9), [], height * (1 + width * channels * depth // 8)
    while left:
        n = min(left, 1 << 20)
        parts.append(co.compress(b"\0" * n))
        left -= n
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    body = b"".join(parts) + co.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")

from cnnviz import images
data = png(*[int(v) for v in sys.argv[1:5]], channels=int(sys.argv[5]))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    out = images.load_image(data)
    result = "loaded %dx%d" % out.shape[:2]
except images.ImageError as err:
    result = "refused " + str(err)
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base  # KiB on Linux
print(len(data), grown // 1024, result)
"""


@pytest.mark.parametrize(
    "spec",
    [
        # width, height, bit depth, PNG colour type, channels
        (40_000_000, 1, 8, 0, 1),  # a 1×40,000,000 grey strip (about 40 KB)
        (40_000_000, 1, 8, 2, 3),  # the same in RGB
        (6324, 6324, 16, 0, 1),  # 16-bit grey, 6324² = 40 Mpx (about 77 KB)
        (6324, 6324, 8, 6, 4),  # RGBA: used to pass through four full-size copies
    ],
    ids=["1x40M grey", "1x40M rgb", "16-bit 6324²", "rgba 6324²"],
)
def test_small_files_that_decode_to_huge_arrays_stay_bounded(spec):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    run = subprocess.run(
        [sys.executable, "-c", _MEASURE, *map(str, spec)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    size, grown_mb, result = run.stdout.strip().split(maxsplit=2)
    assert int(size) < 200_000  # the file really is small
    assert int(grown_mb) <= 600, (grown_mb, result)
    w, h = spec[:2]
    if max(w, h) > images.MAX_ASPECT * min(w, h):
        assert result.startswith("refused") and "aspect ratio of at most 50:1" in result
    else:
        assert result == f"loaded {h}x{w}"


@pytest.mark.parametrize(
    "size, accepted",
    [((10_000, 200), True), ((10_000, 199), False), ((199, 10_000), False), ((8192, 1), True)],
)
def test_aspect_ratio_cap(size, accepted):
    data = _save(Image.new("L", size, 7), "PNG")
    if accepted:
        assert load_image(data).shape == (size[1], size[0], 3)
    else:
        with pytest.raises(ImageError, match="strip.*at most 50:1"):
            load_image(data)


def test_alpha_compositing_equals_pillows():
    rng = np.random.default_rng(5)
    rgba = rng.integers(0, 256, (37, 53, 4), dtype=np.uint8)
    img = Image.fromarray(rgba, "RGBA")
    white = Image.new("RGBA", img.size, (255, 255, 255, 255))
    ref = np.asarray(Image.alpha_composite(white, img).convert("RGB")).astype(int)
    out = load_image(_save(img, "PNG")).astype(int)
    assert np.abs(out - ref).max() <= 1  # integer rounding may differ by one level


def test_blocks_of_rows_join_without_seams(monkeypatch):
    # Force one row per block: the result must equal a plain conversion of the whole image.
    monkeypatch.setattr(images, "_BLOCK_VALUES", 1)
    arr = np.random.default_rng(6).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(load_image(_save(Image.fromarray(arr), "PNG")), arr)
    la = Image.fromarray(np.random.default_rng(7).integers(0, 256, (9, 7, 2), dtype=np.uint8), "LA")
    ref = np.asarray(
        Image.alpha_composite(Image.new("RGBA", la.size, "white"), la.convert("RGBA")).convert(
            "RGB"
        )
    ).astype(int)
    assert np.abs(load_image(_save(la, "PNG")).astype(int) - ref).max() <= 1


def test_float_and_wide_integer_data_are_rescaled_in_blocks(monkeypatch):
    monkeypatch.setattr(images, "_BLOCK_VALUES", 2)
    arr = np.array([[np.nan, 1.0, 3.0], [np.inf, -1.0, 1e308]])
    finite = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)  # non-finite counts as 0
    ref = np.round((finite - finite.min()) / (finite.max() - finite.min()) * 255)
    np.testing.assert_array_equal(images._rescale_to_uint8(arr), ref.astype(np.uint8))
    big = np.array([[-(2**31), 0], [2**31 - 1, 5]], dtype=np.int32)
    ref = np.round((big.astype(float) + 2**31) / (2**32 - 1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(images._rescale_to_uint8(big), ref)


def test_16_bit_big_endian_png_uses_the_same_scale():
    arr = np.array([[0, 300], [65535, 1]], dtype=np.uint16)
    img = Image.frombytes("I;16B", (2, 2), arr.astype(">u2").tobytes())
    out = images._to_rgb_array(img)
    np.testing.assert_array_equal(out[..., 1], np.round(arr / 65535 * 255).astype(np.uint8))


# --------------------------------------------------------------------------------------------
# colorize on non-finite input and limits (issue 21: `1e308 -1e308` crashed the Kernels page)
# --------------------------------------------------------------------------------------------


def _lut(name="viridis"):
    return np.round(images.colormap_lut(name) * 255).astype(np.uint8)


def test_colorize_inf_with_infinite_limits_used_to_raise_index_error():
    out = images.colorize(np.array([[0, np.inf, -np.inf]]), vmin=-np.inf, vmax=np.inf)
    lut = _lut()
    # The finite data is constant (0), so 0 is the bottom; +inf saturates to the top.
    assert out[0].tolist() == [lut[0].tolist(), lut[255].tolist(), lut[0].tolist()]


def test_colorize_limits_near_the_float64_edge_do_not_overflow():
    x = np.array([[-1e308, 0.0, 1e308, np.nan]])
    out = images.colorize(x, cmap="RdBu", vmin=-1e308, vmax=1e308)
    lut = _lut("RdBu")
    assert out[0].tolist() == [
        lut[0].tolist(),
        lut[128].tolist(),
        lut[255].tolist(),
        lut[0].tolist(),
    ]


def test_colorize_ignores_non_finite_values_when_finding_the_range():
    x = np.array([[np.nan, 2.0, 4.0, np.inf, 6.0]])
    out = images.colorize(x)
    lut = _lut()
    expected = [lut[i].tolist() for i in (0, 0, 128, 255, 255)]  # (4 − 2) / 4 · 255 = 127.5 → 128
    assert out[0].tolist() == expected


def test_colorize_equals_a_plain_lookup_on_finite_data():
    x = np.random.default_rng(9).normal(size=(6, 7))
    t = np.clip((x - -1.0) / 2.0, 0, 1)
    ref = _lut()[np.round(t * 255).astype(int)]
    np.testing.assert_array_equal(images.colorize(x, vmin=-1.0, vmax=1.0), ref)


@settings(max_examples=150, deadline=None)
@given(
    hnp.arrays(np.float64, (3, 4), elements=st.floats(allow_nan=True, allow_infinity=True)),
    st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
)
def test_colorize_never_raises_or_warns(x, vmin, vmax):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = images.colorize(x, vmin=vmin, vmax=vmax)
    assert out.shape == (3, 4, 3) and out.dtype == np.uint8
    # Every pixel is a colour of the scale.
    assert {tuple(p) for p in out.reshape(-1, 3)} <= {tuple(p) for p in _lut()}
