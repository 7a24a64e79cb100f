"""The public Python API: load a profile, get its layers and ops as plain data.

    from tb_metal_plugin import api
    prof = api.load_profile("logs/")           # newest session, first host
    prof.layers(step="avg")["layers"]           # per-layer tree, mean per step
    prof.ops()["ops"]                           # per-op attribution

The CLI and the TensorBoard routes are thin faces over these functions: they pass their
selectors (step, layer, bucket) as given, and `selectors` parses them here, one way for all.
Payload shapes: `schema.py`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__, attribution_accuracy
from .attribution import TraceAttributor
from .breakdown import (
    CPU_ONLY_NOTE,
    DEVICE_NOTE,
    HOST_ONLY_NOTE,
    AttributedOp,
    Selection,
    charge_copies,
    clock_of,
    clock_totals,
    copies,
    copy_totals,
    fallbacks,
    iter_op_rows,
    layer_tree,
    op_rows,
)
from .devices import DeviceResolver
from .discovery import SessionInfo, find_sessions, host_of, select
from .errors import NotFoundError, TbMetalError
from .events import TraceEvents, read_events
from .fallback_layers import fallback_layers
from .manifest import load_manifest
from .manifest_attribution import ManifestAttributor
from .oprows import iter_op_json, ops_under
from .payload_views import LayersView
from .run_graph import StepGraph, graph_ops, step_graph_for
from .selectors import parse_ops_filter, parse_step

_COMPUTE = frozenset({"compute"})  # an op's line kinds when it ran on compute threads only

if TYPE_CHECKING:  # the payload shapes, for type checkers: not imported on every load
    from .schema import LayersPayload, OpsPayload, ProfileHeader

Progress = Callable[[float, str], None]

NO_SESSIONS_HINT = (
    "record one with MetalProfileCallback or keras.callbacks.TensorBoard(profile_batch=...)"
)


class UnknownLayerError(NotFoundError):
    """A layer path that is not in the profile; `matches` holds the closest known paths."""

    def __init__(self, layer: str, matches: list[str]):
        hint = f"closest: {', '.join(matches)}" if matches else "no similar layer"
        super().__init__(
            f"no layer {layer!r} in this profile ({hint}); a layer is its path from the "
            "model, names joined by '/', as `tb-metal layers` lists it"
        )
        self.layer = layer
        self.matches = matches


def closest_layers(want: str, known: Sequence[str], n: int = 3) -> list[str]:
    """The known layer paths most like `want`, best first (difflib ratio, whole path or tail).

    A bare layer name (`mha`) is compared with the same number of trailing components of each
    path (`model/mha` -> `mha`), so a path missing its model still finds its layer.
    """
    import difflib  # only for an unknown layer's error message

    depth = len(want.split("/"))
    scored = []
    for path in known:
        tail = "/".join(path.split("/")[-depth:])
        score = max(
            difflib.SequenceMatcher(None, want, path).ratio(),
            difflib.SequenceMatcher(None, want, tail).ratio(),
        )
        if score >= 0.5:
            scored.append((-score, len(path), path))
    return [p for _, _, p in sorted(scored)[:n]]


class Profile:
    """One host's trace of one session, attributed: the object every face reads from."""

    def __init__(
        self,
        events: TraceEvents,
        manifest: dict | None = None,
        session: SessionInfo | None = None,
        host: str | None = None,
        graph: StepGraph | None = None,
    ):
        self.events = events
        self.manifest = manifest
        self.session = session
        self.host = host or host_of(Path(events.path))
        self.warnings = list(events.warnings)
        # Ops that ran on compute threads only: graph functions' ops, never eager ones.
        compute = {name for (name, _), r in events.ops.items() if r.line_kinds == _COMPUTE}
        trace = TraceAttributor(
            events.ops.keys(), events.sequences, events.first_start, graph, compute
        )
        if manifest and (manifest.get("layers") or manifest.get("ops")):
            attributor = ManifestAttributor(manifest, trace)
            self.manifest_layers = attributor.layers
        else:
            attributor = trace
            self.manifest_layers = {}
        self.attribution_source = attributor.source
        self._attributor = attributor
        resolver = DeviceResolver(events, manifest)
        self.devices = resolver.devices
        self.has_gpu = resolver.has_gpu
        records = list(events.ops.values())
        many = getattr(attributor, "attribute_records", None)  # (a TraceAttributor's)
        atts = (
            many(records)
            if many is not None
            else [attributor.attribute(r.name, r.type, r.line_kinds) for r in records]
        )
        resolve = resolver.resolve
        self._ops = [AttributedOp(r, att, resolve(r)) for r, att in zip(records, atts, strict=True)]
        self._ops = charge_copies(self._ops, attributor.layer_of)
        if manifest:
            self.warnings.extend(manifest.get("warnings") or [])
        if not self._ops:
            self.warnings.append(
                "no TensorFlow op events in this trace: was it recorded during training steps?"
            )

    @property
    def steps(self) -> list[int]:
        """The profiled step numbers (Keras batch indices), in time order."""
        return [s.num for s in self.events.steps]

    def _selection(self, step: object) -> Selection:
        step = parse_step(step)
        if isinstance(step, int) and step not in self.steps:
            raise NotFoundError(
                f"step {step} is not in this profile (profiled steps: "
                f"{', '.join(map(str, self.steps)) or 'none'})"
            )
        return Selection(self.events, step)

    def _header(self, sel: Selection) -> ProfileHeader:
        timeline = "device" if self.events.has_device_timeline else "host_only"
        return {
            "tb_metal_version": __version__,
            "session": self.session.name if self.session else None,
            "run": self.session.run if self.session else None,
            "host": self.host,
            "file": self.events.path,
            "step": sel.label,
            "steps": self.steps,
            "steps_source": self.events.steps_source,
            "step_time_ps": sel.step_time_ps,
            # Step time is wall time between the step markers, on the host clock.
            "step_time_clock": "wall",
            "timeline": timeline,
            "time_note": DEVICE_NOTE
            if timeline == "device"
            else (HOST_ONLY_NOTE if self.has_gpu else CPU_ONLY_NOTE),
            "devices": self.devices,
            "has_gpu": self.has_gpu,
            "attribution_source": self.attribution_source,
            "has_manifest": self.manifest is not None,
            "warnings": self.warnings,
        }

    def ops(self, step: object = None, layer: object = None, bucket: object = None) -> OpsPayload:
        """Per-op attribution rows: all, those of one layer (`"model/mha"` or a list of names)
        and its sublayers, or those of one bucket of ops outside any layer.

        An unknown layer raises UnknownLayerError naming the closest layer paths.
        """
        header, rows = self.ops_rows(step, layer, bucket)
        out: OpsPayload = {**header, "ops": list(rows)}
        return out

    def ops_rows(
        self, step: object = None, layer: object = None, bucket: object = None
    ) -> tuple[ProfileHeader, Iterator[dict]]:
        """`ops()` as its header and its rows, made one at a time as they are read (the
        CLI prints each as it comes). Bad selectors raise here, before any row."""
        sel, ops = self._ops_of(step, layer, bucket)
        return self._header(sel), iter_op_rows(ops, sel)

    def ops_json(
        self, step: object = None, layer: object = None, bucket: object = None
    ) -> tuple[ProfileHeader, Iterator[str]]:
        """`ops_rows()` with the rows as compact JSON, a few hundred rows a piece (see
        oprows.iter_op_json): the CLI's JSON, written without a dict per row."""
        sel, ops = self._ops_of(step, layer, bucket)
        return self._header(sel), iter_op_json(ops, sel)

    def _ops_of(self, step: object, layer: object, bucket: object) -> tuple[Selection, list]:
        """The selection and the ops whose rows `ops()` holds: all, one layer's and its
        sublayers', or one bucket's outside any layer."""
        path, bucket_name = parse_ops_filter(layer, bucket)
        sel = self._selection(step)
        want = tuple(path) if path is not None else None
        if want is not None:
            known = self.layer_paths()
            if "/".join(want) not in known:
                raise UnknownLayerError("/".join(want), closest_layers("/".join(want), known))
        return sel, ops_under(self._ops, want, bucket_name)

    def layer_paths(self) -> list[str]:
        """Every layer path in this profile (with or without op time), names joined by '/'."""
        paths = set(self.manifest_layers)
        for op in self._ops:
            layer = op.attribution.layer or ()
            paths.update(tuple(layer[:i]) for i in range(1, len(layer) + 1))
        return sorted("/".join(p) for p in paths)

    def layers(self, step: object = None) -> LayersPayload:
        """The per-layer tree with roll-ups, the named buckets, fallbacks and copies."""
        sel = self._selection(step)
        rows = op_rows(self._ops, sel)
        benchmarks: dict[tuple[str, ...], list[dict]] = {}
        for b in (self.manifest or {}).get("layer_benchmarks") or []:
            benchmarks.setdefault(tuple(b.get("path") or ()), []).append(b)
        roots, buckets, total = layer_tree(rows, sel.step_time_ps, self.manifest_layers, benchmarks)
        out = self._header(sel)
        clocks = clock_totals(rows)
        measured = fallbacks(rows)
        moved = copies(rows, self.events, sel, self._copy_layer)
        out.update(
            {
                "total_ps": total,
                # total_ps split by clock: device, host_side (GPU dispatch), host (CPU).
                "clocks": clocks,
                "clock": clock_of(clocks),
                "op_count": len(rows),
                "layers": roots,
                "buckets": buckets,
                "fallbacks": measured,
                "fallback_layers": fallback_layers(measured),
                "copies": moved,
                "copy_totals": copy_totals(moved),
                "device_sources": _count_by(rows, "device_source"),
                "device_timelines": self._device_timelines(sel),
                "attribution_accuracy": attribution_accuracy.of_source(self.attribution_source),
            }
        )
        # A plain dict that also renders as an HTML table in Jupyter.
        return LayersView(out)  # type: ignore[return-value]

    def summary(self, step: int | str | None = "all", width: int | None = None) -> str:
        """The `model.summary()`-like table the callback prints (width None: full width)."""
        from .summary import summary_text

        return summary_text(self.layers(step), width)

    def _repr_html_(self) -> str:
        """Jupyter: the per-layer table of all profiled steps."""
        from .notebook import layers_html

        return layers_html(self.layers("all"))

    def _device_timelines(self, sel: Selection) -> list[dict]:
        """Busy time of each device plane in the selection (clock `device`), one row per device.

        Measured on the plane's own work lines (kernels and copies), so multi-GPU runs show
        each device apart; shares are of the step's wall time.
        """
        out = []
        for dev, st in sorted(self.events.device_stats.items()):
            busy = sel.sum(st.slot_ps) if st.slot_ps else 0
            out.append(
                {
                    "device": dev,
                    "kind": st.kind,
                    "plane": st.plane,
                    "clock": "device",
                    "busy_ps": busy,
                    "step_share": busy / sel.step_time_ps if sel.step_time_ps else 0.0,
                    "kernel_count": st.kernel_count,
                    "copy_count": st.copy_count,
                    "copy_bytes": st.copy_bytes,
                    "unlinked_ps": st.unlinked_ps,
                }
            )
        return out

    def _copy_layer(self, op_name: str) -> list[str] | None:
        layer = self._attributor.layer_of(op_name)
        return list(layer) if layer else None


def _count_by(rows: list[dict], key: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[r[key]] = out.get(r[key], 0) + 1
    return out


def load_file(
    xplane_path: str | os.PathLike,
    session: SessionInfo | None = None,
    progress: Progress | None = None,
    step_graph: bool = True,
) -> Profile:
    """Load one `.xplane.pb` (and the manifest beside it, if any) into a Profile.

    `step_graph`: also read the graph Keras's TensorBoard callback wrote into the run's
    event file (it lists the inputs of the tape's gradient sums); off, names alone decide.
    """
    events = read_events(str(xplane_path), progress)
    graph, notes = None, []
    if step_graph:
        graph, notes = step_graph_for(xplane_path, graph_ops(events.ops.keys()))
    prof = Profile(events, load_manifest(xplane_path), session, graph=graph)
    prof.warnings.extend(notes)
    return prof


def choose(
    path: str | os.PathLike,
    run: str | None = None,
    session: str | None = None,
    host: str | None = None,
) -> tuple[SessionInfo, str, list[str]]:
    """Pick one session and host under path; notes say what was chosen when it was ambiguous."""
    notes = []
    found = find_sessions(path)
    if not found:
        raise NotFoundError(
            f"no profile sessions under {path} (no plugins/profile/*/*.xplane.pb); "
            + NO_SESSIONS_HINT
        )
    sessions = select(found, run, session)
    # Session folders are named by time, so the last one is the newest.
    chosen = sorted(sessions, key=lambda s: (s.session, s.run))[-1]
    if len(sessions) > 1:
        notes.append(
            f"{len(sessions)} sessions found; showing the newest, {chosen.name} "
            "(pick one with --run/--session)"
        )
    if host is None:
        host = sorted(chosen.hosts)[0]
        if len(chosen.hosts) > 1:
            notes.append(f"{len(chosen.hosts)} hosts; showing {host} (pick one with --host)")
    elif host not in chosen.hosts:
        raise NotFoundError(
            f"host {host!r} is not in session {chosen.name} (hosts: {', '.join(chosen.hosts)})"
        )
    return chosen, host, notes


def load_profile(
    path: str | os.PathLike,
    run: str | None = None,
    session: str | None = None,
    host: str | None = None,
    progress: Progress | None = None,
) -> Profile:
    """Load the profile at path: a trace file, a session folder, a run folder or a logdir."""
    chosen, host, notes = choose(path, run, session, host)
    prof = load_file(chosen.hosts[host], chosen, progress)
    prof.warnings.extend(notes)
    return prof


__all__ = [
    "Profile",
    "SessionInfo",
    "TbMetalError",
    "UnknownLayerError",
    "choose",
    "closest_layers",
    "find_sessions",
    "load_file",
    "load_profile",
    "load_session",
]


def load_session(
    path: str | os.PathLike,
    run: str | None = None,
    session: str | None = None,
    hosts: str = "all",
    max_workers: int | None = None,
    progress: Progress | None = None,
):
    """Every host of one session, loaded in parallel: `.layers(step)` is the all-hosts view,
    `.host(name)` one host's Profile (see `hosts.py`)."""
    from .hosts import load_session as load_hosts_of

    return load_hosts_of(path, run, session, hosts, max_workers, progress)
