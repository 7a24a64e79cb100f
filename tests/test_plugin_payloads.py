"""The routes' payload functions (`plugin_payloads.*_impl`), called directly on committed real
traces, and the WSGI routes held to exactly what those functions return."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tb_metal_plugin import api, hosts, readiness
from tb_metal_plugin.compare import compare
from tb_metal_plugin.errors import InvalidArgumentError, NotFoundError
from tb_metal_plugin.plugin_payloads import (
    compare_impl,
    hosts_layers_impl,
    layers_impl,
    ops_impl,
    readiness_impl,
    sessions_impl,
)
from tests.test_plugin import BASE, get, make_client
from tests.test_plugin_support import ATTRIBUTION_FIXTURES, fixture_logdir


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> Path:
    """Two committed real traces as two runs (nothing is recorded)."""
    return fixture_logdir(tmp_path_factory.mktemp("payloads_logdir"))


@pytest.fixture(scope="module")
def infos(logdir) -> dict:
    return {s.run: s for s in api.find_sessions(logdir)}


@pytest.fixture(scope="module")
def profiles(infos) -> dict:
    return {run: api.load_file(info.hosts["vm"], info) for run, info in infos.items()}


def _rel(info, logdir: Path) -> str:
    return str(Path(info.hosts["vm"]).relative_to(logdir))


def _plain(payload) -> dict:
    """A payload as a client reads it: through JSON."""
    return json.loads(json.dumps(payload))


# -- each payload function on its own ------------------------------------------------------


def test_layers_impl_names_its_file_under_the_logdir_and_its_load_time(profiles, infos, logdir):
    prof, info = profiles["conv_bn"], infos["conv_bn"]
    got = layers_impl(prof, "avg", str(logdir), 1.23456)
    assert type(got) is dict  # plain data: the notebook's HTML view stays out of the routes
    assert got["file"] == _rel(info, logdir) and not Path(got["file"]).is_absolute()
    assert got["load_s"] == 1.235
    assert (got["session"], got["run"], got["host"]) == (info.name, "conv_bn", "vm")
    assert got["step"] == "avg"
    # Everything else is the core's own layers payload, untouched.
    core = dict(prof.layers("avg"))
    assert {k: v for k, v in got.items() if k not in ("file", "load_s")} == {
        k: v for k, v in core.items() if k != "file"
    }
    assert layers_impl(prof, None, str(logdir), None)["load_s"] == 0.0


def test_ops_impl_selects_a_layer_or_a_bucket(profiles, logdir):
    prof = profiles["conv_bn"]
    every = ops_impl(prof, None, None, None, str(logdir))["ops"]
    layer = next(r["layer"] for r in every if r["layer"] and len(r["layer"]) > 1)
    mine = ops_impl(prof, None, tuple(layer), None, str(logdir))["ops"]
    assert mine and all(r["layer"][: len(layer)] == layer for r in mine)
    assert len(mine) == sum(1 for r in every if r["layer"] and r["layer"][: len(layer)] == layer)
    bucket = next(r["bucket"] for r in every if not r["layer"])
    outside = ops_impl(prof, None, None, bucket, str(logdir))["ops"]
    assert outside and all(r["layer"] is None and r["bucket"] == bucket for r in outside)
    assert len(mine) + len(outside) < len(every)


def test_payload_functions_raise_typed_errors_not_http(profiles, logdir):
    prof = profiles["conv_bn"]
    with pytest.raises(api.UnknownLayerError):
        ops_impl(prof, None, ("no", "such"), None, str(logdir))
    with pytest.raises(NotFoundError, match="not in this profile"):
        layers_impl(prof, 99999, str(logdir), None)
    with pytest.raises(InvalidArgumentError):
        readiness_impl(prof, None, "9.9.9", str(logdir))


def test_readiness_impl_predicts_for_the_version_asked(profiles, infos, logdir):
    prof = profiles["lstm"]
    oldest = readiness.available_metal_versions()[-1]
    got = readiness_impl(prof, "avg", oldest, str(logdir))
    assert got["metal_version"] == oldest and got["file"] == _rel(infos["lstm"], logdir)
    assert got["metal_versions"] == readiness.available_metal_versions()
    # It covers exactly the ops the ops payload of the same step lists.
    ops = ops_impl(prof, "avg", None, None, str(logdir))["ops"]
    assert [(o["name"], o["type"]) for o in got["ops"]] == [(o["name"], o["type"]) for o in ops]
    assert got["total_ps"] == sum(o["self_ps"] for o in ops)


def test_compare_impl_labels_by_session_and_by_host_only_when_hosts_differ(profiles, logdir):
    a = layers_impl(profiles["conv_bn"], "avg", str(logdir), None)
    b = layers_impl(profiles["lstm"], "avg", str(logdir), None)
    same = compare_impl([a, b], ["vm", "vm"])
    assert same["labels"] == [a["session"], b["session"]]
    assert same == compare([a, b], [a["session"], b["session"]])
    apart = compare_impl([a, b], ["vm", "other"])
    assert apart["labels"] == [f"{a['session']} (vm)", f"{b['session']} (other)"]


def test_sessions_impl_sorts_by_name_and_names_files_under_the_logdir(infos, logdir):
    found = list(reversed(sorted(infos.values(), key=lambda s: s.name)))
    bad = str(logdir / "lstm" / "broken")
    body = sessions_impl(
        str(logdir), found, [{"path": bad, "message": "boom"}, {"path": "", "message": "x"}]
    )
    assert body["logdir_set"] is True
    assert [s["name"] for s in body["sessions"]] == sorted(s.name for s in found)
    assert body["sessions"][0]["hosts"] == ["vm"] and body["sessions"][0]["run"] == "conv_bn"
    assert body["errors"] == [
        {"path": "lstm/broken", "message": "boom"},
        {"path": "", "message": "x"},
    ]
    assert sessions_impl("", [], []) == {"logdir_set": False, "sessions": [], "errors": []}


def test_hosts_layers_impl_names_every_hosts_file_under_the_logdir(tmp_path):
    session = tmp_path / "run" / "plugins" / "profile" / "2026_01_01_00_00_00"
    session.mkdir(parents=True)
    trace = next((ATTRIBUTION_FIXTURES / "conv_bn").rglob("*.xplane.pb"))
    for host in ("a", "b"):
        shutil.copyfile(trace, session / f"{host}.xplane.pb")
    (info,) = api.find_sessions(tmp_path)
    both = hosts.load_hosts(info.hosts, info, max_workers=1)
    got = hosts_layers_impl(both, "avg", str(tmp_path))
    prefix = "run/plugins/profile/2026_01_01_00_00_00/"
    assert got["files"] == {"a": prefix + "a.xplane.pb", "b": prefix + "b.xplane.pb"}
    assert got["hosts"] == ["a", "b"] and got["host"] == "all"
    # Two copies of one trace: every layer's sum is twice its mean per host.
    assert all(r["sum_ps"] == 2 * r["mean_ps"] for r in got["layers"])


# -- the routes are these functions plus transport -------------------------------------------


def test_every_route_answers_exactly_its_payload_function(
    logdir, profiles, infos, tmp_path, monkeypatch
):
    monkeypatch.setenv("TB_METAL_CACHE_DIR", str(tmp_path / "cache"))
    c, _ = make_client(logdir)
    prof, name, root = profiles["conv_bn"], infos["conv_bn"].name, str(logdir)
    layer = next(r["layer"] for r in prof.ops()["ops"] if r["layer"])
    oldest = readiness.available_metal_versions()[-1]
    cases = [
        ({"step": "avg"}, "/layers", layers_impl(prof, "avg", root, None)),
        ({"layer": "/".join(layer)}, "/ops", ops_impl(prof, None, tuple(layer), None, root)),
        ({"bucket": "loss", "step": "avg"}, "/ops", ops_impl(prof, "avg", None, "loss", root)),
        ({"metal_version": oldest}, "/readiness", readiness_impl(prof, None, oldest, root)),
    ]  # fmt: skip
    for params, route, want in cases:
        r = get(c, route, session=name, **params)
        assert r.status_code == 200, (route, r.data)
        body = r.json
        assert body.get("ops", [None]), route  # a selection that holds ops
        if route == "/layers":
            assert body.pop("load_s") >= 0
            want = {k: v for k, v in want.items() if k != "load_s"}
        assert body == _plain(want), route
    a = layers_impl(prof, "avg", root, None)
    b = layers_impl(profiles["lstm"], "avg", root, None)
    r = c.get(f"{BASE}/compare", query_string=[("session", name), ("session", infos["lstm"].name), ("wait", "60")])  # fmt: skip  # noqa: E501
    assert r.status_code == 200
    assert r.json == _plain(compare_impl([a, b], ["vm", "vm"]))
    assert c.get(f"{BASE}/sessions").json == _plain(sessions_impl(root, list(infos.values()), []))
