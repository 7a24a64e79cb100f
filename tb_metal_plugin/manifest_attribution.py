"""Attribute ops with the manifest the training callback wrote: exact where it recorded.

Three sources, tried in order, each op saying which one answered (`Attribution.source`):
- `manifest_op`: the manifest's `ops` table (version 2), one record per executed node,
  made while Keras traced the step: who created the op (layer call, loss, metrics,
  optimizer, the tape for a gradient of some forward op), mapped to the executed
  node's name through the partition graphs. Exact.
- `manifest_scopes`: the name scopes each layer call used (versions 1 and 2): the layer
  whose recorded scope ends furthest right in the op's name. Exact for the layer of
  forward ops inside a layer's scope; the phase comes from the name.
- `trace_names`: what the trace's names alone say (`TraceAttributor`), for ops the
  manifest has no record of (eager ops outside the train function, tf.data, a step
  traced without the callback's hooks).
"""

from __future__ import annotations

from collections.abc import Iterable

from .attribution import Attribution, TraceAttributor, _layer_key, classify

# Bucket of an op without a layer, by the phase (and origin) its record gives.
_PHASE_BUCKET = {"optimizer": "optimizer", "loss": "loss", "metrics": "metrics", "input": "input"}


def _bucket(phase: str, origin: str) -> str:
    if phase in _PHASE_BUCKET:
        return _PHASE_BUCKET[phase]
    if origin == "loss_gradient":
        return "loss"
    if origin == "outside_train_step":
        return "outside"
    return "root"


class ManifestAttributor:
    """Attribute ops by the callback's per-op records, then its scopes, then trace names."""

    source = "manifest"

    def __init__(self, manifest: dict, fallback: TraceAttributor | None = None):
        """`fallback` answers ops without a record (built by the caller over the trace)."""
        self._trie: dict = {}
        self.layers: dict[tuple[str, ...], dict] = {}
        for layer in manifest.get("layers") or []:
            path = tuple(layer.get("path") or ())
            if not path:
                continue
            self.layers[path] = layer
            for scope in layer.get("scopes") or []:
                node = self._trie
                for comp in _layer_key(scope.split("/")):
                    node = node.setdefault(comp, {})
                # The deeper layer wins when two layers share a scope string.
                if "$" not in node or len(node["$"]) < len(path):
                    node["$"] = path
        self.records: dict[tuple[str, str], Attribution] = {}
        self._by_name: dict[str, Attribution] = {}
        for name, op_type, layer, phase, origin in _rows(manifest):
            path = tuple(layer) if layer else None
            att = Attribution(path, phase, None if path else _bucket(phase, origin), "manifest_op")
            self.records[(name, op_type)] = att
            self._by_name.setdefault(name, att)
        self._trace = fallback if fallback is not None else TraceAttributor(())

    def _scope_layer(self, name: str) -> tuple[str, ...] | None:
        """The layer whose recorded scope ends furthest right in the op's name."""
        comps = list(_layer_key(name.split("/")[:-1]))
        best: tuple[int, int, tuple[str, ...]] | None = None
        for start in range(len(comps)):
            node = self._trie
            for end in range(start, len(comps)):
                node = node.get(comps[end])
                if node is None:
                    break
                if "$" in node:
                    cand = (end, end - start, node["$"])
                    if best is None or cand[:2] > best[:2]:
                        best = cand
        return best[2] if best else None

    def layer_of(self, name: str) -> tuple[str, ...] | None:
        """The layer of an op known by name only (a copy's producer or consumer)."""
        if name in self._by_name:
            return self._by_name[name].layer
        return self._scope_layer(name) or self._trace.layer_of(name)

    def attribute(self, name: str, op_type: str, line_kinds: Iterable[str]) -> Attribution:
        """Layer and phase of one op, from the most exact source that knows it."""
        exact = self.records.get((name, op_type))
        if exact is not None:
            return exact
        layer = self._scope_layer(name)
        if layer is not None:
            return classify(name, op_type, line_kinds, layer, "manifest_scopes")
        return self._trace.attribute(name, op_type, line_kinds)


def _rows(manifest: dict) -> list[tuple]:
    """The `ops` table's rows as (name, type, layer, phase, origin); [] when absent or odd."""
    table = manifest.get("ops")
    if not isinstance(table, dict):
        return []
    columns = table.get("columns") or []
    want = ("name", "type", "layer", "phase", "origin")
    if not all(c in columns for c in want):
        return []
    idx = [columns.index(c) for c in want]
    out = []
    for row in table.get("rows") or []:
        if isinstance(row, list) and len(row) >= len(columns):
            name, op_type, layer, phase, origin = (row[i] for i in idx)
            if isinstance(name, str) and isinstance(op_type, str) and isinstance(phase, str):
                layer = layer if isinstance(layer, list) else None
                out.append((name, op_type, layer, phase, origin))
    return out


__all__ = ["ManifestAttributor"]
