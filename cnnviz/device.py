"""Which device computes: the GPU's name when TensorFlow can use one, else "CPU".

Pages that never touch a model must not pay TensorFlow's ~7 s import, so when TensorFlow is
not loaded yet we ask the NVIDIA driver instead (`nvidia-smi`), which is what TensorFlow
would find too.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys

__all__ = ["device_name"]


def device_name() -> str:
    """ "GPU: <name>" when a GPU is usable, else "CPU". Never imports TensorFlow itself."""
    if "tensorflow" in sys.modules:
        return _from_tensorflow()
    return _from_driver()


def _from_tensorflow() -> str:
    tf = sys.modules["tensorflow"]
    try:
        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return "CPU"
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU: {details.get('device_name', gpus[0].name)}"
    except Exception:  # noqa: BLE001 - a device probe must never break a page
        return "CPU"


@functools.lru_cache(maxsize=1)
def _from_driver() -> str:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return "CPU"
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "CPU"
    names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    return f"GPU: {names[0]}" if out.returncode == 0 and names else "CPU"
