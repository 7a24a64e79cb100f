"""Which answer a route gives, whatever payload it asks for.

A route names its payload (kind, step, parameters) and how to make it once its profile is
loaded (a ``plugin_payloads`` function); this module answers with the serialised bytes kept
from an earlier request, with the payload an earlier TensorBoard left on disk while the
profile reloads, with a 202 and the load's progress, with the load's error, or with a newly
made payload (kept, and written to disk). Every failure becomes a JSON error body.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from tensorboard import errors as tb_errors
from tensorboard.backend import http_util
from werkzeug import wrappers

from tb_metal_plugin import errors
from tb_metal_plugin.plugin_cache import DiskCache
from tb_metal_plugin.plugin_loads import Job, ProfileCache, rel_path
from tb_metal_plugin.plugin_responses import JSON, EncodedCache, answer_of, from_disk

# The plugin's logger: failures are reported under the plugin's name, wherever caught.
logger = logging.getLogger("tb_metal_plugin.plugin")


def payload_keys(kind: str, step: Any, params: tuple = ()) -> tuple[tuple, tuple]:
    """The keys of one payload: in a profile's memory, and in the disk cache."""
    return (kind, step, *params), (step, kind, params)


def error_body(kind: str, message: str, **extra) -> dict:
    """A JSON error body (``schema.ErrorBody``)."""
    # "error" is what the frontend reads; "message" is the documented name.
    return {"kind": kind, "message": message, "error": message, **extra}


def trace_error(request, exc: errors.TraceError, logdir: str):
    """422: a trace or manifest that cannot be read, named relative to the logdir."""
    body = error_body("trace_error", exc.message, path=rel_path(exc.path, logdir))
    return http_util.Respond(request, body, JSON, code=422)


def json_errors(fn):
    """A route method (of an object with ``logdir``) whose every failure is a JSON body
    with a kind and a message: 400, 404, 422 (a bad trace) or 500 (a bug, logged)."""

    @wrappers.Request.application
    @functools.wraps(fn)
    def app(self, request):
        try:
            return fn(self, request)
        except (errors.InvalidArgumentError, tb_errors.InvalidArgumentError) as exc:
            body = error_body("invalid_argument", str(exc))
            return http_util.Respond(request, body, JSON, code=400)
        except (errors.NotFoundError, tb_errors.NotFoundError) as exc:
            return http_util.Respond(request, error_body("not_found", str(exc)), JSON, code=404)
        except errors.TraceError as exc:
            return trace_error(request, exc, self.logdir)
        except Exception as exc:  # noqa: BLE001 - a bug must not take the server down
            logger.exception("tb-metal: %s failed", request.path)
            body = error_body("internal", f"{type(exc).__name__}: {exc}")
            return http_util.Respond(request, body, JSON, code=500)

    return app


class Answers:
    """Answers of the plugin's routes from its profiles, memory and disk caches."""

    def __init__(self, logdir: str, profiles: ProfileCache, disk: DiskCache):
        self.logdir = logdir
        self.profiles = profiles
        self.disk = disk
        # Comparisons of loaded profiles, serialised once (keyed by their file identities).
        self.compares = EncodedCache(max_entries=32)

    def failed(self, request, job: Job):
        """The answer of a profile whose load failed (remembered until the file changes)."""
        exc = job.error
        if isinstance(exc, errors.TraceError):
            return trace_error(request, exc, self.logdir)
        path = rel_path(job.identity[0], self.logdir)
        body = error_body("internal", f"{type(exc).__name__}: {exc}", path=path)
        return http_util.Respond(request, body, JSON, code=500)

    def of_profile(
        self,
        request,
        job: Job,
        wait_s: float,
        keys: tuple[tuple, tuple | None],
        make: Callable[[Job], Any],
    ):
        """A one-profile payload: from memory, from disk while loading (when ``keys`` has a
        disk key), 202 while still loading after ``wait_s``, the load's error, or
        ``make(job)`` of the loaded profile."""
        key, disk_key = keys
        enc = job.answers.get(key)
        if enc is not None:
            return enc.respond(request)
        if job.state == "loading" and disk_key is not None:
            with self.profiles.answering:  # the reload waits while this answer is made
                enc = from_disk(self.disk, job, key, disk_key)
                if enc is not None:
                    self.profiles.answering.served()
                    return enc.respond(request)
        job.wait(wait_s)
        if job.state == "loading":
            return http_util.Respond(request, job.status(), JSON, code=202)
        if job.state == "error":
            return self.failed(request, job)
        made = answer_of(self.disk, job, key, functools.partial(make, job), disk_key)
        return made.respond(request)

    def compared(
        self,
        request,
        jobs: Sequence[Job],
        wait_s: float,
        step: Any,
        compare_key: tuple,
        layers_of: Callable[[Job], dict],
        make: Callable[[list[dict]], Any],
    ):
        """A comparison: ``make`` of the profiles' layers payloads (``layers_of`` a loaded
        one), profiles still loading read from the disk cache; 202 while any has neither."""
        enc = self.compares.get(compare_key)
        if enc is not None and all(j.state == "ready" for j in jobs):
            return enc.respond(request)
        deadline = time.monotonic() + wait_s
        for job in jobs:
            job.wait(max(0.0, deadline - time.monotonic()))
        for job in jobs:
            if job.state == "error":
                return self.failed(request, job)
        # Profiles still loading can be compared from an earlier TensorBoard's payloads.
        with self.profiles.answering:
            cached = {
                i: self.disk.get(j.identity, step)
                for i, j in enumerate(jobs)
                if j.state == "loading"
            }
        loading = [jobs[i] for i, c in cached.items() if c is None]
        if cached and not loading:
            self.profiles.answering.served()
        if loading:
            status = {
                "status": "loading",
                "progress": round(sum(j.fraction for j in jobs) / len(jobs), 4),
                "message": f"loading {len(loading)} of {len(jobs)} profiles: " + loading[0].message,
            }
            return http_util.Respond(request, status, JSON, code=202)
        key, disk_key = payload_keys("layers", step)
        payloads = [
            cached[i]
            if i in cached
            else answer_of(self.disk, j, key, functools.partial(layers_of, j), disk_key).payload
            for i, j in enumerate(jobs)
        ]
        body = make(payloads)
        if not cached:  # computed from loaded profiles only: the same on every repeat
            return self.compares.put(compare_key, body).respond(request)
        return http_util.Respond(request, body, JSON)
