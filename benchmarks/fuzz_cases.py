"""The fuzzer's cases: mutations of the committed real traces, the same for the same seed.

Used by benchmarks/fuzz.py (which runs and judges them), tests/test_fuzz.py and
tests/test_native.py.
"""

from __future__ import annotations

import random
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INT64 = 2**63
INTERESTING = [0, 1, 2, 127, 128, 255, 2**31 - 1, 2**31, 2**32, 2**53, 2**62, INT64 - 1,
               INT64, 2**64 - 1, 2**64 - 2**10]  # fmt: skip


def seed_paths() -> list[Path]:
    """The committed real traces the cases are made from."""
    found = sorted((ROOT / "demo" / "logs").rglob("*.xplane.pb"))
    found += sorted((ROOT / "tests" / "fixtures").rglob("*.xplane.pb"))
    return [p for p in found if p.is_file() and not p.is_symlink() and p.stat().st_size < 4 << 20]


# ---------------------------------------------------------------------------
# Mutations: (rng, data, all seeds) -> bytes


def _varint(value: int) -> bytes:
    value &= 2**64 - 1
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        out.append(b | (0x80 if value else 0))
        if not value:
            return bytes(out)


def bitflip(rng, data, seeds):
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(buf))
        buf[i] ^= 1 << rng.randrange(8)
    return bytes(buf)


def delete(rng, data, seeds):
    i = rng.randrange(len(data))
    return data[:i] + data[i + rng.randint(1, 256) :]


def insert(rng, data, seeds):
    i = rng.randrange(len(data))
    return data[:i] + rng.randbytes(rng.randint(1, 64)) + data[i:]


def truncate(rng, data, seeds):
    return data[: rng.randrange(len(data))]


def splice(rng, data, seeds):
    other = rng.choice(seeds)
    return data[: rng.randrange(len(data))] + other[rng.randrange(len(other)) :]


def duplicate(rng, data, seeds):
    i = rng.randrange(len(data))
    j = min(len(data), i + rng.randint(1, 4096))
    return data[:j] + data[i:j] * rng.randint(1, 4) + data[j:]


def varint(rng, data, seeds):
    """Overwrite a varint-looking run (a key, a length or a value) with an odd value."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(buf))
        j = i
        while j < len(buf) and buf[j] & 0x80 and j - i < 10:
            j += 1
        value = rng.choice(INTERESTING) + rng.choice((0, 0, 1, -1))
        buf[i : j + 1] = _varint(value)
    return bytes(buf)


def odd_values(rng, data, seeds):
    """A valid XSpace whose values are out of range: the reader's checks must catch them."""
    from tb_metal_plugin.xplane import XSpace

    space = XSpace.FromString(data)
    host = next((p for p in space.planes if p.name == "/host:CPU"), None)
    if host is None:
        return data
    step_stat = next((k for k, v in host.stat_metadata.items() if v.name == "step_num"), None)
    lines = list(host.lines)
    if rng.random() < 0.3:
        _add_device_plane(rng, space, host)
    for _ in range(rng.randint(1, 4)):
        what = rng.randrange(7)
        line = rng.choice(lines)
        events = list(line.events)
        if what == 0 and step_stat is not None:
            for ln in lines:
                for ev in ln.events:
                    for st in ev.stats:
                        if st.metadata_id == step_stat:
                            v = rng.choice(["str", "inf", "nan", "huge", "neg", "float", "uint"])
                            if v == "str":
                                st.str_value = rng.choice(["abc", "2", "", "٢", "1e3", " 2"])
                            elif v in ("inf", "nan"):
                                st.double_value = float(v) * rng.choice((1, -1))
                            elif v == "float":
                                st.double_value = rng.choice((2.5, 1e300, -3.0, 4.0))
                            elif v == "huge":
                                st.int64_value = INT64 - 1
                            elif v == "uint":
                                st.uint64_value = 2**64 - 1
                            else:
                                st.int64_value = -rng.randint(1, 10)
        elif what == 1 and events:
            for ev in rng.sample(events, min(len(events), rng.randint(1, 20))):
                ev.duration_ps = INT64 - rng.randint(1, 2**20)
        elif what == 2 and events:
            for ev in rng.sample(events, min(len(events), rng.randint(1, 20))):
                ev.offset_ps = -rng.randint(1, 2**40)
        elif what == 3:
            line.timestamp_ns = rng.choice((-1, -(2**62), INT64 - 1, 0))
        elif what == 4 and events:
            for ev in rng.sample(events, min(len(events), rng.randint(1, 20))):
                ev.metadata_id = rng.choice((0, -1, INT64 - 1, rng.randint(1, 10**6)))
        elif what == 5 and events:
            # Many events nested at one instant, each as long as can be.
            ev = events[0]
            for _ in range(rng.randint(2, 64)):
                new = line.events.add()
                new.CopyFrom(ev)
                new.duration_ps = 2**55 - rng.randint(0, 10)
        elif what == 6:
            mds = list(host.event_metadata.values())
            for md in rng.sample(mds, min(len(mds), 10)):
                md.name = rng.choice([":", "a:", ":b", "x" * 5000 + ":Op", "a:b:c", "\udcff"[:0]])
    return space.SerializeToString()


def _wrap(number: int, body: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(body)) + body


def inner(rng, data, seeds):
    """A byte mutation inside one line (or one plane's metadata), lengths re-encoded, so the
    damage reaches the events instead of stopping at the outer framing."""
    from tb_metal_plugin.xplane import XSpace

    space = XSpace.FromString(data)
    planes = []
    target = rng.randrange(len(space.planes))
    for k, plane in enumerate(space.planes):
        lines = [ln.SerializeToString() for ln in plane.lines]
        del plane.lines[:]
        head = plane.SerializeToString()
        if k == target:
            op = rng.choice((bitflip, delete, insert, varint, truncate, duplicate))
            if lines and rng.random() < 0.8:
                i = rng.randrange(len(lines))
                lines[i] = op(rng, lines[i], seeds) if lines[i] else lines[i]
            elif head:
                head = op(rng, head, seeds)
        planes.append(_wrap(1, head + b"".join(_wrap(3, ln) for ln in lines)))
    return b"".join(planes)


def _add_device_plane(rng, space, host) -> None:
    """A `/device:GPU:0` plane (the seeds have none) whose events name host ops, with
    durations and offsets from plausible to absurd."""
    ops = [m.name for m in host.event_metadata.values() if ":" in m.name]
    plane = space.planes.add(name=f"/device:GPU:{rng.randrange(3)}")
    tf_op = plane.stat_metadata[1]
    tf_op.id, tf_op.name = 1, "tf_op"
    for k, name in enumerate(rng.sample(ops, min(len(ops), 8)) + ["MemcpyHtoD"], start=1):
        plane.event_metadata[k].id = k
        plane.event_metadata[k].name = name
    line = plane.lines.add(name="Stream #1(Compute)", timestamp_ns=host.lines[0].timestamp_ns)
    for _ in range(rng.randint(1, 50)):
        ev = line.events.add(metadata_id=rng.randint(1, 9))
        ev.offset_ps = rng.choice((rng.randint(0, 10**9), -rng.randint(1, 10**6)))
        ev.duration_ps = rng.choice((rng.randint(0, 10**7), INT64 - 1, 2**62, -1))
        if rng.random() < 0.3:
            ev.stats.add(metadata_id=1, str_value=rng.choice(ops + ["", ":", "x:"]))


MUTATIONS = {
    "inner": inner,
    "bitflip": bitflip,
    "delete": delete,
    "insert": insert,
    "truncate": truncate,
    "splice": splice,
    "duplicate": duplicate,
    "varint": varint,
    "odd_values": odd_values,
}


def make_case(index: int, seed: int, seeds: list[bytes]) -> tuple[str, bytes]:
    """Case `index`: (mutation name, mutated bytes), the same for the same seed."""
    rng = random.Random(seed * 1_000_003 + index)
    name = list(MUTATIONS)[index % len(MUTATIONS)]
    data = seeds[rng.randrange(len(seeds))]
    for _ in range(1 + (rng.random() < 0.2)):
        try:
            data = MUTATIONS[name](rng, data, seeds) or b"\0"
        except Exception:  # noqa: BLE001 - a structural mutation of already damaged bytes
            data = bitflip(rng, data, seeds)
    return name, data
