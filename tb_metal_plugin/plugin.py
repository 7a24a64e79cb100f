"""TensorBoard plugin "metal": the Metal tab, thin JSON routes over ``tb_metal_plugin.api``.

Route reference: ``docs/json-api.md``. Every number comes from ``api``; sessions and
background loads live in ``plugin_loads``, parameter checks in ``validate``. This module
maps requests to those calls and every failure to a JSON error body.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from pathlib import Path
from typing import Any

from tensorboard import errors as tb_errors
from tensorboard.backend import http_util
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from tb_metal_plugin import errors, selectors, validate
from tb_metal_plugin.plugin_cache import DiskCache, default_dir
from tb_metal_plugin.plugin_loads import (  # noqa: F401 - re-exported for callers and tests
    Job,
    ProfileCache,
    SessionIndex,
    has_profile_files,
)
from tb_metal_plugin.plugin_responses import Encoded, EncodedCache, answer_of, from_disk

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
_MAX_NAME = 1024


def _parse_wait(raw: str | None) -> float:
    return validate.parse_seconds(raw, "wait", _MAX_WAIT_S)


def _parse_metal_version(raw: str | None) -> str:
    from tb_metal_plugin import readiness

    versions = readiness.available_metal_versions()
    if not raw:
        return versions[0]
    if raw not in versions:
        raise errors.InvalidArgumentError(
            f"unknown tensorflow-metal version {raw[:40]!r}; known: {', '.join(versions)}"
        )
    return raw


def _check_name(value: str, what: str) -> str:
    # Names only select among scanned sessions, so they never reach the file system;
    # still refuse obviously hostile values early with a clear 400.
    if len(value) > _MAX_NAME or "\x00" in value:
        raise errors.InvalidArgumentError(f"invalid {what}")
    return value


def _inside(path: Path | str, root: str) -> bool:
    """True when ``path``, symbolic links resolved, lies inside ``root`` (also resolved)."""
    try:
        real_root = os.path.realpath(root)
        real = os.path.realpath(path)
    except (OSError, ValueError):
        return False
    return os.path.commonpath([real_root, real]) == real_root


def _error_body(kind: str, message: str, **extra) -> dict:
    # "error" is what the frontend reads; "message" is the documented name.
    return {"kind": kind, "message": message, "error": message, **extra}


def _route(fn):
    """A WSGI route whose every failure is a JSON body with a kind and a message."""

    @wrappers.Request.application
    @functools.wraps(fn)
    def app(self, request):
        try:
            return fn(self, request)
        except (errors.InvalidArgumentError, tb_errors.InvalidArgumentError) as exc:
            return http_util.Respond(
                request, _error_body("invalid_argument", str(exc)), _JSON, code=400
            )
        except (errors.NotFoundError, tb_errors.NotFoundError) as exc:
            return http_util.Respond(request, _error_body("not_found", str(exc)), _JSON, code=404)
        except errors.TraceError as exc:
            return self._trace_error(request, exc)
        except Exception as exc:  # noqa: BLE001 - a bug must not take the server down
            logger.exception("tb-metal: %s failed", request.path)
            body = _error_body("internal", f"{type(exc).__name__}: {exc}")
            return http_util.Respond(request, body, _JSON, code=500)

    return app


# ---------------------------------------------------------------------------
# The plugin


class MetalPlugin(base_plugin.TBPlugin):
    """The "Metal" tab: per-layer GPU/CPU time, CPU fallbacks, op drill-down, comparison."""

    plugin_name = PLUGIN_NAME

    def __init__(self, context: base_plugin.TBContext):
        """Remember the logdir; nothing is read until the tab asks."""
        self._logdir = os.path.expanduser(context.logdir or "")
        self._index = SessionIndex(self._logdir)
        self._cache = ProfileCache()
        self._disk = DiskCache(default_dir())
        self._compares = EncodedCache(max_entries=32)

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
            "/*": self._serve_unknown,
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

    def _trace_error(self, request, exc: errors.TraceError):
        body = _error_body("trace_error", exc.message, path=self._rel(exc.path))
        return http_util.Respond(request, body, _JSON, code=422)

    def _session_host(self, request) -> tuple[Any, str, Path]:
        name = _check_name(request.args.get("session", ""), "session")
        if not name:
            raise errors.InvalidArgumentError("missing 'session' (\"run/session\")")
        return self._pick(name, _check_name(request.args.get("host") or "", "host"))

    def _pick(self, name: str, host: str) -> tuple[Any, str, Path]:
        info = self._index.find(name)
        hosts = dict(info.hosts)
        if not host:
            if not hosts:
                raise errors.NotFoundError(f"session {name!r} has no host files")
            host = sorted(hosts)[0]
        if host not in hosts:
            raise errors.NotFoundError(f"no host {host!r} in session {name!r}")
        path = Path(hosts[host])
        # The scan follows no links, but a file can become one after it: check again now.
        if path.is_symlink() or not _inside(path, self._logdir):
            raise errors.NotFoundError(f"{name!r} is not under the logdir")
        return info, host, path

    def _job(self, info: Any, host: str, path: Path) -> Job:
        return self._cache.get(path, info)

    def _failed(self, request, job: Job):
        exc = job.error
        if isinstance(exc, errors.TraceError):
            return self._trace_error(request, exc)
        body = _error_body(
            "internal", f"{type(exc).__name__}: {exc}", path=self._rel(job.identity[0])
        )
        return http_util.Respond(request, body, _JSON, code=500)

    def _layers_payload(self, job: Job, info: Any, host: str, path: Path, step) -> dict:
        """The /layers payload of a loaded profile (computed once, kept serialised)."""
        return self._answer_of(
            job,
            ("layers", step),
            self._layers_maker(job, info, host, path, step),
            (step, "layers", ()),
        ).payload

    def _layers_maker(self, job: Job, info: Any, host: str, path: Path, step):
        def make() -> dict:
            payload = dict(job.profile.layers(step=step))
            payload.setdefault("session", info.name)
            payload.setdefault("host", host)
            payload["run"] = getattr(info, "run", None)
            # Paths relative to the logdir: the page needs no more, and shows less.
            payload["file"] = self._rel(path)
            payload["load_s"] = round(job.load_s or 0.0, 3)
            return payload

        return make

    def _answer_of(self, job: Job, key: tuple, make, disk: tuple | None) -> Encoded:
        return answer_of(self._disk, job, key, make, disk)

    def _from_disk(self, job: Job, key: tuple, disk: tuple) -> Encoded | None:
        return from_disk(self._disk, job, key, disk)

    def _answer(self, request, key: tuple, make, disk: tuple | None):
        """Answer a one-profile route: from memory, from disk while loading, or computed."""
        wait_s = _parse_wait(request.args.get("wait"))
        info, host, path = self._session_host(request)
        job = self._job(info, host, path)
        enc = job.answers.get(key)
        if enc is not None:
            return enc.respond(request)
        if job.state == "loading" and disk is not None:
            with self._cache.answering:  # the reload waits while this answer is made
                enc = self._from_disk(job, key, disk)
                if enc is not None:
                    self._cache.answering.served()
                    return enc.respond(request)
        job.wait(wait_s)
        if job.state == "loading":
            return http_util.Respond(request, job.status(), _JSON, code=202)
        if job.state == "error":
            return self._failed(request, job)
        return self._answer_of(job, key, make(job, info, host, path), disk).respond(request)

    # -- routes --------------------------------------------------------------

    @_route
    def _serve_static(self, request):
        name, mimetype = _STATIC_FILES[request.path[request.path.rindex("/") :]]
        try:
            content = (STATIC_DIR / name).read_bytes()
        except OSError:
            if name != "index.js":
                raise errors.NotFoundError(f"{name} not built") from None
            content = _MISSING_BUNDLE_JS.encode()
        return http_util.Respond(request, content, mimetype)

    @_route
    def _serve_unknown(self, request):
        raise errors.NotFoundError("no such route (see docs/json-api.md)")

    @_route
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

    def _all_hosts(self, request, step):
        """/layers?host=all: every host of the session, side by side (``hosts.py``)."""
        name = _check_name(request.args.get("session", ""), "session")
        if not name:
            raise errors.InvalidArgumentError("missing 'session' (\"run/session\")")
        info = self._index.find(name)
        traces = {}
        for host in sorted(dict(info.hosts)):
            _, _, path = self._pick(name, host)
            traces[host] = path
        if not traces:
            raise errors.NotFoundError(f"session {name!r} has no host files")
        job = self._cache.get_all(traces, info, step)
        job.wait(_parse_wait(request.args.get("wait")))
        if job.state == "loading":
            return http_util.Respond(request, job.status(), _JSON, code=202)
        if job.state == "error":
            return self._failed(request, job)

        def make() -> dict:
            payload = job.profile.layers(step)
            payload["files"] = {h: self._rel(f) for h, f in payload["files"].items()}
            return payload

        return self._answer_of(job, ("layers", step), make, None).respond(request)

    @_route
    def _serve_layers(self, request):
        step = selectors.parse_step(request.args.get("step"))
        name = _check_name(request.args.get("session", ""), "session")
        if request.args.get("host") == "all" and name:
            # A host really named "all" keeps its name.
            if "all" not in dict(self._index.find(name).hosts):
                return self._all_hosts(request, step)
        return self._answer(
            request,
            ("layers", step),
            lambda job, info, host, path: self._layers_maker(job, info, host, path, step),
            (step, "layers", ()),
        )

    @_route
    def _serve_ops(self, request):
        # Parsed here only to key the payload cache; the API parses them again, one way.
        step = selectors.parse_step(request.args.get("step"))
        layer, bucket = selectors.parse_ops_filter(
            request.args.get("layer"), request.args.get("bucket")
        )

        def maker(job, info, host, path):
            def make() -> dict:
                payload = dict(job.profile.ops(step, layer, bucket))
                payload["file"] = self._rel(path)
                return payload

            return make

        params = (layer, bucket)
        return self._answer(request, ("ops", step, *params), maker, (step, "ops", params))

    @_route
    def _serve_compare(self, request):
        from tb_metal_plugin.compare import compare

        names = [_check_name(n, "session") for n in request.args.getlist("session")]
        if len(names) < 2:
            raise errors.InvalidArgumentError("compare needs two or more 'session' values")
        if len(names) > 8:
            raise errors.InvalidArgumentError("compare at most 8 sessions at once")
        hosts = [_check_name(h, "host") for h in request.args.getlist("host")]
        if len(hosts) > len(names):
            raise errors.InvalidArgumentError("more 'host' values than sessions")
        hosts += [""] * (len(names) - len(hosts))
        # Totals of differently long windows are not comparable: average per step.
        step = selectors.parse_step(request.args.get("step", "avg"))
        wait_s = _parse_wait(request.args.get("wait"))
        picks = [self._pick(n, h) for n, h in zip(names, hosts, strict=True)]
        jobs = [self._job(*p) for p in picks]
        labels = [
            n + ("" if len({h for _, h, _ in picks}) == 1 else f" ({h})")
            for n, (_, h, _) in zip(names, picks, strict=True)
        ]
        key = (tuple(j.identity for j in jobs), tuple(labels), step)
        enc = self._compares.get(key)
        if enc is not None and all(j.state == "ready" for j in jobs):
            return enc.respond(request)
        deadline = time.monotonic() + wait_s
        for job in jobs:
            job.wait(max(0.0, deadline - time.monotonic()))
        for job in jobs:
            if job.state == "error":
                return self._failed(request, job)
        # Profiles still loading can be compared from an earlier TensorBoard's payloads.
        with self._cache.answering:
            cached = {
                i: self._disk.get(j.identity, step)
                for i, j in enumerate(jobs)
                if j.state == "loading"
            }
        loading = [jobs[i] for i, c in cached.items() if c is None]
        if cached and not loading:
            self._cache.answering.served()
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
        body = compare(payloads, labels)
        if not cached:  # computed from loaded profiles only: the same on every repeat
            return self._compares.put(key, body).respond(request)
        return http_util.Respond(request, body, _JSON)

    @_route
    def _serve_readiness(self, request):
        from tb_metal_plugin import readiness

        step = selectors.parse_step(request.args.get("step"))
        version = _parse_metal_version(request.args.get("metal_version"))

        def maker(job, info, host, path):
            def make() -> dict:
                ops = job.profile.ops(step=step)
                payload = readiness.check(ops, job.profile.manifest, version)
                payload["file"] = self._rel(path)
                # The picker's choices, newest (the default) first.
                payload["metal_versions"] = readiness.available_metal_versions()
                return payload

            return make

        disk = (step, "readiness", (version,))
        return self._answer(request, ("readiness", step, version), maker, disk)
