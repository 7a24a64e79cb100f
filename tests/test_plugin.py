"""The Metal plugin through TensorBoard's real WSGI app (werkzeug test client), real traces."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from tensorboard.backend import application
from tensorboard.plugins import base_plugin
from werkzeug.test import Client

from tb_metal_plugin import api, plugin, readiness
from tb_metal_plugin.compare import compare
from tb_metal_plugin.plugin import MetalPlugin
from tests.test_plugin_support import augment_logdir, shared_logdir

BASE = "/data/plugin/metal"


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> Path:
    return shared_logdir(tmp_path_factory)


@pytest.fixture(scope="module", autouse=True)
def private_disk_cache(tmp_path_factory):
    """Keep the payload cache of these tests out of ~/.cache (and out of each other's way)."""
    old = os.environ.get("TB_METAL_CACHE_DIR")
    os.environ["TB_METAL_CACHE_DIR"] = str(tmp_path_factory.mktemp("disk_cache"))
    yield
    if old is None:
        del os.environ["TB_METAL_CACHE_DIR"]
    else:
        os.environ["TB_METAL_CACHE_DIR"] = old


def make_client(logdir, path_prefix: str = "") -> tuple[Client, MetalPlugin]:
    p = MetalPlugin(base_plugin.TBContext(logdir=str(logdir) if logdir is not None else ""))
    return Client(application.TensorBoardWSGI([p], path_prefix=path_prefix)), p


@pytest.fixture(scope="module")
def client(logdir):
    return make_client(logdir)[0]


def sessions(client) -> list[str]:
    return [s["name"] for s in client.get(f"{BASE}/sessions").json["sessions"]]


def get(client, route, **params):
    params.setdefault("wait", "60")
    return client.get(f"{BASE}{route}", query_string=params)


def by_run(client, run: str) -> str:
    return next(n for n in sessions(client) if n.startswith(run + "/"))


# -- plugin metadata and activity ---------------------------------------------------


def test_frontend_metadata():
    p = MetalPlugin(base_plugin.TBContext(logdir=""))
    meta = p.frontend_metadata()
    assert meta.es_module_path == "/index.js"
    assert meta.tab_name == "Metal"
    assert p.plugin_name == "metal"


def test_entry_point_is_declared():
    from importlib.metadata import entry_points

    eps = [ep for ep in entry_points(group="tensorboard_plugins") if ep.name == "metal"]
    if not eps:
        pytest.skip("tb-metal is not pip-installed in this environment")
    assert eps[0].value == "tb_metal_plugin.plugin:MetalPlugin"
    assert eps[0].load() is MetalPlugin


def test_is_active(logdir, tmp_path):
    assert make_client(logdir)[1].is_active()
    assert not make_client(tmp_path)[1].is_active()
    assert not make_client(None)[1].is_active()


def test_is_active_is_cached(logdir, monkeypatch):
    _, p = make_client(logdir)
    assert p.is_active()
    calls = []
    monkeypatch.setattr(p._index, "has_profile_files", lambda d: calls.append(d) or True)
    for _ in range(5):
        assert p.is_active()
    assert calls == []  # a positive answer is never recomputed


def test_negative_is_active_is_throttled(tmp_path, monkeypatch):
    _, p = make_client(tmp_path)
    calls = []
    monkeypatch.setattr(p._index, "has_profile_files", lambda d: calls.append(d) or False)
    for _ in range(5):
        assert not p.is_active()
    assert len(calls) == 1


# -- static files --------------------------------------------------------------------


def test_static_module_and_css(client):
    r = client.get(f"{BASE}/index.js")
    assert r.status_code == 200
    assert r.mimetype == "text/javascript"
    assert b"render" in r.data
    r = client.get(f"{BASE}/style.css")
    if (plugin.STATIC_DIR / "style.css").exists():
        assert r.status_code == 200 and r.mimetype == "text/css"
    # Content-Security-Policy from TensorBoard applies to our responses too.
    assert "Content-Security-Policy" in client.get("/data/plugin_entry.html?name=metal").headers


def test_missing_bundle_explains_itself(client, monkeypatch, tmp_path):
    monkeypatch.setattr(plugin, "STATIC_DIR", tmp_path)
    r = client.get(f"{BASE}/index.js")
    assert r.status_code == 200 and b"frontend bundle is missing" in r.data
    assert client.get(f"{BASE}/style.css").status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        f"{BASE}/../../../../etc/passwd",
        f"{BASE}/%2e%2e/%2e%2e/etc/passwd",
        f"{BASE}/static/../plugin.py",
        f"{BASE}/index.js/../../plugin.py",
        f"{BASE}/plugin.py",
        f"{BASE}/..%2fplugin.py",
    ],
)
def test_no_file_outside_the_routes(client, url):
    r = client.get(url)
    assert r.status_code in (400, 404)
    assert b"import" not in r.data and b"root:" not in r.data


# -- sessions --------------------------------------------------------------------------


def test_sessions_lists_both_runs(client):
    body = client.get(f"{BASE}/sessions").json
    assert body["logdir_set"] is True
    runs = sorted(s["run"] for s in body["sessions"])
    assert runs == ["baseline/train", "wide/train"]
    for s in body["sessions"]:
        assert s["hosts"] and s["name"] == f"{s['run']}/{s['session']}"
    assert body["errors"] == []


def test_sessions_empty_logdir(tmp_path):
    c, _ = make_client(tmp_path)
    assert c.get(f"{BASE}/sessions").json == {"logdir_set": True, "sessions": [], "errors": []}
    c, _ = make_client(tmp_path / "does-not-exist")
    assert c.get(f"{BASE}/sessions").json["sessions"] == []


# -- layers ------------------------------------------------------------------------------


def test_layers_match_the_api(client, logdir):
    name = by_run(client, "baseline/train")
    r = get(client, "/layers", session=name, step="avg")
    assert r.status_code == 200
    body = r.json
    info = next(s for s in api.find_sessions(logdir) if s.name == name)
    expected = api.load_file(info.hosts["vm"], info).layers("avg")
    # The route adds only where the numbers come from; every figure is the api's.
    for key in ("layers", "buckets", "total_ps", "step_time_ps", "steps", "fallbacks", "copies"):
        assert body[key] == json.loads(json.dumps(expected[key])), key
    assert body["session"] == name and body["host"] == "vm"
    assert not os.path.isabs(body["file"]) and body["file"].endswith("vm.xplane.pb")
    leaves = [c["name"] for c in body["layers"][0]["children"]]
    assert set(leaves) >= {"dense_in", "hidden", "head"}


def test_layers_steps(client):
    name = by_run(client, "baseline/train")
    whole = get(client, "/layers", session=name).json
    assert whole["step"] == "all" and whole["steps"]
    one = get(client, "/layers", session=name, step=str(whole["steps"][0])).json
    assert str(one["step"]) == str(whole["steps"][0])
    assert one["total_ps"] <= whole["total_ps"]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({}, 400),
        ({"session": "no/such/session"}, 404),
        ({"session": "BASELINE", "host": "nohost"}, 404),
        ({"session": "BASELINE", "step": "x"}, 400),
        ({"session": "BASELINE", "step": "99999"}, 404),
        ({"session": "BASELINE", "wait": "-1"}, 400),
        ({"session": "BASELINE", "wait": "soon"}, 400),
        ({"session": "../../../../etc"}, 404),
        ({"session": "BASELINE", "host": "../../../../etc/passwd"}, 404),
        ({"session": "BASELINE", "host": "vm.xplane.pb/../../../../../etc/passwd"}, 404),
        ({"session": "/etc/passwd"}, 404),
        ({"session": "x\x00y"}, 400),
    ],
)
def test_layers_bad_params(client, params, status):
    params = dict(params)
    if params.get("session") == "BASELINE":
        params["session"] = by_run(client, "baseline/train")
    r = get(client, "/layers", **params)
    assert r.status_code == status, r.data
    assert b"root:" not in r.data


def test_background_load_reports_progress(logdir, monkeypatch):
    c, _ = make_client(logdir)
    name = by_run(c, "wide/train")
    release = threading.Event()
    real = api.load_file

    def slow_load(path, info, progress):
        progress(0.25, "reading planes")
        release.wait(30)
        return real(path, info, progress)

    monkeypatch.setattr(api, "load_file", slow_load)
    r = c.get(f"{BASE}/layers", query_string={"session": name})
    assert r.status_code == 202
    deadline = time.monotonic() + 10
    while r.json["progress"] < 0.25 and time.monotonic() < deadline:
        time.sleep(0.02)
        r = c.get(f"{BASE}/layers", query_string={"session": name})
    assert r.status_code == 202
    assert r.json["status"] == "loading" and r.json["progress"] == 0.25
    assert r.json["message"] == "reading planes"
    release.set()
    assert get(c, "/layers", session=name).status_code == 200


def test_cache_by_file_identity(tmp_path, logdir, monkeypatch):
    root = tmp_path / "logs"
    shutil.copytree(logdir / "baseline", root / "baseline")
    c, _ = make_client(root)
    name = sessions(c)[0]
    loads = []
    real = api.load_file
    monkeypatch.setattr(api, "load_file", lambda *a: loads.append(a[0]) or real(*a))
    first = get(c, "/layers", session=name).json
    for _ in range(3):
        assert get(c, "/layers", session=name).json == first
    assert len(loads) == 1  # a second open is served from the cache
    trace = Path(loads[0])
    data = trace.read_bytes()
    trace.write_bytes(data)  # same bytes, new modification time: read again
    os.utime(trace, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert get(c, "/layers", session=name).status_code == 200
    assert len(loads) == 2


def test_corrupt_file_is_named_and_others_still_served(tmp_path, logdir):
    root = tmp_path / "logs"
    shutil.copytree(logdir / "baseline", root / "baseline")
    bad = root / "broken" / "plugins" / "profile" / "2024_01_01_00_00_00"
    bad.mkdir(parents=True)
    good_trace = next((root / "baseline").rglob("*.xplane.pb"))
    (bad / "vm.xplane.pb").write_bytes(good_trace.read_bytes()[:3000])  # truncated
    c, _ = make_client(root)
    names = sessions(c)
    assert len(names) == 2
    broken = next(n for n in names if n.startswith("broken/"))
    r = get(c, "/layers", session=broken)
    assert r.status_code == 422
    assert r.json["kind"] == "trace_error"
    assert r.json["path"] == os.path.join("broken", "plugins", "profile", bad.name, "vm.xplane.pb")
    assert "truncated" in r.json["error"]
    good = next(n for n in names if n.startswith("baseline/"))
    assert get(c, "/layers", session=good).status_code == 200
    r = get(c, "/compare", session=[good, broken])
    assert r.status_code == 422


def test_path_prefix(logdir):
    c, _ = make_client(logdir, path_prefix="/tb/prefix")
    r = c.get(f"/tb/prefix{BASE}/sessions")
    assert r.status_code == 200 and len(r.json["sessions"]) == 2
    assert c.get(f"/tb/prefix{BASE}/index.js").status_code == 200


# -- ops -----------------------------------------------------------------------------


def test_ops_of_a_layer(client):
    name = by_run(client, "baseline/train")
    all_ops = get(client, "/ops", session=name).json["ops"]
    assert all_ops
    layer = ["mlp", "dense_in"]
    ops = get(client, "/ops", session=name, layer=json.dumps(layer)).json["ops"]
    assert ops and all(o["layer"][:2] == layer for o in ops)
    assert {o["phase"] for o in ops} >= {"forward", "backward"}
    tree = get(client, "/layers", session=name).json
    node = next(c for c in tree["layers"][0]["children"] if c["path"] == layer)
    assert sum(o["time_ps"] for o in ops) == node["total_ps"]


def test_ops_of_a_bucket(client):
    name = by_run(client, "baseline/train")
    tree = get(client, "/layers", session=name).json
    bucket = tree["buckets"][0]
    ops = get(client, "/ops", session=name, bucket=bucket["name"]).json["ops"]
    assert ops and all(o["layer"] is None and o["bucket"] == bucket["name"] for o in ops)
    assert sum(o["time_ps"] for o in ops) == bucket["total_ps"]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        # A path is `model/layer` text or a JSON array, as in the CLI and the API: an
        # unknown one is a 404 naming the closest layers, malformed JSON a 400.
        ({"layer": "mlp/no_such_layer"}, 404),
        ({"layer": '{"a": 1}'}, 404),
        ({"layer": '[{"a": 1}]'}, 400),
        ({"layer": "[1, 2]"}, 400),
        ({"layer": '["mlp"]', "bucket": "optimizer"}, 400),
        ({"step": "abc"}, 400),
        ({"step": "123456"}, 404),
    ],
)
def test_ops_bad_params(client, params, status):
    r = get(client, "/ops", session=by_run(client, "baseline/train"), **params)
    assert r.status_code == status


# -- compare -------------------------------------------------------------------------


def test_compare_route_matches_compare(client):
    a, b = by_run(client, "baseline/train"), by_run(client, "wide/train")
    r = get(client, "/compare", session=[a, b])
    assert r.status_code == 200
    body = r.json
    la = get(client, "/layers", session=a, step="avg").json
    lb = get(client, "/layers", session=b, step="avg").json
    assert body == json.loads(json.dumps(compare([la, lb], [a, b])))
    assert body["step"] == "avg"
    assert [u["key"] for u in body["unmatched"]] == [["mlp", "extra"]]
    row = next(r for r in body["rows"] if r["key"] == ["mlp", "hidden"])
    assert row["delta_ps"][1] == row["total_ps"][1] - row["total_ps"][0]


@pytest.mark.parametrize(
    "params",
    [
        {"session": ["only-one"]},
        {},
        {"session": ["a", "b"], "host": ["x", "y", "z"]},
        {"session": [f"s{i}" for i in range(9)]},
        {"session": ["BASELINE", "BASELINE"], "step": "bad"},
    ],
)
def test_compare_bad_params(client, params):
    params = dict(params)
    if "session" in params:
        params["session"] = [
            by_run(client, "baseline/train") if s == "BASELINE" else s for s in params["session"]
        ]
    assert get(client, "/compare", **params).status_code == 400


def test_compare_unknown_session(client):
    r = get(client, "/compare", session=[by_run(client, "baseline/train"), "../../etc"])
    assert r.status_code == 404


# -- Metal readiness -------------------------------------------------------------------


@pytest.fixture(scope="module")
def augment(tmp_path_factory) -> Path:
    return augment_logdir(tmp_path_factory)


def readiness_rows(body: dict) -> dict[str, dict]:
    return {"/".join(r["layer"]) if r["layer"] else "": r for r in body["layers"]}


def test_readiness_matches_the_prediction(client, logdir):
    name = by_run(client, "baseline/train")
    r = get(client, "/readiness", session=name, step="avg")
    assert r.status_code == 200
    body = r.json
    info = next(s for s in api.find_sessions(logdir) if s.name == name)
    prof = api.load_file(info.hosts["vm"], info)
    expected = readiness.check(prof.ops("avg"), prof.manifest)
    for key in ("metal_version", "total_ps", "fallback_ps", "fallback_share", "cpu_only_ps",
                "verdict_ps", "layers", "buckets", "ops", "step", "steps"):  # fmt: skip
        assert body[key] == json.loads(json.dumps(expected[key])), key
    # Labelled a prediction, for the newest version unless asked otherwise.
    assert body["is_prediction"] is True and "Prediction" in body["note"]
    assert body["metal_version"] == readiness.default_metal_version()
    assert body["metal_versions"] == readiness.available_metal_versions()
    assert body["measured_tensorflow_metal"] is None and body["disagreements"] is None
    assert body["verdict_order"][0] == "cpu_fallback" and body["verdict_order"][-1] == "metal_gpu"
    assert not os.path.isabs(body["file"])
    # Dense layers run on Metal.
    rows = readiness_rows(body)
    for layer in ("mlp/dense_in", "mlp/hidden", "mlp/head"):
        assert rows[layer]["verdict"] == "metal_gpu", rows[layer]


def test_readiness_names_random_rotation_and_its_op_type(augment):
    c, _ = make_client(augment)
    name = sessions(c)[0]
    body = get(c, "/readiness", session=name).json
    rows = readiness_rows(body)
    rotate = rows["augment/rotate"]
    assert rotate["verdict"] == "cpu_fallback"
    assert "ImageProjectiveTransformV3" in rotate["fallback_op_types"]
    assert rows["augment/py_tanh"]["verdict"] == "cpu_only_by_nature"
    assert rows["augment/conv"]["verdict"] == "metal_gpu"
    assert rows["augment/head"]["verdict"] == "metal_gpu"
    assert body["fallback_ps"] >= rotate["fallback_ps"] > 0
    assert 0 < body["fallback_share"] < 1
    assert body["cpu_only_ps"] >= rows["augment/py_tanh"]["total_ps"] > 0
    # Ops outside any layer are rolled up per bucket too (the layer tree's bucket rows).
    assert {b["bucket"] for b in body["buckets"]} <= {
        b["name"] for b in get(c, "/layers", session=name).json["buckets"]
    } | {"other"}
    # An older release has its own answer, labelled with its version.
    old = get(c, "/readiness", session=name, metal_version="0.1.0").json
    assert old["metal_version"] == "0.1.0" and "0.1.0" in old["note"]


def test_readiness_of_a_run_measured_on_a_mac(tmp_path, augment):
    """A manifest saying the run had tensorflow-metal: measured placement vs prediction."""
    root = tmp_path / "logs"
    shutil.copytree(augment, root)
    trace = next(root.rglob("*.xplane.pb"))
    c, _ = make_client(root)
    name = sessions(c)[0]
    conv = next(o for o in get(c, "/ops", session=name).json["ops"]
                if o["layer"] == ["augment", "conv"] and o["type"].endswith("Conv2D"))  # fmt: skip
    from tb_metal_plugin.manifest import write_manifest

    write_manifest(trace, {
        "environment": {"tensorflow_metal": "1.2.0", "os": "Darwin", "machine": "arm64"},
        # The run placed the convolution on the CPU although Metal has a kernel for it.
        "placement": [{"name": conv["name"], "type": conv["type"],
                       "device": "/job:localhost/replica:0/task:0/device:CPU:0"}],
    })  # fmt: skip
    body = get(c, "/readiness", session=name).json
    assert body["measured_tensorflow_metal"] == "1.2.0"
    assert [(d["name"], d["predicted"]) for d in body["disagreements"]] == [
        (conv["name"], "metal_gpu")
    ]
    assert body["disagreements"][0]["layer"] == ["augment", "conv"]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"session": "BASELINE", "metal_version": "9.9.9"}, 400),
        ({"session": "BASELINE", "metal_version": "../1.2.0"}, 400),
        ({"session": "BASELINE", "step": "x"}, 400),
        ({"session": "BASELINE", "wait": "-1"}, 400),
        ({}, 400),
        ({"session": "no/such/session"}, 404),
        ({"session": "BASELINE", "host": "nohost"}, 404),
        ({"session": "BASELINE", "step": "99999"}, 404),
    ],
)
def test_readiness_bad_params(client, params, status):
    if params.get("session") == "BASELINE":
        params = {**params, "session": by_run(client, "baseline/train")}
    r = get(client, "/readiness", **params)
    assert r.status_code == status, r.data
    if "metal_version" in params:
        # The answer lists the versions there are.
        msg = r.get_data(as_text=True)
        assert all(v in msg for v in readiness.available_metal_versions())


def test_readiness_is_202_while_loading(logdir, monkeypatch):
    c, _ = make_client(logdir)
    name = by_run(c, "baseline/train")
    release = blocked_loads(monkeypatch)
    try:
        r = c.get(f"{BASE}/readiness", query_string={"session": name})
        assert r.status_code == 202 and r.json["status"] == "loading"
    finally:
        release.set()
    assert get(c, "/readiness", session=name).status_code == 200


# -- the on-disk payload cache (a restarted TensorBoard) ---------------------------------


def blocked_loads(monkeypatch) -> threading.Event:
    """Make every profile load wait until the returned event is set."""
    release = threading.Event()
    real = api.load_file

    def slow(path, info, progress):
        release.wait(30)
        return real(path, info, progress)

    monkeypatch.setattr(api, "load_file", slow)
    return release


def test_restarted_tensorboard_shows_cached_layers_at_once(tmp_path, logdir, monkeypatch):
    monkeypatch.setenv("TB_METAL_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "logs"
    shutil.copytree(logdir, root)
    first, _ = make_client(root)
    a, b = by_run(first, "baseline/train"), by_run(first, "wide/train")
    computed = get(first, "/layers", session=a, step="avg").json
    get(first, "/layers", session=b, step="avg")
    assert list((tmp_path / "cache").glob("*.json"))

    release = blocked_loads(monkeypatch)
    try:
        second, _ = make_client(root)  # a new TensorBoard process, same cache
        r = second.get(f"{BASE}/layers", query_string={"session": a, "step": "avg"})
        body = r.json
        assert r.status_code == 200 and body.pop("cached") is True
        assert body == computed
        # Ops need the profile itself: still loading.
        assert second.get(f"{BASE}/ops", query_string={"session": a}).status_code == 202
        # A step selection never computed before is not in the cache either.
        r = second.get(f"{BASE}/layers", query_string={"session": a, "step": "all"})
        assert r.status_code == 202
        # The comparison is served from cached payloads too.
        r = second.get(f"{BASE}/compare", query_string=[("session", a), ("session", b)])
        assert r.status_code == 200 and r.json["unmatched"][0]["key"] == ["mlp", "extra"]
    finally:
        release.set()


def test_cache_misses_after_the_trace_changes(tmp_path, logdir, monkeypatch):
    monkeypatch.setenv("TB_METAL_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "logs"
    shutil.copytree(logdir / "baseline", root / "baseline")
    first, _ = make_client(root)
    name = sessions(first)[0]
    assert get(first, "/layers", session=name).status_code == 200
    trace = next(root.rglob("*.xplane.pb"))
    os.utime(trace, ns=(time.time_ns(), time.time_ns() + 10**9))
    release = blocked_loads(monkeypatch)
    try:
        second, _ = make_client(root)
        r = second.get(f"{BASE}/layers", query_string={"session": name})
        assert r.status_code == 202
    finally:
        release.set()


def test_cache_can_be_switched_off(monkeypatch, tmp_path):
    from tb_metal_plugin import plugin_cache

    monkeypatch.setenv("TB_METAL_CACHE", "0")
    assert plugin_cache.default_dir() is None
    monkeypatch.delenv("TB_METAL_CACHE")
    monkeypatch.delenv("TB_METAL_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert plugin_cache.default_dir() == tmp_path / "tb-metal"
    # An unwritable cache only stops caching.
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cache = plugin_cache.DiskCache(blocker / "sub")
    cache.put(("p", 1, 2), "all", {"a": 1})
    assert cache.dir is None and cache.get(("p", 1, 2), "all") is None


def test_profile_cache_is_bounded_by_count_and_bytes(tmp_path, logdir, monkeypatch):
    root = tmp_path / "logs"
    shutil.copytree(logdir, root)
    traces = sorted(root.rglob("*.xplane.pb"))
    infos = {str(p): i for i in api.find_sessions(root) for p in i.hosts.values()}
    cache = plugin.ProfileCache(max_profiles=1)
    first = cache.get(traces[0], infos[str(traces[0])])
    first.done.wait(60)
    assert cache.get(traces[0], infos[str(traces[0])]) is first
    second = cache.get(traces[1], infos[str(traces[1])])
    second.done.wait(60)
    assert cache.get(traces[0], infos[str(traces[0])]) is not first  # evicted, reloaded
    small = plugin.ProfileCache(max_trace_bytes=traces[0].stat().st_size - 1)
    only = small.get(traces[0], infos[str(traces[0])])
    only.done.wait(60)
    assert small.get(traces[0], infos[str(traces[0])]) is only  # the newest always stays


# -- a real TensorBoard whose trace is truncated while it loads it --------------------------


@pytest.mark.slow
def test_tensorboard_survives_truncation_during_loads(tmp_path):
    import random
    import urllib.error
    import urllib.request

    from tests.test_plugin_support import bigger_trace, copy_demo_logdir, start_tensorboard

    root = copy_demo_logdir(tmp_path / "logs", ("cnn",))
    trace = next(root.rglob("*.xplane.pb"))
    data = bigger_trace(trace.read_bytes(), 20)  # a load long enough to cut into
    trace.write_bytes(data)
    proc, base = start_tensorboard(root, tmp_path / "cache")

    def fetch(route: str) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(base + route, timeout=60) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    try:
        name = fetch("/sessions")[1]["sessions"][0]["name"]
        rng = random.Random(0)
        statuses = []
        for i in range(25):
            trace.write_bytes(data)
            os.utime(trace, ns=(time.time_ns(), time.time_ns() + i * 10**9))
            statuses.append(fetch(f"/layers?session={name}")[0])  # starts a load
            time.sleep(rng.random() * 0.05)
            os.truncate(trace, rng.randrange(len(data)))
            time.sleep(rng.random() * 0.05)
            status, body = fetch(f"/layers?session={name}&wait=30")
            statuses.append(status)
            assert status in (200, 202, 404, 422), body
            assert proc.poll() is None
        trace.write_bytes(data)
        status, body = fetch(f"/layers?session={name}&wait=60")
        assert status == 200 and body["total_ps"] > 0
        assert 422 in statuses  # some loads were cut short, and said so
    finally:
        proc.terminate()
        proc.wait(30)
