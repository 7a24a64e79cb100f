"""On-disk cache of the Metal tab's payloads (layers, ops, readiness; compare reads the
layers entries), so a restarted TensorBoard shows a big profile at once while the profile
itself reloads in the background.

Entries are keyed by the trace's file identity (path, size, mtime, manifest identity), the
payload kind and its parameters (step, layer filter, metal version) and a fingerprint of
the code that computes the numbers, so a rewritten trace or an upgraded (or edited)
tb-metal never serves stale figures. Every entry is validated on read: its key, a digest
of its content, and the shape and internal sums of its kind of payload. Off with
``TB_METAL_CACHE=0``; location ``TB_METAL_CACHE_DIR`` or ``$XDG_CACHE_HOME/tb-metal``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

FORMAT = 3
MAX_ENTRIES = 256
MAX_ENTRY_BYTES = 64 << 20


def default_dir() -> Path | None:
    """Where the cache lives, or None when it is switched off."""
    if os.environ.get("TB_METAL_CACHE", "1") == "0":
        return None
    if os.environ.get("TB_METAL_CACHE_DIR"):
        return Path(os.environ["TB_METAL_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tb-metal"


def code_fingerprint() -> str:
    """Version plus size and mtime of every module and data file: changes with the code.

    Every file counts rather than a hand-kept list of "core" modules, which went stale each
    time a module that decides a number was added.
    """
    from tb_metal_plugin import __version__

    here = Path(__file__).resolve().parent
    parts: list[Any] = [FORMAT, __version__]
    files = sorted([*here.rglob("*.py"), *here.rglob("*.so"), *(here / "data").glob("*.json")])
    for path in files:
        try:
            st = path.stat()
            parts.append((str(path.relative_to(here)), st.st_size, st.st_mtime_ns))
        except OSError:
            parts.append((path.name, None))
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def _is_ps(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63


def _valid_node(n: Any, depth: int = 0) -> bool:
    """A layer-tree node as ``breakdown.layer_tree`` makes it (figures that add up)."""
    if depth > 64 or not isinstance(n, dict):
        return False
    children, devices = n.get("children"), n.get("devices")
    return (
        isinstance(n.get("name"), str)
        and isinstance(n.get("path"), list)
        and all(isinstance(p, str) for p in n["path"])
        and _is_ps(n.get("total_ps"))
        and _is_ps(n.get("self_ps"))
        and isinstance(devices, dict)
        and all(_is_ps(v) for v in devices.values())
        and isinstance(children, list)
        and all(_valid_node(c, depth + 1) for c in children)
        and n["self_ps"] + sum(c["total_ps"] for c in children) == n["total_ps"]
    )


def valid_layers_payload(p: Any) -> bool:
    """True when ``p`` has the shape and consistency of a ``/layers`` payload."""
    if not isinstance(p, dict):
        return False
    layers, buckets = p.get("layers"), p.get("buckets")
    return (
        isinstance(p.get("session"), str)
        and isinstance(p.get("host"), str)
        and isinstance(p.get("steps"), list)
        and all(isinstance(s, int) and not isinstance(s, bool) for s in p["steps"])
        and isinstance(p.get("warnings"), list)
        and all(isinstance(w, str) for w in p["warnings"])
        and _is_ps(p.get("total_ps"))
        and _is_ps(p.get("step_time_ps"))
        and isinstance(layers, list)
        and isinstance(buckets, list)
        and all(_valid_node(n) for n in layers + buckets)
        and sum(n["total_ps"] for n in layers + buckets) == p["total_ps"]
    )


def _header_ok(p: Any) -> bool:
    return (
        isinstance(p, dict)
        and isinstance(p.get("host"), str)
        and isinstance(p.get("steps"), list)
        and all(isinstance(s, int) and not isinstance(s, bool) for s in p["steps"])
        and isinstance(p.get("warnings"), list)
        and all(isinstance(w, str) for w in p["warnings"])
    )


_ROW_STR = ("name", "type", "phase", "attribution_source", "device", "device_id", "clock")
_ROW_PS = ("time_ps", "self_ps", "total_ps")


def _valid_row(r: Any) -> bool:
    """One op row as ``breakdown.op_rows`` makes it (typed fields, per-device split adds up)."""
    if not isinstance(r, dict):
        return False
    layer, ids = r.get("layer"), r.get("device_ids")
    return (
        all(isinstance(r.get(k), str) for k in _ROW_STR)
        and all(_is_ps(r.get(k)) for k in _ROW_PS)
        and (layer is None or (isinstance(layer, list) and all(isinstance(x, str) for x in layer)))
        and isinstance(r.get("count"), int | float)
        and isinstance(ids, dict)
        and all(_is_ps(v) for v in ids.values())
        and (not ids or sum(ids.values()) == r["time_ps"])
    )


def valid_ops_payload(p: Any) -> bool:
    """True when ``p`` has the shape of an ``/ops`` payload (every row well-formed)."""
    return _header_ok(p) and isinstance(p.get("ops"), list) and all(_valid_row(r) for r in p["ops"])


def valid_readiness_payload(p: Any) -> bool:
    """True when ``p`` has the shape of a ``/readiness`` payload whose verdict times add up."""
    if not (_header_ok(p) and isinstance(p.get("ops"), list) and _is_ps(p.get("total_ps"))):
        return False
    verdicts = p.get("verdict_ps")
    return (
        all(_valid_row(r) and isinstance(r.get("verdict"), str) for r in p["ops"])
        and isinstance(verdicts, dict)
        and all(_is_ps(v) for v in verdicts.values())
        and sum(verdicts.values()) == p["total_ps"]
        and all(isinstance(p.get(k), list) for k in ("layers", "layer_tree", "buckets"))
        and isinstance(p.get("metal_version"), str)
    )


VALIDATORS = {
    "layers": valid_layers_payload,
    "ops": valid_ops_payload,
    "readiness": valid_readiness_payload,
}


class DiskCache:
    """JSON payloads on disk; every failure only disables caching, never a request.

    An entry holds its key and a fingerprint of its payload; an entry that does not match
    both, or whose payload is not well formed for its kind (``VALIDATORS``), is deleted and
    never served (the real payload rewrites it once the profile is loaded).
    """

    def __init__(self, directory: Path | None):
        self.dir = directory
        self._fingerprint = code_fingerprint() if directory else ""

    def _key(self, identity: tuple, step: Any, kind: str, params: tuple) -> str:
        raw = repr((self._fingerprint, identity, kind, step, params))
        return hashlib.sha256(raw.encode()).hexdigest()

    def _file(self, key: str) -> Path | None:
        return None if self.dir is None else self.dir / (key + ".json")

    def get(
        self, identity: tuple, step: Any, kind: str = "layers", params: tuple = ()
    ) -> dict | None:
        """The ``kind`` payload stored for this file identity, step and params, if intact."""
        found = self.get_with_json(identity, step, kind, params)
        return None if found is None else found[0]

    def get_with_json(
        self, identity: tuple, step: Any, kind: str = "layers", params: tuple = ()
    ) -> tuple[dict, bytes] | None:
        """(payload, its compact JSON bytes as stored) when intact, else None."""
        key = self._key(identity, step, kind, params)
        f = self._file(key)
        if f is None:
            return None
        try:
            # No links followed, and nothing bigger than an entry can be.
            fd = os.open(f, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            if f.is_symlink():
                f.unlink(missing_ok=True)
            return None
        try:
            with os.fdopen(fd, "rb") as fh:
                raw = fh.read(MAX_ENTRY_BYTES + 1)
            # A header line (key, kind, digest of the payload bytes), then the payload: the
            # digest is checked over bytes, without re-serialising a big payload.
            head, _, body = raw.partition(b"\n")
            entry = json.loads(head) if len(raw) <= MAX_ENTRY_BYTES else None
            if (
                isinstance(entry, dict)
                and entry.get("format") == FORMAT
                and entry.get("key") == key
                and entry.get("kind") == kind
                and entry.get("sha256") == hashlib.sha256(body).hexdigest()
            ):
                payload = json.loads(body)
                if VALIDATORS[kind](payload):
                    return payload, body
        except (OSError, ValueError, AttributeError, TypeError, RecursionError):
            pass
        logger.info("tb-metal: ignoring a damaged cache entry %s", f)
        try:
            f.unlink(missing_ok=True)
        except OSError:
            pass
        return None

    def put(
        self, identity: tuple, step: Any, payload: dict, kind: str = "layers", params: tuple = ()
    ) -> None:
        """Store a payload atomically; prune the oldest entries beyond MAX_ENTRIES."""
        key = self._key(identity, step, kind, params)
        f = self._file(key)
        if f is None:
            return
        try:
            body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode("ascii")
        except ValueError:  # not JSON (NaN): nothing worth caching
            return
        entry = {"format": FORMAT, "key": key, "kind": kind}
        entry["sha256"] = hashlib.sha256(body).hexdigest()
        try:
            f.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=f.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                fh.write(json.dumps(entry).encode() + b"\n" + body)
            os.replace(tmp, f)
            entries = sorted(f.parent.glob("*.json"), key=lambda p: p.lstat().st_mtime)
            for old in entries[:-MAX_ENTRIES]:
                old.unlink(missing_ok=True)
        except OSError as exc:
            logger.info("tb-metal: not caching to %s: %s", self.dir, exc)
            self.dir = None  # read-only or full: stop trying
