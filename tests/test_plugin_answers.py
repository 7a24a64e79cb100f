"""Route answers are computed once: repeats come from memory, a restarted TensorBoard's from
the validated disk cache (layers, ops, readiness), gzipped when the client accepts it."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from tb_metal_plugin import api
from tests.test_plugin import BASE, blocked_loads, by_run, get, make_client
from tests.test_plugin_support import fixture_logdir


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> Path:
    """Two committed real traces as two runs (the fast tier records nothing)."""
    return fixture_logdir(tmp_path_factory.mktemp("answers_logdir"))


def _count_calls(monkeypatch, name: str) -> list[int]:
    calls = [0]
    real = getattr(api.Profile, name)

    def counted(self, *args, **kwargs):
        calls[0] += 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(api.Profile, name, counted)
    return calls


def test_repeats_are_served_from_memory_with_the_same_bytes(logdir, tmp_path, monkeypatch):
    monkeypatch.setenv("TB_METAL_CACHE_DIR", str(tmp_path / "cache"))
    c, _ = make_client(logdir)
    name = by_run(c, "conv_bn")
    ops_calls = _count_calls(monkeypatch, "ops")
    layers_calls = _count_calls(monkeypatch, "layers")
    for route, calls in (("/ops", ops_calls), ("/layers", layers_calls)):
        first = get(c, route, session=name, step="avg")
        again = get(c, route, session=name, step="avg")
        assert first.status_code == again.status_code == 200
        assert first.data == again.data and calls[0] == 1, route
    # A readiness answer is computed once too (it reads the ops of its step once).
    before = ops_calls[0]
    r1 = get(c, "/readiness", session=name)
    r2 = get(c, "/readiness", session=name)
    assert r1.data == r2.data and ops_calls[0] == before + 1


def test_gzip_only_for_clients_that_accept_it(logdir, tmp_path, monkeypatch):
    monkeypatch.setenv("TB_METAL_CACHE_DIR", str(tmp_path / "cache"))
    c, _ = make_client(logdir)
    name = by_run(c, "conv_bn")
    q = {"session": name, "wait": "60"}
    plain = c.get(f"{BASE}/ops", query_string=q)
    assert "Content-Encoding" not in plain.headers
    zipped = c.get(f"{BASE}/ops", query_string=q, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(zipped.data)) == plain.json
    # Twice from the cache: still the right encoding each way.
    assert c.get(f"{BASE}/ops", query_string=q).json == plain.json


def test_restarted_tensorboard_serves_ops_and_readiness_from_disk(tmp_path, logdir, monkeypatch):
    monkeypatch.setenv("TB_METAL_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "logs"
    shutil.copytree(logdir, root)
    first, _ = make_client(root)
    name = by_run(first, "conv_bn")
    layer = get(first, "/layers", session=name).json["layers"][0]["path"]
    want = {
        "ops": get(first, "/ops", session=name, layer="/".join(layer)).json,
        "readiness": get(first, "/readiness", session=name, step="avg").json,
    }
    release = blocked_loads(monkeypatch)
    try:
        second, _ = make_client(root)  # a new TensorBoard process, same cache
        q = {"session": name, "wait": "0"}
        r = second.get(f"{BASE}/ops", query_string={**q, "layer": "/".join(layer)})
        body = r.json
        assert r.status_code == 200 and body.pop("cached") is True
        assert body == want["ops"]
        r = second.get(f"{BASE}/readiness", query_string={**q, "step": "avg"})
        body = r.json
        assert r.status_code == 200 and body.pop("cached") is True
        assert body == want["readiness"]
        # Another filter was never computed: that one needs the profile.
        assert second.get(f"{BASE}/ops", query_string=q).status_code == 202
    finally:
        release.set()


def test_a_loaded_profile_still_reads_intact_disk_entries(tmp_path, logdir, monkeypatch):
    # After a restart the trace may finish loading before the tab asks every view; a
    # view an earlier TensorBoard computed is read from disk, not recomputed (on a big
    # trace /readiness costs a third of a second), and equals a fresh answer.
    monkeypatch.setenv("TB_METAL_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "logs"
    shutil.copytree(logdir / "conv_bn", root / "conv_bn")
    first, _ = make_client(root)
    name = by_run(first, "conv_bn")
    want = get(first, "/readiness", session=name, step="avg").json
    second, _ = make_client(root)  # a new TensorBoard process, same cache
    assert get(second, "/layers", session=name, step="avg").status_code == 200  # loaded
    ops_calls = _count_calls(monkeypatch, "ops")
    r = get(second, "/readiness", session=name, step="avg")
    assert r.status_code == 200 and r.json == want and "cached" not in r.json
    assert ops_calls[0] == 0, "readiness was recomputed though the disk held it"


def test_a_disk_entry_of_the_wrong_shape_is_refused(tmp_path, logdir, monkeypatch):
    monkeypatch.setenv("TB_METAL_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "logs"
    shutil.copytree(logdir / "conv_bn", root / "conv_bn")
    first, _ = make_client(root)
    name = by_run(first, "conv_bn")
    assert get(first, "/ops", session=name).status_code == 200
    (entry,) = (tmp_path / "cache").glob("*.json")
    head, _, body = entry.read_text().partition("\n")
    payload = json.loads(body)
    payload["ops"][0]["device_ids"] = {"GPU:0": -1}  # a time that cannot be
    body = json.dumps(payload, separators=(",", ":"))
    # Even with a matching digest, the shape check refuses it.
    header = json.loads(head)
    header["sha256"] = hashlib.sha256(body.encode()).hexdigest()
    entry.write_text(json.dumps(header) + "\n" + body)
    release = blocked_loads(monkeypatch)
    try:
        second, _ = make_client(root)
        r = second.get(f"{BASE}/ops", query_string={"session": name, "wait": "0"})
        assert r.status_code == 202
        assert not entry.exists()
    finally:
        release.set()


def test_a_reload_waits_for_answers_from_disk_but_a_cold_load_does_not():
    import time

    from tb_metal_plugin.plugin_loads import Answering

    answering = Answering(quiet_s=0.2, max_wait_s=1.0)
    t0 = time.monotonic()
    answering.wait_quiet()  # nothing served from disk: a cold load starts at once
    assert time.monotonic() - t0 < 0.05
    answering.served()
    t0 = time.monotonic()
    answering.wait_quiet()  # right after a disk answer: the reload steps aside a moment
    assert 0.15 <= time.monotonic() - t0 < 0.9
