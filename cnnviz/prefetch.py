"""Prepare for a lecture hall with no Wi-Fi: download ImageNet weights the night before.

    python -m cnnviz.prefetch                 # what is ready offline, what is missing
    python -m cnnviz.prefetch vgg16 resnet50  # download those (and the class index)
    python -m cnnviz.prefetch all

Files go where Keras itself looks for them (KERAS_HOME/models, else ~/.keras/models), or into
`CNNVIZ_WEIGHTS_DIR` when set; `cnnviz.models` then loads them from there without the network.
Every file is checked against the MD5 that Keras' own application code pins for it (copied
below from keras/src/applications/*.py; Keras verifies downloads with the same hashes).
Downloads use `keras.utils.get_file` (it already resumes nothing, but verifies and shows a
progress bar) under the same short socket timeout as the model loader, so an offline machine
gets a clear message in seconds and never hangs.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

from cnnviz.models import registry
from cnnviz.models.applications import _short_socket_timeout, weights_dir

__all__ = [
    "PrefetchError",
    "FileStatus",
    "CLASS_INDEX",
    "targets",
    "status",
    "ready_offline",
    "fetch",
    "main",
]

# MD5 of each top-included ImageNet weights file, as pinned in Keras 3's application modules
# (vgg16.py, vgg19.py, resnet.py WEIGHTS_HASHES, inception_v3.py, xception.py, efficientnet.py
# WEIGHTS_HASHES["b0"][0], densenet.py). Keras pins none for MobileNetV2: only its size is checked.
WEIGHTS_MD5: dict[str, str | None] = {
    "vgg16": "64373286793e3c8b2b4e3219cbf3544b",
    "vgg19": "cbe5617147190e668d6c5d5026f83318",
    "resnet50": "2cb95161c43110f7111970584f804107",
    "mobilenet_v2": None,
    "inception_v3": "9a0d58056eeedaa3f26cb7ebd46da564",
    "xception": "0a58e3b7378bc2990ea3b43d5981f1f6",
    "efficientnet_b0": "902e53a9f72be733fc0bcb005b3ebbac",
    "densenet121": "9d60b8095a5708f2dcce2bca79d332c7",
}
# The 1000 class names (keras/src/applications/imagenet_utils.py CLASS_INDEX_PATH).
CLASS_INDEX = (
    "imagenet_class_index.json",
    "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json",
    "c2c37ea517e94d9795004a39431a14cb",
)


class PrefetchError(ValueError):
    """A download failed or a name is unknown; the message says which file and why."""


@dataclass(frozen=True)
class FileStatus:
    """One file a lecture needs: where it goes, and whether it is there and intact."""

    name: str  # model name, or "class index"
    file: str
    url: str
    path: Path
    md5: str | None
    present: bool
    verified: bool | None  # None: not checked (check=False, or no pinned hash)

    @property
    def ready(self) -> bool:
        return self.present and self.verified is not False


def targets(names: list[str] | None = None) -> list[tuple[str, str, str, str | None]]:
    """(name, file, url, md5) for the chosen ImageNet models (all when None), then the class index."""
    known = registry.imagenet_names()
    chosen = known if not names or names == ["all"] else names
    unknown = [n for n in chosen if n not in known]
    if unknown:
        raise PrefetchError(
            f"Expected ImageNet model names from {', '.join(known)} (or 'all'). "
            f"Received {', '.join(unknown)}."
        )
    out = []
    for n in chosen:
        entry, _ = registry._entry(n)
        out.append((n, entry.weights_file, entry.weights_url, WEIGHTS_MD5.get(n)))
    out.append(("class index", *CLASS_INDEX))
    return out


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def status(names: list[str] | None = None, *, check: bool = True) -> list[FileStatus]:
    """What is in the weights folder for these models; `check` hashes each present file."""
    folder = weights_dir()
    rows = []
    for name, file, url, md5 in targets(names):
        path = folder / file
        present = path.is_file() and path.stat().st_size > 0
        verified = (_md5(path) == md5) if (present and check and md5) else None
        rows.append(FileStatus(name, file, url, path, md5, present, verified))
    return rows


def ready_offline(name: str) -> bool:
    """True when this ImageNet model's weights file is in the weights folder (no hashing:
    cheap enough for a select box's label)."""
    entry, _ = registry._entry(name)
    if entry.kind != "imagenet":
        return False
    path = weights_dir() / entry.weights_file
    return path.is_file() and path.stat().st_size > 0


def fetch(row: FileStatus) -> Path:
    """Download one file into the weights folder (verified against its MD5), with Keras'
    progress bar; PrefetchError, never a hang, when the network is unreachable."""
    from keras.utils import get_file

    try:
        with _short_socket_timeout():
            got = get_file(
                row.file,
                row.url,
                file_hash=row.md5,
                cache_dir=str(row.path.parent),
                cache_subdir=".",
            )
    except Exception as err:  # noqa: BLE001 - keras raises a bare Exception on URL failures
        raise PrefetchError(
            f"Could not download {row.file} for {row.name} from {row.url} "
            f"({type(err).__name__}: {str(err)[:200]}). Are you online? On a machine with "
            f"internet access, download that address and copy the file to {row.path}."
        ) from err
    return Path(got)


def _describe(row: FileStatus) -> str:
    if not row.present:
        return "missing"
    if row.verified is False:
        return "DAMAGED (hash mismatch)"
    size = row.path.stat().st_size / 1e6
    return f"ready ({size:.0f} MB{', hash ok' if row.verified else ''})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m cnnviz.prefetch", description=__doc__.split("\n")[0]
    )
    ap.add_argument("names", nargs="*", help="ImageNet models to download, or 'all'; none: list")
    args = ap.parse_args(argv)
    try:
        rows = status(args.names or None)
    except PrefetchError as err:
        print(f"cnnviz.prefetch: {err}", file=sys.stderr)
        return 2
    print(f"Weights folder: {weights_dir()}")
    for row in rows:
        print(f"  {row.name:<16} {_describe(row):<28} {row.file}")
    if not args.names:
        missing = [r.name for r in rows if not r.ready and r.name != "class index"]
        if missing:
            print(f"To get them while online: python -m cnnviz.prefetch {' '.join(missing)}")
        return 0
    failed = 0
    todo = [r for r in rows if not r.ready]
    for i, row in enumerate(todo, 1):
        print(f"[{i}/{len(todo)}] downloading {row.file} ({row.name})", flush=True)
        try:
            fetch(row)
        except PrefetchError as err:
            failed += 1
            print(f"  failed: {err}", file=sys.stderr)
    after = status(args.names)
    bad = [r for r in after if not r.ready]
    print("Ready for offline use." if not bad else f"{len(bad)} file(s) still missing or damaged.")
    return 1 if (failed or bad) else 0


if __name__ == "__main__":
    sys.exit(main())
