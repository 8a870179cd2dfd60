"""Only cnnviz/layers.py may reach into Keras' private graph attributes.

Keras 3 keeps its graph in private attributes (`_keras_history`, `_inbound_nodes`,
`_run_through_graph`, ...) that change between releases. cnnviz/layers.py is the one fence
around them, with public helpers (`feature_model`, `output_layer`, `final_layer`,
`inbound_layers`, `input_source`, `logits_head`); this test reads every other file of the
library, the pages and the router, and fails if one touches them, by attribute or by name
(`getattr(layer, "_inbound_nodes")`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = ROOT / "cnnviz" / "layers.py"

#: Keras 3's private graph attributes (Functional, Operation, Node, KerasTensor).
PRIVATE = frozenset(
    {
        "_keras_history",
        "_keras_mask",
        "_inbound_nodes",
        "_outbound_nodes",
        "_run_through_graph",
        "_nodes_by_depth",
        "_operations_by_depth",
        "_layers_by_depth",
        "_functional",
        "_input_layers",
        "_output_layers",
        "_network_nodes",
        "_get_node_attribute_at_index",
    }
)


def private_uses(source: str) -> list[tuple[int, str]]:
    """(line, name) of every private Keras graph attribute in `source`, by access or string."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in PRIVATE:
            found.append((node.lineno, node.attr))
        elif isinstance(node, ast.Constant) and node.value in PRIVATE:
            found.append((node.lineno, node.value))
    return sorted(found)


def _scanned() -> list[Path]:
    # Everything under cnnviz/ (packages too), every page, and the router.
    files = [*ROOT.joinpath("cnnviz").rglob("*.py"), *ROOT.joinpath("pages").rglob("*.py")]
    return sorted([*files, ROOT / "app.py"])


def test_the_scan_finds_private_graph_walking():
    snippet = (
        "layer = t._keras_history.operation\n"
        "nodes = getattr(layer, '_inbound_nodes', [])\n"
        "graph = model._functional\n"
        "ok = model.layers, self._keras_bytes, x.inbound_nodes\n"
    )
    assert private_uses(snippet) == [
        (1, "_keras_history"),
        (2, "_inbound_nodes"),
        (3, "_functional"),
    ]


def test_the_fence_itself_uses_them():
    # If layers.py stopped needing them, the names above would be stale.
    uses = {name for _, name in private_uses(FENCE.read_text())}
    assert {"_keras_history", "_inbound_nodes", "_run_through_graph", "_functional"} <= uses


@pytest.mark.parametrize("path", _scanned(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_file_outside_layers_reaches_into_keras_graph(path):
    if path == FENCE:
        return
    uses = private_uses(path.read_text())
    assert not uses, (
        f"{path.relative_to(ROOT)} uses private Keras graph attributes "
        f"{', '.join(f'{name} (line {line})' for line, name in uses)}. "
        "Use the public helpers of cnnviz/layers.py (inbound_layers, output_layer, "
        "final_layer, input_source, logits_head, feature_model) or add one there."
    )
