"""The native host-line scanner (C) and its pure-Python twin give identical results.

Identical means every per-op, per-step figure (count, self and total time), the line
kinds and copy stats, the event count, the window and the warnings (so the same events
were dropped for the same reasons), or the same error, on every committed trace and on
mutated ones: the reader fuzzer's cases plus mutations aimed at the hot loop (events out of
order, overlapping, out of range, a budget-busting file).
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tb_metal_plugin import hostline, validate
from tb_metal_plugin.errors import TbMetalError
from tb_metal_plugin.events import read_events
from tb_metal_plugin.xplane import XSpace

ROOT = Path(__file__).resolve().parent.parent
TRACES = sorted((ROOT / "demo" / "logs").rglob("*.xplane.pb")) + sorted(
    (ROOT / "tests" / "fixtures").rglob("*.xplane.pb")
)
NATIVE = hostline._native

needs_native = pytest.mark.skipif(
    NATIVE is None,
    reason="C extension not built (python setup.py build_ext --inplace) or forced off",
)


@contextlib.contextmanager
def _path(native: bool):
    saved = hostline._native
    hostline._native = NATIVE if native else None
    try:
        yield
    finally:
        hostline._native = saved


def snapshot(path, native: bool) -> object:
    """Everything the reader measured in a file, or the error it gave, as plain data."""
    with _path(native):
        try:
            ev = read_events(str(path))
        except TbMetalError as e:
            return ("error", type(e).__name__, str(e))
    ops = {
        key: (
            list(r.count),
            list(r.self_ps),
            list(r.total_ps),
            sorted(r.line_kinds),
            r.stats,
            list(r.device_ps),
        )
        for key, r in ev.ops.items()
    }
    steps = [(s.num, s.start_ps, s.end_ps) for s in ev.steps]
    # What trace-only attribution reads: each thread's first-step op order and first starts.
    order = {line: [(r.name, r.type) for r in seq] for line, seq in ev.sequences.items()}
    return (ops, steps, ev.event_count, ev.window_ps, ev.warnings, order, ev.first_start)


def assert_same(path) -> object:
    """Both paths agree on path; returns the native snapshot."""
    native, twin = snapshot(path, True), snapshot(path, False)
    assert native == twin
    return native


@needs_native
@pytest.mark.parametrize("trace", TRACES, ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_traces_identical(trace):
    got = assert_same(trace)
    if "structural" not in str(trace) and "jax_" not in str(trace):
        ops = got[0]
        # A real TF trace (JAX hosts hold no TF ops): the comparison covered real op
        # figures, not two empty results.
        assert sum(sum(v[0]) for v in ops.values()) > 0


def _fuzz():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import fuzz
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return fuzz


@needs_native
@pytest.mark.parametrize("chunk", range(4))
def test_fuzz_cases_identical(chunk, tmp_path):
    """The reader fuzzer's mutations (bit flips, truncations, splices, odd values...)."""
    fuzz = _fuzz()
    seeds = [p.read_bytes() for p in fuzz.seed_paths()]
    outcomes = set()
    before = dict(hostline.LINES)
    for index in range(chunk * 60, (chunk + 1) * 60):
        name, data = fuzz.make_case(index, 15, seeds)
        path = tmp_path / f"case{index}.xplane.pb"
        path.write_bytes(data)
        got = assert_same(path)
        outcomes.add(got[0] if isinstance(got, tuple) and got[0] == "error" else "loaded")
    assert outcomes == {"error", "loaded"}  # the cases exercise both outcomes
    assert hostline.LINES["native"] > before["native"]  # the scanner read lines itself


@needs_native
def test_lines_the_scanner_refuses_go_to_the_twin(tmp_path):
    """An unknown group field (protobuf accepts it, the scanner does not): the twin reads
    that line, and the figures are still identical."""
    trace = TRACES[0]
    space = XSpace.FromString(trace.read_bytes())
    lines = _host_lines(space)
    for ln in lines[: len(lines) // 2]:
        ln.ParseFromString(ln.SerializeToString() + b"\x63\x64")  # field 12: group start, end
    path = tmp_path / trace.name
    path.write_bytes(space.SerializeToString())
    before = dict(hostline.LINES)
    got = assert_same(path)
    assert hostline.LINES["twin"] - before["twin"] == len(lines) // 2 > 0
    assert hostline.LINES["native"] > before["native"]
    assert got[0] == snapshot(trace, False)[0]  # the extra field changed no figure


def _host_lines(space):
    host = next(p for p in space.planes if p.name == "/host:CPU")
    return [ln for ln in host.lines if len(ln.events) > 1]


def _shuffle(rng, space):
    for ln in _host_lines(space):
        evs = list(ln.events)
        rng.shuffle(evs)
        del ln.events[:]
        ln.events.extend(evs)


def _overlap(rng, space):
    for ln in _host_lines(space):
        for ev in ln.events:
            if rng.random() < 0.2:
                ev.duration_ps = ev.duration_ps * 3 + rng.randrange(1000)


def _out_of_range(rng, space):
    for ln in _host_lines(space):
        for ev in ln.events:
            r = rng.random()
            if r < 0.05:
                ev.offset_ps = -rng.randrange(1, 10**6)
            elif r < 0.1:
                ev.duration_ps = validate.MAX_SPAN_PS - rng.randrange(10**6)
            elif r < 0.12:
                ev.offset_ps = 2**63 - 1
        if rng.random() < 0.1:
            ln.timestamp_ns = -1


def _budget(rng, space):
    # Durations near the per-event bound: 2^62 ps are used up after ~128 of them.
    for ln in _host_lines(space):
        for ev in ln.events:
            ev.offset_ps = 0
            ev.duration_ps = validate.MAX_SPAN_PS


def _equal_starts(rng, space):
    for ln in _host_lines(space):
        for ev in ln.events:
            ev.offset_ps = (ev.offset_ps // 10**9) * 10**9


AIMED = [_shuffle, _overlap, _out_of_range, _budget, _equal_starts]


@needs_native
@pytest.mark.parametrize("mutate", AIMED, ids=lambda f: f.__name__.strip("_"))
def test_aimed_mutations_identical(mutate, tmp_path):
    rng = random.Random(mutate.__name__)
    for trace in TRACES[:3] + TRACES[-1:]:
        space = XSpace.FromString(trace.read_bytes())
        mutate(rng, space)
        path = tmp_path / trace.name
        path.write_bytes(space.SerializeToString())
        got = assert_same(path)
        if mutate in (_out_of_range, _budget) and "structural" not in str(trace):
            assert got[4], "the checks dropped something and said so"  # warnings


@needs_native
@pytest.mark.parametrize("window", [1, 7, 100])
def test_small_read_windows_identical(window, tmp_path, monkeypatch):
    """The scanner reads a line a window at a time: with windows of a few bytes every key,
    length, name and event is cut across reads somewhere, on real and mutated traces."""
    monkeypatch.setattr(hostline, "WINDOW", window)
    rng = random.Random(window)
    for trace in TRACES[:3] + TRACES[-1:]:
        want = snapshot(trace, False)
        before = hostline.LINES["native"]
        assert snapshot(trace, True) == want
        assert hostline.LINES["native"] > before
        space = XSpace.FromString(trace.read_bytes())
        _shuffle(rng, space)
        path = tmp_path / trace.name
        path.write_bytes(space.SerializeToString())
        assert_same(path)


@needs_native
@pytest.mark.parametrize("native", [True, False])
def test_file_shrinking_between_lines_is_the_same_error(native, tmp_path):
    """The scanner reads the file itself: a short read hands the line to the twin, which
    raises the reader's error naming the file, as the twin alone does."""
    trace = max(TRACES[:3], key=lambda p: p.stat().st_size)
    path = tmp_path / trace.name
    path.write_bytes(trace.read_bytes())
    cut = []

    def shrink(done, what):
        if not cut:  # after the first host line: the next ones are gone
            cut.append(done)
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) // 2)

    with _path(native):
        with pytest.raises(TbMetalError) as err:
            read_events(str(path), shrink)
    assert "shrank" in str(err.value) and str(path) in str(err.value)
    assert cut


def _headers(data: bytes):
    """The planes of a trace file as the reader splits them, or [] when it refuses it."""
    import tempfile

    from tb_metal_plugin.xspace_reader import open_trace

    with tempfile.NamedTemporaryFile(suffix=".xplane.pb") as f:
        f.write(data)
        f.flush()
        try:
            with open_trace(f.name) as trace:
                return [(p, p.header_bytes()) for p in trace.planes()]
        except TbMetalError:
            return []


PREFIXES = (b"FunctionRun", b"ExecutorState::Process")


@needs_native
def test_op_metadata_scan_equals_the_twin():
    """The C scan of a plane's metadata bytes sorts out ops, other names and the runtime
    flags as the twin does from the parsed XPlane (or gives None, and the twin reads it):
    on every committed trace and the fuzz cases."""
    fuzz = _fuzz()
    seeds = [p.read_bytes() for p in fuzz.seed_paths()]
    datas = [t.read_bytes() for t in TRACES]
    datas += [fuzz.make_case(i, 15, seeds)[1] for i in range(120)]
    scanned = 0
    for data in datas:
        for plane, raw in _headers(data):
            got = NATIVE.op_metadata(raw, PREFIXES, b"PjRt")
            if got is not None:
                scanned += 1
                assert got == hostline.twin_op_metadata(plane, PREFIXES, b"PjRt")
    assert scanned > len(TRACES)


def _varint(v: int) -> bytes:
    v &= (1 << 64) - 1  # negative ids: ten bytes, two's complement
    out = b""
    while v > 0x7F:
        out += bytes([v & 0x7F | 0x80])
        v >>= 7
    return out + bytes([v])


def _entry(key: int, name: bytes | None, display: bytes = b"", value_twice: bool = False) -> bytes:
    """One XPlane.event_metadata map entry, as the profiler writes it (name None: none)."""
    md = b"" if name is None else b"\x12" + _varint(len(name)) + name
    md += b"\x22" + _varint(len(display)) + display
    value = b"\x12" + _varint(len(md)) + md
    body = b"\x08" + _varint(key) + value + (value if value_twice else b"")
    return b"\x22" + _varint(len(body)) + body


def _both(raw: bytes):
    from types import SimpleNamespace

    from tb_metal_plugin.xplane import XPlane

    twin = hostline.twin_op_metadata(
        SimpleNamespace(header=XPlane.FromString(raw)), PREFIXES, b"PjRt"
    )
    return NATIVE.op_metadata(raw, PREFIXES, b"PjRt"), twin


@needs_native
def test_op_metadata_edge_cases_equal_the_twin():
    """Names at the edges of split_op_name (spaces, colons, a final newline, non-ASCII
    text, display names that are or are not the name's end), ids out of order, sparse,
    negative or repeated (the last entry wins), and the runtime flags."""
    names = [
        (b"a/b:MatMul", b""),
        (b"a b:MatMul", b""),
        (b"a::b", b""),
        (b":T", b""),
        (b"a:", b""),
        (b"a:T\n", b""),
        (b"a:T\n\n", b""),
        (b"a:1T", b""),
        (b"a:_T9", b""),
        ("\u00fc/x:Conv".encode(), b""),
        ("x:T\u00fc".encode(), b""),
        (b"a/b:MatMul", b"MatMul"),
        (b"a/b:MatMul", b"Conv"),
        (b":MatMul", b"MatMul"),
        (b"a b:My Type", b"My Type"),
        (b"MatMul", b"MatMul"),
        ("x:\u00fc".encode(), "\u00fc".encode()),
        (b"Profiled batch", b""),
        (b"FunctionRun", b""),
        (b"x:PjRtClient", b""),
    ]
    ids = [9, 3, 70, 5, 11, 2, 1, 4, 8, 6, 7, 10, 12, 13, 14, 15, 16, 17, 18, 19]
    raw = b"".join(_entry(k, n, d) for k, (n, d) in zip(ids, names, strict=True))
    got, twin = _both(raw)
    assert got == twin
    ops, others, runtime, pjrt = got
    assert runtime and pjrt
    assert (2, "a", "T\n") in ops and (14, "a b", "My Type") in ops  # as the regex has it
    assert len(ops) == 8 and len(others) == 12
    for part in (ops, others):  # each in id order
        assert [k for k, *_ in part] == sorted(k for k, *_ in part)
    # No runtime name, no needle; an entry without a name, one with an empty one.
    got, twin = _both(_entry(1, b"a:T") + _entry(2, b"b") + _entry(3, None) + _entry(4, b"", b"T"))
    assert got == twin and got[2:] == (False, False)
    assert got[:2] == ([(1, "a", "T")], [(2, "b"), (3, ""), (4, "")])
    # Repeated ids (the later entry wins), dense or sparse and negative.
    raw = _entry(9, b"b:T", b"T") + _entry(3, b"a") + _entry(9, b"c:U", b"U") + _entry(70, b"z")
    got, twin = _both(raw)
    assert got == twin and got[:2] == ([(9, "c", "U")], [(3, "a"), (70, "z")])
    raw = _entry(2**40, b"x:T", b"T") + _entry(-5, b"n") + _entry(7, b"s")
    raw += _entry(2**40, b"y:T", b"T")
    got, twin = _both(raw)
    assert got == twin and got[:2] == ([(2**40, "y", "T")], [(-5, "n"), (7, "s")])
    # An entry with a field besides its key and value is not in protobuf's map at all.
    body = b"\x18\x03\x12\x07\x12\x05a:Mul"
    raw = _entry(1, b"b:T") + b"\x22" + _varint(len(body)) + body
    assert _both(raw)[1][0] == [(1, "b", "T")]
    assert NATIVE.op_metadata(raw, PREFIXES, b"PjRt") is None  # the twin reads it
    # What protobuf would merge or refuse goes to the twin.
    assert NATIVE.op_metadata(_entry(1, b"x", value_twice=True), PREFIXES, b"PjRt") is None
    assert NATIVE.op_metadata(_entry(1, b"\xff"), PREFIXES, b"PjRt") is None


def test_env_forces_the_twin():
    code = "from tb_metal_plugin import hostline; print(hostline.READER)"
    env = dict(os.environ, TB_METAL_PURE_PYTHON="1")
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.stdout.strip() == "python"


def test_version_names_the_reader():
    out = subprocess.run(
        [sys.executable, "-m", "tb_metal_plugin.cli", "--version"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert f"reader: {hostline.READER}" in out.stdout


@needs_native
def test_bounds_match_validate():
    assert 1 << NATIVE.MAX_SPAN_LOG2 == validate.MAX_SPAN_PS
    assert 1 << NATIVE.MAX_TOTAL_LOG2 == validate.MAX_TOTAL_PS
    assert NATIVE.MAX_EVENTS == validate.MAX_EVENTS


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("nsteps", [0, 3, 400])
def test_selection_sums_equal_a_loop_over_slots(nsteps, native, monkeypatch):
    """Selection's sums (the C sum, slices and numpy) equal the plain sum over the selected
    slots, as methods and as the summers the op rows use."""
    from array import array

    from tb_metal_plugin import selection
    from tb_metal_plugin.breakdown import Selection
    from tb_metal_plugin.events import Step

    if native and NATIVE is None:
        pytest.skip("C extension not built")
    monkeypatch.setattr(selection, "native_total", NATIVE.total if native else None)

    class Events:
        steps = [Step(k, 10 * k, 10 * k + 5) for k in range(nsteps)]
        window_ps = 123

    rng = random.Random(nsteps)
    counts = array("i", (rng.randrange(1000) for _ in range(nsteps + 1)))
    times = array("q", (rng.randrange(-(2**40), 2**40) for _ in range(nsteps + 1)))
    steps = [None, "avg"] + ([nsteps // 2] if nsteps else [])
    for step in steps:
        sel = Selection(Events(), step)
        div = sel.divisor
        total_of, count_of = sel.summers()
        want = sum(times[i] for i in sel.slots)
        want = want // div if div > 1 else want
        assert sel.sum(times) == total_of(times) == want
        assert sel.sum(list(times)) == total_of(tuple(times)) == want
        want = sum(counts[i] for i in sel.slots)
        want = round(want / div, 2) if div > 1 else want
        assert sel.count(counts) == count_of(counts) == want
        assert sel.count(list(counts)) == want
        assert sel.sum((0,) * (nsteps + 1)) == total_of((0,) * (nsteps + 1)) == 0


@needs_native
def test_native_total_is_sum_of_the_slice():
    """The C sum of a per-slot array is sum(values[lo:hi]) for every slice, array type and
    sequence, past 64 bits too (the builtin sum takes over)."""
    from array import array

    rng = random.Random(7)
    for code, bits in (("q", 62), ("l", 62), ("i", 30), ("h", 14), ("d", 0)):
        for n in range(12):
            if code == "d":
                values = array(code, (rng.random() for _ in range(n)))
            else:
                values = array(code, (rng.randrange(-(2**bits), 2**bits) for _ in range(n)))
            for lo in range(-2, n + 2):
                for hi in range(-2, n + 3):
                    assert NATIVE.total(values, lo, hi) == sum(values[lo:hi])
            assert NATIVE.total(values) == sum(values)
    big = array("q", [2**62] * 5)
    assert NATIVE.total(big) == 5 * 2**62  # past int64: summed by the builtin sum
    assert NATIVE.total([1, 2, 3], 1) == 5 and NATIVE.total((4, 5), 0, 1) == 4
    with pytest.raises(TypeError):
        NATIVE.total(None)
