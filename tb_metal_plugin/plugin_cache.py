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

FORMAT = 1
MAX_ENTRIES = 256
# The modules whose code decides the numbers in a layers payload.
_CORE_MODULES = (
    "api.py", "attribution.py", "opnames.py", "phases.py", "neighbours.py", "breakdown.py",
    "devices.py",
    "events.py", "manifest.py",
    "xspace_reader.py", "discovery.py", "plugin.py",
)  # fmt: skip


def default_dir() -> Path | None:
    """Where the cache lives, or None when it is switched off."""
    if os.environ.get("TB_METAL_CACHE", "1") == "0":
        return None
    if os.environ.get("TB_METAL_CACHE_DIR"):
        return Path(os.environ["TB_METAL_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tb-metal"


def code_fingerprint() -> str:
    """Version plus size and mtime of the core modules: changes whenever the code does."""
    from tb_metal_plugin import __version__

    here = Path(__file__).resolve().parent
    parts: list[Any] = [FORMAT, __version__]
    for name in _CORE_MODULES:
        try:
            st = (here / name).stat()
            parts.append((name, st.st_size, st.st_mtime_ns))
        except OSError:
            parts.append((name, None))
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


class DiskCache:
    """JSON payloads on disk; every failure only disables caching, never a request."""

    def __init__(self, directory: Path | None):
        self.dir = directory
        self._fingerprint = code_fingerprint() if directory else ""

    def _file(self, identity: tuple, step: Any) -> Path | None:
        if self.dir is None:
            return None
        key = repr((self._fingerprint, identity, step)).encode()
        return self.dir / (hashlib.sha256(key).hexdigest() + ".json")

    def get(self, identity: tuple, step: Any) -> dict | None:
        """The payload stored for this file identity and step, if any."""
        f = self._file(identity, step)
        if f is None:
            return None
        try:
            with open(f, encoding="utf-8") as fh:
                return json.load(fh)
        except (OSError, ValueError):
            return None

    def put(self, identity: tuple, step: Any, payload: dict) -> None:
        """Store a payload atomically; prune the oldest entries beyond MAX_ENTRIES."""
        f = self._file(identity, step)
        if f is None:
            return
        try:
            f.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=f.parent, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(payload, fh)
            os.replace(tmp, f)
            entries = sorted(f.parent.glob("*.json"), key=lambda p: p.stat().st_mtime)
            for old in entries[:-MAX_ENTRIES]:
                old.unlink(missing_ok=True)
        except OSError as exc:
            logger.info("tb-metal: not caching to %s: %s", self.dir, exc)
            self.dir = None  # read-only or full: stop trying
