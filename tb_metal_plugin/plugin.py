"""TensorBoard plugin "metal": the Metal tab, thin JSON routes over ``tb_metal_plugin.api``.

Route reference: ``docs/json-api.md``. Each ``*_route`` parses its request (``selectors``,
``plugin_params``), names the payload it wants and the ``plugin_payloads`` function that
makes it, and leaves the rest to ``plugin_answers``: answers kept in memory and on disk,
202 while a profile loads (``plugin_loads``), every failure a JSON error body.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path

from tensorboard.backend import http_util
from tensorboard.plugins import base_plugin

from tb_metal_plugin import errors, readiness, selectors
from tb_metal_plugin import plugin_params as params
from tb_metal_plugin import plugin_payloads as payloads
from tb_metal_plugin.plugin_answers import Answers, json_errors, payload_keys
from tb_metal_plugin.plugin_cache import DiskCache, default_dir
from tb_metal_plugin.plugin_loads import (  # noqa: F401 - re-exported for callers and tests
    Job,
    ProfileCache,
    SessionIndex,
    has_profile_files,
)

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


class MetalPlugin(base_plugin.TBPlugin):
    """The "Metal" tab: per-layer GPU/CPU time, CPU fallbacks, op drill-down, comparison."""

    plugin_name = PLUGIN_NAME

    def __init__(self, context: base_plugin.TBContext):
        """Remember the logdir; nothing is read until the tab asks."""
        self.logdir = os.path.expanduser(context.logdir or "")
        self._index = SessionIndex(self.logdir)
        self._cache = ProfileCache()
        self._disk = DiskCache(default_dir())
        self._answers = Answers(self.logdir, self._cache, self._disk)

    # -- TBPlugin interface -------------------------------------------------

    def get_plugin_apps(self) -> dict:
        """Route table, served under ``/data/plugin/metal``."""
        return {
            "/index.js": self.static_route,
            "/style.css": self.static_route,
            "/sessions": self.sessions_route,
            "/layers": self.layers_route,
            "/ops": self.ops_route,
            "/compare": self.compare_route,
            "/readiness": self.readiness_route,
            "/*": self.unknown_route,
        }

    def is_active(self) -> bool:
        """True when the logdir holds at least one ``*.xplane.pb`` session (cached)."""
        return self._index.active()

    def frontend_metadata(self) -> base_plugin.FrontendMetadata:
        """Load ``index.js`` as an ES module in the tab's iframe."""
        return base_plugin.FrontendMetadata(es_module_path="/index.js", tab_name="Metal")

    # -- routes --------------------------------------------------------------

    @json_errors
    def static_route(self, request):
        """The bundled frontend (or, when it was not built, a module that says so)."""
        name, mimetype = _STATIC_FILES[request.path[request.path.rindex("/") :]]
        try:
            content = (STATIC_DIR / name).read_bytes()
        except OSError:
            if name != "index.js":
                raise errors.NotFoundError(f"{name} not built") from None
            content = _MISSING_BUNDLE_JS.encode()
        return http_util.Respond(request, content, mimetype)

    @json_errors
    def unknown_route(self, request):
        """404 for every other path under the plugin."""
        raise errors.NotFoundError("no such route (see docs/json-api.md)")

    @json_errors
    def sessions_route(self, request):
        """`GET /sessions[?refresh=1]`: the profile sessions under the logdir."""
        found, scan_errors = self._index.get(force=request.args.get("refresh") == "1")
        body = payloads.sessions_impl(self.logdir, found, scan_errors)
        return http_util.Respond(request, body, "application/json")

    @json_errors
    def layers_route(self, request):
        """`GET /layers?session=&host=&step=&wait=`: one profile's layer tree, or with
        ``host=all`` every host of the session side by side."""
        step = selectors.parse_step(request.args.get("step"))
        name = params.session_arg(request.args)
        # A host really named "all" keeps its name.
        if request.args.get("host") == "all" and name:
            if "all" not in dict(self._index.find(name).hosts):
                return self._hosts_layers(request, name, step)
        return self._one_profile(request, payload_keys("layers", step), self._layers_of(step))

    def _hosts_layers(self, request, name: str, step):
        info = self._index.find(name)
        traces = {h: self._index.pick(name, h)[2] for h in sorted(dict(info.hosts))}
        if not traces:
            raise errors.NotFoundError(f"session {name!r} has no host files")
        job = self._cache.get_all(traces, info, step)
        wait_s = params.parse_wait(request.args.get("wait"))
        # Every host is read in worker processes: nothing to serve from disk meanwhile.
        return self._answers.of_profile(
            request,
            job,
            wait_s,
            (payload_keys("layers", step)[0], None),
            lambda job: payloads.hosts_layers_impl(job.profile, step, self.logdir),
        )

    @json_errors
    def ops_route(self, request):
        """`GET /ops?session=&host=&step=&layer=|bucket=&wait=`: op rows of one profile."""
        step = selectors.parse_step(request.args.get("step"))
        layer, bucket = selectors.parse_ops_filter(
            request.args.get("layer"), request.args.get("bucket")
        )
        return self._one_profile(
            request,
            payload_keys("ops", step, (layer, bucket)),
            lambda job: payloads.ops_impl(job.profile, step, layer, bucket, self.logdir),
        )

    @json_errors
    def readiness_route(self, request):
        """`GET /readiness?session=&host=&step=&metal_version=&wait=`: the predicted Metal
        placement of one profile's ops."""
        step = selectors.parse_step(request.args.get("step"))
        version = readiness.parse_metal_version(request.args.get("metal_version"))
        return self._one_profile(
            request,
            payload_keys("readiness", step, (version,)),
            lambda job: payloads.readiness_impl(job.profile, step, version, self.logdir),
        )

    @json_errors
    def compare_route(self, request):
        """`GET /compare?session=A&session=B[&host=..][&step=avg]`: layers side by side."""
        names, hosts = params.compare_args(request.args)
        # Totals of differently long windows are not comparable: average per step.
        step = selectors.parse_step(request.args.get("step", "avg"))
        wait_s = params.parse_wait(request.args.get("wait"))
        picks = [self._index.pick(n, h) for n, h in zip(names, hosts, strict=True)]
        jobs = [self._cache.get(path, info) for info, _, path in picks]
        shown = [host for _, host, _ in picks]
        key = (tuple(j.identity for j in jobs), tuple(names), tuple(shown), step)
        return self._answers.compared(
            request,
            jobs,
            wait_s,
            step,
            key,
            self._layers_of(step),
            functools.partial(payloads.compare_impl, hosts=shown),
        )

    # -- what the routes share ------------------------------------------------

    def _one_profile(self, request, keys: tuple, make: Callable[[Job], dict]):
        """A one-profile route's answer: ``make(job)`` once the profile the request names
        (session, host) has loaded, waiting up to ``wait`` seconds for it."""
        wait_s = params.parse_wait(request.args.get("wait"))
        name = params.require_session(params.session_arg(request.args))
        info, _, path = self._index.pick(name, params.host_arg(request.args))
        return self._answers.of_profile(request, self._cache.get(path, info), wait_s, keys, make)

    def _layers_of(self, step) -> Callable[[Job], dict]:
        """The /layers payload of a loaded profile (also what /compare compares)."""
        return lambda job: payloads.layers_impl(job.profile, step, self.logdir, job.load_s)
