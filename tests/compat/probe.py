"""Run inside one matrix venv: view the committed demo traces every way a user can.

Usage: python -I probe.py LOGDIR OUT_DIR [--only-startup]

Imports tb-metal as installed in this venv (never the work tree: run with `python -I`
from outside it) and writes one file per viewing output into OUT_DIR, so the matrix
runner can compare them byte for byte across environments:
- cli_*: the CLI (click commands in-process, plus the real `tb-metal` console script);
- route_*: the plugin's routes through TensorBoard's WSGI app;
- tensorboard_*: the real `tensorboard` command started on loopback, which must list the
  Metal tab (found through its entry point) and serve its routes.
OUT_DIR/env.json says what ran (versions, backend, message-class path), and
OUT_DIR/problems.json what `environment_check` predicted about starting TensorBoard.
Exits non-zero when any view fails.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import traceback
import urllib.request
from importlib import metadata
from pathlib import Path

# The demo runs viewed, and the two compared (a GPU-less twin of the same model).
RUNS = ("cnn/train", "augment/train", "custom_op/train")
COMPARED = ("cnn/train", "cnn_cpu/train")
STARTUP_TIMEOUT_S = 90
# Wall-clock figures in payloads (seconds a load took) differ run to run by nature; they
# are replaced by a placeholder in place, every other byte is compared as served.
# Payloads may be compact JSON (cached answers) or indented: with or without the space.
WALL_CLOCK = re.compile(rb'"(load_s)": ?[-+0-9.eE]+')


def _without_wall_clock(body: bytes) -> bytes:
    return WALL_CLOCK.sub(rb'"\1": "<wall clock>"', body)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict:
    """Versions, protobuf backend and which path built the XSpace classes."""
    from google.protobuf.internal import api_implementation

    from tb_metal_plugin import xplane

    return {
        "python": sys.version.split()[0],
        "protobuf": _version("protobuf"),
        "backend": api_implementation.Type(),
        "message_classes": xplane.SOURCE,
        "tensorboard": _version("tensorboard"),
        "numpy": _version("numpy"),
        "setuptools": _version("setuptools"),
        "click": _version("click"),
        "werkzeug": _version("werkzeug"),
        "tensorflow": _version("tensorflow") or _version("tensorflow-cpu"),
    }


def cli_outputs(logdir: str) -> dict[str, bytes]:
    """Every CLI command as JSON (and the layer table as text) on the demo runs."""
    from click.testing import CliRunner

    from tb_metal_plugin.cli import main

    calls = {}
    for run in RUNS:
        tag = run.split("/")[0]
        for cmd in ("layers", "ops", "metal-check"):
            calls[f"cli_{cmd}_{tag}.json"] = [cmd, logdir, "--run", run, "--format", "json"]
        calls[f"cli_layers_{tag}.txt"] = ["layers", logdir, "--run", run]
    a, b = (f"{logdir}/{r}" for r in COMPARED)
    calls["cli_compare.json"] = ["compare", a, b, "--format", "json"]
    out = {}
    for name, args in calls.items():
        res = CliRunner().invoke(main, args, catch_exceptions=False)
        if res.exit_code != 0:
            raise RuntimeError(f"tb-metal {' '.join(args)} exited {res.exit_code}: {res.output}")
        out[name] = res.output.encode()
    # The console script itself, as the README runs it.
    script = Path(sys.executable).with_name("tb-metal")
    res = subprocess.run(
        [str(script), "layers", logdir, "--run", "augment/train"], capture_output=True, timeout=120
    )
    if res.returncode != 0:
        raise RuntimeError(f"tb-metal console script exited {res.returncode}: {res.stderr!r}")
    out["cli_script_layers_augment.txt"] = res.stdout
    return out


def route_outputs(logdir: str) -> dict[str, bytes]:
    """The plugin's routes through TensorBoard's own WSGI app."""
    from tensorboard.backend import application
    from tensorboard.plugins import base_plugin
    from werkzeug.test import Client

    from tb_metal_plugin.plugin import MetalPlugin

    plugin = MetalPlugin(base_plugin.TBContext(logdir=logdir))
    client = Client(application.TensorBoardWSGI([plugin]))
    base = "/data/plugin/metal"

    def get(route: str, query: list[tuple[str, str]]) -> bytes:
        resp = client.get(base + route, query_string=query + [("wait", "120")])
        body = resp.get_data()
        if resp.status_code != 200:
            raise RuntimeError(f"{route} {query}: HTTP {resp.status_code}: {body[:300]!r}")
        return body

    out = {"route_sessions.json": get("/sessions", [])}
    names = [s["name"] for s in json.loads(out["route_sessions.json"])["sessions"]]

    def session_of(run: str) -> str:
        return next(n for n in names if n.startswith(run + "/"))

    for run in RUNS:
        tag, s = run.split("/")[0], [("session", session_of(run))]
        for route in ("layers", "ops", "readiness"):
            out[f"route_{route}_{tag}.json"] = get(f"/{route}", s)
    query = [("session", session_of(r)) for r in COMPARED]
    out["route_compare.json"] = get("/compare", query)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tensorboard_outputs(logdir: str) -> dict[str, bytes]:
    """Start the real `tensorboard` command; the Metal tab must be listed and serve data."""
    port = _free_port()
    exe = Path(sys.executable).with_name("tensorboard")
    cmd = [str(exe), "--logdir", logdir, "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                log = proc.stdout.read().decode(errors="replace")
                raise RuntimeError(f"tensorboard exited {proc.returncode}:\n{log[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/data/plugins_listing", timeout=5) as r:
                    listing = json.loads(r.read())
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("tensorboard did not answer in time") from None
                time.sleep(0.5)
        if "metal" not in listing:
            raise RuntimeError(f"tensorboard lists no Metal tab: {sorted(listing)}")
        with urllib.request.urlopen(f"{url}/data/plugin/metal/sessions", timeout=60) as r:
            sessions = r.read()
        return {
            "tensorboard_metal_listed.json": json.dumps(listing["metal"], sort_keys=True).encode(),
            "tensorboard_sessions.json": sessions,
        }
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main(argv: list[str]) -> int:
    """Write every view's output to OUT_DIR; the exit status says whether all worked."""
    logdir, out_dir = argv[0], Path(argv[1])
    only_startup = "--only-startup" in argv
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ["TB_METAL_CACHE"] = "0"  # every figure computed here, none read from a cache
    failures = {}
    try:
        from tb_metal_plugin.environment_check import tensorboard_startup_problems

        problems = [list(p) for p in tensorboard_startup_problems()]
    except Exception:  # noqa: BLE001 - reported, never fatal: the views are what is tested
        problems = [["environment_check failed", traceback.format_exc()]]
    (out_dir / "problems.json").write_text(json.dumps(problems, indent=1))
    views = [tensorboard_outputs]
    if not only_startup:
        views = [cli_outputs, route_outputs, tensorboard_outputs]
    env: dict = {}
    try:
        env = environment()
    except Exception:  # noqa: BLE001
        failures["environment"] = traceback.format_exc()
    for view in views:
        try:
            for name, body in view(logdir).items():
                (out_dir / name).write_bytes(_without_wall_clock(body))
        except Exception:  # noqa: BLE001 - one failing view must not hide the others
            failures[view.__name__] = traceback.format_exc()
    env["failures"] = failures
    (out_dir / "env.json").write_text(json.dumps(env, indent=1))
    for name, tb in failures.items():
        print(f"--- {name} failed:\n{tb}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
