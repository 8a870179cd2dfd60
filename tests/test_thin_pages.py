"""Pages are thin: no page caches (caches live at one door, cnnviz/ui/) and no page builds
plotly figures itself (figures are built in cnnviz/figures.py or cnnviz/grids.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PAGES = sorted((Path(__file__).resolve().parents[1] / "pages").glob("*.py"))
CACHES = {"cache_data", "cache_resource", "cache", "experimental_memo", "experimental_singleton"}


def _problems(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] == "plotly"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "plotly":
            found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.ImportFrom) and node.module == "streamlit":
            found += [f"from streamlit import {a.name}" for a in node.names if a.name in CACHES]
        elif isinstance(node, ast.Attribute) and node.attr in CACHES:
            if isinstance(node.value, ast.Name) and node.value.id in {"st", "streamlit"}:
                found.append(f"st.{node.attr}")
    return found


def test_the_scan_finds_what_it_forbids():
    bad = (
        "import plotly.graph_objects as go\nfrom plotly import express\n"
        "import streamlit as st\nfrom streamlit import cache_data\n"
        "@st.cache_resource\ndef f(): ...\nst.cache_data.clear()\n"
    )
    assert len(_problems(bad)) == 5
    assert _problems("from cnnviz import figures\nst.plotly_chart(figures.heatmap(z))\n") == []


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_page_neither_caches_nor_imports_plotly(path):
    assert _problems(path.read_text()) == [], path.name
