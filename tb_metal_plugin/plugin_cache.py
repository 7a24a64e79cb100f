"""On-disk cache of the Metal tab's layer payloads, so a restarted TensorBoard shows a big
profile at once while the profile itself reloads in the background.

Entries are keyed by the trace's file identity (path, size, mtime, manifest identity), the
step selection and a fingerprint of the code that computes the numbers, so a rewritten
trace or an upgraded (or edited) tb-metal never serves stale figures. Off with
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

FORMAT = 2
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


def _digest(payload: dict) -> str:
    """Fingerprint of a payload's content (canonical JSON)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


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


class DiskCache:
    """JSON payloads on disk; every failure only disables caching, never a request.

    An entry holds its key and a fingerprint of its payload; an entry that does not match
    both, or whose payload is not a well-formed ``/layers`` payload, is deleted and never
    served (the real payload rewrites it once the profile is loaded).
    """

    def __init__(self, directory: Path | None):
        self.dir = directory
        self._fingerprint = code_fingerprint() if directory else ""

    def _key(self, identity: tuple, step: Any) -> str:
        return hashlib.sha256(repr((self._fingerprint, identity, step)).encode()).hexdigest()

    def _file(self, key: str) -> Path | None:
        return None if self.dir is None else self.dir / (key + ".json")

    def get(self, identity: tuple, step: Any) -> dict | None:
        """The payload stored for this file identity and step, if any and intact."""
        key = self._key(identity, step)
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
            entry = json.loads(raw) if len(raw) <= MAX_ENTRY_BYTES else None
            payload = entry.get("payload") if isinstance(entry, dict) else None
            if (
                entry.get("format") == FORMAT
                and entry.get("key") == key
                and valid_layers_payload(payload)
                and entry.get("sha256") == _digest(payload)
            ):
                return payload
        except (OSError, ValueError, AttributeError, TypeError, RecursionError):
            pass
        logger.info("tb-metal: ignoring a damaged cache entry %s", f)
        try:
            f.unlink(missing_ok=True)
        except OSError:
            pass
        return None

    def put(self, identity: tuple, step: Any, payload: dict) -> None:
        """Store a payload atomically; prune the oldest entries beyond MAX_ENTRIES."""
        key = self._key(identity, step)
        f = self._file(key)
        if f is None:
            return
        try:
            entry = {"format": FORMAT, "key": key, "sha256": _digest(payload), "payload": payload}
        except ValueError:  # not JSON (NaN): nothing worth caching
            return
        try:
            f.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=f.parent, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(entry, fh, allow_nan=False)
            os.replace(tmp, f)
            entries = sorted(f.parent.glob("*.json"), key=lambda p: p.lstat().st_mtime)
            for old in entries[:-MAX_ENTRIES]:
                old.unlink(missing_ok=True)
        except OSError as exc:
            logger.info("tb-metal: not caching to %s: %s", self.dir, exc)
            self.dir = None  # read-only or full: stop trying
