"""The plugin's state: sessions found under the logdir and profiles loaded in the background.

Profiles are cached per file identity (path, size, modification time, inode, and the same
for the manifest beside the trace). A load that failed is remembered as failed until that
identity changes, so a bad file is read once, not on every request of a polling tab.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tb_metal_plugin import errors
from tb_metal_plugin.discovery import XPLANE_SUFFIX
from tb_metal_plugin.plugin_responses import EncodedCache

logger = logging.getLogger(__name__)


def _scan(logdir: str) -> tuple[list[Any], list[dict]]:
    """Find profile sessions under ``logdir``: (SessionInfo list, errors of the scan)."""
    from tb_metal_plugin import api

    try:
        return list(api.find_sessions(logdir)), []
    except errors.NotFoundError:
        return [], []
    except (OSError, RecursionError) as exc:  # unreadable, or absurdly deep folders
        return [], [{"path": logdir, "message": f"cannot scan the logdir: {exc}"}]


def has_profile_files(logdir: str) -> bool:
    """Cheap check for any ``plugins/profile/<session>/*.xplane.pb`` under ``logdir``."""
    for dirpath, dirnames, filenames in os.walk(logdir):
        parent = os.path.dirname(dirpath)
        if (
            os.path.basename(parent) == "profile"
            and os.path.basename(os.path.dirname(parent)) == "plugins"
        ):
            if any(f.endswith(XPLANE_SUFFIX) for f in filenames):
                return True
            dirnames[:] = []
    return False


def inside(path: Path | str, root: str) -> bool:
    """True when ``path``, symbolic links resolved, lies inside ``root`` (also resolved)."""
    try:
        real_root = os.path.realpath(root)
        real = os.path.realpath(path)
    except (OSError, ValueError):
        return False
    return os.path.commonpath([real_root, real]) == real_root


def rel_path(path: Any, logdir: str) -> str:
    """``path`` relative to the logdir: the tab needs no more, and shows less."""
    try:
        return os.path.relpath(str(path), logdir)
    except ValueError:
        return str(path)


class SessionIndex:
    """Scans the logdir at most every ``rescan_s`` seconds; a positive ``active`` is kept."""

    def __init__(self, logdir: str, rescan_s: float = 5.0, inactive_recheck_s: float = 30.0):
        self._logdir = logdir
        self._rescan_s = rescan_s
        self._inactive_recheck_s = inactive_recheck_s
        self._lock = threading.Lock()
        self._scanned_at = -1e18
        self._sessions: list[Any] = []
        self._errors: list[dict] = []
        self._active = False
        self._active_checked_at = -1e18
        # Looked up at call time so tests (and callers) may replace it.
        self.has_profile_files = has_profile_files

    def active(self) -> bool:
        """Whether the logdir holds any profile; cached, and never re-checked once true."""
        if self._active or not self._logdir:
            return self._active
        now = time.monotonic()
        if now - self._active_checked_at < self._inactive_recheck_s:
            return False
        self._active_checked_at = now
        try:
            self._active = self.has_profile_files(self._logdir)
        except (OSError, RecursionError):
            self._active = False
        return self._active

    def get(self, force: bool = False) -> tuple[list[Any], list[dict]]:
        """The sessions and scan errors, rescanned when stale or when ``force``."""
        with self._lock:
            now = time.monotonic()
            if force or now - self._scanned_at > self._rescan_s:
                if self._logdir and os.path.isdir(self._logdir):
                    self._sessions, self._errors = _scan(self._logdir)
                else:
                    self._sessions, self._errors = [], []
                self._scanned_at = now
                if self._sessions:
                    self._active = True
            return self._sessions, self._errors

    def find(self, name: str) -> Any:
        """The session named ``name`` ("run/session"); rescans once before giving up."""
        for force in (False, True):
            sessions, _ = self.get(force=force)
            for s in sessions:
                if s.name == name:
                    return s
        raise errors.NotFoundError(f"no profile session {name!r} under the logdir")

    def pick(self, name: str, host: str) -> tuple[Any, str, Path]:
        """(session, host, trace path) of ``name``; host "" picks the first by name."""
        info = self.find(name)
        hosts = dict(info.hosts)
        if not host:
            if not hosts:
                raise errors.NotFoundError(f"session {name!r} has no host files")
            host = sorted(hosts)[0]
        if host not in hosts:
            raise errors.NotFoundError(f"no host {host!r} in session {name!r}")
        path = Path(hosts[host])
        # The scan follows no links, but a file can become one after it: check again now.
        if path.is_symlink() or not inside(path, self._logdir):
            raise errors.NotFoundError(f"{name!r} is not under the logdir")
        return info, host, path


def file_identity(path: Path) -> tuple:
    """(path, size, mtime_ns, inode) of a trace, the same three of its manifest, then
    those of the run's event files (the step graph)."""
    st = path.stat()
    ident: tuple = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
    # The manifest beside a trace changes the breakdown (exact attribution and
    # placement), so a rewritten manifest must invalidate the cache too. lstat: a link is
    # never followed (the manifest reader refuses links).
    try:
        from tb_metal_plugin.manifest import manifest_path_for

        mst = manifest_path_for(path).lstat()
        ident += (mst.st_size, mst.st_mtime_ns, mst.st_ino)
    except (OSError, ImportError):
        ident += (None, None, None)
    # So does the step graph in the run's event files (read for stock traces).
    from tb_metal_plugin.run_graph import file_identity as graph_identity

    return ident + graph_identity(path)


class Job:
    """One profile load: progress while it runs, then the Profile or the error."""

    def __init__(self, identity: tuple):
        self.identity = identity
        self.state = "loading"
        self.fraction = 0.0
        self.message = "queued"
        self.profile: Any = None
        self.error: BaseException | None = None
        self.started = time.monotonic()
        self.load_s: float | None = None
        self.done = threading.Event()
        # Serialised answers of this profile (plugin_responses.Encoded), per payload key.
        self.answers = EncodedCache(max_entries=64)
        self.payload_lock = threading.Lock()

    def progress(self, fraction: float, message: str) -> None:
        """Progress callback handed to ``api.load_file``."""
        self.fraction = max(0.0, min(1.0, float(fraction)))
        self.message = str(message)

    def status(self) -> dict:
        """JSON body of a 202 answer."""
        return {
            "status": "loading",
            "progress": round(self.fraction, 4),
            "message": self.message,
            "elapsed_s": round(time.monotonic() - self.started, 2),
        }

    def wait(self, seconds: float) -> None:
        """Block up to ``seconds`` for the load to finish."""
        if seconds > 0 and self.state == "loading":
            self.done.wait(seconds)


class Answering:
    """Counts requests being answered from memory or disk, so a load can step aside.

    A load and a request share one interpreter (one GIL): a restarted TensorBoard's first
    answers, all from the disk cache, would wait on the reload of the very profile they
    stand in for. So a load starts once no such answer was made for ``quiet_s`` (at most
    ``max_wait_s`` late; a cold start, with nothing on disk, is not delayed), and pauses
    between trace lines (at most ``max_pause_s`` each time) while one is being made.
    """

    def __init__(self, max_pause_s: float = 0.25, quiet_s: float = 0.5, max_wait_s: float = 3.0):
        self._n = 0
        self._lock = threading.Lock()
        self._max_pause_s = max_pause_s
        self._quiet_s = quiet_s
        self._max_wait_s = max_wait_s
        self._last = -1e18

    def __enter__(self):
        with self._lock:
            self._n += 1
        return self

    def __exit__(self, *exc):
        with self._lock:
            self._n -= 1

    def served(self) -> None:
        """An answer came from the disk cache (more may follow: the tab opens several)."""
        self._last = time.monotonic()

    def wait_quiet(self) -> None:
        """Before a load: wait until answers from the disk cache have stopped coming."""
        deadline = time.monotonic() + self._max_wait_s
        while time.monotonic() < deadline and (
            self._n or time.monotonic() - self._last < self._quiet_s
        ):
            time.sleep(0.01)

    def step_aside(self) -> None:
        """In a load: sleep (releasing the GIL) while an answer is being made."""
        deadline = time.monotonic() + self._max_pause_s
        while self._n and time.monotonic() < deadline:
            time.sleep(0.002)


class ProfileCache:
    """LRU of loaded (or failed) profiles keyed by file identity; loads on a thread pool."""

    def __init__(
        self, max_profiles: int = 8, max_trace_bytes: int = 512 << 20, max_parallel_loads: int = 1
    ):
        self._jobs: OrderedDict[tuple, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_profiles
        # A loaded profile holds about 1.5x its trace's size (62 MB trace: ~90 MB), so
        # bound the cache by trace bytes too; the newest profile always stays.
        self._max_bytes = max_trace_bytes
        # Loads are CPU-bound Python: running several at once only slows each down.
        self._pool = ThreadPoolExecutor(max_parallel_loads, thread_name_prefix="tb-metal-load")
        self.answering = Answering()

    def get(self, path: Path, info: Any) -> Job:
        """The job for this file's current identity, started in the background if new.

        A failed job is kept like a loaded one: the same bytes fail the same way, and a
        file that changes gets a new identity, hence a new load.
        """
        try:
            identity = file_identity(path)
        except OSError as exc:
            raise errors.NotFoundError(f"{path.name}: the trace is gone ({exc.strerror})") from exc
        job, new = self._register(identity)
        if new:
            self._pool.submit(self._load, job, path, info)
        return job

    def _register(self, identity: tuple) -> tuple[Job, bool]:
        """The job of an identity, and whether it is new (then the caller starts its load)."""
        with self._lock:
            job = self._jobs.get(identity)
            if job is not None:
                self._jobs.move_to_end(identity)
                return job, False
            job = Job(identity)
            # A rewritten file replaces its older identities right away.
            for old in [k for k in self._jobs if k[0] == identity[0]]:
                del self._jobs[old]
            self._jobs[identity] = job
            while len(self._jobs) > 1 and (
                len(self._jobs) > self._max or sum(k[1] for k in self._jobs) > self._max_bytes
            ):
                self._jobs.popitem(last=False)
        return job, True

    def get_all(self, traces: dict[str, Path], info: Any, step: Any) -> Job:
        """The job loading every host of a session (``hosts.load_hosts``, in worker
        processes) for the all-hosts view of ``step``; keyed by every trace's identity."""
        try:
            idents = tuple(file_identity(traces[h]) for h in sorted(traces))
        except OSError as exc:
            raise errors.NotFoundError(f"a trace of {info.name} is gone ({exc.strerror})") from exc
        # Same shape as a file's identity: a name, then the bytes it stands for.
        identity = (f"all:{info.name}:{step}", sum(i[1] for i in idents), *idents)
        job, new = self._register(identity)
        if new:
            self._pool.submit(self._load_all, job, traces, info, step)
        return job

    @staticmethod
    def _load_all(job: Job, traces: dict[str, Path], info: Any, step: Any) -> None:
        from tb_metal_plugin import hosts

        job.progress(0.0, f"loading {len(traces)} hosts")
        t0 = time.monotonic()
        steps = hosts.DEFAULT_STEPS + ((step,) if isinstance(step, int) else ())
        try:
            job.profile = hosts.load_hosts(traces, info, progress=job.progress, steps=steps)
            job.state = "ready"
            job.fraction, job.message = 1.0, "ready"
        except Exception as exc:  # noqa: BLE001 - reported to the client, remembered
            logger.exception("tb-metal: loading the hosts of %s failed", info.name)
            job.error = exc
            job.state = "error"
        finally:
            job.load_s = time.monotonic() - t0
            job.done.set()

    def _load(self, job: Job, path: Path, info: Any) -> None:
        from tb_metal_plugin import api

        job.progress(0.0, "reading " + path.name)
        self.answering.wait_quiet()
        t0 = time.monotonic()

        def progress(fraction: float, message: str) -> None:
            job.progress(fraction, message)
            self.answering.step_aside()

        try:
            job.profile = api.load_file(path, info, progress)
            job.state = "ready"
            job.fraction, job.message = 1.0, "ready"
        except Exception as exc:  # noqa: BLE001 - reported to the client, remembered
            if isinstance(exc, errors.TraceError):
                logger.warning("tb-metal: %s", exc)
            else:
                logger.exception("tb-metal: loading %s failed", path)
            job.error = exc
            job.state = "error"
        finally:
            job.load_s = time.monotonic() - t0
            job.done.set()
