"""Bad input gets a clear error naming the file, and never takes the other files down."""

from __future__ import annotations

import glob
import json
import os
import random
import shutil
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tb_metal_plugin import api, find_sessions, load_profile
from tb_metal_plugin.api import load_file
from tb_metal_plugin.cli import main
from tb_metal_plugin.errors import NotFoundError, TraceError
from tb_metal_plugin.events import split_op_name
from tb_metal_plugin.manifest import manifest_path_for
from tb_metal_plugin.xplane import XEventMetadata, XLine, XPlane, XSpace
from tests.test_plugin_support import bigger_trace, copy_demo_logdir


@pytest.fixture
def good(corpus, tmp_path):
    """A logdir with one good run copied from the corpus."""
    shutil.copytree(corpus["sequential"], tmp_path / "good")
    return tmp_path


def _bad_session(logdir, content: bytes, name="bad"):
    d = logdir / name / "plugins" / "profile" / "2026_01_01_00_00_00"
    d.mkdir(parents=True)
    (d / "host.xplane.pb").write_bytes(content)
    return d / "host.xplane.pb"


def _good_bytes(good):
    return open(
        glob.glob(str(good / "good/**/plugins/profile/*/*.xplane.pb"), recursive=True)[0], "rb"
    ).read()


def _no_ops_space() -> bytes:
    plane = XPlane(name="/host:CPU")
    plane.event_metadata[1].CopyFrom(XEventMetadata(id=1, name="SomethingElse"))
    line = plane.lines.add(name="python")
    line.events.add(metadata_id=1, offset_ps=10, duration_ps=5)
    assert isinstance(line, XLine)
    return XSpace(planes=[plane]).SerializeToString()


CASES = {
    "empty": (lambda g: b"", "empty file"),
    "truncated": (lambda g: _good_bytes(g)[: len(_good_bytes(g)) // 3], "truncated"),
    "half_written": (lambda g: _good_bytes(g)[:-7], "truncated"),
    "random": (lambda g: bytes(range(256)) * 40, "not a readable XSpace"),
    "wrong_message": (
        lambda g: XEventMetadata(id=3, name="x" * 50, display_name="y").SerializeToString(),
        "XSpace",
    ),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_bad_file_gets_a_clear_error_and_others_still_load(good, kind):
    make, words = CASES[kind]
    bad = _bad_session(good, make(good))
    with pytest.raises(TraceError) as err:
        load_file(bad)
    assert str(bad) in str(err.value) and words in str(err.value)
    # the logdir still lists both, and the good one still loads
    assert len(find_sessions(good)) == 2
    assert load_profile(good, run="good/train").layers()["total_ps"] > 0
    result = CliRunner().invoke(main, ["layers", str(good), "--run", "bad"])
    assert result.exit_code == 2 and str(bad) in result.output


def test_valid_trace_without_tf_ops_warns(good):
    path = _bad_session(good, _no_ops_space(), "noops")
    prof = load_file(path)
    data = prof.layers()
    assert data["total_ps"] == 0 and data["layers"] == []
    assert any("no TensorFlow op events" in w for w in data["warnings"])


def test_logdir_without_profiles(tmp_path):
    (tmp_path / "run" / "train").mkdir(parents=True)
    with pytest.raises(NotFoundError, match="no profile"):
        load_profile(tmp_path)
    result = CliRunner().invoke(main, ["layers", str(tmp_path)])
    assert result.exit_code == 2 and "no profile" in result.output


def test_missing_path_and_unknown_selectors(good):
    with pytest.raises(NotFoundError):
        load_profile(good / "nope")
    with pytest.raises(NotFoundError, match="sessions found"):
        load_profile(good, run="nope")
    with pytest.raises(NotFoundError, match="host"):
        load_profile(good, host="nope")


def test_unreadable_file(good, monkeypatch):
    path = glob.glob(str(good / "good/**/plugins/profile/*/*.xplane.pb"), recursive=True)[0]
    real_open = os.open

    def deny(p, *a, **k):
        if str(p) == path:
            raise PermissionError(13, "Permission denied")
        return real_open(p, *a, **k)

    # Tests run as root here, where file modes do not stop reads: simulate the denial.
    monkeypatch.setattr("os.open", deny)
    with pytest.raises(TraceError, match="Permission denied"):
        load_file(path)


def test_xprof_cache_files_are_ignored(good):
    session = glob.glob(str(good / "good/**/plugins/profile/*"), recursive=True)[0]
    for name in (".cached_tools.json", "ALL_HOSTS.op_stats_v2.pb", "host.trace.json.gz"):
        with open(f"{session}/{name}", "wb") as f:
            f.write(b"junk")
    sessions = find_sessions(good)
    assert len(sessions) == 1 and list(sessions[0].hosts) != []
    assert all(p.name.endswith(".xplane.pb") for p in sessions[0].hosts.values())


# ---------------------------------------------------------------------------
# Values out of range, files that change under the reader, files outside the logdir.
# Fast: committed real traces (demo/logs), no TensorFlow.


def _demo(tmp_path, run="cnn") -> Path:
    root = copy_demo_logdir(tmp_path / "logs", (run,))
    return next(root.rglob("*.xplane.pb"))


def _rewrite(path: Path, edit) -> None:
    space = XSpace.FromString(path.read_bytes())
    edit(space)
    path.write_bytes(space.SerializeToString())


def _host(space):
    return next(p for p in space.planes if p.name == "/host:CPU")


def _sane(payload: dict) -> None:
    """No negative or overflowing figure, and the tree adds up to the total."""
    assert 0 <= payload["total_ps"] < 2**63 and 0 <= payload["step_time_ps"] < 2**63
    nodes = payload["layers"] + payload["buckets"]
    assert sum(n["total_ps"] for n in nodes) == payload["total_ps"]
    stack = list(nodes)
    while stack:
        n = stack.pop()
        assert 0 <= n["self_ps"] <= n["total_ps"] < 2**63 and 0 <= n["share"] <= 1
        stack += n["children"]


@pytest.mark.parametrize("value", ["str:abc", "str:٢", "double:inf", "double:nan", "double:2.5",
                                   "int64:-3", "int64:9223372036854775807",
                                   "uint64:18446744073709551615"])  # fmt: skip
def test_odd_step_numbers_are_ignored_and_counted(tmp_path, value):
    path = _demo(tmp_path)
    good_steps = load_file(path).steps
    kind, raw = value.split(":")

    def edit(space):
        host = _host(space)
        sid = next(k for k, v in host.stat_metadata.items() if v.name == "step_num")
        stats = [s for ln in host.lines for e in ln.events for s in e.stats if s.metadata_id == sid]
        st = stats[0]  # the first profiled step's marker
        if kind == "str":
            st.str_value = raw
        elif kind == "double":
            st.double_value = float(raw)
        else:
            setattr(st, f"{kind}_value", int(raw))

    _rewrite(path, edit)
    prof = load_file(path)
    assert prof.steps == good_steps[1:]
    data = prof.layers()
    assert any(w.startswith("1 step markers with a step number") for w in data["warnings"])
    _sane(data)
    result = CliRunner().invoke(main, ["layers", str(path)])
    assert result.exit_code == 0 and "warning: 1 step markers" in result.output


def test_durations_near_int64_and_negative_offsets_are_skipped(tmp_path):
    path = _demo(tmp_path)
    clean = load_file(path).layers()

    def edit(space):
        line = max(_host(space).lines, key=lambda ln: len(ln.events))
        for ev in list(line.events)[:40]:
            ev.duration_ps = 2**63 - 5
        for ev in list(line.events)[40:60]:
            ev.offset_ps = -(2**40)

    _rewrite(path, edit)
    data = load_file(path).layers()
    _sane(data)
    assert data["total_ps"] <= clean["total_ps"]
    warning = next(w for w in data["warnings"] if "out-of-range offset or duration" in w)
    assert int(warning.split()[0]) > 0
    assert json.loads(json.dumps(data, allow_nan=False))["warnings"] == data["warnings"]


def test_many_huge_nested_events_cannot_overflow(tmp_path):
    path = _demo(tmp_path)

    def edit(space):
        host = _host(space)
        ops = {k for k, m in host.event_metadata.items() if split_op_name(m.name, m.display_name)}
        line = max(host.lines, key=lambda ln: len(ln.events))
        first = next(e for e in line.events if e.metadata_id in ops)
        for _ in range(300):  # 300 x 2^55 ps is far beyond 2^63
            ev = line.events.add()
            ev.CopyFrom(first)
            ev.duration_ps = 2**55 - first.offset_ps

    _rewrite(path, edit)
    data = load_file(path).layers()
    _sane(data)
    assert any("beyond what 64-bit sums can hold" in w for w in data["warnings"])


def test_line_timestamps_far_apart_do_not_make_a_step_time(tmp_path):
    path = _demo(tmp_path)

    def edit(space):
        for step in list(_host(space).stat_metadata.values()):
            if step.name == "step_num":
                step.name = "not_a_step"  # no markers: the window is the step time
        max(_host(space).lines, key=lambda ln: len(ln.events)).timestamp_ns = 2**63 - 1

    _rewrite(path, edit)
    data = load_file(path).layers()
    _sane(data)
    # Without markers the steps come from TF's step ids on the lines that are intact (the
    # far-away line's events fall outside them); the window never becomes a step time.
    assert data["steps_source"] == "step_ids"
    assert 0 < data["step_time_ps"] < 10**12  # under a second, not the ~2^63 ps window
    assert any("profile window longer than 10 hours" in w for w in data["warnings"])


def test_file_truncated_during_the_load_is_a_trace_error(tmp_path):
    path = _demo(tmp_path)
    size = path.stat().st_size

    def cut(fraction, message):
        if path.stat().st_size == size:
            os.truncate(path, size // 2)  # the profiler rewrites the file under us

    with pytest.raises(TraceError) as err:
        load_file(path, progress=cut)
    assert err.value.path == str(path)
    assert "shrank while being read" in str(err.value) or "changed while" in str(err.value)


def test_file_rewritten_during_the_load_is_a_trace_error(tmp_path):
    path = _demo(tmp_path)
    data = path.read_bytes()

    def touch(fraction, message):
        with open(path, "ab") as f:
            f.write(b"\0")

    with pytest.raises(TraceError, match="changed while being read"):
        load_file(path, progress=touch)
    path.write_bytes(data)
    assert load_file(path).layers()["total_ps"] > 0  # the finished file loads


def test_truncating_repeatedly_while_loading_never_crashes(tmp_path):
    path = _demo(tmp_path)
    data = bigger_trace(path.read_bytes(), 8)
    path.write_bytes(data)
    stop = threading.Event()
    rng = random.Random(0)

    def vandal():
        while not stop.is_set():
            os.truncate(path, rng.randrange(len(data)))
            time.sleep(0.001)
            path.write_bytes(data)
            time.sleep(0.002)

    t = threading.Thread(target=vandal)
    t.start()
    outcomes = []
    try:
        for _ in range(30):
            try:
                outcomes.append(load_file(path).layers()["total_ps"] >= 0)
            except TraceError as e:
                assert e.path == str(path)
                outcomes.append("error")
    finally:
        stop.set()
        t.join()
    assert len(outcomes) == 30 and "error" in outcomes


def test_cli_never_prints_a_traceback(tmp_path, monkeypatch):
    path = _demo(tmp_path)

    def broken(*a, **k):
        raise RuntimeError("a bug somewhere")

    monkeypatch.setattr(api, "load_file", broken)
    result = CliRunner().invoke(main, ["layers", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output and str(path) in result.output
    assert "a bug somewhere" in result.output


def test_manifest_symlink_is_not_followed(tmp_path):
    path = _demo(tmp_path)
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"format": "tb-metal-manifest", "version": 1,
                                  "warnings": ["SECRET-CONTENT"]}))  # fmt: skip
    manifest_path_for(path).unlink(missing_ok=True)  # the demo run has a real one
    manifest_path_for(path).symlink_to(secret)
    with pytest.raises(TraceError, match="symbolic link") as err:
        load_file(path)
    assert "SECRET" not in str(err.value)


# ---------------------------------------------------------------------------
# The plugin: JSON errors, strict parameters, remembered failures, symlinks, cache entries

BASE = "/data/plugin/metal"


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A WSGI client over a private copy of two demo runs, with a private disk cache."""
    from tensorboard.backend import application
    from tensorboard.plugins import base_plugin
    from werkzeug.test import Client

    from tb_metal_plugin.plugin import MetalPlugin

    monkeypatch.setenv("TB_METAL_CACHE_DIR", str(tmp_path / "cache"))
    root = copy_demo_logdir(tmp_path / "logs")

    def client():
        p = MetalPlugin(base_plugin.TBContext(logdir=str(root)))
        return Client(application.TensorBoardWSGI([p]))

    c = client()
    names = sorted(s["name"] for s in c.get(f"{BASE}/sessions").json["sessions"])
    return c, root, names, client


def _json_error(r, status: int, kind: str) -> dict:
    assert r.status_code == status, r.data
    assert r.mimetype == "application/json"
    body = r.json
    assert body["kind"] == kind and body["message"]
    return body


@pytest.mark.parametrize("step", ["٢", "+2", " 2", "2_0", "-1", "1e3", "2.0", "0x2", "9" * 40])
def test_steps_are_ascii_digits_only(served, step):
    c, _, names, _ = served
    r = c.get(f"{BASE}/layers", query_string={"session": names[0], "step": step, "wait": "30"})
    _json_error(r, 400, "invalid_argument")


@pytest.mark.parametrize("wait", ["١", "inf", "nan", "-1", "1e9", " 1"])
def test_wait_is_plain_seconds(served, wait):
    c, _, names, _ = served
    r = c.get(f"{BASE}/layers", query_string={"session": names[0], "wait": wait})
    _json_error(r, 400, "invalid_argument")


@pytest.mark.parametrize("layer", ["[" * 1000, "[" * 20 + "]" * 20, '["a"' + ',"a"' * 3000 + "]"])
def test_json_params_are_bounded(served, layer):
    c, _, names, _ = served
    r = c.get(f"{BASE}/ops", query_string={"session": names[0], "layer": layer, "wait": "30"})
    _json_error(r, 400, "invalid_argument")


def test_every_error_is_json(served, monkeypatch):
    c, root, names, client = served
    _json_error(c.get(f"{BASE}/layers"), 400, "invalid_argument")
    _json_error(c.get(f"{BASE}/layers?session=no/such"), 404, "not_found")
    _json_error(c.get(f"{BASE}/no-such-route"), 404, "not_found")
    _json_error(c.get(f"{BASE}/../../etc/passwd"), 404, "not_found")
    q = {"session": names[0], "step": "987654", "wait": "30"}
    _json_error(c.get(f"{BASE}/layers", query_string=q), 404, "not_found")
    trace = next((root / "cnn").rglob("*.xplane.pb"))
    trace.write_bytes(trace.read_bytes()[:5000])
    cnn = next(n for n in names if n.startswith("cnn/"))
    body = _json_error(
        c.get(f"{BASE}/layers", query_string={"session": cnn, "wait": "30"}), 422, "trace_error"
    )
    assert body["path"].endswith("vm.xplane.pb") and not os.path.isabs(body["path"])


def test_a_failed_load_is_remembered_until_the_file_changes(served, monkeypatch):
    _, root, names, client = served
    c = client()
    calls = []
    real = api.load_file

    def flaky(path, info=None, progress=None):
        calls.append(path)
        if len(calls) == 1:
            raise RuntimeError("unexpected failure")
        return real(path, info, progress)

    monkeypatch.setattr(api, "load_file", flaky)
    q = {"session": names[0], "wait": "30"}
    for _ in range(4):
        body = _json_error(c.get(f"{BASE}/layers", query_string=q), 500, "internal")
        assert "unexpected failure" in body["message"]
    assert len(calls) == 1  # no 202/500 loop: the same bytes are not read again
    trace = Path(calls[0])
    os.utime(trace, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert c.get(f"{BASE}/layers", query_string=q).status_code == 200
    assert len(calls) == 2


def test_symlinks_to_outside_the_logdir_are_never_read(served, tmp_path):
    c, root, names, client = served
    outside = tmp_path / "outside"
    shutil.copytree(root / "cnn", outside / "cnn")
    out_trace = next(outside.rglob("*.xplane.pb"))
    # A linked trace file, a linked session folder and a linked run are not sessions.
    linked = root / "linked" / "plugins" / "profile" / "2026_01_01_00_00_00"
    linked.mkdir(parents=True)
    (linked / "vm.xplane.pb").symlink_to(out_trace)
    (root / "linkrun").symlink_to(outside / "cnn")
    dir_link = root / "dirlink" / "plugins" / "profile"
    dir_link.mkdir(parents=True)
    (dir_link / "2026_01_01_00_00_01").symlink_to(out_trace.parent)
    listed = client().get(f"{BASE}/sessions").json["sessions"]
    assert sorted(s["name"] for s in listed) == names
    # A manifest linked to a file outside: refused, its content never served.
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"format": "tb-metal-manifest", "version": 1,
                                  "warnings": ["SECRET-CONTENT"]}))  # fmt: skip
    aug = next(n for n in names if n.startswith("augment/"))
    trace = next((root / "augment").rglob("*.xplane.pb"))
    manifest_path_for(trace).unlink(missing_ok=True)
    manifest_path_for(trace).symlink_to(secret)
    for route in ("/layers", "/ops", "/readiness"):
        r = c.get(f"{BASE}{route}", query_string={"session": aug, "wait": "30"})
        body = _json_error(r, 422, "trace_error")
        assert b"SECRET" not in r.data and "symbolic link" in body["message"]
    # A trace replaced by a link after the scan: not read.
    cnn = next(n for n in names if n.startswith("cnn/"))
    cnn_trace = next((root / "cnn").rglob("*.xplane.pb"))
    cnn_trace.unlink()
    cnn_trace.symlink_to(out_trace)
    _json_error(c.get(f"{BASE}/layers", query_string={"session": cnn}), 404, "not_found")


def _cache_files(root: Path) -> list[Path]:
    return sorted((root.parent / "cache").glob("*.json"))


@pytest.mark.parametrize("damage", ["list", "empty", "numbers", "symlink", "huge_nesting"])
def test_damaged_cache_entries_are_ignored_and_rewritten(served, monkeypatch, tmp_path, damage):
    c, root, names, client = served
    q = {"session": names[0], "step": "avg", "wait": "30"}
    good = c.get(f"{BASE}/layers", query_string=q).json
    q2 = {"session": names[1], "step": "avg", "wait": "30"}
    c.get(f"{BASE}/layers", query_string=q2)
    entries = _cache_files(root)
    assert len(entries) == 2
    for f in entries:
        # An entry is a header line (key, kind, digest of the payload bytes), then the payload.
        head, _, body = f.read_text().partition("\n")
        payload = json.loads(body)
        if damage == "list":
            f.write_text("[1, 2, 3]")
        elif damage == "empty":
            f.write_text("{}")
        elif damage == "numbers":
            payload["total_ps"] += 1000
            payload["layers"][0]["total_ps"] += 1000
            payload["layers"][0]["self_ps"] += 1000
            f.write_text(head + "\n" + json.dumps(payload))
        elif damage == "symlink":
            target = tmp_path / f"elsewhere-{f.name}"
            target.write_text(head + "\n" + body)
            f.unlink()
            f.symlink_to(target)
        else:
            f.write_text("[" * 100000 + "]" * 100000)
    # A restarted TensorBoard whose loads are still running: nothing from the damaged cache.
    release = threading.Event()
    real = api.load_file

    def slow(path, info=None, progress=None):
        release.wait(30)
        return real(path, info, progress)

    monkeypatch.setattr(api, "load_file", slow)
    second = client()
    try:
        r = second.get(f"{BASE}/layers", query_string={**q, "wait": "0"})
        assert r.status_code == 202, r.data
        r = second.get(f"{BASE}/compare", query_string=[("session", n) for n in names])
        assert r.status_code == 202, r.data
    finally:
        release.set()
    body = second.get(f"{BASE}/layers", query_string=q).json
    assert body["total_ps"] == good["total_ps"] and "cached" not in body
    # ... and the entry was rewritten whole: a third TensorBoard is served from it.
    monkeypatch.setattr(api, "load_file", slow)
    release.clear()
    third = client()
    try:
        r = third.get(f"{BASE}/layers", query_string={**q, "wait": "0"})
        assert r.status_code == 200 and r.json.pop("cached") is True
        assert r.json["total_ps"] == good["total_ps"]
    finally:
        release.set()


@pytest.mark.parametrize("step", ["٢", "+2", " 2", "2_0", "-1"])
def test_cli_steps_are_ascii_digits_only(tmp_path, step):
    path = _demo(tmp_path)
    result = CliRunner().invoke(main, ["layers", str(path), "--step", step])
    assert result.exit_code == 2 and "ASCII digits" in result.output
    assert "Traceback" not in result.output


def test_cli_ops_and_metal_check_say_what_was_skipped(tmp_path):
    path = _demo(tmp_path)

    def edit(space):
        line = max(_host(space).lines, key=lambda ln: len(ln.events))
        for ev in list(line.events)[::10]:
            ev.offset_ps = -5

    _rewrite(path, edit)
    for cmd in (["ops"], ["metal-check"], ["layers", "--format", "csv"]):
        result = CliRunner().invoke(main, [*cmd, str(path)])
        assert result.exit_code == 0, result.output
        assert "out-of-range offset or duration" in result.stderr


def test_a_fifo_in_place_of_a_trace_or_manifest_does_not_block(tmp_path):
    path = _demo(tmp_path)
    manifest = manifest_path_for(path)
    manifest.unlink(missing_ok=True)
    os.mkfifo(manifest)  # nobody writes to it: a blocking open would hang forever
    assert load_file(path).manifest is None  # not a manifest file: there is none
    manifest.unlink()
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(TraceError, match="not a regular file"):
        load_file(path)
