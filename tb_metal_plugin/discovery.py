"""Find profile sessions under a path: one trace file, a session folder, a run or a logdir."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import NotFoundError

XPLANE_SUFFIX = ".xplane.pb"


@dataclass(frozen=True)
class SessionInfo:
    """One profile session: `<run>/plugins/profile/<session>/` with one trace per host."""

    run: str
    session: str
    path: Path
    hosts: dict[str, Path] = field(default_factory=dict, compare=False, hash=False)

    @property
    def name(self) -> str:
        """The session's name as xprof shows it: `<run>/<session>`."""
        return f"{self.run}/{self.session}" if self.run not in ("", ".") else self.session


def host_of(path: Path) -> str:
    """Host name of a trace file: its file name without `.xplane.pb`."""
    return path.name[: -len(XPLANE_SUFFIX)]


def _hosts_in(folder: Path) -> dict[str, Path]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return {}
    return {
        host_of(Path(e.path)): Path(e.path)
        for e in entries
        if e.name.endswith(XPLANE_SUFFIX) and e.is_file(follow_symlinks=False)
    }


def _run_of(session_dir: Path, root: Path) -> str:
    """The run of a standard session folder: the path above `plugins/profile/`, from root."""
    parts = session_dir.parts
    if len(parts) >= 3 and parts[-3] == "plugins" and parts[-2] == "profile":
        run_dir = Path(*parts[:-3])
        try:
            rel = run_dir.relative_to(root)
        except ValueError:
            return run_dir.name or "."
        return rel.as_posix() if rel.parts else "."
    return "."


def find_sessions(path: str | os.PathLike) -> list[SessionInfo]:
    """Every session under `path` (a trace file, session folder, run folder or logdir).

    Only `*.xplane.pb` files are read; xprof's cache files in the same folders are ignored.
    Symbolic links are not followed, so nothing outside `path` is reached.
    """
    root = Path(path)
    if not root.exists():
        raise NotFoundError(f"{root}: no such file or directory")
    if root.is_file():
        if not root.name.endswith(XPLANE_SUFFIX):
            raise NotFoundError(f"{root}: not a profiler trace (expected a *{XPLANE_SUFFIX} file)")
        session_dir = root.parent
        run = _run_of(session_dir, session_dir.parent.parent.parent)
        return [SessionInfo(run, session_dir.name, session_dir, {host_of(root): root})]
    sessions = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        if any(f.endswith(XPLANE_SUFFIX) for f in filenames):
            folder = Path(dirpath)
            hosts = _hosts_in(folder)
            if hosts:
                run = _run_of(folder, root)
                if folder == root and run == ".":
                    # The user pointed at a session folder: name it, not ".".
                    run = _run_of(folder, folder.parent.parent.parent)
                sessions.append(SessionInfo(run, folder.name, folder, hosts))
    return sessions


def select(
    sessions: list[SessionInfo],
    run: str | None = None,
    session: str | None = None,
) -> list[SessionInfo]:
    """Keep the sessions that match a run and/or session name (session may be `run/session`)."""
    out = sessions
    if run is not None:
        out = [s for s in out if s.run == run]
    if session is not None:
        out = [s for s in out if session in (s.session, s.name)]
    if not out:
        known = ", ".join(s.name for s in sessions) or "none"
        wanted = " ".join(
            x for x in (f"run={run}" if run else "", f"session={session}" if session else "") if x
        )
        raise NotFoundError(f"no profile session matches {wanted} (sessions found: {known})")
    return out
