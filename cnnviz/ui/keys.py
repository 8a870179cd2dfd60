"""Cache keys computed by us, for arrays Streamlit's own hashing would only sample.

Light on purpose (no Keras), so pages that never load TensorFlow can use it.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["image_key"]


def image_key(image: np.ndarray) -> str:
    """A hash of the image's shape, dtype and every byte.

    Streamlit's hashing of a large numpy array looks at a random sample of its values, so two
    different photos could collide.
    """
    arr = np.ascontiguousarray(image)
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{arr.shape}|{arr.dtype}|".encode())
    h.update(arr.tobytes())
    return h.hexdigest()
