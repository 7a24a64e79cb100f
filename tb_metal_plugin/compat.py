"""The tensorflow-metal / TensorFlow compatibility table (`data/compatibility.json`) and the
pip commands for a working pair. Kept as data, each pair with its sources."""

from __future__ import annotations

from functools import lru_cache

from . import data_files

# Pair statuses of the table; a pair not listed is "untested".
WORKS, LIKELY, UNTESTED, BROKEN = "works", "likely", "untested", "broken"


@lru_cache(maxsize=1)
def load_table() -> dict:
    """The shipped compatibility.json, parsed and checked once."""
    data = data_files.load("compatibility.json", "tb-metal-compatibility")
    for rel in data["releases"]:
        for pair in rel["tensorflow"]:
            missing = [k for k in pair["sources"] if k not in data["sources"]]
            if missing:
                raise ValueError(f"compatibility.json: unknown sources {missing}")
    return data


def vkey(version: str | None) -> tuple[int, ...]:
    """A comparable key of a version string ('2.18.1' -> (2, 18, 1); 'rc' parts count as 0)."""
    out = []
    for part in str(version or "").split("."):
        digits = "".join(c for c in part if c.isdigit()) if part[:1].isdigit() else ""
        out.append(int(digits) if digits else 0)
    return tuple(out)


def series(version: str | None) -> str:
    """Major.minor of a version: '2.18.1' -> '2.18'."""
    return ".".join(str(p) for p in vkey(version)[:2])


def sources(keys) -> list[dict]:
    table = load_table()["sources"]
    return [{"id": k, **table[k]} for k in keys]


def pair_status(metal_version: str, tf_version: str) -> dict:
    """Whether tensorflow-metal `metal_version` is known to load into TensorFlow `tf_version`."""
    table = load_table()
    tf_series = series(tf_version)
    broken = table["broken_from_tensorflow"]
    if vkey(tf_series) >= vkey(broken["series"]):
        return {"status": BROKEN, "why": broken["why"], "sources": sources(broken["sources"])}
    releases = {r["tensorflow_metal"]: r for r in table["releases"]}
    release, note = releases.get(metal_version), ""
    if release is None:
        # A patch release (1.0.1) is taken to pair like the release of its series (1.0.0).
        same = [r for v, r in releases.items() if series(v) == series(metal_version)]
        if same:
            release = same[0]
            note = (
                f"the table lists tensorflow-metal {release['tensorflow_metal']}; "
                f"{metal_version} is assumed to pair the same"
            )
    if release is None:
        return {
            "status": UNTESTED,
            "why": f"tensorflow-metal {metal_version} is not in the table",
            "sources": [],
        }
    for pair in release["tensorflow"]:
        if pair["series"] == tf_series:
            status = pair["status"]
            if note and status == WORKS:
                status = LIKELY
            why = "; ".join(x for x in (pair.get("note", ""), note) if x)
            return {"status": status, "why": why, "sources": sources(pair["sources"])}
    known = ", ".join(p["series"] for p in release["tensorflow"] if p["status"] == WORKS)
    return {
        "status": UNTESTED,
        "why": f"no report of tensorflow-metal {metal_version} with TensorFlow {tf_series} "
        f"(reported working: {known or 'none'})",
        "sources": [],
    }


def working_tensorflow(metal_version: str) -> list[str]:
    """TensorFlow series reported working with a tensorflow-metal release (its series' entry)."""
    for rel in load_table()["releases"]:
        if series(rel["tensorflow_metal"]) == series(metal_version):
            return [p["series"] for p in rel["tensorflow"] if p["status"] in (WORKS, LIKELY)]
    return []


def install_command(tf_series_list: list[str] | None = None, metal_version: str | None = None):
    """The pip command for a working pair: the recommended one, or `metal_version` with the
    TensorFlow series reported working with it."""
    table = load_table()
    rec = table["recommended"]
    if tf_series_list is None:
        tf_spec, metal = rec["tensorflow"], rec["tensorflow_metal"]
        lowest = tf_spec.split(",")[0].lstrip(">=")
    else:
        lowest, newest = min(tf_series_list, key=vkey), max(tf_series_list, key=vkey)
        major, minor = vkey(newest)[:2]
        tf_spec, metal = f">={lowest},<{major}.{minor + 1}", metal_version
    # Up to TensorFlow 2.12 the macOS arm64 build was the tensorflow-macos distribution.
    macos_dist = vkey(lowest) <= vkey(table["tensorflow_macos_until"]["series"])
    dist = "tensorflow-macos" if macos_dist else "tensorflow"
    return f'python -m pip install "{dist}{tf_spec}" "tensorflow-metal=={metal}"'
