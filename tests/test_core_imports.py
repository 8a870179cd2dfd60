"""The library is usable from a notebook: no core module may import streamlit."""

import pkgutil
import subprocess
import sys
from pathlib import Path

import cnnviz

ROOT = Path(__file__).resolve().parents[1]


def _core_modules() -> list[str]:
    return sorted(
        f"cnnviz.{m.name}"
        for m in pkgutil.iter_modules(cnnviz.__path__)
        if m.name != "ui"  # the only package allowed to import streamlit
    )


def test_core_modules_exist():
    mods = _core_modules()
    for required in (
        "cnnviz.images",
        "cnnviz.kernels",
        "cnnviz.conv",
        "cnnviz.figures",
        "cnnviz.layers",
    ):
        assert required in mods


def test_no_core_module_imports_streamlit():
    mods = _core_modules()
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}:\n"
        "    importlib.import_module(m)\n"
        "bad = sorted(k for k in sys.modules if k == 'streamlit' or k.startswith('streamlit.'))\n"
        "print('STREAMLIT:', bad)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "STREAMLIT: []" in out.stdout, out.stdout


def test_light_modules_do_not_import_tensorflow():
    code = (
        "import sys\n"
        "import cnnviz.images, cnnviz.kernels, cnnviz.conv, cnnviz.figures, cnnviz.device\n"
        "print('TF:', 'tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert "TF: False False" in out.stdout, out.stdout + out.stderr[-2000:]


def test_device_name_without_tensorflow():
    from cnnviz.device import device_name

    name = device_name()
    assert name == "CPU" or name.startswith("GPU: ")
