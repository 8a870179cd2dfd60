"""Grad-CAM speed: a warm Grad-CAM against one compiled forward pass of the same model.

Run by hand: `python benchmarks/gradcam.py`. VGG16 with the classifier top at 224×224, random
weights (speed does not depend on the values), block5_conv3, one image. Prints ratios against
references measured in the same run, because absolute times depend on the machine.

Goal (issue 8): warm `cnnviz.cam.grad_cam` ≤ 1.3× one compiled forward pass. For comparison it
also times keras.io's eager recipe (a GradientTape around a fresh feature model, per call) and,
if it can be imported, tf-keras-vis `Gradcam`. tf-keras-vis is not a project dependency; to try
it, `pip install tf-keras-vis` in a separate environment (it may also need `tf-keras`).

`python benchmarks/gradcam.py --honesty` prints the numbers issue 8 asks to report for the
built-in shapes model instead: the pointing game on 200 fresh images, every method's Spearman
correlation at full randomization, and deletion/insertion AUCs against random maps.

`python benchmarks/gradcam.py --scenes` prints issue 16's two-object numbers: for each
present class of each scene, does its Grad-CAM peak within the pointing game's tolerance
(`cam.pointing`: 15 px at 224², 4.3 px at 64²) of that class's object? On the training
generator's `datasets.scenes` and on the independent hand-drawn `evaldata.drawn_scenes`.
"""

import os
import statistics
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Keras 3 warns when VGG16 (built with a one-element input list) gets a bare tensor; harmless.
warnings.filterwarnings("ignore", message="The structure of `inputs`")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnnviz import cam  # noqa: E402

LAYER = "block5_conv3"


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up: tracing and first-call allocations are not what we measure
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def paired_times(a, b, repeats: int) -> tuple[float, float]:
    """Medians of a and b timed alternately, so load from other processes hits both alike."""
    a(), b()  # warm-up
    ta, tb = [], []
    for _ in range(repeats):
        for fn, out in ((a, ta), (b, tb)):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb)


def keras_io_recipe(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """keras.io's make_gradcam_heatmap, eager, as the tutorial runs it (no tf.function)."""
    grad_model = keras.Model(model.inputs, [model.get_layer(LAYER).output, model.output])
    with tf.GradientTape() as tape:
        conv_out, preds = grad_model(x)
        pred_index = tf.argmax(preds[0])
        class_channel = preds[:, pred_index]
    grads = tape.gradient(class_channel, conv_out)
    pooled = tf.reduce_mean(grads, axis=(0, 1, 2))
    heat = conv_out[0] @ pooled[..., tf.newaxis]
    heat = tf.maximum(tf.squeeze(heat), 0) / tf.math.reduce_max(heat)
    return heat.numpy()


def tf_keras_vis_time(model: keras.Model, x: np.ndarray, repeats: int) -> str:
    try:
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
        from tf_keras_vis.utils.scores import CategoricalScore
    except Exception as err:  # noqa: BLE001 - any import failure is reported, not raised
        return f"not available ({type(err).__name__}: {err})"
    try:
        copy = keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
        gradcam = Gradcam(copy, model_modifier=ReplaceToLinear(), clone=False)
        score = CategoricalScore([386])
        seconds = median_time(lambda: gradcam(score, x, penultimate_layer=LAYER), repeats)
        return f"{seconds * 1e3:8.1f} ms"
    except Exception as err:  # noqa: BLE001 - report how it fails on Keras 3
        return f"fails on this Keras ({type(err).__name__}: {str(err)[:160]})"


def tf_keras_vis_on_sequential() -> str:
    """Does tf-keras-vis run on a Keras 3 Sequential model (issue 8: tf-keras-vis#36/#63)?"""
    try:
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
        from tf_keras_vis.utils.scores import CategoricalScore
    except Exception as err:  # noqa: BLE001 - reported, not raised
        return f"not available ({type(err).__name__})"
    seq = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(8, 3, activation="relu", name="conv"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    x = np.random.default_rng(0).random((1, 32, 32, 3)).astype(np.float32)
    try:
        Gradcam(seq, model_modifier=ReplaceToLinear())(CategoricalScore([0]), x)
        return "works"
    except Exception as err:  # noqa: BLE001 - report how it fails on Keras 3
        return f"fails ({type(err).__name__}: {str(err)[:120]})"


def main(repeats: int = 15) -> None:
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, devices: "
          f"{[d.device_type for d in tf.config.list_logical_devices()]}")  # fmt: skip
    keras.utils.set_random_seed(0)
    model = keras.applications.VGG16(weights=None)  # 224×224×3, 1000 classes, softmax
    x = np.random.default_rng(0).uniform(-120, 130, (1, 224, 224, 3)).astype(np.float32)
    xt = tf.constant(x)

    # The reference: one compiled forward pass of the same model, same input.
    forward = tf.function(lambda t: model(t, training=False))
    # Ours: the full public call (input check, step, weights, upsampling, scaling).
    fwd, ours = paired_times(
        lambda: forward(xt).numpy(), lambda: cam.grad_cam(model, x[0], layer=LAYER), repeats
    )
    recipe = median_time(lambda: keras_io_recipe(model, x), max(3, repeats // 3))

    goal = 1.3
    print(f"VGG16 224×224, layer {LAYER}, median of {repeats} warm calls")
    print(f"  compiled forward pass   {fwd * 1e3:8.1f} ms  (reference, 1.00×)")
    verdict = "OK" if ours / fwd <= goal else "MISSED"
    print(
        f"  cnnviz.cam.grad_cam     {ours * 1e3:8.1f} ms  {ours / fwd:5.2f}×  goal ≤ {goal}× {verdict}"
    )
    print(f"  keras.io eager recipe   {recipe * 1e3:8.1f} ms  {recipe / fwd:5.2f}×")
    vis = tf_keras_vis_time(model, x, repeats)
    print(f"  tf-keras-vis Gradcam    {vis}")
    print(f"  tf-keras-vis on a Sequential model: {tf_keras_vis_on_sequential()}")
    if vis.endswith("ms"):
        vis_s = float(vis.split()[0]) / 1e3
        print(
            f"  ratio ours / tf-keras-vis: {ours / vis_s:5.2f}× ({vis_s / fwd:5.2f}× the forward pass)"
        )


def honesty(fresh_seed: int = 8_812_345, n_sanity: int = 10, n_faith: int = 20) -> None:
    """Pointing game, randomization and faithfulness numbers on the built-in shapes model."""
    from cnnviz import datasets

    images, labels, masks = datasets.shapes(200, seed=fresh_seed)
    hits = 0
    for img, label, mask in zip(images, labels, masks, strict=True):
        heat = cam.compute("gradcam", "shapes", img, class_index=int(label)).heatmap
        hits += bool(mask[np.unravel_index(np.argmax(heat), heat.shape)])
    print(f"shapes, data seed {fresh_seed}")
    print(f"  pointing game (Grad-CAM peak inside the mask): {hits}/200 = {hits / 200:.1%}")

    print(f"  Spearman with the original map at full randomization, {n_sanity} images:")
    for method in cam.METHODS:
        finals = []
        for img, label in zip(images[:n_sanity], labels[:n_sanity], strict=True):
            test = cam.randomization_test("shapes", img, method=method, class_index=int(label))
            finals.append(np.nan if test.stages[-1].spearman is None else test.stages[-1].spearman)
        arr = np.array(finals)
        print(
            f"    {method:<22} mean {np.nanmean(arr):+.3f}  median {np.nanmedian(arr):+.3f}  "
            f"range [{np.nanmin(arr):+.3f}, {np.nanmax(arr):+.3f}]  undefined {np.isnan(arr).sum()}"
        )

    print(f"  deletion / insertion AUC (mean of {n_faith} images; random maps in brackets):")
    for method in ("gradcam", "gradcam++", "scorecam", "gradient", "integrated_gradients"):
        rows = [
            cam.deletion_insertion("shapes", img, method=method, class_index=int(label))
            for img, label in zip(images[:n_faith], labels[:n_faith], strict=True)
        ]
        d, rd = (
            np.mean([r.deletion_auc for r in rows]),
            np.mean([r.random_deletion_auc for r in rows]),
        )
        i, ri = (
            np.mean([r.insertion_auc for r in rows]),
            np.mean([r.random_insertion_auc for r in rows]),
        )
        print(f"    {method:<22} deletion {d:.3f} ({rd:.3f})  insertion {i:.3f} ({ri:.3f})")


def scenes(n: int = 200) -> None:
    """Issue 16's pointing game on two-object scenes, overall and per class."""
    from cnnviz import datasets, evaldata

    sets = [
        ("datasets.scenes (seed 123)", datasets.scenes(n, seed=123)),
        ("evaldata.drawn_scenes (seed 7)", evaldata.drawn_scenes(n, seed=7)),
        ("evaldata.drawn_scenes (seed 21)", evaldata.drawn_scenes(n, seed=21)),
    ]
    for name, (images, labels, masks) in sets:
        hits, far = [], []
        for img, pair, mk in zip(images, labels, masks, strict=True):
            for j in range(2):
                heat = cam.compute("gradcam", "shapes", img, class_index=int(pair[j])).heatmap
                hit, distance = cam.pointing(heat, mk[j])
                hits.append(hit)
                # A miss on the other object is a class mix-up; elsewhere, a stray peak.
                far.append(not hit and cam.pointing(heat, mk[1 - j])[0])
        hits, far, flat = np.array(hits), np.array(far), labels.reshape(-1)
        per = "  ".join(
            f"{c} {hits[flat == k].mean():.2f}" for k, c in enumerate(datasets.SHAPE_CLASSES)
        )
        print(f"{name}: {hits.mean():.3f} of {hits.size} maps on their object")
        print(f"  misses on the other object: {far.sum()}, elsewhere: {(~hits & ~far).sum()}")
        print(f"  per class: {per}")


if __name__ == "__main__":
    if "--honesty" in sys.argv:
        honesty()
    elif "--scenes" in sys.argv:
        scenes()
    else:
        main()
