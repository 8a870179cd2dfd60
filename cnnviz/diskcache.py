"""A small on-disk cache that every server process and every restart shares.

Some results cost seconds to minutes and do not depend on who asked: a model's filter
pictures, the dataset examples of a layer, an embedding of 2,000 images. Streamlit's own
caches live in one process, so a second replica behind a load balancer, or the same server
after a restart, would compute them again. This cache keeps them as files in one directory
(`CNNVIZ_CACHE_DIR`, default `~/.cache/cnnviz`):

- one `.npz` file per key (numpy arrays only, written with `np.savez` and read back with
  `allow_pickle=False`: a file in this directory can never run code); a JSON header inside
  names the format, the key and every array's shape and dtype;
- keys are SHA-256 digests of the model's content (`model_fingerprint`: its weights and its
  configuration) and the settings (`make_key`), so a retrained model never gets stale results;
- every write is atomic: a temporary file in the same directory, then `os.replace`, so a reader
  sees the old file, the new file or none, never half of one (several writers of the same key
  simply replace each other's complete files);
- a corrupt, truncated or foreign file (one that does not hold the header we write, or was
  written for another key) is a miss and is removed;
- the directory is bounded (`CNNVIZ_CACHE_MB`, default 512 MB): after each write the least
  recently used files go first. "Used" is the file's modification time, which every hit sets
  (access times are unreliable: most systems mount with relatime or noatime).

Example:
    cache = DiskCache()
    key = make_key("top-examples", model_fingerprint(model), "conv1", "shapes:2000:seed7")
    maxima = cache.get_or_compute(key, lambda: {"values": compute_values()})

Nothing here imports Streamlit or TensorFlow (a keras.Model is only read through its public
`get_weights` and `get_config`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DiskCache",
    "DiskCacheError",
    "default_cache",
    "cache_dir",
    "max_bytes",
    "make_key",
    "model_fingerprint",
]

#: The header every file we write carries; anything else in the directory is foreign.
FORMAT = "cnnviz-diskcache/1"
_HEADER = "__cnnviz_header__"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_KEY = re.compile(r"^[0-9a-f]{64}$")
_DEFAULT_MB = 512
# A temporary file older than this is a writer that died mid-write; eviction removes it.
_STALE_TMP_S = 3600


class DiskCacheError(ValueError):
    """A value or key the cache cannot store; the message says what was expected."""


def cache_dir() -> Path:
    """The cache directory: $CNNVIZ_CACHE_DIR, else ~/.cache/cnnviz."""
    raw = os.environ.get("CNNVIZ_CACHE_DIR", "").strip()
    return Path(raw).expanduser() if raw else Path.home() / ".cache" / "cnnviz"


def max_bytes() -> int:
    """The size cap in bytes: $CNNVIZ_CACHE_MB megabytes (default 512); 0 disables the cache."""
    raw = os.environ.get("CNNVIZ_CACHE_MB", "").strip()
    try:
        mb = float(raw) if raw else _DEFAULT_MB
    except ValueError:
        mb = _DEFAULT_MB
    return max(0, int(mb * 1024 * 1024))


def _jsonable(value: Any) -> Any:
    """Settings as plain JSON (tuples as lists, numpy scalars as numbers), or a clear error."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise DiskCacheError(
        "Expected key parts made of strings, numbers, None, lists, tuples and dicts. "
        f"Received a {type(value).__name__}."
    )


def make_key(*parts: Any) -> str:
    """A 64-hex-digit SHA-256 of the parts written as canonical JSON (order of dicts ignored)."""
    text = json.dumps(_jsonable(list(parts)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def model_fingerprint(model: Any) -> str:
    """A SHA-256 of a keras.Model's content: its configuration and every weight's bytes.

    Two copies of the same trained model agree; training one more step, or a different
    architecture, changes it. The model is only read (`get_config`, `get_weights`).
    """
    h = hashlib.sha256()
    # The configuration says which layers there are and how they are wired; default=str covers
    # the odd non-JSON value (a dtype policy object) deterministically.
    h.update(json.dumps(model.get_config(), sort_keys=True, default=str).encode())
    for w in model.get_weights():
        arr = np.ascontiguousarray(w)
        h.update(f"|{arr.dtype.str}{arr.shape}|".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


class DiskCache:
    """Arrays on disk under one directory, keyed by `make_key` digests, with LRU eviction.

    Args:
        directory: where the files live (created on first write); default `cache_dir()`.
        limit_bytes: the size cap; default `max_bytes()`. 0 turns the cache off (every `get`
            misses, `put` stores nothing).

    Values are a numpy array or a dict {name: array} (names are letters, digits, `_ . -`).
    `get` returns what was stored: an array for an array, a dict for a dict.
    """

    def __init__(self, directory: str | os.PathLike | None = None, limit_bytes: int | None = None):
        self.directory = Path(directory) if directory is not None else cache_dir()
        self.limit_bytes = max_bytes() if limit_bytes is None else int(limit_bytes)

    # ----------------------------------------------------------------------------------------
    def path(self, key: str) -> Path:
        """The file that holds `key`."""
        if not isinstance(key, str) or not _KEY.match(key):
            raise DiskCacheError(
                f"Expected a key made by make_key (64 hex digits). Received {str(key)[:80]!r}."
            )
        return self.directory / f"{key}.npz"

    def get(self, key: str) -> np.ndarray | dict[str, np.ndarray] | None:
        """The stored value, or None on a miss (absent, corrupt, truncated or foreign file)."""
        path = self.path(key)
        if self.limit_bytes <= 0:
            return None
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed below; we need its inode
        except OSError:
            return None
        with f:
            inode = os.fstat(f.fileno()).st_ino
            try:
                value = _read(f, key)
            except Exception:  # noqa: BLE001 - any failure to read means a bad file: a miss
                value = None
        if value is None:
            self._remove_if_same(path, inode)
            return None
        # A hit makes this file the most recently used one.
        with contextlib.suppress(OSError):
            now = time.time_ns()
            os.utime(path, ns=(now, now))
        return value

    def put(self, key: str, value: np.ndarray | Mapping[str, np.ndarray]) -> bool:
        """Store `value` under `key` atomically; False when it was not stored (too big, disk
        full, cache off). Evicts least recently used files to stay under the cap."""
        path = self.path(key)
        arrays, single = _as_arrays(value)
        if self.limit_bytes <= 0:
            return False
        payload = _encode(key, arrays, single)
        if len(payload) > self.limit_bytes:
            return False  # one value bigger than the whole cache: never worth evicting for
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".npz")
        except OSError:
            return False
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            now = time.time_ns()
            os.utime(tmp, ns=(now, now))
            # The atomic step: readers see the old complete file or this complete file.
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return False
        self.evict()
        return True

    def get_or_compute(
        self, key: str, compute: Callable[[], np.ndarray | Mapping[str, np.ndarray]]
    ) -> np.ndarray | dict[str, np.ndarray]:
        """The stored value, or `compute()` stored and returned (as `get` would return it)."""
        found = self.get(key)
        if found is not None:
            return found
        value = compute()
        arrays, single = _as_arrays(value)
        self.put(key, value)
        return arrays["value"] if single else arrays

    def delete(self, key: str) -> None:
        """Forget one key (no error when it is not there)."""
        with contextlib.suppress(OSError):
            os.unlink(self.path(key))

    def clear(self) -> None:
        """Remove every cache file (only files this cache names; nothing else is touched)."""
        for entry in self._entries():
            with contextlib.suppress(OSError):
                os.unlink(entry[2])

    def size_bytes(self) -> int:
        """Bytes held by the cache's files now."""
        return sum(size for _, size, _ in self._entries())

    def evict(self) -> list[str]:
        """Delete least recently used files until the total fits the cap; returns their keys."""
        removed = []
        entries = self._entries()
        total = sum(size for _, size, _ in entries)
        # Oldest use first; the name breaks ties so the order is deterministic.
        for _used, size, path in sorted(entries, key=lambda e: (e[0], e[2].name)):
            if total <= self.limit_bytes:
                break
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                removed.append(path.stem)
            total -= size
        self._sweep_temporaries()
        return removed

    # ----------------------------------------------------------------------------------------
    def _entries(self) -> list[tuple[int, int, Path]]:
        """(last use in ns, size, path) of every file this cache named."""
        out = []
        try:
            scan = list(os.scandir(self.directory))
        except OSError:
            return out
        for entry in scan:
            if not (entry.name.endswith(".npz") and _KEY.match(entry.name[:-4])):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # removed meanwhile by another process
            out.append((st.st_mtime_ns, st.st_size, Path(entry.path)))
        return out

    def _sweep_temporaries(self) -> None:
        # A writer that crashed leaves its temporary file; remove those older than an hour.
        cutoff = time.time() - _STALE_TMP_S
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.directory):
                if entry.name.startswith(".tmp-") and entry.name.endswith(".npz"):
                    with contextlib.suppress(OSError):
                        if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                            os.unlink(entry.path)

    @staticmethod
    def _remove_if_same(path: Path, inode: int) -> None:
        # Remove a bad file only if it is still the one we read: a writer may have replaced it
        # with a good one in the meantime.
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == inode:
                os.unlink(path)


def _as_arrays(value: Any) -> tuple[dict[str, np.ndarray], bool]:
    """(name -> array, whether the value was a single array), checking what may be stored."""
    if isinstance(value, np.ndarray):
        items, single = {"value": value}, True
    elif isinstance(value, Mapping):
        items, single = dict(value), False
    else:
        raise DiskCacheError(
            f"Expected a numpy array or a dict of arrays. Received a {type(value).__name__}."
        )
    out = {}
    for name, arr in items.items():
        if not isinstance(name, str) or not _NAME.match(name) or name == _HEADER:
            raise DiskCacheError(
                "Expected array names made of letters, digits, '_', '.' and '-'. "
                f"Received {str(name)[:40]!r}."
            )
        a = np.asarray(arr)
        if a.dtype.hasobject or a.dtype.kind not in "biufcSU?":
            raise DiskCacheError(
                f"Expected numeric, boolean or string arrays. Received dtype {a.dtype} for {name!r}."
            )
        out[name] = a
    return out, single


def _encode(key: str, arrays: dict[str, np.ndarray], single: bool) -> bytes:
    """The file's bytes: the arrays plus a JSON header (as uint8) describing them."""
    header = {
        "format": FORMAT,
        "key": key,
        "single": single,
        "arrays": {n: [a.dtype.str, list(a.shape)] for n, a in arrays.items()},
    }
    buf = io.BytesIO()
    # Compressed: filter pictures and patches shrink a lot, and the cap counts bytes on disk.
    np.savez_compressed(
        buf,
        **{_HEADER: np.frombuffer(json.dumps(header).encode(), np.uint8)},
        **arrays,
    )
    return buf.getvalue()


def _read(f, key: str) -> np.ndarray | dict[str, np.ndarray] | None:
    """Decode one file; None when it is not exactly what `_encode` wrote for `key`."""
    data = f.read()
    # zipfile checks every member's CRC as numpy reads it, so flipped bytes fail here too.
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = z.namelist()
    if f"{_HEADER}.npy" not in names:
        return None
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        header = json.loads(bytes(npz[_HEADER]).decode())
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            return None
        if header.get("key") != key:
            return None  # written for another key (a renamed or copied file)
        specs = header.get("arrays")
        if not isinstance(specs, dict) or set(names) != {f"{n}.npy" for n in [*specs, _HEADER]}:
            return None
        arrays = {}
        for name, (dtype, shape) in specs.items():
            a = npz[name]
            if a.dtype.str != dtype or list(a.shape) != list(shape):
                return None
            arrays[name] = a
    if header.get("single"):
        return arrays.get("value")
    return arrays


def default_cache() -> DiskCache:
    """The cache over `cache_dir()` with the `max_bytes()` cap, as the environment says now."""
    return DiskCache(cache_dir(), max_bytes())
