"""Check that two source trees give byte-identical outputs on every committed trace.

    git archive BASE | tar -x -C /tmp/base          # the tree to compare against
    python benchmarks/same_outputs.py /tmp/base .   # exit 1 on any difference

For every `*.xplane.pb` under tests/fixtures (or the traces given with --trace), each tree
runs in a fresh process, once with the native reader and once with TB_METAL_PURE_PYTHON=1:
`ops` and `layers` (--step all and avg; JSON, compact and --pretty, and CSV; `ops` of two
layers and two buckets, and of an unknown layer), `metal-check --format json`, and the
plugin routes (/sessions, /layers, /ops, /readiness of every session) through TensorBoard's
WSGI app. Wall-clock fields (`load_s`) are masked. Outputs are compared by SHA-256 and
length; the first ten differing cases are named.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = textwrap.dedent(
    """
    import contextlib, hashlib, io, json, os, re, sys, tempfile
    from tb_metal_plugin.cli import main
    traces, logdir = json.loads(sys.argv[1]), sys.argv[2]
    out = {}
    def digest(text):
        text = re.sub(r'"load_s": ?[0-9.e+-]+', '"load_s":0', text)
        return hashlib.sha256(text.encode()).hexdigest() + f" {len(text)}"
    CASES = []
    for step in ("all", "avg"):
        CASES += [["ops", "--format", "json", "--step", step],
                  ["layers", "--format", "json", "--step", step],
                  ["ops", "--format", "csv", "--step", step],
                  ["layers", "--format", "csv", "--step", step]]
    CASES += [["ops", "--format", "json", "--pretty"], ["layers", "--format", "json", "--pretty"],
              ["metal-check", "--format", "json"], ["ops", "--wide", "--limit", "0"],
              ["ops", "--format", "json", "--bucket", "optimizer"],
              ["ops", "--format", "json", "--bucket", "root", "--step", "avg"],
              ["ops", "--format", "json", "--layer", "no/such/layer"]]
    for path in traces:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            main(["layers", path, "--format", "json"], standalone_mode=False)
        tops = [n["path"] for n in json.loads(buf.getvalue())["layers"]]
        layer_cases = [["ops", "--format", f, "--layer", "/".join(p)]
                       for p in tops[:2] for f in ("json", "csv")]
        for case in CASES + layer_cases:
            buf, err = io.StringIO(), io.StringIO()
            code = 0
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
                try:
                    main([case[0], path, *case[1:]], standalone_mode=False)
                except SystemExit as e:
                    code = e.code
            out[path + " " + " ".join(case)] = digest(buf.getvalue() + err.getvalue() + str(code))
    os.environ["TB_METAL_CACHE_DIR"] = tempfile.mkdtemp()
    from tensorboard.backend import application
    from tensorboard.plugins import base_plugin
    from werkzeug.test import Client
    from tb_metal_plugin.plugin import MetalPlugin
    plugin = MetalPlugin(base_plugin.TBContext(logdir=logdir))
    client = Client(application.TensorBoardWSGI([plugin]))
    base = "/data/plugin/metal"
    r = client.get(base + "/sessions")
    out["/sessions"] = digest(r.get_data(as_text=True))
    for s in r.json["sessions"]:
        for route in ("/layers", "/ops", "/readiness"):
            for step in ("all", "avg"):
                q = {"session": s["name"], "wait": "120", "step": step}
                r = client.get(base + route, query_string=q)
                body = r.get_data(as_text=True)
                out[f"{route} {s['name']} {step}"] = digest(f"{r.status_code} {body}")
    print(json.dumps(out))
    """
)


def outputs(tree: str, traces: list[str], logdir: str, pure: bool) -> dict[str, str]:
    """Digests of every case, computed by the package in `tree` in a fresh process."""
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree), COLUMNS="120")
    env.pop("TB_METAL_PURE_PYTHON", None)
    if pure:
        env["TB_METAL_PURE_PYTHON"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        res = subprocess.run(
            [sys.executable, "-c", CHILD, json.dumps(traces), logdir],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp,
        )
    if res.returncode:
        raise SystemExit(f"{tree} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Compare the outputs of two trees (and of both readers within each)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base")
    ap.add_argument("new")
    ap.add_argument("--trace", action="append", help="traces (default: tests/fixtures)")
    ap.add_argument("--logdir", default=os.path.join(ROOT, "tests", "fixtures"))
    args = ap.parse_args(argv)
    traces = args.trace or sorted(
        glob.glob(os.path.join(ROOT, "tests", "fixtures", "**", "*.xplane.pb"), recursive=True)
    )
    traces = [os.path.abspath(t) for t in traces]
    runs = {
        (tree, pure): outputs(tree, traces, os.path.abspath(args.logdir), pure)
        for tree in (args.base, args.new)
        for pure in (False, True)
    }
    ref = runs[(args.base, False)]
    bad = 0
    for key, got in runs.items():
        for case, digest in ref.items():
            if got.get(case) != digest:
                bad += 1
                if bad <= 10:
                    print(f"DIFFERENT {key}: {case}: {got.get(case)} vs {digest}")
        if set(got) != set(ref):
            bad += 1
            print(f"DIFFERENT cases {key}: {sorted(set(got) ^ set(ref))[:5]}")
    print(f"{len(ref)} cases x {len(runs)} runs (2 trees x native/pure): {bad} differences")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
