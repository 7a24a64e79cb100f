"""TensorBoard plugin "metal": the Metal tab, thin JSON routes over ``tb_metal_plugin.api``.

Route reference: ``docs/json-api.md``. Every number comes from ``api``; this module only
finds sessions under the logdir, caches loaded profiles per file identity, loads them in
the background (reporting progress) and serves the bundled frontend.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from tensorboard import errors as tb_errors
from tensorboard.backend import http_util
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from tb_metal_plugin import errors
from tb_metal_plugin.discovery import XPLANE_SUFFIX
from tb_metal_plugin.plugin_cache import DiskCache, default_dir

logger = logging.getLogger(__name__)

PLUGIN_NAME = "metal"
STATIC_DIR = Path(__file__).resolve().parent / "static"
_STATIC_FILES = {
    "/index.js": ("index.js", "text/javascript"),
    "/style.css": ("style.css", "text/css"),
}
# Served when the package was installed without building the frontend, so the tab says
# what is wrong instead of staying blank.
_MISSING_BUNDLE_JS = """export function render() {
  document.body.textContent = "tb-metal: the Metal tab's frontend bundle is missing. " +
    "Reinstall with node/npm available (pip install tb-metal builds it), or run " +
    "'npm ci && npm run build' in frontend/.";
}
"""
_JSON = "application/json"
_MAX_WAIT_S = 120.0


# ---------------------------------------------------------------------------
# Sessions under the logdir


def _scan(logdir: str) -> tuple[list[Any], list[dict]]:
    """Find profile sessions under ``logdir``: (SessionInfo list, errors of the scan)."""
    from tb_metal_plugin import api

    try:
        return list(api.find_sessions(logdir)), []
    except errors.NotFoundError:
        return [], []
    except OSError as exc:
        return [], [{"path": logdir, "message": str(exc)}]


def _has_profile_files(logdir: str) -> bool:
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


class _SessionIndex:
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

    def active(self) -> bool:
        """Whether the logdir holds any profile; cached, and never re-checked once true."""
        if self._active or not self._logdir:
            return self._active
        now = time.monotonic()
        if now - self._active_checked_at < self._inactive_recheck_s:
            return False
        self._active_checked_at = now
        try:
            self._active = _has_profile_files(self._logdir)
        except OSError:
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
        raise tb_errors.NotFoundError(f"no profile session {name!r} under the logdir")


# ---------------------------------------------------------------------------
# Loaded profiles, cached per file identity and loaded in the background


def _file_identity(path: Path) -> tuple:
    st = path.stat()
    ident: tuple = (str(path), st.st_size, st.st_mtime_ns)
    # The manifest beside a trace changes the breakdown (exact attribution and
    # placement), so a rewritten manifest must invalidate the cache too.
    try:
        from tb_metal_plugin.manifest import manifest_path_for

        m = manifest_path_for(path)
        mst = m.stat()
        ident += (mst.st_size, mst.st_mtime_ns)
    except (OSError, ImportError):
        ident += (None, None)
    return ident


class _Job:
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
        self.payloads: dict[Any, dict] = {}
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


class ProfileCache:
    """LRU of loaded profiles keyed by (path, size, mtime_ns, manifest identity)."""

    def __init__(
        self, max_profiles: int = 8, max_trace_bytes: int = 512 << 20, max_parallel_loads: int = 1
    ):
        self._jobs: OrderedDict[tuple, _Job] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_profiles
        # A loaded profile holds about 1.5x its trace's size (62 MB trace: ~90 MB), so
        # bound the cache by trace bytes too; the newest profile always stays.
        self._max_bytes = max_trace_bytes
        # Loads are CPU-bound Python: running several at once only slows each down.
        self._slots = threading.Semaphore(max_parallel_loads)

    def get(self, path: Path, info: Any) -> _Job:
        """The job for this file's current identity, started in the background if new."""
        identity = _file_identity(path)
        with self._lock:
            job = self._jobs.get(identity)
            if (
                job is not None
                and job.state == "error"
                and not isinstance(job.error, errors.TraceError)
            ):
                job = None  # unexpected failures are retried, bad files are not
            if job is not None:
                self._jobs.move_to_end(identity)
                return job
            job = _Job(identity)
            # A rewritten file replaces its older identities right away.
            for old in [k for k in self._jobs if k[0] == identity[0]]:
                del self._jobs[old]
            self._jobs[identity] = job
            while len(self._jobs) > 1 and (
                len(self._jobs) > self._max or sum(k[1] for k in self._jobs) > self._max_bytes
            ):
                self._jobs.popitem(last=False)
        threading.Thread(
            target=self._load,
            args=(job, path, info),
            name=f"tb-metal-load-{path.name}",
            daemon=True,
        ).start()
        return job

    def _load(self, job: _Job, path: Path, info: Any) -> None:
        from tb_metal_plugin import api

        with self._slots:
            job.progress(0.0, "reading " + path.name)
            t0 = time.monotonic()
            try:
                job.profile = api.load_file(path, info, job.progress)
                job.state = "ready"
                job.fraction, job.message = 1.0, "ready"
            except BaseException as exc:  # noqa: BLE001 - reported to the client
                logger.warning("tb-metal: loading %s failed: %s", path, exc)
                job.error = exc
                job.state = "error"
            finally:
                job.load_s = time.monotonic() - t0
                job.done.set()


# ---------------------------------------------------------------------------
# Request parsing


def _parse_step(raw: str | None) -> int | str | None:
    if raw is None or raw in ("", "all", "total"):
        return None
    if raw == "avg":
        return "avg"
    try:
        return int(raw)
    except ValueError:
        raise tb_errors.InvalidArgumentError(
            f"step must be an integer, 'avg' or 'all', not {raw!r}"
        ) from None


def _parse_wait(raw: str | None) -> float:
    if not raw:
        return 0.0
    try:
        wait = float(raw)
    except ValueError:
        raise tb_errors.InvalidArgumentError(f"wait must be seconds, not {raw!r}") from None
    if not 0 <= wait <= _MAX_WAIT_S:
        raise tb_errors.InvalidArgumentError(f"wait must be within 0..{_MAX_WAIT_S:g} s")
    return wait


def _parse_layer(raw: str | None) -> list[str] | None:
    if raw is None or raw == "":
        return None
    try:
        layer = json.loads(raw)
    except ValueError:
        layer = None
    if not isinstance(layer, list) or not all(isinstance(p, str) for p in layer):
        raise tb_errors.InvalidArgumentError(
            'layer must be a JSON array of path components, e.g. ["model","dense"]'
        )
    return layer


def _parse_metal_version(raw: str | None) -> str:
    from tb_metal_plugin import readiness

    versions = readiness.available_metal_versions()
    if not raw:
        return versions[0]
    if raw not in versions:
        raise tb_errors.InvalidArgumentError(
            f"unknown tensorflow-metal version {raw!r}; known: {', '.join(versions)}"
        )
    return raw


def _check_name(value: str, what: str) -> str:
    # Names only select among scanned sessions, so they never reach the file system;
    # still refuse obviously hostile values early with a clear 400.
    if len(value) > 1024 or "\x00" in value:
        raise tb_errors.InvalidArgumentError(f"invalid {what}")
    return value


def _is_under(path: Path, root: str) -> bool:
    """Lexical containment (``..`` resolved, symlinks kept: a user may link runs in)."""
    root_abs = os.path.normpath(os.path.abspath(root))
    p = os.path.normpath(os.path.abspath(path))
    return os.path.commonpath([root_abs, p]) == root_abs


# ---------------------------------------------------------------------------
# The plugin


class MetalPlugin(base_plugin.TBPlugin):
    """The "Metal" tab: per-layer GPU/CPU time, CPU fallbacks, op drill-down, comparison."""

    plugin_name = PLUGIN_NAME

    def __init__(self, context: base_plugin.TBContext):
        """Remember the logdir; nothing is read until the tab asks."""
        self._logdir = os.path.expanduser(context.logdir or "")
        self._index = _SessionIndex(self._logdir)
        self._cache = ProfileCache()
        self._disk = DiskCache(default_dir())

    # -- TBPlugin interface -------------------------------------------------

    def get_plugin_apps(self) -> dict:
        """Route table, served under ``/data/plugin/metal``."""
        return {
            "/index.js": self._serve_static,
            "/style.css": self._serve_static,
            "/sessions": self._serve_sessions,
            "/layers": self._serve_layers,
            "/ops": self._serve_ops,
            "/compare": self._serve_compare,
            "/readiness": self._serve_readiness,
        }

    def is_active(self) -> bool:
        """True when the logdir holds at least one ``*.xplane.pb`` session (cached)."""
        return self._index.active()

    def frontend_metadata(self) -> base_plugin.FrontendMetadata:
        """Load ``index.js`` as an ES module in the tab's iframe."""
        return base_plugin.FrontendMetadata(es_module_path="/index.js", tab_name="Metal")

    # -- helpers -------------------------------------------------------------

    def _rel(self, path: Any) -> str:
        try:
            return os.path.relpath(str(path), self._logdir)
        except ValueError:
            return str(path)

    def _session_host(self, request) -> tuple[Any, str, Path]:
        name = _check_name(request.args.get("session", ""), "session")
        if not name:
            raise tb_errors.InvalidArgumentError("missing 'session' (\"run/session\")")
        return self._pick(name, request.args.get("host") or "")

    def _pick(self, name: str, host: str) -> tuple[Any, str, Path]:
        info = self._index.find(name)
        hosts = dict(info.hosts)
        if not host:
            if not hosts:
                raise tb_errors.NotFoundError(f"session {name!r} has no host files")
            host = sorted(hosts)[0]
        _check_name(host, "host")
        if host not in hosts:
            raise tb_errors.NotFoundError(f"no host {host!r} in session {name!r}")
        path = Path(hosts[host])
        if not _is_under(path, self._logdir):
            raise tb_errors.NotFoundError(f"{name!r} is not under the logdir")
        return info, host, path

    def _job(self, info: Any, host: str, path: Path) -> _Job:
        return self._cache.get(path, info)

    @staticmethod
    def _wait(job: _Job, wait_s: float) -> None:
        if wait_s > 0 and job.state == "loading":
            job.done.wait(wait_s)

    def _error_response(self, request, job: _Job):
        exc = job.error
        if isinstance(exc, errors.TraceError):
            body = {"error": exc.message, "path": self._rel(exc.path), "kind": "trace_error"}
            return http_util.Respond(request, body, _JSON, code=422)
        body = {"error": f"{type(exc).__name__}: {exc}", "kind": "internal"}
        return http_util.Respond(request, body, _JSON, code=500)

    @staticmethod
    def _call(fn, *args, **kwargs):
        """Run an api call, mapping our typed errors to TensorBoard's 404/400."""
        try:
            return fn(*args, **kwargs)
        except errors.NotFoundError as exc:
            raise tb_errors.NotFoundError(str(exc)) from exc
        except errors.InvalidArgumentError as exc:
            raise tb_errors.InvalidArgumentError(str(exc)) from exc

    def _layers_payload(self, job: _Job, info: Any, host: str, path: Path, step) -> dict:
        key = ("layers", step)
        with job.payload_lock:
            payload = job.payloads.get(key)
            if payload is None:
                payload = dict(self._call(job.profile.layers, step=step))
                payload.setdefault("session", info.name)
                payload.setdefault("host", host)
                payload["run"] = getattr(info, "run", None)
                # Paths relative to the logdir: the page needs no more, and shows less.
                payload["file"] = self._rel(path)
                payload["load_s"] = round(job.load_s or 0.0, 3)
                job.payloads[key] = payload
                self._disk.put(job.identity, step, payload)
        return payload

    # -- routes --------------------------------------------------------------

    @wrappers.Request.application
    def _serve_static(self, request):
        name, mimetype = _STATIC_FILES[request.path[request.path.rindex("/") :]]
        try:
            content = (STATIC_DIR / name).read_bytes()
        except OSError:
            if name != "index.js":
                raise tb_errors.NotFoundError(f"{name} not built") from None
            content = _MISSING_BUNDLE_JS.encode()
        return http_util.Respond(request, content, mimetype)

    @wrappers.Request.application
    def _serve_sessions(self, request):
        sessions, scan_errors = self._index.get(force=request.args.get("refresh") == "1")
        body = {
            "logdir_set": bool(self._logdir),
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
                {"path": self._rel(e["path"]) if e["path"] else "", "message": e["message"]}
                for e in scan_errors
            ],
        }
        return http_util.Respond(request, body, _JSON)

    @wrappers.Request.application
    def _serve_layers(self, request):
        step = _parse_step(request.args.get("step"))
        wait_s = _parse_wait(request.args.get("wait"))
        info, host, path = self._session_host(request)
        job = self._job(info, host, path)
        self._wait(job, wait_s)
        if job.state == "loading":
            # A payload computed by an earlier TensorBoard for this very file: show it now.
            cached = self._disk.get(job.identity, step)
            if cached is not None:
                cached["cached"] = True
                return http_util.Respond(request, cached, _JSON)
            return http_util.Respond(request, job.status(), _JSON, code=202)
        if job.state == "error":
            return self._error_response(request, job)
        return http_util.Respond(request, self._layers_payload(job, info, host, path, step), _JSON)

    def _loaded_job(self, request):
        """The request's profile once loaded, or the 202 (loading) / error response instead."""
        wait_s = _parse_wait(request.args.get("wait"))
        info, host, path = self._session_host(request)
        job = self._job(info, host, path)
        self._wait(job, wait_s)
        if job.state == "loading":
            return job, http_util.Respond(request, job.status(), _JSON, code=202), path
        if job.state == "error":
            return job, self._error_response(request, job), path
        return job, None, path

    @wrappers.Request.application
    def _serve_ops(self, request):
        step = _parse_step(request.args.get("step"))
        layer = _parse_layer(request.args.get("layer"))
        bucket = request.args.get("bucket") or None
        if layer is not None and bucket is not None:
            raise tb_errors.InvalidArgumentError("give 'layer' or 'bucket', not both")
        job, early, path = self._loaded_job(request)
        if early is not None:
            return early
        key = ("ops", step, tuple(layer) if layer is not None else None, bucket)
        with job.payload_lock:
            payload = job.payloads.get(key)
            if payload is None:
                payload = dict(self._call(job.profile.ops, step=step, layer=layer))
                if bucket is not None:
                    # Buckets hold the ops outside any layer: rows with no layer path.
                    payload["ops"] = [
                        r
                        for r in payload["ops"]
                        if not r.get("layer") and r.get("bucket") == bucket
                    ]
                payload["file"] = self._rel(path)
                job.payloads[key] = payload
        return http_util.Respond(request, payload, _JSON)

    @wrappers.Request.application
    def _serve_compare(self, request):
        from tb_metal_plugin.compare import compare

        names = [_check_name(n, "session") for n in request.args.getlist("session")]
        if len(names) < 2:
            raise tb_errors.InvalidArgumentError("compare needs two or more 'session' values")
        if len(names) > 8:
            raise tb_errors.InvalidArgumentError("compare at most 8 sessions at once")
        hosts = request.args.getlist("host")
        if len(hosts) > len(names):
            raise tb_errors.InvalidArgumentError("more 'host' values than sessions")
        hosts += [""] * (len(names) - len(hosts))
        # Totals of differently long windows are not comparable: average per step.
        step = _parse_step(request.args.get("step", "avg"))
        wait_s = _parse_wait(request.args.get("wait"))
        picks = [self._pick(n, h) for n, h in zip(names, hosts, strict=True)]
        jobs = [self._job(*p) for p in picks]
        deadline = time.monotonic() + wait_s
        for job in jobs:
            self._wait(job, max(0.0, deadline - time.monotonic()))
        for job in jobs:
            if job.state == "error":
                return self._error_response(request, job)
        # Profiles still loading can be compared from an earlier TensorBoard's payloads.
        cached = {
            i: self._disk.get(j.identity, step) for i, j in enumerate(jobs) if j.state == "loading"
        }
        loading = [jobs[i] for i, c in cached.items() if c is None]
        if loading:
            status = {
                "status": "loading",
                "progress": round(sum(j.fraction for j in jobs) / len(jobs), 4),
                "message": f"loading {len(loading)} of {len(jobs)} profiles: " + loading[0].message,
            }
            return http_util.Respond(request, status, _JSON, code=202)
        payloads = [
            cached[i] if i in cached else self._layers_payload(j, *p, step)
            for i, (j, p) in enumerate(zip(jobs, picks, strict=True))
        ]
        labels = [
            p["session"] + ("" if len({h for _, h, _ in picks}) == 1 else f" ({h})")
            for p, (_, h, _) in zip(payloads, picks, strict=True)
        ]
        return http_util.Respond(request, compare(payloads, labels), _JSON)

    @wrappers.Request.application
    def _serve_readiness(self, request):
        from tb_metal_plugin import readiness

        step = _parse_step(request.args.get("step"))
        version = _parse_metal_version(request.args.get("metal_version"))
        job, early, path = self._loaded_job(request)
        if early is not None:
            return early
        key = ("readiness", step, version)
        with job.payload_lock:
            payload = job.payloads.get(key)
            if payload is None:
                ops = self._call(job.profile.ops, step=step)
                payload = readiness.check(ops, job.profile.manifest, version)
                payload["file"] = self._rel(path)
                # The picker's choices, newest (the default) first.
                payload["metal_versions"] = readiness.available_metal_versions()
                job.payloads[key] = payload
        return http_util.Respond(request, payload, _JSON)
