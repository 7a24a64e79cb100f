"""Many hosts: parallel loads give what one-by-one loads give, and the all-hosts view adds up
to the per-host views (API, CLI, route). Sessions are built from committed real traces."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tb_metal_plugin import api, hosts
from tb_metal_plugin.cli import main
from tests.schema_check import errors as schema_errors
from tests.test_plugin import BASE, get, make_client

FIXTURES = Path(__file__).parent / "fixtures" / "attribution"
# Two hosts ran the same model; a third a different one (its layers are absent elsewhere).
HOSTS = {"worker0": "conv_bn", "worker1": "conv_bn", "worker2": "mixed_float16"}


def _trace(name: str) -> Path:
    return next((FIXTURES / name).rglob("*.xplane.pb"))


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Path:
    """A logdir with one session of three hosts, plus a host whose trace is garbage."""
    root = tmp_path_factory.mktemp("hosts")
    d = root / "run" / "plugins" / "profile" / "2026_01_01_00_00_00"
    d.mkdir(parents=True)
    for host, fixture in HOSTS.items():
        shutil.copyfile(_trace(fixture), d / f"{host}.xplane.pb")
    (d / "worker3.xplane.pb").write_bytes(b"\x0a\xff\xff not a trace")
    return root


def _tree_totals(nodes: list[dict], out: dict, bucket: bool) -> dict:
    for n in nodes:
        out[(bucket, tuple(n["path"]))] = n["total_ps"]
        _tree_totals(n["children"], out, bucket)
    return out


@pytest.mark.parametrize("step", ["avg", "all"])
def test_all_hosts_view_adds_up_the_per_host_views(session, step):
    hp = api.load_session(session, max_workers=2)
    assert hp.hosts == sorted(HOSTS) and set(hp.errors) == {"worker3"}
    data = hp.layers(step)
    per_host = {}
    for host in HOSTS:
        own = api.load_profile(session, host=host).layers(step)
        assert hp.host_layers(host, step) == dict(own)  # the worker's payload is the real one
        per_host[host] = _tree_totals(own["buckets"], _tree_totals(own["layers"], {}, False), True)
    keys = {k for t in per_host.values() for k in t}
    assert {(r["bucket"], tuple(r["path"])) for r in data["layers"]} == keys
    for row in data["layers"]:
        key = (row["bucket"], tuple(row["path"]))
        figures = {h: t[key] for h, t in per_host.items() if key in t}
        assert row["per_host"] == figures
        assert row["sum_ps"] == sum(figures.values())
        assert row["mean_ps"] == pytest.approx(sum(figures.values()) / len(HOSTS))
        assert row["max_ps"] == max(figures.values()) == figures[row["slowest_host"]]
    assert data["total"]["sum_ps"] == sum(
        api.load_profile(session, host=h).layers(step)["total_ps"] for h in HOSTS
    )
    assert data["host_errors"][0]["host"] == "worker3"


def test_parallel_and_one_by_one_loads_agree(session):
    parallel = hosts.load_session(session, max_workers=2)
    serial = hosts.load_session(session, max_workers=1)
    assert parallel.errors.keys() == serial.errors.keys() == {"worker3"}
    assert parallel.layers("avg") == serial.layers("avg")
    # A step no worker computed comes from the host's own profile, on demand.
    step = api.load_profile(session, host="worker0").steps[0]
    assert parallel.host_layers("worker0", step) == dict(
        api.load_profile(session, host="worker0").layers(step)
    )


def test_cli_host_all(session):
    result = CliRunner().invoke(main, ["layers", str(session), "--host", "all", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data == json.loads(json.dumps(api.load_session(session).layers("all")))
    table = CliRunner().invoke(main, ["layers", str(session), "--host", "all", "--step", "avg"])
    assert table.exit_code == 0 and "Slowest host" in table.stdout
    assert "not loaded: worker3" in table.stdout


def test_route_host_all(session, tmp_path, monkeypatch):
    monkeypatch.setenv("TB_METAL_CACHE_DIR", str(tmp_path / "cache"))
    c, _ = make_client(session)
    name = c.get(f"{BASE}/sessions").json["sessions"][0]["name"]
    r = get(c, "/layers", session=name, host="all", step="avg")
    assert r.status_code == 200, r.data
    body = r.json
    assert schema_errors("HostsLayersPayload", body) == []
    want = json.loads(json.dumps(api.load_session(session).layers("avg")))
    assert body["files"] == {
        h: f"run/plugins/profile/2026_01_01_00_00_00/{h}.xplane.pb" for h in HOSTS
    }
    body.pop("files"), want.pop("files")
    assert body == want
    # One host's own view beside it.
    one = get(c, "/layers", session=name, host="worker2", step="avg").json
    assert one["host"] == "worker2" and one["total_ps"] == want["total"]["per_host"]["worker2"]
