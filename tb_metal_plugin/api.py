"""The public Python API: load a profile, get its layers and ops as plain data.

    from tb_metal_plugin import api
    prof = api.load_profile("logs/")           # newest session, first host
    prof.layers(step="avg")["layers"]           # per-layer tree, mean per step
    prof.ops()["ops"]                           # per-op attribution

The CLI and the TensorBoard routes are thin faces over these functions.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from . import __version__
from .attribution import TraceAttributor
from .breakdown import (
    DEVICE_NOTE,
    HOST_ONLY_NOTE,
    AttributedOp,
    Selection,
    charge_copies,
    copies,
    fallbacks,
    layer_tree,
    op_rows,
)
from .devices import DeviceResolver
from .discovery import SessionInfo, find_sessions, host_of, select
from .errors import InvalidArgumentError, NotFoundError, TbMetalError
from .events import TraceEvents, read_events
from .manifest import load_manifest
from .manifest_attribution import ManifestAttributor

Progress = Callable[[float, str], None]


class Profile:
    """One host's trace of one session, attributed: the object every face reads from."""

    def __init__(
        self,
        events: TraceEvents,
        manifest: dict | None = None,
        session: SessionInfo | None = None,
        host: str | None = None,
    ):
        self.events = events
        self.manifest = manifest
        self.session = session
        self.host = host or host_of(Path(events.path))
        self.warnings = list(events.warnings)
        if manifest and (manifest.get("layers") or manifest.get("ops")):
            attributor = ManifestAttributor(manifest, TraceAttributor(events.ops.keys()))
            self.manifest_layers = attributor.layers
        else:
            attributor = TraceAttributor(events.ops.keys())
            self.manifest_layers = {}
        self.attribution_source = attributor.source
        self._attributor = attributor
        resolver = DeviceResolver(events, manifest)
        self.devices = resolver.devices
        self.has_gpu = resolver.has_gpu
        self._ops = [
            AttributedOp(
                rec,
                attributor.attribute(rec.name, rec.type, rec.line_kinds),
                resolver.resolve(rec),
            )
            for rec in events.ops.values()
        ]
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

    def _selection(self, step: int | str | None) -> Selection:
        if isinstance(step, str) and step not in ("all", "avg"):
            try:
                step = int(step)
            except ValueError:
                raise InvalidArgumentError(
                    f"step must be a step number, 'all' or 'avg', not {step!r}"
                ) from None
        if isinstance(step, int) and step not in self.steps:
            raise NotFoundError(
                f"step {step} is not in this profile (profiled steps: "
                f"{', '.join(map(str, self.steps)) or 'none'})"
            )
        return Selection(self.events, step)

    def _header(self, sel: Selection) -> dict:
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
            "timeline": timeline,
            "time_note": DEVICE_NOTE if timeline == "device" else HOST_ONLY_NOTE,
            "devices": self.devices,
            "has_gpu": self.has_gpu,
            "attribution_source": self.attribution_source,
            "has_manifest": self.manifest is not None,
            "warnings": self.warnings,
        }

    def ops(self, step: int | str | None = None, layer: list[str] | None = None) -> dict:
        """Per-op attribution rows (optionally only those of one layer and its sublayers)."""
        sel = self._selection(step)
        rows = op_rows(self._ops, sel)
        if layer:
            want = list(layer)
            rows = [r for r in rows if r["layer"] and r["layer"][: len(want)] == want]
        out = self._header(sel)
        out["ops"] = rows
        return out

    def layers(self, step: int | str | None = None) -> dict:
        """The per-layer tree with roll-ups, the named buckets, fallbacks and copies."""
        sel = self._selection(step)
        rows = op_rows(self._ops, sel)
        benchmarks: dict[tuple[str, ...], list[dict]] = {}
        for b in (self.manifest or {}).get("layer_benchmarks") or []:
            benchmarks.setdefault(tuple(b.get("path") or ()), []).append(b)
        roots, buckets, total = layer_tree(rows, sel.step_time_ps, self.manifest_layers, benchmarks)
        out = self._header(sel)
        out.update(
            {
                "total_ps": total,
                "op_count": len(rows),
                "layers": roots,
                "buckets": buckets,
                "fallbacks": fallbacks(rows),
                "copies": copies(rows, self.events, sel, self._copy_layer),
                "device_sources": _count_by(rows, "device_source"),
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
) -> Profile:
    """Load one `.xplane.pb` (and the manifest beside it, if any) into a Profile."""
    events = read_events(str(xplane_path), progress)
    return Profile(events, load_manifest(xplane_path), session)


def choose(
    path: str | os.PathLike,
    run: str | None = None,
    session: str | None = None,
    host: str | None = None,
) -> tuple[SessionInfo, str, list[str]]:
    """Pick one session and host under path; notes say what was chosen when it was ambiguous."""
    notes = []
    sessions = select(find_sessions(path), run, session)
    if not sessions:
        raise NotFoundError(f"{path}: no profiles found (no plugins/profile/*/*.xplane.pb)")
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


def scan(path: str | os.PathLike) -> list[SessionInfo]:
    """Every session under a logdir (nothing is parsed)."""
    return find_sessions(path)


__all__ = [
    "Profile",
    "SessionInfo",
    "TbMetalError",
    "choose",
    "find_sessions",
    "load_file",
    "load_profile",
    "scan",
]
