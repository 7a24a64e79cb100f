"""Map the nodes TensorFlow executed (partition graphs) to the graph ops Keras created.

The executor runs rewritten graphs: nested functions are inlined under the call op's
name (`StatefulPartitionedCall/<callee op>`), `while` and `if` are lowered with their
bodies and branches under `<op>/body/_N/`, `<op>/cond/_N/`, `<op>/then/_N/`,
`<op>/else/_N/`, the partitioner adds `_Send`/`_Recv` pairs, and Grappler adds or renames
a few nodes. The map walks that structure through the recorded function graphs (call
ops' `f`, loops' `body`/`cond`, branches' `then_branch`/`else_branch`/`branches`), so two
ops with the same local name in different functions are never confused. Nodes that are
not a recorded op follow the op they were made from: the deepest op whose name is a
prefix (lowering's `Enter`/`Exit`/`Merge`), the tensor a `_Send` sends (and the `_Recv`
that receives it), else the node's own data inputs.
"""

from __future__ import annotations

import re
from typing import Any

Record = tuple  # (layer path or None, phase, origin)
_MARK = re.compile(r"^_\d+$")
_CALL_ATTRS = ("f",)
# Nodes the runtime adds around the recorded ops (arguments, copies of nothing known).
_PLUMBING = (None, "other", "runtime")
_LOOP_PARTS = {"body": "body", "cond": "cond", "then": "then_branch", "else": "else_branch"}


class GraphMap:
    """Resolve executed node names through the function graphs seen while tracing."""

    def __init__(self, ops: dict[int, tuple[Any, Record]]) -> None:
        # ops: id(op) -> (op, record) for every op created while recording.
        self.record = {key: rec for key, (_, rec) in ops.items()}
        self.index: dict[int, dict[str, Any]] = {}
        graphs: dict[int, Any] = {}
        for op, _ in ops.values():
            graphs[id(op.graph)] = op.graph
        for key, graph in graphs.items():
            try:
                self.index[key] = {op.name: op for op in graph.get_operations()}
            except Exception:  # a graph torn down already: its recorded ops still count
                self.index[key] = {}
        for op, _ in ops.values():
            self.index[id(op.graph)].setdefault(op.name, op)
        self.graphs = graphs
        self._by_function_name = {
            getattr(g, "name", None): g for g in graphs.values() if getattr(g, "name", None)
        }
        called = set()
        for graph in graphs.values():
            for op in self.index[id(graph)].values():
                for callee in self._callees(op):
                    called.add(id(callee))
        # Roots first: the function the runtime instantiated is one nobody calls.
        self.roots = [g for k, g in graphs.items() if k not in called] + [
            g for k, g in graphs.items() if k in called
        ]

    # -- function structure -------------------------------------------------------------

    def _function_graph(self, op: Any, name: str) -> Any:
        graph = op.graph
        while graph is not None:
            try:
                fn = graph._get_function(name)
            except Exception:
                fn = None
            if fn is not None:
                inner = getattr(fn, "graph", None)
                if inner is not None and id(inner) in self.index:
                    return inner
            graph = getattr(graph, "outer_graph", None)
        return self._by_function_name.get(name)

    def _attr_graphs(self, op: Any, attr: str) -> list[Any]:
        try:
            value = op.get_attr(attr)
        except Exception:
            return []
        values = value if isinstance(value, list) else [value]
        out = []
        for v in values:
            name = getattr(v, "name", None)
            if isinstance(name, bytes):
                name = name.decode()
            graph = self._function_graph(op, name) if name else None
            if graph is not None:
                out.append(graph)
        return out

    def _callees(self, op: Any) -> list[Any]:
        out = []
        for attr in (*_CALL_ATTRS, *_LOOP_PARTS.values(), "branches"):
            out.extend(self._attr_graphs(op, attr))
        return out

    # -- name matching ------------------------------------------------------------------

    def find(self, name: str, roots: list[Any] | None = None) -> tuple[Any, str] | None:
        """The recorded op a node name denotes and how: `exact`, `derived` or `weak`.

        `derived`: a node the runtime made from that op (a lowered loop's `Enter`).
        `weak`: the name enters the op's function body but matches nothing there (a
        Grappler-made node inside it): the op is only a last resort.
        """
        parts = name.split("/")
        for graph in self.roots if roots is None else roots:
            found = self._match(graph, parts)
            if found is not None:
                return found
        return None

    def _match(self, graph: Any, parts: list[str]) -> tuple[Any, str] | None:
        index = self.index.get(id(graph), {})
        op = index.get("/".join(parts))
        if op is not None:
            return op, "exact"
        for k in range(len(parts) - 1, 0, -1):
            op = index.get("/".join(parts[:k]))
            if op is None:
                continue
            rest = parts[k:]
            inner = self._descend(op, rest)
            if inner is not None:
                return inner
            enters_body = bool(self._attr_graphs(op, "f")) or (
                len(rest) > 2 and _MARK.match(rest[1]) is not None
            )
            return op, "weak" if enters_body else "derived"
        return None

    def _descend(self, op: Any, rest: list[str]) -> tuple[Any, str] | None:
        for graph in self._attr_graphs(op, "f"):
            found = self._match(graph, rest)
            if found is not None:
                return found
        # Lowered control flow: <op>/body/_N/<body op>, <op>/then/_N/..., and for Case
        # <op>/branch<k>/_N/... (the k-th of `branches`).
        if len(rest) > 2 and _MARK.match(rest[1]):
            part = rest[0]
            graphs: list[Any] = []
            if part in _LOOP_PARTS:
                graphs = self._attr_graphs(op, _LOOP_PARTS[part])
            elif part.startswith("branch") and part[6:].isdigit():
                branches = self._attr_graphs(op, "branches")
                k = int(part[6:])
                graphs = branches[k : k + 1]
            for graph in graphs:
                found = self._match(graph, rest[2:])
                if found is not None:
                    return found
        return None


def op_table(
    ops: dict[int, tuple[Any, Record]], run_metadata: Any
) -> tuple[list[list[Any]], dict[str, int]]:
    """Return the manifest's `ops` rows `[name, type, layer, phase, origin]` and counts.

    One row per executed node of the captured partition graphs whose creator is known;
    counts say how each was matched (`exact`, `derived`, `original`, `transfer`, `inputs`,
    `argument`, `unknown`). Each instantiated function is mapped through the recorded
    graph it was made from; functions made from none (eager single ops, tf.data) give
    no rows.
    """
    gmap = GraphMap(ops)
    counts = dict.fromkeys(
        ("exact", "derived", "original", "transfer", "inputs", "argument", "unknown"), 0
    )
    rows: list[list[Any]] = []
    seen: set[tuple[str, str]] = set()
    for function_graph in run_metadata.function_graphs:
        roots = _roots_of(gmap, function_graph)
        if not roots:  # not a function Keras traced while we recorded: no claims
            counts["unknown"] += sum(len(g.node) for g in function_graph.partition_graphs)
            continue
        for row in _function_rows(gmap, roots, function_graph.partition_graphs, counts):
            if (row[0], row[1]) not in seen:
                seen.add((row[0], row[1]))
                rows.append(row)
    return rows, counts


def _roots_of(gmap: GraphMap, function_graph: Any) -> list[Any]:
    """The recorded graph an instantiated function was made from ([] when none).

    Its pre-optimization graph holds the function body's own node names (before
    inlining adds the callees'): most of the recorded graph's ops must be there.
    Without that graph (another TensorFlow), every recorded graph is a candidate.
    """
    pre = {node.name for node in function_graph.pre_optimization_graph.node}
    if not pre:
        return gmap.roots
    best, best_share = None, 0.0
    for graph in gmap.roots:
        # Placeholders become the function's arguments under other names.
        names = {n for n, op in gmap.index.get(id(graph), {}).items() if op.type != "Placeholder"}
        if not names:
            continue
        share = len(pre.intersection(names)) / len(names)
        if share > best_share:
            best, best_share = graph, share
    return [best] if best is not None and best_share >= 0.6 else []


def _function_rows(
    gmap: GraphMap, roots: list[Any], partition_graphs: Any, counts: dict[str, int]
) -> list[list[Any]]:
    nodes: dict[str, Any] = {}
    # The same node can appear in several partition graphs with another kernel type
    # (one function instantiated twice, rewritten differently): one row per type.
    types: dict[str, list[str]] = {}
    sends: dict[str, str] = {}
    for graph in partition_graphs:
        for node in graph.node:
            nodes.setdefault(node.name, node)
            seen_types = types.setdefault(node.name, [])
            if node.op not in seen_types:
                seen_types.append(node.op)
            if node.op in ("_Send", "_HostSend") and "tensor_name" in node.attr:
                sends[node.attr["tensor_name"].s.decode()] = node.name
    memo: dict[str, tuple[Record | None, str]] = {}

    def resolve(name: str, depth: int = 0) -> tuple[Record | None, str]:
        if name in memo:
            return memo[name]
        memo[name] = (None, "unknown")  # cycles (loop back edges) end here
        node = nodes.get(name)
        result: tuple[Record | None, str] = (None, "unknown")
        if node is not None and node.op in ("_Send", "_HostSend", "_Recv", "_HostRecv"):
            source = _data_inputs(node)[:1]
            if node.op in ("_Recv", "_HostRecv"):
                tensor = node.attr["tensor_name"].s.decode() if "tensor_name" in node.attr else ""
                source = [sends[tensor]] if tensor in sends else []
            # A control-only send (the partitioner grouping cross-device control edges)
            # follows what it waits for; one that moves nothing we know is `other`.
            source = source or _control_inputs(node)[:1]
            rec = resolve(source[0], depth + 1)[0] if source and depth < 64 else None
            result = (rec or _PLUMBING, "transfer")
        else:
            found = gmap.find(name, roots)
            weak = None
            if node is not None and (found is None or found[1] != "exact"):
                # A rewrite's debug info beats a name prefix (`<op>/ArithmeticOptimizer/..`
                # is not a node lowered from <op>).
                result = _original(gmap, roots, node) or result
            if found is not None and result[0] is None:
                op, how = found
                rec = gmap.record.get(id(op))
                if rec is not None and rec[2] != "unrecorded":
                    if how == "weak":
                        weak = (rec, "derived")
                    else:
                        result = (rec, how)
            if result[0] is None and node is not None and node.op == "_Arg":
                # The function's own arguments (iterator handle, step inputs).
                result = (_PLUMBING, "argument")
            if result[0] is None and node is not None and depth < 64:
                # A Grappler-made node (ArithmeticOptimizer's AddOpsRewrite, ...) is
                # the work of what feeds it; arguments only when nothing else does.
                found_inputs = [resolve(src, depth + 1)[0] for src in _data_inputs(node)]
                known = [r for r in found_inputs if r is not None]
                real = [r for r in known if r is not _PLUMBING]
                if real or known:
                    result = ((real or known)[0], "inputs")
            if result[0] is None and weak is not None:
                result = weak
        memo[name] = result
        return result

    rows = []
    for name in nodes:
        rec, how = resolve(name)
        for op_type in types[name]:
            counts[how if rec is not None else "unknown"] += 1
            if rec is None:
                continue
            layer, phase, origin = rec
            if how in ("transfer", "argument"):
                origin = how
            rows.append([name, op_type, list(layer) if layer else None, phase, origin])
    return rows


def _original(gmap: GraphMap, roots: list[Any], node: Any) -> tuple[Record, str] | None:
    """A node Grappler made in place of recorded ops: the work of the op it replaced.

    Grappler names a rewritten node `<scope>/<Optimizer>/<Stage>_<node>` after the node it
    replaces (`.../add_1/ArithmeticOptimizer/AddOpsRewrite_Add` stands for `add_1/Add`),
    and its debug info lists every node folded in (a BatchNorm's add merged into the next
    layer's sum), local to the function they came from; the node's own name says where
    that function was inlined (a prefix of it). The named node decides; without one, the
    last original (the value the new node computes).
    """
    parts = node.name.split("/")
    originals = list(reversed(node.experimental_debug_info.original_node_names))
    stage = next((i for i, p in enumerate(parts[:-1]) if p.endswith("Optimizer")), None)
    names: list[str] = []  # full names in the executed graph, best first
    if stage is not None:
        scope, tail = "/".join(parts[:stage]), parts[-1]
        cuts = [tail[i + 1 :] for i, c in enumerate(tail) if c == "_"]
        names += [
            f"{scope}/{o.rsplit('/', 1)[-1]}" for o in originals if o.rsplit("/", 1)[-1] in cuts
        ]
        names += [f"{scope}/{cut}" for cut in cuts]
    # Debug info names are local to the function: the node's name says where it was inlined.
    names += ["/".join(parts[:k] + [o]) for o in originals for k in range(len(parts) - 1, -1, -1)]
    for name in names:
        found = gmap.find(name, roots)
        if found is None or found[1] != "exact":
            continue
        rec = gmap.record.get(id(found[0]))
        if rec is not None and rec[2] != "unrecorded":
            return rec, "original"
    return None


def _data_inputs(node: Any) -> list[str]:
    return [i.split(":")[0] for i in node.input if not i.startswith("^")]


def _control_inputs(node: Any) -> list[str]:
    return [i[1:] for i in node.input if i.startswith("^")]


__all__ = ["GraphMap", "op_table"]
