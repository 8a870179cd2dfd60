"""Filters page: batched feature visualisation as a ratio to the keras.io recipe, filter by filter.

Workload (issue 7): VGG16 (random weights: speed does not depend on them), layer block3_conv1,
16 filters, 128×128 images, 20 steps. All are measured here, in the same run, after one
small warm-up of each (so none pays TensorFlow's one-off start-up); the runs alternate
`--repeats` times and each keeps its best wall-clock and best CPU time (this process, all
threads: on a machine shared with other work it is the steadier of the two):

- ours: `cnnviz.featureviz.visualize` with its defaults (FFT image, decorrelated colour,
  pad/jitter/zoom/rotate transforms, Adam), all 16 filters as one batch, one compiled step;
- recipe: keras.io's "Visualizing what convnets learn" (F. Chollet) as written: a
  `tf.function` gradient-ascent step called with a Python `filter_index`, looping over the
  filters one at a time (so it traces once per filter, as the recipe does);
- recipe, traced once: the same loop with the filter index passed as a tensor, the fairest
  filter-by-filter baseline (no retracing).

Goals: ours / recipe <= 1.0× on a CPU. On a GPU, batching should make ours >= 5× faster than
the recipe (ratio <= 0.2×): a GOAL to verify when a GPU is available, not a measured claim.

Run: python benchmarks/featureviz.py [--steps 20] [--filters 16] [--size 128] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.pop("CNNVIZ_MAX_STEPS", None)  # the benchmark runs the real number of steps

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from cnnviz import featureviz  # noqa: E402
from cnnviz.device import device_name  # noqa: E402

LAYER = "block3_conv1"


def keras_io_recipe(
    model: keras.Model, filters: list[int], size: int, steps: int, *, tensor_index: bool
) -> list:
    """keras.io's loop: one filter at a time, l2-normalised gradient steps of 10, from noise."""
    feature_extractor = keras.Model(inputs=model.inputs, outputs=model.get_layer(LAYER).output)

    def compute_loss(input_image, filter_index):
        activation = feature_extractor(input_image)
        # The recipe avoids border artifacts by leaving out the border pixels.
        filter_activation = activation[:, 2:-2, 2:-2, filter_index]
        return tf.reduce_mean(filter_activation)

    @tf.function
    def gradient_ascent_step(img, filter_index, learning_rate):
        with tf.GradientTape() as tape:
            tape.watch(img)
            loss = compute_loss(img, filter_index)
        grads = tape.gradient(loss, img)
        grads = tf.math.l2_normalize(grads)
        img += learning_rate * grads
        return loss, img

    out = []
    for filter_index in filters:
        index = tf.constant(filter_index) if tensor_index else filter_index
        img = (tf.random.uniform((1, size, size, 3)) - 0.5) * 0.25
        for _ in range(steps):
            loss, img = gradient_ascent_step(img, index, 10.0)
        out.append(img[0].numpy())
    return out


def timed(fn) -> tuple[float, float]:
    """(wall-clock seconds, CPU seconds of this process, all threads) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def best(a: tuple[float, float] | None, b: tuple[float, float]) -> tuple[float, float]:
    return b if a is None else (min(a[0], b[0]), min(a[1], b[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--filters", type=int, default=16)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    filters = list(range(args.filters))

    keras.utils.set_random_seed(0)
    model = keras.applications.VGG16(weights=None, include_top=False)

    def ours():
        featureviz.visualize(model, LAYER, filters, steps=args.steps, size=args.size)

    def plain():
        featureviz.plain_gradient_ascent(model, LAYER, filters, steps=args.steps, size=args.size)

    def recipe():
        keras_io_recipe(model, filters, args.size, args.steps, tensor_index=False)

    def recipe_once():
        keras_io_recipe(model, filters, args.size, args.steps, tensor_index=True)

    # Warm-up: one step of each on one filter (graph libraries, thread pools, allocator).
    featureviz.visualize(model, LAYER, [0], steps=1, size=args.size)
    keras_io_recipe(model, [0], args.size, 1, tensor_index=True)

    # The runs alternate (ABCD ABCD ...) and each keeps its best times, so load from other
    # processes on a shared machine hits all alike.
    times: dict[str, tuple[float, float] | None] = dict.fromkeys(
        ["ours", "plain", "recipe", "recipe_once"]
    )
    for _ in range(args.repeats):
        for name, fn in (
            ("ours", ours),
            ("recipe", recipe),
            ("plain", plain),
            ("recipe_once", recipe_once),
        ):
            times[name] = best(times[name], timed(fn))

    gpu = device_name() != "CPU"
    print(f"device: {device_name()}")
    print(
        f"VGG16 (random weights) {LAYER}, {args.filters} filters, {args.size}², {args.steps} steps"
    )
    print("                                              wall s   CPU s")
    rows = [
        ("ours (FFT + transforms + Adam, one batch)", "ours"),
        ("ours, plain options (pixels, SGD, batch)", "plain"),
        ("keras.io recipe, filter by filter", "recipe"),
        ("keras.io recipe, filter by filter, 1 trace", "recipe_once"),
    ]
    for label, key in rows:
        print(f"  {label:43s} {times[key][0]:7.2f} {times[key][1]:7.2f}")
    for ref, label in (("recipe", "recipe"), ("recipe_once", "recipe, 1 trace")):
        print(
            f"  ratio ours / {label:16s} wall {times['ours'][0] / times[ref][0]:.2f}×, "
            f"CPU {times['ours'][1] / times[ref][1]:.2f}×"
        )
    print("  goal: ours / recipe <= 1.0× on a CPU (CPU time is the steadier measure on a shared")
    print("  machine: it counts only this process's work; wall-clock includes other processes)")
    if gpu:
        print(
            f"  GPU goal: ours >= 5× faster than the recipe: {times['recipe'][0] / times['ours'][0]:.1f}× measured (wall)"
        )
    else:
        print("  GPU goal (>= 5× faster than the recipe with batching): not measured, no GPU here")


if __name__ == "__main__":
    main()
