"""The on-disk cache: roundtrip, bad files as misses, LRU order, concurrent writers."""

from __future__ import annotations

import io
import multiprocessing
import os
import threading
import time
import zipfile

import numpy as np
import pytest

from cnnviz import diskcache
from cnnviz.diskcache import DiskCache, DiskCacheError, make_key, model_fingerprint


def _value(seed: int, n: int = 1000) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "images": rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8),
        "values": rng.normal(size=n).astype(np.float32),
        "labels": np.full(n, seed, np.int64),
    }


def test_roundtrip_dict_and_array(tmp_path):
    cache = DiskCache(tmp_path, limit_bytes=10**8)
    k1, k2 = make_key("a", 1), make_key("b", 2)
    v = _value(3)
    assert cache.get(k1) is None
    assert cache.put(k1, v)
    got = cache.get(k1)
    assert set(got) == set(v)
    for name in v:
        assert got[name].dtype == v[name].dtype
        np.testing.assert_array_equal(got[name], v[name])
    arr = np.arange(12, dtype=np.float64).reshape(3, 4)
    cache.put(k2, arr)
    np.testing.assert_array_equal(cache.get(k2), arr)
    assert isinstance(cache.get(k2), np.ndarray)


def test_key_is_canonical_and_settings_sensitive():
    assert make_key("x", {"b": 1, "a": (2, 3)}) == make_key("x", {"a": [2, 3], "b": 1})
    assert make_key("x", {"a": 1}) != make_key("x", {"a": 2})
    assert make_key(np.int64(3)) == make_key(3)
    with pytest.raises(DiskCacheError):
        make_key(object())


def test_refuses_object_arrays_and_bad_names(tmp_path):
    cache = DiskCache(tmp_path, limit_bytes=10**8)
    with pytest.raises(DiskCacheError):
        cache.put(make_key(1), {"x": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(DiskCacheError):
        cache.put(make_key(1), {"../evil": np.zeros(2)})
    with pytest.raises(DiskCacheError):
        cache.get("../../etc/passwd")


def _pickled_npz(key: str) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, value=np.array([{"run": "code"}], dtype=object))
    return buf.getvalue()


@pytest.mark.parametrize(
    "damage",
    ["truncate", "flip", "garbage", "foreign_npz", "pickle", "other_key", "empty"],
)
def test_bad_file_is_a_miss_and_removed(tmp_path, damage):
    cache = DiskCache(tmp_path, limit_bytes=10**8)
    key, other = make_key("k"), make_key("other")
    cache.put(key, _value(1))
    path = cache.path(key)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        # Flip bytes in the middle of the compressed data: the zip CRC check must catch it.
        b = bytearray(data)
        for i in range(len(b) // 2, len(b) // 2 + 64):
            b[i] ^= 0xFF
        path.write_bytes(bytes(b))
    elif damage == "garbage":
        path.write_bytes(os.urandom(5000))
    elif damage == "foreign_npz":
        buf = io.BytesIO()
        np.savez(buf, values=np.arange(5))
        path.write_bytes(buf.getvalue())
    elif damage == "pickle":
        path.write_bytes(_pickled_npz(key))
    elif damage == "other_key":
        cache.put(other, _value(2))
        os.replace(cache.path(other), path)
    elif damage == "empty":
        path.write_bytes(b"")
    assert cache.get(key) is None
    assert not path.exists()
    # And a good value can be stored again.
    cache.put(key, _value(1))
    np.testing.assert_array_equal(cache.get(key)["labels"], _value(1)["labels"])


def test_header_lies_about_shape_is_a_miss(tmp_path):
    cache = DiskCache(tmp_path, limit_bytes=10**8)
    key = make_key("shape")
    cache.put(key, {"a": np.zeros(4)})
    path = cache.path(key)
    # Rewrite the zip with the same header but a different array under "a".
    with zipfile.ZipFile(path) as z:
        header = z.read("__cnnviz_header__.npy")
    buf = io.BytesIO()
    np.save(buf, np.zeros(5))
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("__cnnviz_header__.npy", header)
        z.writestr("a.npy", buf.getvalue())
    assert cache.get(key) is None


def test_lru_eviction_by_last_use(tmp_path):
    one = len(diskcache._encode(make_key(0), diskcache._as_arrays(_value(0))[0], False))
    # Room for three values, not four.
    cache = DiskCache(tmp_path, limit_bytes=int(one * 3.5))
    keys = [make_key("lru", i) for i in range(4)]
    for k in keys[:3]:
        cache.put(k, _value(0))
        time.sleep(0.002)
    # Use key 0: now key 1 is the least recently used.
    assert cache.get(keys[0]) is not None
    time.sleep(0.002)
    cache.put(keys[3], _value(0))
    present = [cache.path(k).exists() for k in keys]
    assert present == [True, False, True, True]
    assert cache.size_bytes() <= cache.limit_bytes
    # Another write: now key 2 is the oldest use.
    time.sleep(0.002)
    cache.put(make_key("lru", 4), _value(0))
    assert not cache.path(keys[2]).exists()
    assert cache.path(keys[0]).exists()


def test_value_bigger_than_cap_is_not_stored_and_evicts_nothing(tmp_path):
    cache = DiskCache(tmp_path, limit_bytes=20_000)
    small = make_key("small")
    cache.put(small, np.zeros(10))
    big = make_key("big")
    assert not cache.put(big, np.random.default_rng(0).normal(size=100_000))
    assert cache.get(big) is None
    assert cache.get(small) is not None


def test_cache_off_with_zero_cap(tmp_path):
    cache = DiskCache(tmp_path, limit_bytes=0)
    assert not cache.put(make_key(1), np.zeros(3))
    assert cache.get(make_key(1)) is None


def test_get_or_compute_counts_computations(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.arange(10)}

    key = make_key("count")
    # Two cache objects on one directory: two replicas of the server.
    a, b = DiskCache(tmp_path, 10**8), DiskCache(tmp_path, 10**8)
    first = a.get_or_compute(key, compute)
    second = b.get_or_compute(key, compute)
    assert len(calls) == 1
    np.testing.assert_array_equal(first["x"], second["x"])
    b.get_or_compute(make_key("count", 2), compute)
    assert len(calls) == 2


def test_environment_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNVIZ_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("CNNVIZ_CACHE_MB", "3")
    c = diskcache.default_cache()
    assert c.directory == tmp_path / "c"
    assert c.limit_bytes == 3 * 1024 * 1024
    monkeypatch.setenv("CNNVIZ_CACHE_MB", "lots")
    assert diskcache.max_bytes() == 512 * 1024 * 1024
    monkeypatch.delenv("CNNVIZ_CACHE_DIR")
    assert diskcache.cache_dir().name == "cnnviz"


def test_model_fingerprint_follows_weights_and_config():
    keras = pytest.importorskip("keras")

    def build(units):
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, name="d")])

    keras.utils.set_random_seed(0)
    m1 = build(3)
    m2 = keras.models.clone_model(m1)
    m2.set_weights(m1.get_weights())
    assert model_fingerprint(m1) == model_fingerprint(m2)
    w = m2.get_weights()
    w[0][0, 0] += 1e-3
    m2.set_weights(w)
    assert model_fingerprint(m1) != model_fingerprint(m2)
    assert model_fingerprint(build(4)) != model_fingerprint(m1)


# --------------------------------------------------------------------------------------------
# Concurrent writers: each writes complete values whose parts agree with each other, so a torn
# or mixed file would show as a value whose labels, images and checksum disagree.
# --------------------------------------------------------------------------------------------

N_ROUNDS = 12


def _consistent(v) -> bool:
    seed = int(v["labels"][0])
    ref = _value(seed)
    return all(np.array_equal(v[k], ref[k]) for k in ref)


def _writer(directory: str, key: str, seed: int) -> None:
    cache = DiskCache(directory, limit_bytes=10**9)
    for _ in range(N_ROUNDS):
        cache.put(key, _value(seed))


def _reader(directory: str, key: str, stop: threading.Event, bad: list, seen: list) -> None:
    cache = DiskCache(directory, limit_bytes=10**9)
    while not stop.is_set():
        v = cache.get(key)
        if v is None:
            seen.append(None)
        elif _consistent(v):
            seen.append(int(v["labels"][0]))
        else:
            bad.append("inconsistent value")


def _check_after(directory, key, seeds, seen, bad):
    assert not bad, bad[:3]
    final = DiskCache(directory, limit_bytes=10**9).get(key)
    assert final is not None and _consistent(final)
    assert int(final["labels"][0]) in seeds
    assert any(s is not None for s in seen), "the reader never saw a value"
    leftovers = [n for n in os.listdir(directory) if n.startswith(".tmp-")]
    assert not leftovers


def test_concurrent_thread_writers_never_tear(tmp_path):
    key = make_key("threads")
    seeds = [11, 12, 13, 14]
    stop, bad, seen = threading.Event(), [], []
    reader = threading.Thread(target=_reader, args=(str(tmp_path), key, stop, bad, seen))
    reader.start()
    writers = [threading.Thread(target=_writer, args=(str(tmp_path), key, s)) for s in seeds]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    reader.join()
    _check_after(tmp_path, key, seeds, seen, bad)


def test_concurrent_process_writers_never_tear(tmp_path):
    key = make_key("processes")
    seeds = [21, 22, 23, 24]
    stop, bad, seen = threading.Event(), [], []
    reader = threading.Thread(target=_reader, args=(str(tmp_path), key, stop, bad, seen))
    reader.start()
    # spawn, not fork: the test process may hold TensorFlow's threads.
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), key, s)) for s in seeds]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    stop.set()
    reader.join()
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    _check_after(tmp_path, key, seeds, seen, bad)
