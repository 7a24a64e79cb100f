"""Map executed node names (partition graphs) to the labelled Python graph ops, structurally.

A node of an executed (post-Grappler, inlined, lowered) graph is found by walking the
function structure the runtime flattened:
- `<call op>/<rest>`: a call op (any op with a function attr `f`, e.g.
  StatefulPartitionedCall) whose callee graph holds `<rest>`;
- `<while op>/body/_N/<rest>` and `/cond/_N/<rest>`: the while's body / cond graph
  (only the lowering's `_N` is a wildcard); other `<while op>/<x>` nodes are the
  lowering's own Enter/Merge/Switch/... (the while op's label);
- `<if op>/then/_N/<rest>`, `/else/_N/<rest>`: the branch graphs; other names: lowering;
- inlined call glue (`<call op>/input/_N`, `/output/_N`, control nodes): the call op;
- a node Grappler created or renamed: `experimental_debug_info.original_node_names`
  (names inside the function `original_func_names` names); without debug info, the node
  it replaced when its name follows Grappler's `<scope>/<X>Optimizer/<Stage>_<node>`
  rule and `<scope>/<node>` is a labelled op no longer executed; else the label its data
  inputs all share (else its consumers), read off the executed graph's edges; when they
  disagree it stays unmapped ("grappler-created");
- `_Send`/`_Recv`: the producer of the tensor they move (input / matching tensor_name).
No layer name is ever parsed.
"""

from __future__ import annotations

import re

CALL_ATTR = "f"
WHILE_TYPES = {"While", "StatelessWhile"}
IF_TYPES = {"If", "StatelessIf"}
CASE_TYPES = {"Case", "StatelessCase"}
_N = re.compile(r"^_\d+$")


def callee_name(op) -> str | None:
    """Name of the function a call op calls (None for other ops)."""
    try:
        return op.get_attr(CALL_ATTR).name
    except Exception:
        return None


class Structure:
    """Every labelled graph, indexed by node name, plus function name -> graph."""

    def __init__(self, graphs: list) -> None:
        self.graphs = graphs
        self._index: dict[int, dict] = {}
        self.by_fname: dict[str, object] = {}
        for g in graphs:
            for fname, fn in getattr(g, "_functions", {}).items():
                try:
                    self.by_fname[str(fname)] = fn.graph
                except Exception:
                    continue
            fname = getattr(g, "_gt_fname", None)
            if fname:
                self.by_fname[fname] = g

    def names(self, graph) -> dict:
        """{op name: op} of a graph (built once)."""
        idx = self._index.get(id(graph))
        if idx is None:
            idx = self._index[id(graph)] = {op.name: op for op in graph.get_operations()}
        return idx

    def node(self, graph, name: str):
        return self.names(graph).get(name)

    def callee(self, op):
        name = callee_name(op)
        return self.by_fname.get(name) if name else None

    def resolve(self, graph, name: str, depth: int = 0, calls: list | None = None):
        """(op, how) for an executed node name inside `graph`; (None, why) if none.
        `calls`, when given, receives the function call ops walked through, outermost first."""
        if depth > 40:
            return None, "too deep"
        op = self.node(graph, name)
        if op is not None:
            return op, "exact"
        parts = name.split("/")
        for i in range(len(parts) - 1, 0, -1):
            head = self.node(graph, "/".join(parts[:i]))
            if head is None:
                continue
            rest = parts[i:]
            if head.type in WHILE_TYPES:
                sub = {"body": "_body_graph", "cond": "_cond_graph"}.get(rest[0])
                return self._branch(head, sub, rest, depth, calls)
            if head.type in IF_TYPES:
                sub = {"then": "_true_graph", "else": "_false_graph"}.get(rest[0])
                return self._branch(head, sub, rest, depth, calls)
            if head.type in CASE_TYPES:
                if rest[0].startswith("branch") and len(rest) > 2 and _N.match(rest[1]):
                    graphs = getattr(head, "_branch_graphs", None) or []
                    k = rest[0][len("branch") :]
                    if k.isdigit() and int(k) < len(graphs):
                        return self.resolve(graphs[int(k)], "/".join(rest[2:]), depth + 1, calls)
                return head, "lowering"
            callee = self.callee(head)
            if callee is not None:
                inner: list | None = [] if calls is not None else None
                op, how = self.resolve(callee, "/".join(rest), depth + 1, inner)
                if op is not None:
                    if calls is not None:
                        calls += [head, *inner]
                    return op, how
                if _is_glue(rest):
                    return head, "call glue"
                return None, "no such node"
        return None, "no such node"

    def _branch(self, head, attr, rest, depth, calls=None):
        sub = getattr(head, attr, None) if attr else None
        if sub is not None and len(rest) > 2 and _N.match(rest[1]):
            op, how = self.resolve(sub, "/".join(rest[2:]), depth + 1, calls)
            if op is not None:
                return op, how
            return None, "no such node"
        if _is_glue(rest):
            return head, "lowering"
        return None, "no such node"


def _is_glue(rest: list[str]) -> bool:
    """Names the inliner / control-flow lowering give their own nodes: `<kind>` or `<kind>/_N`."""
    return len(rest) == 1 or (len(rest) == 2 and bool(_N.match(rest[1])))


def label_of(op) -> dict | None:
    """The creation-time label the labeller stored on an op."""
    return getattr(op, "_gt_label", None)


def label_partition(structure: Structure, root, run_metadata_graph) -> dict[str, dict]:
    """{node name: label record} for one executed function (its partition graphs)."""
    nodes = {}
    for pg in run_metadata_graph.partition_graphs:
        for n in pg.node:
            nodes[n.name] = n
    out: dict[str, dict] = {}
    sends = {}
    for n in nodes.values():
        if n.op == "_Send" and "tensor_name" in n.attr:
            sends[n.attr["tensor_name"].s.decode()] = n
    for name, n in nodes.items():
        out[name] = _record(structure, root, n, nodes, sends)
    _label_by_edges(nodes, out)
    return out


def _key(label: dict) -> tuple:
    return (tuple(label["layer"]) if label["layer"] else None, label["phase"])


def _label_by_edges(nodes: dict, out: dict) -> None:
    """Nodes Grappler created without debug info: the label all their data inputs share
    (else all their consumers share), found through the executed graph's edges."""
    consumers: dict[str, list[str]] = {}
    for n in nodes.values():
        for i in n.input:
            if not i.startswith("^"):
                consumers.setdefault(i.split(":")[0], []).append(n.name)
    pending = [k for k, r in out.items() if r.get("reason") == "grappler-created"]
    for _ in range(4):  # chains of created nodes settle in a few rounds
        progress = False
        for name in pending:
            if out[name].get("label") is not None:
                continue
            inputs = [i.split(":")[0] for i in nodes[name].input if not i.startswith("^")]
            controls = [i[1:] for i in nodes[name].input if i.startswith("^")]
            for how, around in (
                ("inputs", inputs),
                ("control inputs", controls),  # the partitioner's dummy for a control edge
                ("consumers", consumers.get(name, [])),
            ):
                labels = [out[x]["label"] for x in around if out.get(x, {}).get("label")]
                if (
                    labels
                    and len({_key(lab) for lab in labels}) == 1
                    and len(labels) == len(around)
                ):
                    out[name].update(label=labels[0], how=f"grappler node: its {how}")
                    out[name].pop("reason", None)
                    # A part of a cross-layer rewrite (an AddOpsRewrite leaf) is one too.
                    fused = [out[x]["fused_across_layers"] for x in around
                             if out[x].get("fused_across_layers")]  # fmt: skip
                    if fused:
                        out[name]["fused_across_layers"] = fused[0]
                    progress = True
                    break
        if not progress:
            break
    for name in pending:
        if out[name].get("label") is None:
            out[name]["reason"] = "grappler-created, neighbours in several layers/phases"
    # Copies of nodes labelled only now (a control edge's dummy) take their label.
    for rec in out.values():
        prod = rec.get("producer")
        if rec.get("label") is None and prod and out.get(prod, {}).get("label"):
            rec["label"] = out[prod]["label"]
            rec.pop("reason", None)


def _producer(n, sends):
    if n.op == "_Send" and n.input:
        return n.input[0].lstrip("^").split(":")[0]
    if n.op == "_Recv" and "tensor_name" in n.attr:
        send = sends.get(n.attr["tensor_name"].s.decode())
        if send is not None and send.input:
            return send.input[0].lstrip("^").split(":")[0]
    return None


def _record(structure, root, n, nodes, sends, depth=0) -> dict:
    rec = {"type": n.op, "device": n.device}
    if n.op in ("_Send", "_Recv", "_HostSend", "_HostRecv"):
        prod = _producer(n, sends)
        if prod and prod in nodes and depth < 5:
            inner = _record(structure, root, nodes[prod], nodes, sends, depth + 1)
            inner = {k: v for k, v in inner.items() if k not in ("type", "device")}
            rec.update(inner)
            rec["how"] = "copy of " + prod
            if rec.get("label") is None:
                rec["producer"] = prod
            return rec
        rec.update(label=None, reason="copy of a node with no label", producer=prod)
        return rec
    calls: list = []
    op, how = structure.resolve(root, n.name, calls=calls)
    originals = list(n.experimental_debug_info.original_node_names)
    ofuncs = list(n.experimental_debug_info.original_func_names)
    orig_labels = []
    for k, oname in enumerate(originals):
        g = structure.by_fname.get(ofuncs[k]) if k < len(ofuncs) and ofuncs[k] else None
        oop = None
        if g is not None:
            oop, _ = structure.resolve(g, oname)
        if oop is None:
            oop, _ = structure.resolve(root, oname)
        if oop is not None and label_of(oop) is not None:
            orig_labels.append(label_of(oop))
    if orig_labels and (op is None or how in ("lowering", "call glue")):
        # A node Grappler made inside an inlined body: its debug info names what it replaced.
        op_label, how = orig_labels[-1], "original_node_names"
    elif op is not None:
        op_label = _seen_from_callers(label_of(op), calls)
    elif (replaced := _grappler_replaced(structure, root, n.name, nodes)) is not None:
        op_label, how = label_of(replaced[0]), f"grappler name: replaces {replaced[1]}"
        folded = _folded_in(*replaced, nodes)
        flayers = {tuple(x["layer"]) if x["layer"] else None for x in [op_label, *folded]}
        if len(flayers) > 1:  # e.g. AddOpsRewrite: an add tree spanning several layers
            rec["fused_ops"] = len(folded)
            rec["fused_across_layers"] = [list(x) if x else None for x in sorted(flayers, key=str)]
    else:
        rec.update(label=None, reason="xla" if "Xla" in n.op else "grappler-created")
        return rec
    if op_label is None:
        rec.update(label=None, reason="op created outside the labeller")
        return rec
    rec["label"] = op_label
    rec["how"] = how
    layers = {tuple(x["layer"]) if x["layer"] else None for x in orig_labels}
    if len(layers) > 1:
        rec["fused_across_layers"] = [list(x) if x else None for x in sorted(layers, key=str)]
    if op is not None and op.type != n.op and how == "exact":
        rec["rewritten_from"] = op.type
        # Only a fusion kernel swallows neighbours; other rewrites (oneDNN renames) do not.
        fused = _fused_away(op, n, nodes) if "Fused" in n.op else []
        if fused:
            rec["fused_ops"] = len(fused)
            flayers = {tuple(x["layer"]) if x["layer"] else None for x in fused}
            flayers.add(tuple(op_label["layer"]) if op_label["layer"] else None)
            if len(flayers) > 1:
                rec["fused_across_layers"] = [
                    list(x) if x else None for x in sorted(flayers, key=str)
                ]
    return rec


def _seen_from_callers(label: dict | None, calls: list) -> dict | None:
    """An op's label as the step runs it, through the function calls it sits in.

    A function's ops are labelled when it is traced, with the layers on the stack then:
    Keras traces a layer's tf.function-decorated `call` when it builds the model, outside
    any outer model, and the step reuses that trace. The call op, made while the step was
    traced, has the layers above it; they go in front of the op's own path (where that
    path does not already start with them).
    """
    if not label or not label.get("layer"):
        return label
    path = list(label["layer"])
    for call in reversed(calls):  # innermost first
        outer = label_of(call)
        if not outer or not outer.get("layer") or outer.get("phase") != label.get("phase"):
            continue
        above = list(outer["layer"])
        k = next(
            k
            for k in range(min(len(above), len(path)), -1, -1)
            if above[len(above) - k :] == path[:k]
        )
        path = above + path[k:]
    return label if path == list(label["layer"]) else {**label, "layer": path}


# Grappler names a node it builds to replace one node `<scope>/<name>` as
# `<scope>/<Optimizer>/<Stage>_<name>` (MakeOptimizedNodeName in grappler's
# graph_optimizer_stage.cc), e.g. `.../ArithmeticOptimizer/FoldTransposeIntoMatMul_MatMul`.
_GRAPPLER_NAME = re.compile(r"^(?:(?P<scope>.*)/)?[A-Za-z]+Optimizer/[A-Za-z0-9]+_(?P<node>[^/]+)$")
# The arithmetic optimizer's UnaryOpsComposition stage names the node that replaces a chain
# of element-wise ops after the chain's last node, `<last node>/unary_ops_composition`
# (its OptimizedNodeName in arithmetic_optimizer.cc); the chain runs back from there.
_COMPOSITION_NAME = re.compile(r"^(?:(?P<scope>.*)/)?(?P<node>[^/]+)/unary_ops_composition$")


def _grappler_original(m) -> str:
    return f"{m['scope']}/{m['node']}" if m["scope"] else m["node"]


def _grappler_replaced(structure, root, name: str, nodes: dict):
    """(labelled op, its executed name) a Grappler-built node replaced, by Grappler's
    naming rule: only when `<scope>/<name>` is a labelled op no longer executed (else None)."""
    m = _GRAPPLER_NAME.match(name) or _COMPOSITION_NAME.match(name)
    if not m:
        return None
    original = _grappler_original(m)
    if original in nodes:
        return None  # still executed: the new node is not its replacement
    op, how = structure.resolve(root, original)
    if op is None or how != "exact" or label_of(op) is None:
        return None
    return op, original


PASS_THROUGH = {"Identity", "IdentityN", "Snapshot", "StopGradient"}
_SOURCES = {"Const", "Placeholder", "VarHandleOp", "ReadVariableOp"}


def _folded_in(op, executed_name: str, nodes) -> list[dict]:
    """Labels of the ops feeding `op` (transitively, up to the nearest still-executed
    ones) that no longer execute: what a Grappler rewrite folded into op's replacement.
    `executed_name` is op's name in the executed graph (inlining prefixes it)."""
    if not executed_name.endswith(op.name):
        return []
    prefix = executed_name[: len(executed_name) - len(op.name)]
    # Still computed: executed under its own name, or under a Grappler replacement's.
    renamed = {
        _grappler_original(m)
        for m in (_GRAPPLER_NAME.match(x) or _COMPOSITION_NAME.match(x) for x in nodes)
        if m
    }
    out, seen, frontier = [], {op.name}, [op]
    for _ in range(6):  # an add tree or a transpose chain is a few levels deep
        nxt = []
        for o in frontier:
            for t in o.inputs:
                p = t.op
                if p.name in seen or p.type in _SOURCES:
                    continue
                seen.add(p.name)
                if prefix + p.name in nodes or prefix + p.name in renamed:
                    continue  # still computed: the rewrite's boundary
                if p.type not in PASS_THROUGH and label_of(p) is not None:
                    out.append(label_of(p))
                nxt.append(p)
        frontier = nxt
    return out


def _fused_away(op, n, nodes) -> list[dict]:
    """Labels of the Python ops a fusion kernel swallowed besides the op it is named after:
    as many removed producers as the kernel's `fused_ops` attr says it merged (one when
    the attr is absent), nearest first, skipping pass-through ops Grappler drops anyway."""
    if not n.name.endswith(op.name):
        return []
    prefix = n.name[: len(n.name) - len(op.name)]
    want = len(n.attr["fused_ops"].list.s) if "fused_ops" in n.attr else 1
    out, seen, frontier = [], {op.name}, [op]
    while frontier and len(out) < want:
        nxt = []
        for o in frontier:
            for t in o.inputs:
                p = t.op
                if p.name in seen or p.type in ("Placeholder", "Const"):
                    continue
                seen.add(p.name)
                if prefix + p.name in nodes:
                    continue  # still executed: the fusion's boundary
                if p.type not in PASS_THROUGH and label_of(p) is not None:
                    out.append(label_of(p))
                nxt.append(p)
        frontier = nxt
    return out[:want]
