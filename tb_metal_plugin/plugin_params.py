"""The routes' own query parameters (session and host names, wait, compare's session list),
checked into plain values. Step, layer and bucket go through ``selectors`` like every face's."""

from __future__ import annotations

from collections.abc import Mapping

from tb_metal_plugin import errors, validate

MAX_WAIT_S = 120.0
MAX_NAME = 1024
# Comparing more profiles than this at once loads too much for one request.
MAX_COMPARED = 8


def parse_wait(raw: str | None) -> float:
    """How long a request may wait for its profile to load (0 when absent)."""
    return validate.parse_seconds(raw, "wait", MAX_WAIT_S)


def check_name(value: str, what: str) -> str:
    """A session or host name as sent, refused when hostile (too long, a NUL)."""
    # Names only select among scanned sessions, so they never reach the file system;
    # still refuse obviously hostile values early with a clear 400.
    if len(value) > MAX_NAME or "\x00" in value:
        raise errors.InvalidArgumentError(f"invalid {what}")
    return value


def session_arg(args: Mapping) -> str:
    """The ``session`` parameter ("run/session"), checked; "" when absent."""
    return check_name(args.get("session", ""), "session")


def host_arg(args: Mapping) -> str:
    """The ``host`` parameter, checked; "" (the session's first host) when absent."""
    return check_name(args.get("host") or "", "host")


def require_session(name: str) -> str:
    """The session name, which a one-profile route cannot do without."""
    if not name:
        raise errors.InvalidArgumentError("missing 'session' (\"run/session\")")
    return name


def compare_args(args) -> tuple[list[str], list[str]]:
    """The sessions to compare (2 to 8) and their hosts ("" where not given)."""
    names = [check_name(n, "session") for n in args.getlist("session")]
    if len(names) < 2:
        raise errors.InvalidArgumentError("compare needs two or more 'session' values")
    if len(names) > MAX_COMPARED:
        raise errors.InvalidArgumentError(f"compare at most {MAX_COMPARED} sessions at once")
    hosts = [check_name(h, "host") for h in args.getlist("host")]
    if len(hosts) > len(names):
        raise errors.InvalidArgumentError("more 'host' values than sessions")
    return names, hosts + [""] * (len(names) - len(hosts))
