"""The manifest the training callback writes beside a trace: where it lives, how it loads."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from .discovery import XPLANE_SUFFIX
from .errors import TraceError

FORMAT = "tb-metal-manifest"
# 2 added the `ops` table (who created each executed op); version 1 files still load
# (they have layer scopes only, and attribution falls back for the rest).
VERSION = 2
SUFFIX = ".tb_metal.json"
MAX_BYTES = 256 << 20  # far above any real manifest (placement of every op of a big model)


def manifest_path_for(xplane_path: str | os.PathLike) -> Path:
    """Return the manifest path that belongs to a `<host>.xplane.pb` file."""
    p = Path(xplane_path)
    name = p.name
    host = name[: -len(XPLANE_SUFFIX)] if name.endswith(XPLANE_SUFFIX) else p.stem
    return p.with_name(host + SUFFIX)


def load_manifest(xplane_path: str | os.PathLike) -> dict[str, Any] | None:
    """Load the manifest beside a trace, None when there is none; TraceError when it is bad."""
    path = manifest_path_for(xplane_path)
    if path.is_symlink():
        # Like traces, a manifest is read only where the scan found it: a link may point
        # anywhere (outside the logdir), so it is refused, not followed.
        raise TraceError(
            str(path), "the tb-metal manifest is a symbolic link; only regular files are read"
        )
    if not path.is_file():
        return None
    try:
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        fd = os.open(path, flags)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise TraceError(str(path), "the tb-metal manifest is not a regular file")
        with os.fdopen(fd, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise TraceError(str(path), f"tb-metal manifest over {MAX_BYTES >> 20} MB")
        data = json.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise TraceError(str(path), f"unreadable tb-metal manifest ({e})") from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TraceError(str(path), "not a tb-metal manifest (missing 'format')")
    if not isinstance(data.get("version", 0), int) or data.get("version", 0) > VERSION:
        raise TraceError(
            str(path),
            f"manifest version {data.get('version')} is newer than this tb-metal reads "
            f"({VERSION}); upgrade tb-metal",
        )
    return data


def write_manifest(xplane_path: str | os.PathLike, data: dict[str, Any]) -> Path:
    """Write a manifest beside a trace atomically (a reader never sees half a file)."""
    path = manifest_path_for(xplane_path)
    body = {"format": FORMAT, "version": VERSION, **data}
    tmp = path.with_name(path.name + ".tmp")
    # Compact: the `ops` and `placement` tables of a large model run to tens of
    # thousands of rows (`python -m json.tool` shows the file indented).
    tmp.write_text(json.dumps(body, separators=(",", ":")), encoding="utf-8")
    os.replace(tmp, path)
    return path
