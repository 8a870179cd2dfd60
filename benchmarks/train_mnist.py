"""Train page goals, measured: run by hand with `python benchmarks/train_mnist.py`.

1. Accuracy: seed 003's MNIST CNN (the Train page's default preset) on the generated
   `digits` reaches >= 97 % validation accuracy within 3 epochs on CPU. Same settings as the
   page (Adam 1e-3, batch 64, validation split 0.2), 20,000 digits.
2. Speed: the page's first-visit defaults (5,000 digits, 2 epochs) finish "in well under a
   minute" on 2 CPU cores: data, build, training and the test-set evaluation, timed end to end.
   The training time is also printed as a ratio to one epoch of the reference run above.

Prints numbers; asserts nothing about time (the machine may be shared).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from cnnviz import architectures, experiments, models  # noqa: E402
from cnnviz.train import train_model  # noqa: E402


def run(n: int, epochs: int, *, seed: int = 0, label: str) -> dict[str, float]:
    """Generate data, build the preset, train, evaluate; print and return the timings."""
    import keras

    keras.utils.set_random_seed(seed)
    t0 = time.perf_counter()
    # The page's data path: n digits (validation taken from them) + 2,000 fresh test digits.
    data = experiments.load_data("digits", n, 2000, seed)
    x, y, xv, yv = experiments.split_validation(data.x_train, data.y_train, 0.2, seed)
    t_data = time.perf_counter() - t0
    # The page's default preset and optimiser: seed 003's CNN with Rescaling inside, Adam 1e-3.
    model = architectures.mnist_cnn("flatten", (28, 28, 1), 10, rescale=True)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    epoch_times: list[float] = []
    last = [time.perf_counter()]

    def progress(epoch: int, logs: dict[str, float]) -> None:
        now = time.perf_counter()
        epoch_times.append(now - last[0])
        last[0] = now
        print(
            f"  [{label}] epoch {epoch + 1}: loss {logs['loss']:.4f}, "
            f"train acc {logs['accuracy']:.4f}, val acc {logs['val_accuracy']:.4f} "
            f"({epoch_times[-1]:.1f} s)",
            flush=True,
        )

    t1 = time.perf_counter()
    hist = train_model(
        model, x, y, epochs=epochs, batch_size=64, validation_data=(xv, yv),
        progress=progress, max_steps=None,
    )  # fmt: skip
    t_train = time.perf_counter() - t1
    probs = models.predict(model, data.x_test)
    test_acc = float(np.mean(probs.argmax(1) == data.y_test))
    total = time.perf_counter() - t0
    print(
        f"[{label}] {len(x)} train / {len(xv)} val / {len(data.x_test)} test digits: "
        f"best val acc {max(hist['val_accuracy']):.4f} (epoch "
        f"{int(np.argmax(hist['val_accuracy'])) + 1}), final val acc "
        f"{hist['val_accuracy'][-1]:.4f}, test acc {test_acc:.4f}; data {t_data:.1f} s, "
        f"training {t_train:.1f} s, total {total:.1f} s",
        flush=True,
    )
    return {
        "val": max(hist["val_accuracy"]),
        "train_s": t_train,
        "total_s": total,
        "epoch_s": float(np.mean(epoch_times)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="digits for the accuracy run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import tensorflow as tf

    print(
        f"CPU cores: {os.cpu_count()}, TF intra-op threads: "
        f"{tf.config.threading.get_intra_op_parallelism_threads() or 'default (all)'}, "
        f"load average: {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    ref = run(args.n, 3, seed=args.seed, label="accuracy, 3 epochs")
    goal = "PASS" if ref["val"] >= 0.97 else "FAIL"
    print(f"GOAL >= 97 % validation accuracy within 3 epochs: {ref['val']:.2%} -> {goal}")
    page = run(5000, 2, seed=args.seed, label="page defaults")
    print(
        f"Page defaults: {page['total_s']:.1f} s end to end (goal: well under 60 s); "
        f"training = {page['train_s'] / ref['epoch_s']:.2f} × one epoch of the 20,000-digit run"
    )


if __name__ == "__main__":
    main()
