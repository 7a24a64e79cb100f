"""The seventh held-out set (tests/gt/models_i.py) and the stock run's step graph.

Its first score (trace file only / stock run with the step graph / callback) left
tied_embeddings under the thresholds in both stock modes: the tape makes the embedding's
sparse gradient dense before adding the output projection's, and that op's inputs in the
graph are a layer upstream (Grappler dropped the reshape between) and the embedding's
segment ids. The committed copy holds the fix; the slow test records a fresh stock run,
so a Keras or TensorFlow that stops writing the graph fails here, not silently.
"""

from __future__ import annotations

import pytest

from tb_metal_plugin import api
from tests.gt import score as gt
from tests.test_ground_truth import labelled_rows, record_in_subprocess

DENSIFIED = "StatefulPartitionedCall/AddN/inputs_1:UnsortedSegmentSum"


def test_a_densified_sparse_gradient_is_its_embeddings():
    labels, with_graph = labelled_rows("tied_embeddings", "graph")
    _, names_only = labelled_rows("tied_embeddings", "trace")
    want = labels["events"][DENSIFIED]["layer"]
    assert want == ["tied", "emb"]
    assert with_graph[DENSIFIED]["layer"] == want
    assert names_only[DENSIFIED]["layer"] != want  # what the graph adds


@pytest.mark.slow
def test_a_fresh_stock_run_carries_its_step_graph(tmp_path):
    out = record_in_subprocess(tmp_path, "tied_embeddings", "stock")
    labels, rows = labelled_rows("tied_embeddings", "graph", out)
    trace = out / "tied_embeddings" / labels["trace"]
    assert api.load_file(trace).attribution_source == "trace_graph"
    r = gt.score(labels, rows)
    failing = {k: r[k] for k, t in gt.THRESHOLDS["graph"].items() if r[k] < t}
    assert not failing, r["worst"][:4]
