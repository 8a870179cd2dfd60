"""Photos for transfer learning: seed 003's cats vs dogs through the real download code (a local
file:// zip of the same layout), offline in seconds with a clear message (the socket cut off),
class folders from a zip, and the background job's Stop."""

import io
import threading
import zipfile

import numpy as np
import pytest

from cnnviz import datasets, images, imageset, transfer
from cnnviz.models import applications
from cnnviz.ui import transfer as ui


def _jpeg(kind: str, seed: int, side: int = 40) -> bytes:
    x, y = datasets.novel_shapes(4, seed=seed, size=side, classes=[kind, "pentagon"])
    pic = x[list(y).index(0)]
    buf = io.BytesIO()
    from PIL import Image  # noqa: PLC0415

    Image.fromarray(pic).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _cats_dogs_zip(path, n_train: int, n_val: int, extra: dict[str, bytes] | None = None) -> str:
    """A zip with cats_and_dogs_filtered.zip's layout; rings stand in for cats, arrows for dogs."""
    with zipfile.ZipFile(path, "w") as z:
        for cls, kind in (("cats", "ring"), ("dogs", "arrow")):
            for split, n in (("train", n_train), ("validation", n_val)):
                z.writestr(f"cats_and_dogs_filtered/{split}/{cls}/", b"")
                for i in range(n):
                    data = _jpeg(kind, 1000 * (split == "train") + i)
                    z.writestr(f"cats_and_dogs_filtered/{split}/{cls}/{cls[:-1]}.{i}.jpg", data)
        z.writestr("cats_and_dogs_filtered/vectorize.py", b"print('not a picture')")
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return path.as_uri()


N_VAL = transfer.CATS_DOGS_TEST + transfer.CATS_DOGS_VAL


def test_cats_vs_dogs_downloads_and_splits_like_the_seed(tmp_path):
    url = _cats_dogs_zip(tmp_path / "served.zip", n_train=8, n_val=N_VAL)
    cache = tmp_path / "cache"
    task = transfer.cats_vs_dogs(5, size=48, seed=1, url=url, cache_dir=str(cache))
    # Kept in Keras' cache as the seed's file name, read in place (nothing extracted).
    assert (cache / "datasets" / "cats_and_dogs_filtered.zip").is_file()
    assert sorted(p.name for p in (cache / "datasets").iterdir()) == ["cats_and_dogs_filtered.zip"]
    assert task.classes == ["cat", "dog"]
    assert task.x.shape == (10, 48, 48, 3) and task.x.dtype == np.float32
    assert np.bincount(task.y).tolist() == [5, 5]
    assert np.bincount(task.y_test).tolist() == [transfer.CATS_DOGS_TEST] * 2
    assert np.bincount(task.y_val).tolist() == [transfer.CATS_DOGS_VAL] * 2
    # Reference: the first held-out "cat" is validation/cats/cat.0.jpg, decoded and resized
    # with Pillow directly.
    from PIL import Image  # noqa: PLC0415

    ref = Image.open(io.BytesIO(_jpeg("ring", 0))).convert("RGB")
    ref = np.asarray(ref.resize((48, 48), Image.Resampling.BICUBIC), np.float32)
    np.testing.assert_allclose(task.x_test[0], ref, atol=2)
    # The held-out set is the same for every seed and size of training set; training differs.
    other = transfer.cats_vs_dogs(3, size=48, seed=2, url=url, cache_dir=str(cache))
    np.testing.assert_array_equal(other.x_test, task.x_test)
    assert len(other.x) == 6


def test_cats_vs_dogs_offline_is_a_clear_message_not_a_hang(tmp_path, no_network):
    with pytest.raises(transfer.PhotoError, match="Could not download") as err:
        transfer.cats_vs_dogs(5, cache_dir=str(tmp_path))
    # It tried, under the loader's short socket timeout (a real dead network fails in seconds).
    assert no_network and all(t == applications._NET_TIMEOUT_S for t in no_network)
    assert "Upload a zip with two class folders" in str(err.value)
    assert "mocked: no network" in str(err.value)
    # No half-written file is left to be mistaken for the data next time.
    assert not list(tmp_path.rglob("*.zip"))


def test_cats_vs_dogs_refuses_a_hostile_or_short_zip(tmp_path):
    url = _cats_dogs_zip(tmp_path / "short.zip", n_train=2, n_val=N_VAL)
    with pytest.raises(transfer.PhotoError, match="Expected the zip to hold 5 training"):
        transfer.cats_vs_dogs(5, url=url, cache_dir=str(tmp_path / "a"))
    bad = tmp_path / "bad.zip"
    url = _cats_dogs_zip(bad, n_train=5, n_val=N_VAL)
    with zipfile.ZipFile(bad, "a") as z:  # a "photo" that is a script, sorted first
        z.writestr("cats_and_dogs_filtered/validation/cats/a.jpg", b"<script>alert(1)</script>")
    with pytest.raises(transfer.PhotoError, match="Refused: 'cats_and_dogs_filtered/valid"):
        transfer.cats_vs_dogs(5, url=url, cache_dir=str(tmp_path / "b"))
    (tmp_path / "c" / "datasets").mkdir(parents=True)
    (tmp_path / "c" / "datasets" / "cats_and_dogs_filtered.zip").write_bytes(b"not a zip")
    with pytest.raises(transfer.PhotoError, match="is not the cats-vs-dogs zip"):
        transfer.cats_vs_dogs(5, url=url, cache_dir=str(tmp_path / "c"))
    for bad_k in (0, True, 10_000):
        with pytest.raises(transfer.TransferError, match="per_class"):
            transfer.cats_vs_dogs(bad_k, url=url)


def _folder_zip(layout: dict[str, int]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for folder, n in layout.items():
            kind = "ring" if "cat" in folder else "arrow"
            for i in range(n):
                z.writestr(
                    f"{folder}/{i}.png", images.to_png_bytes(images.load_image(_jpeg(kind, i)))
                )
    return buf.getvalue()


def test_folder_task_merges_seed_003s_split_folders_and_holds_out_a_quarter():
    data = _folder_zip({"pets/train/cats": 6, "pets/validation/cats": 2, "pets/train/dogs": 4})
    found = imageset.load_zip(data, size=(32, 32))
    folders = [n.rsplit("/", 1)[0] for n in found.names]
    task = transfer.folder_task(found.images, folders, 100, seed=0)
    assert task.classes == ["cats", "dogs"]
    # 8 cats: 2 held out, 6 to train; 4 dogs: 1 held out, 3 to train (fewer than per_class).
    assert np.bincount(task.y_test).tolist() == [2, 1]
    assert np.bincount(task.y).tolist() == [6, 3]
    np.testing.assert_array_equal(task.x_val, task.x_test)
    # No held-out picture is trained on: compare the pixels.
    train = {p.tobytes() for p in task.x}
    assert not any(p.tobytes() in train for p in task.x_test)
    few = transfer.folder_task(found.images, folders, 2, seed=0)
    assert np.bincount(few.y).tolist() == [2, 2]
    np.testing.assert_array_equal(few.x_test, task.x_test)  # the same held-out set


@pytest.mark.parametrize(
    ("folders", "match"),
    [
        (["cats"] * 4, "Expected 2 to 5 class folders"),
        ([f"c{i}" for i in range(6)] * 2, "Expected 2 to 5 class folders"),
        (["cats", "cats", "dogs", ""], "inside a class folder"),
        (["cats", "cats", "cats", "dogs"], "'dogs' has 1 picture"),
    ],
)
def test_folder_task_bad_layouts_get_a_clear_message(folders, match):
    pics = np.zeros((len(folders), 8, 8, 3), np.uint8)
    with pytest.raises(transfer.PhotoError, match=match):
        transfer.folder_task(pics, folders, 5)


# ------------------------------------------------------------------ the background job


def test_job_stop_ends_the_work_and_keeps_its_result():
    started = threading.Event()

    def work(progress, stop):
        n = 0
        while not stop():  # polled after every "batch", like transfer.fit
            n += 1
            progress(0.5, f"step {n}")
            started.set()
        return {"steps": n}

    job = ui.TransferJob("own", work, {"epochs": 3})
    assert job.snapshot().status == "waiting"
    job.start()
    assert started.wait(30)
    job.stop()
    job.join(30)
    snap = job.snapshot()
    assert snap.status == "stopped" and snap.finished
    assert snap.result["steps"] >= 1 and snap.steps_done == snap.result["steps"] + 1
    assert job.info == {"epochs": 3}


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (transfer.TransferError("Expected labels in 0..1."), "Expected labels in 0..1."),
        (RuntimeError("out of memory"), "RuntimeError: out of memory"),
    ],
)
def test_job_errors_become_one_clear_line(error, shown):
    def work(progress, stop):
        raise error

    job = ui.TransferJob("compare", work).start()
    job.join(30)
    snap = job.snapshot()
    assert snap.status == "error" and snap.error == shown and snap.result is None
