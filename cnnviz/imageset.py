"""A student's own image set: a zip of pictures, read as hostile input.

`load_zip(data, size=(64, 64))` returns the pictures resized to one size, their names and,
when the zip holds one folder per class (`cats/1.jpg`, `dogs/2.png`), a label per picture.

A zip is a classic attack: a few kilobytes that inflate to gigabytes (a zip bomb), thousands
of tiny members, names like `../../etc/passwd`. Before anything is decompressed we check the
member count, each member's declared size and the total, the compression ratio and the names;
while decompressing we read at most the declared size plus one byte, so a member that lies
about its size is caught; and every member goes through `cnnviz.images.load_image` (content
sniffing, a pixel cap). Python's `zipfile` does the parsing (it never writes to disk here).
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from dataclasses import dataclass

import numpy as np

from cnnviz import images

__all__ = ["ImageSetError", "ImageSet", "load_zip", "MAX_ZIP_BYTES", "MAX_FILES"]

#: The zip itself, compressed.
MAX_ZIP_BYTES = 20 * 1024 * 1024
#: Pictures in one set.
MAX_FILES = 2000
#: One member, uncompressed.
MAX_MEMBER_BYTES = 8 * 1024 * 1024
#: All members together, uncompressed.
MAX_TOTAL_BYTES = 200 * 1024 * 1024
#: Uncompressed / compressed size of a member; images are already compressed, so a high
#: ratio means a bomb, not a picture.
MAX_RATIO = 100
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")


class ImageSetError(ValueError):
    """The zip is refused; the message says why."""


@dataclass(frozen=True)
class ImageSet:
    """Attributes:
    images: (N, h, w, 3) uint8, every picture resized to `size`.
    names: the members' paths inside the zip.
    labels: (N,) int64 class per picture from its folder, or None without folders.
    class_names: the folders, sorted (index = label); [] without folders.
    skipped: "name: reason" for members that were not pictures or could not be read.
    """

    images: np.ndarray
    names: list[str]
    labels: np.ndarray | None
    class_names: list[str]
    skipped: list[str]


def _check_name(name: str) -> str | None:
    """The reason a member name is refused, or None."""
    if "\\" in name or "\x00" in name or name.startswith("/") or ":" in name.split("/")[0]:
        return "an absolute or odd path"
    parts = name.split("/")
    if any(p == ".." for p in parts):
        return "a path that climbs out of the folder (..)"
    if len(name) > 255 or len(parts) > 4:
        return "a name that is too long or too deep"
    return None


def load_zip(
    data: bytes,
    *,
    size: tuple[int, int] = (64, 64),
    max_files: int = MAX_FILES,
) -> ImageSet:
    """Read a zip of pictures safely.

    Args:
        data: the zip's bytes (an upload).
        size: (h, w) every picture is resized to.
        max_files: most picture members accepted.

    Raises:
        ImageSetError: not a zip, too big, too many members, a member bigger than declared or
            compressed suspiciously well, an unsafe name, or no readable picture at all.
    """
    if len(data) > MAX_ZIP_BYTES:
        raise ImageSetError(
            f"Expected a zip of at most {MAX_ZIP_BYTES // 2**20} MB. Received {len(data) / 2**20:.1f} MB."
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise ImageSetError(
            f"Expected a .zip file of images. This one cannot be read ({err})."
        ) from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        # Everything below is checked from the central directory, before decompressing.
        if len(members) > max_files:
            raise ImageSetError(
                f"Expected at most {max_files} files in the zip. Received {len(members)}."
            )
        total = 0
        for m in members:
            reason = _check_name(m.filename)
            if reason:
                raise ImageSetError(f"Refused: member {m.filename[:80]!r} has {reason}.")
            if m.flag_bits & 0x1:
                raise ImageSetError(f"Refused: member {m.filename[:80]!r} is encrypted.")
            if m.file_size > MAX_MEMBER_BYTES:
                raise ImageSetError(
                    f"Expected pictures of at most {MAX_MEMBER_BYTES // 2**20} MB each. "
                    f"{m.filename[:80]!r} declares {m.file_size / 2**20:.1f} MB."
                )
            if m.file_size > MAX_RATIO * max(m.compress_size, 1) and m.file_size > 1024 * 1024:
                raise ImageSetError(
                    f"Refused: {m.filename[:80]!r} inflates {m.file_size / max(m.compress_size, 1):.0f}×, "
                    "like a zip bomb (pictures barely compress)."
                )
            total += m.file_size
        if total > MAX_TOTAL_BYTES:
            raise ImageSetError(
                f"Expected at most {MAX_TOTAL_BYTES // 2**20} MB of pictures in all. "
                f"The zip declares {total / 2**20:.0f} MB."
            )
        pictures, names, folders, skipped = [], [], [], []
        for m in members:
            base = posixpath.basename(m.filename)
            if base.startswith(".") or m.filename.startswith("__MACOSX/"):
                continue  # macOS resource forks and hidden files
            if not base.lower().endswith(_IMAGE_SUFFIXES):
                skipped.append(f"{m.filename[:80]}: not a picture file")
                continue
            try:
                with archive.open(m) as f:
                    # At most one byte more than declared: a member that lies is caught here
                    # (zipfile also stops at the declared size and checks the CRC).
                    raw = f.read(m.file_size + 1)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
                raise ImageSetError(f"Refused: {m.filename[:80]!r} is damaged ({err}).") from None
            except NotImplementedError:
                skipped.append(f"{m.filename[:80]}: an unsupported compression method")
                continue
            if len(raw) > m.file_size:
                raise ImageSetError(f"Refused: {m.filename[:80]!r} is bigger than it declares.")
            try:
                img = images.load_image(raw)
            except images.ImageError as err:
                skipped.append(f"{m.filename[:80]}: {err}")
                continue
            pictures.append(images.resize(img, size))
            names.append(m.filename)
            folders.append(posixpath.dirname(m.filename))
    if not pictures:
        raise ImageSetError(
            "Expected at least one PNG, JPEG, WebP, BMP or GIF picture in the zip. Found none"
            + (f" ({len(skipped)} files skipped)." if skipped else ".")
        )
    labels, class_names = None, []
    if all(folders) and len(set(folders)) > 1:
        class_names = sorted(set(folders))
        labels = np.array([class_names.index(f) for f in folders], np.int64)
    return ImageSet(np.stack(pictures).astype(np.uint8), names, labels, class_names, skipped)
