"""Validate a payload against docs/schema.json: with `jsonschema` when installed, else with the
small validator below (it knows exactly the keywords scripts/gen_schema.py writes)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "docs" / "schema.json"


@cache
def schema() -> dict:
    """The committed JSON Schema document."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def errors(name: str, payload: object, use_jsonschema: bool = True) -> list[str]:
    """Every way `payload` breaks the definition `name` (empty: valid), as 'path: message'."""
    data = json.loads(json.dumps(payload))  # what a client sees: tuples become lists
    if use_jsonschema:
        try:
            import jsonschema
        except ImportError:
            pass
        else:
            v = jsonschema.Draft202012Validator({**schema(), "$ref": f"#/$defs/{name}"})
            return [
                f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(data)
            ]
    out: list[str] = []
    _check({"$ref": f"#/$defs/{name}"}, data, "", out)
    return out


_TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def _check(s: dict, v: object, at: str, out: list[str]) -> None:
    if "$ref" in s:
        _check(schema()["$defs"][s["$ref"].rsplit("/", 1)[1]], v, at, out)
    for sub in s.get("allOf", ()):
        _check(sub, v, at, out)
    if "anyOf" in s:
        if not any(_valid(sub, v) for sub in s["anyOf"]):
            out.append(f"{at}: {v!r:.60} matches none of the alternatives")
        return
    if "enum" in s and not any(v == e and type(v) is type(e) for e in s["enum"]):
        out.append(f"{at}: {v!r:.60} is not one of {s['enum']}")
    t = s.get("type")
    if t is None:
        return
    if not _TYPES[t](v):
        out.append(f"{at}: {v!r:.60} is not of type {t}")
        return
    if t == "array":
        for i, item in enumerate(v):
            _check(s["items"], item, f"{at}/{i}", out)
    elif t == "object":
        props = s.get("properties", {})
        for key in s.get("required", ()):
            if key not in v:
                out.append(f"{at}: {key!r} is a required property")
        for key, item in v.items():
            if key in props:
                _check(props[key], item, f"{at}/{key}", out)
            elif s.get("additionalProperties") is False:
                out.append(f"{at}: additional property {key!r}")
            else:
                if "propertyNames" in s:
                    _check(s["propertyNames"], key, f"{at}/{key} (name)", out)
                _check(s["additionalProperties"], item, f"{at}/{key}", out)


def _valid(s: dict, v: object) -> bool:
    out: list[str] = []
    _check(s, v, "", out)
    return not out
