"""Uploaded zips of pictures: good sets load, hostile ones are refused before decompressing."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from cnnviz import imageset
from cnnviz.imageset import ImageSetError, load_zip


def _png(color, size=(20, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def _zip(members: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_folders_become_classes_and_pictures_are_resized():
    data = _zip(
        {
            "cats/a.png": _png((255, 0, 0)),
            "cats/b.png": _png((250, 0, 0)),
            "dogs/c.png": _png((0, 0, 255), (50, 10)),
            "dogs/notes.txt": b"hello",
            "__MACOSX/dogs/._c.png": b"junk",
        }
    )
    s = load_zip(data, size=(16, 16))
    assert s.images.shape == (3, 16, 16, 3) and s.images.dtype == np.uint8
    assert s.class_names == ["cats", "dogs"]
    assert s.labels.tolist() == [0, 0, 1]
    np.testing.assert_array_equal(s.images[2, 8, 8], [0, 0, 255])
    assert any("notes.txt" in r for r in s.skipped)


def test_flat_zip_has_no_labels_and_bad_pictures_are_skipped():
    s = load_zip(_zip({"a.png": _png((1, 2, 3)), "b.jpg": b"not a jpeg at all"}))
    assert s.labels is None and s.class_names == [] and len(s.images) == 1
    assert any("b.jpg" in r for r in s.skipped)


@pytest.mark.parametrize(
    "members, message",
    [
        ({"../evil.png": b"x"}, "climbs out"),
        ({"/etc/evil.png": b"x"}, "absolute"),
        ({"C:/evil.png": b"x"}, "absolute"),
        ({"a\\b.png": b"x"}, "absolute"),
        ({"a/b/c/d/e/f.png": b"x"}, "too deep"),
    ],
)
def test_unsafe_names(members, message):
    with pytest.raises(ImageSetError, match=message):
        load_zip(_zip(members))


def test_too_many_members():
    data = _zip({f"{i}.png": b"x" for i in range(30)})
    with pytest.raises(ImageSetError, match="at most 20 files"):
        load_zip(data, max_files=20)


def test_zip_bomb_ratio_refused_before_decompressing():
    # 7 MB of zeros compress to a few kB: a bomb's signature.
    data = _zip({"bomb.png": bytes(7 * 1024 * 1024)})
    assert len(data) < 100_000
    with pytest.raises(ImageSetError, match="zip bomb"):
        load_zip(data)


def test_member_too_big_and_total_too_big(monkeypatch):
    with pytest.raises(ImageSetError, match="at most 8 MB each"):
        load_zip(_zip({"big.png": bytes(9 * 1024 * 1024)}, zipfile.ZIP_STORED))
    monkeypatch.setattr(imageset, "MAX_TOTAL_BYTES", 1000)
    with pytest.raises(ImageSetError, match="in all"):
        load_zip(_zip({"a.png": _png((0, 0, 0)), "b.png": bytes(2000)}, zipfile.ZIP_STORED))


def test_member_that_lies_about_its_size():
    good = _zip({"a.png": _png((9, 9, 9))}, zipfile.ZIP_STORED)
    # Patch the declared (uncompressed) size in the central directory and local header down.
    real = len(_png((9, 9, 9)))
    b = bytearray(good)
    for sig, off in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22)):
        i = b.find(sig)
        b[i + off : i + off + 4] = (real - 10).to_bytes(4, "little")
    with pytest.raises(ImageSetError):
        load_zip(bytes(b))


def test_not_a_zip_and_empty_and_too_large(monkeypatch):
    with pytest.raises(ImageSetError, match="cannot be read"):
        load_zip(b"PK\x03\x04 definitely broken")
    with pytest.raises(ImageSetError, match="at least one"):
        load_zip(_zip({"readme.txt": b"hi"}))
    monkeypatch.setattr(imageset, "MAX_ZIP_BYTES", 10)
    with pytest.raises(ImageSetError, match="at most"):
        load_zip(_zip({"a.png": _png((0, 0, 0))}))
