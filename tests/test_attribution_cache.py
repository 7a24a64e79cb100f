"""Answers `TraceAttributor` shares per scope equal the answers worked out op by op.

`attribute` (and `attribute_records`) look most ops up by their scope string and line
kinds, and scopes up by what classify reads of them; the reference is the same attributor
with every name marked as one to work out on its own. Checked on every committed trace
(models with loss trackers, replicas, root `cond`s, RNN loops, Grappler rewrites, copies).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tb_metal_plugin.attribution import TraceAttributor
from tb_metal_plugin.events import read_events

FIXTURES = Path(__file__).parent / "fixtures"
TRACES = sorted(FIXTURES.rglob("*.xplane.pb"))


class _EveryName:
    """A set that holds every op name: no answer is shared."""

    def __contains__(self, name: object) -> bool:
        return True


def _load(trace: Path):
    try:
        return read_events(str(trace))
    except Exception:  # a deliberately broken fixture
        pytest.skip("trace does not load")


def _same_answers(ops, records) -> None:
    """Shared answers equal per-op ones, whichever op of a scope comes first."""
    own = TraceAttributor(ops)
    own._per_name = _EveryName()
    want = [own.attribute(r.name, r.type, r.line_kinds) for r in records]
    assert not own._by_scope and not own._by_facts  # the reference shared nothing
    for order in (list(records), list(reversed(records))):
        shared = TraceAttributor(ops)
        got = dict(zip(map(id, order), shared.attribute_records(order), strict=True))
        assert [got[id(r)] for r in records] == want


@pytest.mark.parametrize("trace", TRACES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_shared_answers_equal_answers_worked_out_per_op(trace):
    ev = _load(trace)
    _same_answers(list(ev.ops.keys()), list(ev.ops.values()))


class _Rec:
    def __init__(self, name: str, type_: str):
        self.name, self.type, self.line_kinds = name, type_, frozenset({"compute"})


# Ops of one scope whose answers differ by the op's own name: what no shared answer may hide.
OWN_NAME_COUNTS = [
    # A loss tracker's update beside the loss's own sum, right under `compile_loss/`.
    ("StatefulPartitionedCall/compile_loss/Add_1", "AddV2"),
    ("StatefulPartitionedCall/compile_loss/Sum", "Sum"),
    ("StatefulPartitionedCall/compile_loss/mse/Mean", "Mean"),
    # Scopes that end in `gradients/`: an op named like the first scope starts it again.
    ("StatefulPartitionedCall/model_1/dense_1/MatMul", "MatMul"),
    ("StatefulPartitionedCall/model_1/dense_1/gradients/model_1", "AddN"),
    ("StatefulPartitionedCall/model_1/dense_1/gradients/AddN", "AddN"),
    # `<op>/_<k>`: a copy of the op `dense_1`, beside the ops under that scope.
    ("StatefulPartitionedCall/model_1/dense_1/_5", "Identity"),
    ("StatefulPartitionedCall/model_1/dense_2/BiasAdd", "BiasAdd"),
    ("StatefulPartitionedCall/model_1/dense_2/_7", "Identity"),
]


def test_ops_whose_own_name_counts_are_worked_out_on_their_own():
    records = [_Rec(n, t) for n, t in OWN_NAME_COUNTS]
    answers = {
        r.name: TraceAttributor(OWN_NAME_COUNTS).attribute(r.name, r.type, r.line_kinds)
        for r in records
    }
    # The cases are real: within each scope the answers differ.
    assert answers[OWN_NAME_COUNTS[0][0]] != answers[OWN_NAME_COUNTS[1][0]]
    assert answers[OWN_NAME_COUNTS[4][0]] != answers[OWN_NAME_COUNTS[5][0]]
    assert answers[OWN_NAME_COUNTS[7][0]] != answers[OWN_NAME_COUNTS[8][0]]
    _same_answers(OWN_NAME_COUNTS, records)


def test_answers_are_shared_on_a_real_model():
    """Guard the test above: on a committed ResNet-like trace most ops share answers."""
    ev = _load(max(TRACES, key=lambda p: p.stat().st_size))
    att = TraceAttributor(ev.ops.keys(), ev.sequences, ev.first_start)
    att.attribute_records(list(ev.ops.values()))
    assert 0 < len(att._by_facts) < len(att._by_scope) < len(ev.ops) / 2
