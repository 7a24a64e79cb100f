"""Bad input gets a clear error naming the file, and never takes the other files down."""

from __future__ import annotations

import glob
import shutil

import pytest
from click.testing import CliRunner

from tb_metal_plugin import find_sessions, load_profile
from tb_metal_plugin.api import load_file
from tb_metal_plugin.cli import main
from tb_metal_plugin.errors import NotFoundError, TraceError
from tb_metal_plugin.xplane import XEventMetadata, XLine, XPlane, XSpace


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
    real_open = open

    def deny(p, *a, **k):
        if str(p) == path:
            raise PermissionError(13, "Permission denied")
        return real_open(p, *a, **k)

    # Tests run as root here, where file modes do not stop reads: simulate the denial.
    monkeypatch.setattr("builtins.open", deny)
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
