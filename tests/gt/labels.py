"""Turn one recorded run into its labels JSON: every trace op event -> expected label.

For each op event `<name>:<type>` of the trace: the executed node of that name
(partition graphs of the run metadata) mapped structurally to the labelled graph op
(graphmap), its layer path and phase, how it was found, and when it could not be found,
why (`reason`). Self time per event comes from the trace (xtrace) so that unmapped time
can be reported without the package under test.
"""

from __future__ import annotations

import os

from . import graphmap, xtrace
from .labeller import PINNED, PINNED_TF_KERAS, legacy_keras

SCHEMA = 1


def _root_for(structure, fg) -> object | None:
    """The labelled graph whose top-level node names the partition graphs use most.

    Several tf.functions can share top-level names (Keras' train and test functions both
    call their step as `StatefulPartitionedCall`): a graph whose call op of a name calls
    another function than the executed graph's node of that name (pre-optimization graph,
    attr `f`) is not this function's graph.
    """
    heads = set()
    for pg in fg.partition_graphs:
        for n in pg.node:
            if n.op not in ("_Arg", "_Retval", "_Send", "_Recv", "_DeviceArg", "_DeviceRetval"):
                heads.add(n.name.split("/")[0])
    calls = {
        n.name: n.attr[graphmap.CALL_ATTR].func.name
        for n in fg.pre_optimization_graph.node
        if graphmap.CALL_ATTR in n.attr and n.attr[graphmap.CALL_ATTR].func.name
    }
    best, best_hits = None, 0
    for g in structure.graphs:
        names = structure.names(g)
        if any(
            name in names and graphmap.callee_name(names[name]) not in (None, f)
            for name, f in calls.items()
        ):
            continue
        hits = sum(1 for h in heads if h in names)
        if hits >= best_hits and hits:
            best, best_hits = g, hits
    if best is None or best_hits < max(1, len(heads) // 2):
        return None
    return best


def _key(rec: dict) -> tuple | None:
    label = rec.get("label")
    if label is None:
        return None
    return (tuple(label["layer"]) if label["layer"] else None, label["phase"])


def executed_labels(labeller, exports) -> dict[str, dict]:
    """{executed node name: record} over every function the run instantiated.

    A trace event names a node, not the function that ran it: a name two executed
    functions both use (train and test step: `StatefulPartitionedCall/Add_2`) with
    different labels cannot be told apart in the trace, so it gets no label (not scored).
    """
    structure = graphmap.Structure(labeller.graphs)
    out: dict[str, dict] = {}
    roots: dict[str, int] = {}
    for md in exports:
        for fg in md.function_graphs:
            root = _root_for(structure, fg)
            if root is None:
                continue
            for name, rec in graphmap.label_partition(structure, root, fg).items():
                prev = out.get(name)
                if prev is not None and prev.get("ambiguous"):
                    continue
                if prev is not None and roots[name] != id(root) and prev["type"] == rec["type"]:
                    if _key(rec) is None:
                        continue  # the other function's node of that name has the label
                    if _key(prev) is not None and _key(prev) != _key(rec):
                        rec = dict(rec, label=None, ambiguous=True)
                        rec["reason"] = "same name in several executed functions, labels differ"
                out[name] = rec
                roots[name] = id(root)
    return out


def _data_graph_ops(labeller) -> dict[str, dict]:
    """Ops of tf.data function graphs (run by tf.data, not in run metadata), by name."""
    out = {}
    for g in labeller.graphs:
        ops = g.get_operations()
        labels = [graphmap.label_of(op) for op in ops]
        if ops and all(lab and lab["phase"] == "input" for lab in labels):
            for op, lab in zip(ops, labels, strict=True):
                out.setdefault(f"{op.name}:{op.type}", lab)
    return out


def _body_ops(labeller) -> dict[str, dict | None]:
    """Ops of every labelled graph by name: the label when all ops of that name agree,
    None when they do not.

    A function run by a call the runtime does not inline (tf_keras's LSTM and GRU pick an
    implementation per device, `api_implements`) is in no exported run metadata, and its
    ops keep their own names (`TensorArrayUnstack/...`), so only their names can be
    matched: where one name stands for ops of several layers, nothing is claimed.
    """
    out: dict[str, dict | None] = {}
    for g in labeller.graphs:
        for op in g.get_operations():
            lab = graphmap.label_of(op)
            if lab is None:
                continue
            seen = out.get(op.name, lab)
            same = seen is not None and (seen.get("layer"), seen["phase"]) == (
                lab.get("layer"),
                lab["phase"],
            )
            out[op.name] = {**lab, "type": op.type} if same else None
    return out


def _by_name(body_ops: dict[str, dict | None], name: str) -> dict | None:
    """`body_ops`' label of a trace name, or of what follows its last inlining mark (a
    lowered loop or branch runs its body's ops as `<node>/body/_<k>/<body op>`)."""
    found = body_ops.get(name)
    if found is None and "/_" in name:
        parts = name.split("/")
        for i in range(len(parts) - 2, 0, -1):
            if parts[i][:1] == "_" and parts[i][1:].isdigit():
                return body_ops.get("/".join(parts[i + 1 :]))
    return found


def build(model: str, mode: str, run_dir: str, labeller, exports) -> dict:
    """The labels JSON of one run."""
    import tensorflow as tf

    traces = xtrace.find_traces(run_dir)
    if not traces:
        raise RuntimeError(f"no trace under {run_dir}")
    trace = traces[-1]
    executed = executed_labels(labeller, exports)
    data_ops = _data_graph_ops(labeller)
    body_ops = _body_ops(labeller)
    events = {}
    unmapped: dict[str, int] = {}
    total = fused_across = 0
    for key, ev in xtrace.op_events(trace).items():
        rec = executed.get(ev["name"])
        entry = {"self_ps": ev["self_ps"], "count": ev["count"], "lines": ev["lines"]}
        label = None
        if rec is not None and rec["type"] == ev["type"]:
            label = rec.get("label")
            entry["how"] = rec.get("how")
            for k in ("fused_across_layers", "rewritten_from", "fused_ops"):
                if k in rec:
                    entry[k] = rec[k]
            if label is None:
                entry["reason"] = rec.get("reason", "unlabelled")
        elif rec is not None:
            entry["reason"] = f"executed node has type {rec['type']}"
        elif ev["lines"] == ["python"]:
            # Python's thread runs eager ops, never a tf.data function's: a tf.data graph op
            # of the same name (`range`) is another op.
            entry["reason"] = "eager op (not in an executed graph)"
        elif key in data_ops:
            label, entry["how"] = data_ops[key], "tf.data function graph"
        elif (body := _by_name(body_ops, ev["name"])) is not None and ev["type"].endswith(
            body["type"]
        ):
            # (`_MklMatMul` is oneDNN's MatMul: the type ends the same.)
            label = {k: v for k, v in body.items() if k != "type"}
            entry["how"] = "function run by an uninlined call, by name"
        else:
            entry["reason"] = "not in any executed graph"
        if label is not None:
            entry["layer"] = label["layer"]
            entry["phase"] = label["phase"]
            entry["kind"] = label["kind"]
            if label.get("fwd"):
                entry["fwd"] = label["fwd"]
            if label.get("mixed_inputs"):
                entry["mixed_inputs"] = True
        else:
            unmapped[entry["reason"]] = unmapped.get(entry["reason"], 0) + ev["self_ps"]
        total += ev["self_ps"]
        if entry.get("fused_across_layers"):
            fused_across += ev["self_ps"]
        events[key] = entry
    return {
        "schema": SCHEMA,
        "model": model,
        "mode": mode,
        "trace": os.path.relpath(trace, os.path.dirname(run_dir)),
        "versions": {"tensorflow": tf.__version__, "keras": _keras_version()},
        "pinned": PINNED_TF_KERAS if legacy_keras() else PINNED,
        "labeller_errors": labeller.errors[:20],
        "events": events,
        "summary": {
            "op_events": len(events),
            "op_self_ps": total,
            "unmapped_ps": unmapped,
            "unmapped_share": (sum(unmapped.values()) / total) if total else 0.0,
            "unmapped_events": sum(1 for e in events.values() if "reason" in e),
            # Op time in nodes that fused ops of several layers: the name's owner is the
            # label, but no attribution can split that time from the trace.
            "fused_across_layers_share": (fused_across / total) if total else 0.0,
        },
    }


def _keras_version() -> str:
    """The version of the Keras that trained: tf_keras's under TF_USE_LEGACY_KERAS=1."""
    if legacy_keras():
        import tf_keras

        return f"tf_keras {tf_keras.__version__}"
    import keras

    return keras.__version__
