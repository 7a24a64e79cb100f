"""Capture the device TensorFlow assigned to every op of a function, from run metadata."""

from __future__ import annotations

from typing import Any


class PlacementCapture:
    """Collect partition graphs of the functions instantiated between `start()` and `stop()`.

    TensorFlow writes a function's partition graphs into the eager context's run
    metadata only when the function is *instantiated* (its first call), not on later
    calls; step stats of function calls are not recorded at all. So capture is switched
    on just before the train function is rebuilt and switched off right after its first
    call: later steps, profiled or not, run without it. (Run metadata was checked to
    hold no partition graphs when enabled only after the function was instantiated.)
    """

    def __init__(self) -> None:
        self._context: Any = None
        self._graph_collection = False
        self.active = False
        # The exported run metadata, kept after stop(): the op records map its partition
        # graphs' nodes (names, inputs, send/recv pairs) to the ops Keras created.
        self.run_metadata: Any = None

    def start(self) -> None:
        """Switch graph collection on (call before the train function is rebuilt)."""
        from tensorflow.python.eager import context

        self._context = context.context()
        # Graph collection alone stores the partition graphs. Run metadata would also
        # do, but in TF 2.21 `disable_run_metadata()` leaves graph storing switched on
        # (checked: every function instantiated afterwards keeps adding its graphs to
        # the context, an unbounded cost after the window), so it is the fallback only.
        self._graph_collection = hasattr(self._context, "enable_graph_collection")
        if self._graph_collection:
            self._context.enable_graph_collection()
        else:
            self._context.enable_run_metadata()
        self.active = True

    def stop(self) -> list[dict[str, str]]:
        """Switch collection off and return the placement of every partition-graph node."""
        if not self.active:
            return []
        self.active = False
        try:
            run_metadata = self._context.export_run_metadata()
        finally:
            if self._graph_collection:
                self._context.disable_graph_collection()
            else:
                self._context.disable_run_metadata()
        if run_metadata is None:
            return []
        self.run_metadata = run_metadata
        return placement_from_run_metadata(run_metadata)


def placement_from_run_metadata(run_metadata: Any) -> list[dict[str, str]]:
    """Return `[{"name", "type", "device", "dtype"?}]` for every partition-graph node, once.

    `dtype` is the node's `T` (or `dtype`) attribute: the kernel dtype that was needed,
    which tells "no GPU kernel for this dtype" from "no GPU kernel at all".
    """
    seen: set[tuple[str, str, str]] = set()
    out: list[dict[str, str]] = []
    for function_graph in run_metadata.function_graphs:
        for graph in function_graph.partition_graphs:
            for node in graph.node:
                key = (node.name, node.op, node.device)
                if key in seen:
                    continue
                seen.add(key)
                row = {"name": node.name, "type": node.op, "device": node.device}
                dtype = _node_dtype(node)
                if dtype:
                    row["dtype"] = dtype
                out.append(row)
    return out


def _node_dtype(node: Any) -> str | None:
    from tensorflow.python.framework import dtypes

    for key in ("T", "dtype"):
        if key in node.attr and node.attr[key].type:
            try:
                return dtypes.as_dtype(node.attr[key].type).name
            except Exception:  # an enum this TF cannot name
                return None
    return None
