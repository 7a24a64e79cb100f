"""Many hosts: a session's hosts loaded in parallel worker processes, and the all-hosts view.

Multi-worker training writes one trace per host into a session folder. Each host loads in
its own worker process (a load is CPU-bound Python, so threads would take turns). A worker
sends back only the per-layer aggregates of the step selections asked for (a layers
payload, ~15 KiB, per selection): shipping a whole profile (16 MB of per-op, per-step
arrays for a 60 MB trace) costs as much to pickle and unpickle as the load itself, which
would undo the parallelism. So the parent holds kilobytes per host; a host's own views
(`HostsProfile.host`) load its full profile on demand. At most `max_workers` hosts load at
once, which bounds the memory of the loads.

The all-hosts view puts every layer (and bucket) of every host side by side: the sum over
hosts, the mean per host and the slowest host, per layer, beside the per-host views.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from . import __version__
from .errors import NotFoundError, TbMetalError

Progress = Callable[[float, str], None]
ALL = "all"
MAX_WORKERS = 8


DEFAULT_STEPS: tuple = ("all", "avg")


def _load_one(path: str, session: Any, steps: tuple) -> dict:
    """In a worker: one host's layers payloads for ``steps`` (a step it lacks is left out)."""
    from .api import load_file

    prof = load_file(path, session)
    out = {"steps": prof.steps, "layers": {}}
    for step in steps:
        if isinstance(step, int) and step not in out["steps"]:
            continue
        out["layers"][step] = dict(prof.layers(step))
    return out


def _context():
    """How to start workers: fork from a single-threaded process (the CLI, a script: the
    package is already imported, nothing to redo); from a threaded one (TensorBoard), a
    fork could copy a lock some other thread holds, so forkserver (spawn where there is
    none). Neither preloads modules: a worker imports this very checkout, by the parent's
    sys.path, when it unpickles its task."""
    import threading

    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


def _failure(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, TbMetalError) else f"{type(exc).__name__}: {exc}"


def load_hosts(
    traces: Mapping[str, str | os.PathLike],
    session: Any = None,
    max_workers: int | None = None,
    progress: Progress | None = None,
    steps: tuple = DEFAULT_STEPS,
) -> HostsProfile:
    """Load every host's trace, several at once in worker processes, keeping the per-layer
    aggregates of ``steps``; one bad host's error is kept beside the others' results
    (``HostsProfile.errors``). ``max_workers=1`` loads one host after another here."""
    hosts = sorted(traces)
    workers = max_workers or min(len(hosts), os.cpu_count() or 1, MAX_WORKERS)
    profiles: dict[str, Any] = {}
    failed: dict[str, str] = {}
    broken: list[str] = []
    if workers > 1 and len(hosts) > 1:
        with ProcessPoolExecutor(max_workers=workers, mp_context=_context()) as pool:
            futures = {pool.submit(_load_one, str(traces[h]), session, steps): h for h in hosts}
            for done, fut in enumerate(as_completed(futures), 1):
                host = futures[fut]
                try:
                    profiles[host] = fut.result()
                except BrokenProcessPool:
                    broken.append(host)  # the pool died, not this trace: load it here
                except Exception as exc:  # noqa: BLE001 - kept per host, as above
                    failed[host] = _failure(exc)
                if progress:
                    progress(done / len(hosts), f"loaded {done} of {len(hosts)} hosts")
    else:
        broken = list(hosts)
    if broken:
        for i, host in enumerate(broken):
            if progress:
                progress(i / len(broken), f"loading host {host}")
            try:
                profiles[host] = _load_one(str(traces[host]), session, steps)
            except Exception as exc:  # noqa: BLE001 - one bad host never hides the others
                failed[host] = _failure(exc)
    return HostsProfile(profiles, failed, session, {h: str(traces[h]) for h in hosts})


def load_session(
    path: str | os.PathLike,
    run: str | None = None,
    session: str | None = None,
    hosts: str = ALL,
    max_workers: int | None = None,
    progress: Progress | None = None,
    steps: tuple = DEFAULT_STEPS,
) -> HostsProfile:
    """Every host of the chosen session (``hosts="all"``) or a comma-separated few."""
    from .api import choose

    chosen, _, _ = choose(path, run, session)
    if hosts == ALL:
        picked = dict(chosen.hosts)
    else:
        names = [h.strip() for h in hosts.split(",") if h.strip()]
        missing = [h for h in names if h not in chosen.hosts]
        if missing:
            raise NotFoundError(
                f"host {missing[0]!r} is not in session {chosen.name} "
                f"(hosts: {', '.join(sorted(chosen.hosts))})"
            )
        picked = {h: chosen.hosts[h] for h in names}
    return load_hosts(picked, chosen, max_workers, progress, steps)


def _one_clock(clocks) -> str | None:
    clocks = set(clocks) - {None}
    return next(iter(clocks)) if len(clocks) == 1 else ("mixed" if clocks else None)


def _stat(per_host: dict[str, int], n: int, clock: str | None) -> dict:
    slowest = max(sorted(per_host), key=lambda h: per_host[h]) if per_host else None
    total = sum(per_host.values())
    return {
        "sum_ps": total,
        "mean_ps": total / n if n else 0.0,
        "max_ps": per_host[slowest] if slowest is not None else 0,
        "slowest_host": slowest,
        "per_host": per_host,
        "clock": clock,
    }


def _walk(nodes: list[dict], out: dict, host: str, bucket: bool) -> None:
    for node in nodes:
        key = (bucket, tuple(node["path"]))
        row = out.setdefault(key, {"clocks": set(), "per_host": {}})
        row["per_host"][host] = node["total_ps"]
        if node.get("clock"):
            row["clocks"].add(node["clock"])
        _walk(node.get("children") or [], out, host, bucket)


class HostsProfile:
    """The hosts of one session: per-layer aggregates of each, the all-hosts view
    (``layers``) and each host's own Profile on demand (``host``)."""

    def __init__(
        self,
        loaded: dict[str, dict],
        errors: dict[str, str],
        session: Any = None,
        files: dict[str, str] | None = None,
    ):
        self._loaded = loaded
        self.errors = errors
        self.session = session
        self.files = files or {}
        self._profiles: dict[str, Any] = {}

    @property
    def hosts(self) -> list[str]:
        """The hosts that loaded, sorted."""
        return sorted(self._loaded)

    def host(self, name: str) -> Any:
        """One host's full Profile (the per-host views), loaded here on first use."""
        if name not in self._loaded:
            why = self.errors.get(name)
            raise NotFoundError(f"host {name!r}: " + (why or "not in this session"))
        if name not in self._profiles:
            from .api import load_file

            self._profiles[name] = load_file(self.files[name], self.session)
        return self._profiles[name]

    def host_layers(self, name: str, step: object = "avg") -> dict:
        """One host's layers payload: as its worker computed it, else from its profile."""
        from .selectors import parse_step

        key = parse_step(step)
        key = "all" if key is None else key
        done = self._loaded.get(name, {}).get("layers", {})
        if key in done:
            return done[key]
        return dict(self.host(name).layers(key))

    def layers(self, step: object = "avg") -> dict:
        """Per layer and bucket: the sum over hosts, the mean per host and the slowest host."""
        if not self._loaded:
            raise NotFoundError(
                "no host of this session loaded: "
                + "; ".join(f"{h}: {m}" for h, m in sorted(self.errors.items()))
            )
        payloads = {h: self.host_layers(h, step) for h in self.hosts}
        n = len(payloads)
        rows: dict[tuple, dict] = {}
        for host, p in payloads.items():
            _walk(p["layers"], rows, host, False)
            _walk(p["buckets"], rows, host, True)
        layers = []
        for (bucket, path), row in rows.items():
            clocks = row["clocks"]
            layers.append(
                {
                    "path": list(path),
                    "bucket": bucket,
                    **_stat(row["per_host"], n, _one_clock(clocks)),
                }
            )
        layers.sort(key=lambda r: (-r["sum_ps"], r["bucket"], r["path"]))
        first = payloads[self.hosts[0]]
        warnings = [f"{h}: {w}" for h, p in payloads.items() for w in p["warnings"]]
        return {
            "tb_metal_version": __version__,
            "session": self.session.name if self.session else None,
            "run": self.session.run if self.session else None,
            "host": ALL,
            "hosts": self.hosts,
            "host_errors": [{"host": h, "message": m} for h, m in sorted(self.errors.items())],
            "files": {h: self.files.get(h, p["file"]) for h, p in payloads.items()},
            "step": first["step"],
            "total": _stat(
                {h: p["total_ps"] for h, p in payloads.items()},
                n,
                _one_clock(p.get("clock") for p in payloads.values()),
            ),
            "step_time_ps": {h: p["step_time_ps"] for h, p in payloads.items()},
            "step_time_clock": "wall",
            "layers": layers,
            "warnings": warnings,
        }
