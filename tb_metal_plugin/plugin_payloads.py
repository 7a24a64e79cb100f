"""The Metal tab's payloads as plain functions (``*_impl``) of loaded profiles and parsed
parameters.

Each route of ``plugin.py`` parses its request and hands one of these to the answering layer
(``plugin_answers``), which calls it once the profile is loaded and keeps the serialised
result. They do no HTTP: each returns a plain dict of the shape ``schema.py`` names, with
file paths relative to the logdir (the page needs no more, and shows less).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tb_metal_plugin import readiness
from tb_metal_plugin.compare import compare
from tb_metal_plugin.plugin_loads import rel_path
from tb_metal_plugin.schema import (
    ComparePayload,
    HostsLayersPayload,
    LayersPayload,
    OpsPayload,
    ReadinessPayload,
    SessionsPayload,
)


def sessions_impl(
    logdir: str, sessions: Sequence[Any], scan_errors: Sequence[dict]
) -> SessionsPayload:
    """`/sessions`: the sessions found under the logdir, by name, and what the scan hit."""
    return {
        "logdir_set": bool(logdir),
        "sessions": [
            {
                "name": s.name,
                "run": getattr(s, "run", None),
                "session": getattr(s, "session", None),
                "hosts": sorted(dict(s.hosts)),
            }
            for s in sorted(sessions, key=lambda s: s.name)
        ],
        "errors": [
            {"path": rel_path(e["path"], logdir) if e["path"] else "", "message": e["message"]}
            for e in scan_errors
        ],
    }


def layers_impl(
    profile: Any, step: int | str | None, logdir: str, load_s: float | None
) -> LayersPayload:
    """`/layers`: a profile's layer tree for ``step``, with how long its load took."""
    payload = dict(profile.layers(step=step))  # a plain dict, not the notebook's view
    payload["file"] = rel_path(payload["file"], logdir)
    payload["load_s"] = round(load_s or 0.0, 3)
    return payload


def hosts_layers_impl(
    hosts_profile: Any, step: int | str | None, logdir: str
) -> HostsLayersPayload:
    """`/layers?host=all`: every host of a session side by side (``hosts.HostsProfile``)."""
    payload = hosts_profile.layers(step)
    payload["files"] = {h: rel_path(f, logdir) for h, f in payload["files"].items()}
    return payload


def ops_impl(
    profile: Any, step: int | str | None, layer: Any, bucket: str | None, logdir: str
) -> OpsPayload:
    """`/ops`: the op rows of ``step``, all or one layer's (with sublayers) or one bucket's."""
    payload = dict(profile.ops(step, layer, bucket))
    payload["file"] = rel_path(payload["file"], logdir)
    return payload


def readiness_impl(
    profile: Any, step: int | str | None, metal_version: str, logdir: str
) -> ReadinessPayload:
    """`/readiness`: the Metal placement predicted for the ops of ``step``."""
    payload = readiness.check(profile.ops(step=step), profile.manifest, metal_version)
    payload["file"] = rel_path(payload["file"], logdir)
    return payload


def compare_impl(layers_payloads: Sequence[dict], hosts: Sequence[str]) -> ComparePayload:
    """`/compare`: layers payloads side by side, labelled by session (and by host when the
    hosts differ)."""
    one_host = len(set(hosts)) == 1
    labels = [
        p["session"] + ("" if one_host else f" ({h})")
        for p, h in zip(layers_payloads, hosts, strict=True)
    ]
    return compare(list(layers_payloads), labels)
