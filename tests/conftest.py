"""Shared test set-up: quiet, deterministic, capped loops."""

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Cap every optimisation / training loop the library runs in tests (tf-keras-vis style).
os.environ.setdefault("CNNVIZ_MAX_STEPS", "3")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# A fresh on-disk cache per test run (cnnviz.diskcache): results from an earlier run, or from a
# developer's own server, must never make a test pass.
os.environ["CNNVIZ_CACHE_DIR"] = tempfile.mkdtemp(prefix="cnnviz-test-cache-")
