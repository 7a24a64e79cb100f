"""The `tb-metal` command line: a thin face over `tb_metal_plugin.api`."""

from __future__ import annotations

import functools
import os
import sys
import time

import click

from . import __version__, api, formatting, readiness, validate
from .errors import TbMetalError, TraceError

# Files smaller than this load in well under a second: no progress line for them.
PROGRESS_MIN_BYTES = 8 << 20


class _StderrProgress:
    """A one-line progress indicator on stderr, throttled, silent for small files."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.last = 0.0
        self.shown = False

    def __call__(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < 0.2 and fraction < 1):
            return
        self.last = now
        self.shown = True
        end = "\r" if sys.stderr.isatty() else "\n"
        click.echo(f"{message}: {100 * fraction:5.1f}%", err=True, nl=False)
        click.echo(end, err=True, nl=False)

    def done(self) -> None:
        if self.shown and sys.stderr.isatty():
            click.echo(" " * 60 + "\r", err=True, nl=False)


def selectors(f):
    """The options that pick one profile: --run, --session, --host, --step."""
    for opt in reversed(
        [
            click.option("--run", help="Run (folder above plugins/profile), relative to PATH."),
            click.option("--session", help="Session folder name, or run/session."),
            click.option("--host", help="Host (trace file name without .xplane.pb)."),
            click.option(
                "--step",
                default="all",
                callback=_strict_step,
                show_default=True,
                help="A step number, 'all' (totals over the profile) or 'avg' (per step).",
            ),
            click.option(
                "--format",
                "fmt",
                type=click.Choice(formatting.FORMATS),
                default="table",
                show_default=True,
            ),
        ]
    ):
        f = opt(f)
    return f


def _strict_step(ctx, param, value: str) -> str:
    """--step: 'all', 'avg' or ASCII digits (not '٢', '+2', ' 2' or '2_0')."""
    try:
        validate.parse_step(value)
    except TbMetalError as e:
        raise click.BadParameter(str(e)) from None
    return value


def load(
    path: str, run: str | None, session: str | None, host: str | None, warn: bool = True
) -> api.Profile:
    """Load the selected profile with a progress line for big files; notes go to stderr,
    and so do the trace's warnings (values skipped) when ``warn``."""
    chosen, host, notes = api.choose(path, run, session, host)
    trace = chosen.hosts[host]
    try:
        size = os.path.getsize(trace)
    except OSError as e:
        raise TraceError(str(trace), f"cannot read trace file ({e.strerror or e})") from e
    progress = _StderrProgress(size >= PROGRESS_MIN_BYTES)
    try:
        prof = api.load_file(trace, chosen, progress)
    except TbMetalError:
        raise
    except Exception as e:  # noqa: BLE001 - a file must never give a traceback
        raise TraceError(
            str(trace), f"tb-metal failed on this file ({type(e).__name__}: {e}); please report it"
        ) from e
    progress.done()
    for note in notes:
        click.echo(f"note: {note}", err=True)
    if warn:
        for w in prof.events.warnings:
            click.echo(f"warning: {trace}: {w}", err=True)
    return prof


def emit(fmt: str, data: dict, table, to_csv) -> None:
    """Print a payload as JSON, CSV or a terminal table (the same data in each)."""
    if fmt == "json":
        click.echo(formatting.to_json(data))
    elif fmt == "csv":
        click.echo(to_csv(data), nl=False)
    else:
        click.echo(table(data))


def errors_to_exit(f):
    """Turn tb-metal's typed errors into a clear message and exit status 2."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except TbMetalError as e:
            click.echo(f"tb-metal: error: {e}", err=True)
            sys.exit(2)
        except Exception as e:
            # A bug, triggered by some file: say which, without a traceback (set
            # TB_METAL_DEBUG=1 to get one).
            if os.environ.get("TB_METAL_DEBUG"):
                raise
            where = kwargs.get("path") or " ".join(kwargs.get("paths") or ())
            click.echo(
                f"tb-metal: internal error on {where}: {type(e).__name__}: {e} "
                "(please report it; TB_METAL_DEBUG=1 shows the traceback)",
                err=True,
            )
            sys.exit(3)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tb-metal")
def main() -> None:
    """Per-Keras-layer time, GPU/CPU split and CPU fallbacks from TensorFlow profiles.

    PATH may be a logdir, a run folder, a session folder or one *.xplane.pb file.
    """


@main.command()
@click.argument("path", type=click.Path())
@selectors
@errors_to_exit
def layers(path, run, session, host, step, fmt):
    """Per-layer breakdown: time per phase and device, share, fallbacks."""
    prof = load(path, run, session, host, warn=fmt != "table")  # the table lists them
    data = prof.layers(step)
    emit(fmt, data, formatting.layers_table, formatting.layers_csv)


@main.command()
@click.argument("path", type=click.Path())
@selectors
@click.option("--layer", help="Only ops of this layer path (names joined by '/').")
@click.option(
    "--limit",
    type=int,
    default=50,
    show_default=True,
    help="Rows in the table (0: all). JSON and CSV always hold every op.",
)
@errors_to_exit
def ops(path, run, session, host, step, fmt, layer, limit):
    """Per-op attribution: layer, phase, device and its source, count, self and total time."""
    prof = load(path, run, session, host)
    data = prof.ops(step, layer.split("/") if layer else None)
    emit(fmt, data, lambda d: formatting.ops_table(d, limit), formatting.ops_csv)


@main.command("metal-check")
@click.argument("path", type=click.Path())
@selectors
@click.option(
    "--metal-version",
    type=click.Choice(readiness.available_metal_versions()),
    default=readiness.default_metal_version(),
    show_default=True,
    help="tensorflow-metal release to predict for.",
)
@errors_to_exit
def metal_check(path, run, session, host, step, fmt, metal_version):
    """Predict which layers would fall back to the CPU on tensorflow-metal (a prediction)."""
    prof = load(path, run, session, host)
    data = readiness.check(prof.ops(step), prof.manifest, metal_version)
    if fmt == "json":
        click.echo(formatting.to_json(data))
        return
    # Op types that run on the CPU whatever the plugin has (py_function, tf.data), per layer.
    by_nature: dict[tuple, set[str]] = {}
    for op in data["ops"]:
        if op["verdict"] == "cpu_only_by_nature":
            by_nature.setdefault(tuple(op["layer"] or ()), set()).add(op["type"])
    rows, raw = [], []
    for r in data["layers"]:
        types = r["fallback_op_types"] + sorted(by_nature.get(tuple(r["layer"] or ()), ()))
        where = "/".join(r["layer"]) if r["layer"] else "(no layer)"
        cpu_ps = r["fallback_ps"] + r["verdicts"].get("cpu_only_by_nature", 0)
        rows.append(
            [
                where,
                r["verdict"],
                formatting.fmt_time(cpu_ps),
                formatting.fmt_time(r["total_ps"]),
                " ".join(types),
            ]
        )
        raw.append([where, r["verdict"], cpu_ps, r["total_ps"], " ".join(types)])
    headers = ["layer", "predicted", "on CPU", "time", "CPU op types"]
    if fmt == "csv":
        # Raw picoseconds in CSV so spreadsheets can sum them.
        click.echo(
            formatting.csv_text([*headers[:2], "cpu_ps", "time_ps", headers[4]], raw), nl=False
        )
        return
    total = data["total_ps"] or 1
    cpu_only = data["cpu_only_ps"]
    click.echo(
        f"PREDICTION for tensorflow-metal {data['metal_version']}: "
        f"{formatting.fmt_share(data['fallback_share'])} of op time would fall back to the CPU "
        f"({formatting.fmt_time(data['fallback_ps'])} of {formatting.fmt_time(data['total_ps'])})"
        f"; {formatting.fmt_share(cpu_only / total)} runs on the CPU by nature "
        f"(py_function, tf.data): {formatting.fmt_time(cpu_only)}"
    )
    click.echo(formatting.text_table(headers, rows, {2, 3}))
    for d in data["disagreements"] or []:
        click.echo(f"measured differs: {d['name']} ({d['type']}): {d['reason']}")


@main.command("compare")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--step",
    default="avg",
    callback=_strict_step,
    show_default=True,
    help="'avg' (per step: fair when runs profiled different step counts), 'all' or a number.",
)
@click.option("--host", help="Host in every profile (default: each one's first host).")
@click.option("--label", "labels", multiple=True, help="Name of each profile (default: PATH).")
@click.option(
    "--format", "fmt", type=click.Choice(formatting.FORMATS), default="table", show_default=True
)
@errors_to_exit
def compare_cmd(paths, step, host, labels, fmt):
    """Compare per-layer time of two or more profiles (first = baseline), matched by layer path.

    Each PATH is a logdir, run folder, session folder or *.xplane.pb; a path holding several
    sessions means its newest one.
    """
    from . import compare as comparing

    if len(paths) < 2:
        raise click.UsageError("compare needs two or more PATHs")
    if labels and len(labels) != len(paths):
        raise click.UsageError("give one --label per PATH, or none")
    payloads = [load(p, None, None, host).layers(step) for p in paths]
    data = comparing.compare(payloads, list(labels) or list(paths))
    emit(fmt, data, comparing.compare_table, comparing.compare_csv)


if __name__ == "__main__":
    main()
