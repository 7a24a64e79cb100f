"""The per-scope name readers agree with the plain component-list functions they stand for.

`name_tail`, `name_scopes`, `name_is_backward` (opnames) and `step_path`, `root_branch`
(root_owners) read cached facts about an op's scope string and add the op's own name; the
reference here is the definition on the whole split name (`tail`, `restart`,
`is_backward`, the wrapper scan). Checked on every op name of the committed traces and on
every name of up to four components built from the markers these functions look for
(inlining marks, wrappers, `gradients`, replicas, root `cond` branches), so the corner
cases (an op named like a scope, `gradients` right above the op) are all there.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tb_metal_plugin import opnames
from tb_metal_plugin.events import read_events
from tb_metal_plugin.root_owners import root_branch, step_path

FIXTURES = Path(__file__).parent / "fixtures"
ATOMS = [
    "",
    "_3",
    "body",
    "cond_1",
    "then",
    "while",
    "gradients",
    "gradient_tape",
    "dense_1",
    "x_grad",
    "replica_1",
    "StatefulPartitionedCall",
    "PartitionedCall_2",
    "xPartitionedCall",
]


def _built_names() -> list[str]:
    return ["/".join(parts) for n in range(1, 5) for parts in itertools.product(ATOMS, repeat=n)]


def _trace_names() -> list[str]:
    names: set[str] = set()
    for path in sorted(FIXTURES.rglob("*.xplane.pb"))[:12]:
        names.update(name for name, _ in read_events(str(path)).ops)
    return sorted(names)


def _step_path(name: str) -> list[str] | None:
    comps = name.split("/")
    start = None
    for i, c in enumerate(comps[:-1]):
        if opnames.WRAPPER.match(c):
            start = i + 1
    if len(comps) > 2 and all(opnames.WRAPPER.match(c) for c in comps[:2]):
        return None  # inside a function the step calls: not the step's own
    return comps[start:] if start is not None else None


def _root_branch(name: str) -> str | None:
    path = _step_path(name) or []
    if len(path) > 3 and path[0].startswith("cond") and path[1] in ("then", "else"):
        if opnames.is_mark(path[2]):
            return "/".join(path[:3])
    return None


@pytest.mark.parametrize("source", ["built", "traces"])
def test_per_scope_readers_match_the_whole_name_definitions(source):
    names = _built_names() if source == "built" else _trace_names()
    assert len(names) > 1000
    wrong = []
    for name in names:
        comps = name.split("/")
        tail = opnames.tail(comps)
        want = (
            tuple(tail),
            tuple(opnames.restart(list(tail))),
            opnames.is_backward(comps),
            _step_path(name),
            _root_branch(name),
        )
        got = (
            opnames.name_tail(name),
            opnames.name_scopes(name),
            opnames.name_is_backward(name),
            step_path(name),
            root_branch(name),
        )
        if got != want:
            wrong.append((name, got, want))
    assert not wrong, wrong[:3]


def test_scope_readers_cache_per_scope_not_per_name():
    """Ops of one scope share its facts: the cache grows with scopes, not op names."""
    opnames._head.cache_clear()
    names = [f"model_1/dense_{k}/op_{i}" for k in range(3) for i in range(50)]
    for name in names:
        opnames.name_scopes(name)
    assert opnames._head.cache_info().currsize == 3
