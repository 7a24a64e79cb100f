"""The `tb-metal` command line: a thin face over `tb_metal_plugin.api`."""

from __future__ import annotations

import functools
import os
import sys
from typing import TYPE_CHECKING

import click

from . import __version__, readiness
from .cli_output import (
    FORMATS,
    StderrProgress,
    csv_code,
    echo_json_pieces,
    emit,
    json_text,
    no_cycle_collection,
    pretty_json,
    pretty_option,
    table_code,
)
from .errors import TbMetalError, TraceError
from .hostline import READER
from .selectors import parse_step
from .table_fit import terminal_width, wrap

if TYPE_CHECKING:
    from .api import Profile

# Files smaller than this load in well under a second: no progress line for them.
PROGRESS_MIN_BYTES = 8 << 20


def selectors(f):
    """The options that pick one profile (--run, --session, --host, --step), --format, --wide,
    --pretty."""
    f = wide_option(f)
    f = pretty_option(f)
    for opt in reversed(
        [
            click.option("--run", help="Run (folder above plugins/profile), relative to PATH."),
            click.option("--session", help="Session folder name, or run/session."),
            click.option(
                "--host",
                help="Host (trace file name without .xplane.pb); `layers --host all`: "
                "every host side by side.",
            ),
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
                type=click.Choice(FORMATS),
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
        parse_step(value)
    except TbMetalError as e:
        raise click.BadParameter(str(e)) from None
    return value


def wide_option(f):
    """--wide: tables at full width (every column, names in full, notes on one line)."""
    return click.option(
        "--wide",
        is_flag=True,
        help="Do not fit the table to the terminal (COLUMNS, else its width): show everything.",
    )(f)


def load(
    path: str, run: str | None, session: str | None, host: str | None, warn: bool = True
) -> Profile:
    """Load the selected profile with a progress line for big files; notes go to stderr,
    and so do the trace's warnings (values skipped) when ``warn``."""
    from . import api  # here, not at the top: `tb-metal --version` and --help start fast

    chosen, host, notes = api.choose(path, run, session, host)
    trace = chosen.hosts[host]
    try:
        size = os.path.getsize(trace)
    except OSError as e:
        raise TraceError(str(trace), f"cannot read trace file ({e.strerror or e})") from e
    progress = StderrProgress(size >= PROGRESS_MIN_BYTES)
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
        for line in wrap(note, terminal_width(), "      ", "note: "):
            click.echo(line, err=True)
    if warn:
        for w in prof.events.warnings:
            for line in wrap(f"{trace}: {w}", terminal_width(), "         ", "warning: "):
                click.echo(line, err=True)
    return prof


def errors_to_exit(f):
    """Turn tb-metal's typed errors into a clear message and exit status 2."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            with no_cycle_collection():
                return f(*args, **kwargs)
        except TbMetalError as e:
            click.echo(f"tb-metal: error: {e}", err=True)
            sys.exit(2)
        except click.ClickException:
            raise  # usage errors: click prints them and exits 2
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
@click.version_option(
    __version__,
    prog_name="tb-metal",
    message=f"%(prog)s, version %(version)s (reader: {READER})",
)
def main() -> None:
    """Per-Keras-layer time, GPU/CPU split and CPU fallbacks from TensorFlow profiles.

    PATH may be a logdir, a run folder, a session folder or one *.xplane.pb file.
    """


@main.command()
@click.argument("path", type=click.Path())
@selectors
@errors_to_exit
def layers(path, run, session, host, step, fmt, wide):
    """Per-layer breakdown: time per phase and device, share, fallbacks.

    --host all: every host of the session (loaded in parallel), per layer the sum over
    hosts, the mean per host and the slowest host."""
    if host == "all":
        from . import api, formatting_hosts, hosts

        chosen, _, _ = api.choose(path, run, session)
        if "all" not in chosen.hosts:  # a host really named "all" keeps its name
            data = hosts.load_session(path, run, session, "all").layers(step)
            emit(fmt, data, formatting_hosts.hosts_table, formatting_hosts.hosts_csv)
            return
    prof = load(path, run, session, host, warn=fmt != "table")  # the table lists them
    data = prof.layers(step)
    width = terminal_width(wide)
    emit(
        fmt,
        data,
        lambda d: table_code().layers_table(d, width),
        lambda d: csv_code().layers_csv(d),
    )


@main.command()
@click.argument("path", type=click.Path())
@selectors
@click.option(
    "--layer",
    help="Only ops of this layer and its sublayers: its path from the model, names joined "
    "by '/' (e.g. model/mha), as `tb-metal layers` shows it.",
)
@click.option("--bucket", help="Only ops outside any layer in this bucket (e.g. optimizer).")
@click.option(
    "--limit",
    type=int,
    default=50,
    show_default=True,
    help="Rows in the table (0: all). JSON and CSV always hold every op.",
)
@errors_to_exit
def ops(path, run, session, host, step, fmt, wide, layer, bucket, limit):
    """Per-op attribution: layer, phase, device and its source, count, self and total time."""
    prof = load(path, run, session, host)
    if fmt == "json" and not pretty_json():
        # Rows are printed as they are encoded, a few hundred at a time: thousands of rows
        # are never all held.
        header, pieces = prof.ops_json(step, layer or None, bucket)
        echo_json_pieces(header, "ops", pieces)
        return
    data = prof.ops(step, layer or None, bucket)
    width = terminal_width(wide)
    emit(
        fmt,
        data,
        lambda d: table_code().ops_table(d, limit, width),
        lambda d: csv_code().ops_csv(d),
    )


def minor_options(f):
    """--minor-us / --minor-share: below both, a layer's CPU time is minor, not a fallback."""
    f = click.option(
        "--minor-share",
        type=float,
        default=100 * readiness.DEFAULT_THRESHOLDS.min_share,
        show_default=True,
        help="A layer's CPU time below this percent of the layer is minor.",
    )(f)
    return click.option(
        "--minor-us",
        type=float,
        default=readiness.DEFAULT_THRESHOLDS.min_ps / 1e6,
        show_default=True,
        help="A layer's CPU time below this many microseconds is minor.",
    )(f)


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
@minor_options
@errors_to_exit
def metal_check(path, run, session, host, step, fmt, wide, metal_version, minor_us, minor_share):
    """Predict which layers would fall back to the CPU on tensorflow-metal (a prediction),
    and what to do about each op type that would."""
    prof = load(path, run, session, host)
    limits = readiness.Thresholds(min_ps=int(minor_us * 1e6), min_share=minor_share / 100)
    data = readiness.check(prof.ops(step), prof.manifest, metal_version, limits)
    if fmt == "json":
        click.echo(json_text(data))
        return
    from . import cli_checks as checking

    headers, rows, raw = checking.readiness_rows(data)
    if fmt == "csv":
        # Raw picoseconds in CSV so spreadsheets can sum them.
        click.echo(csv_code().csv_text(headers, raw), nl=False)
        return
    click.echo(checking.readiness_text(data, headers, rows, terminal_width(wide)))


@main.command("doctor")
@click.argument("logdir", required=False, type=click.Path())
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
)
@click.option(
    "--no-import",
    is_flag=True,
    help="Do not import TensorFlow (faster; skips the 'does TensorFlow see a GPU' check).",
)
@wide_option
@pretty_option
@errors_to_exit
def doctor_cmd(logdir, fmt, no_import, wide):
    """Check Python, OS, TensorFlow, Keras and tensorflow-metal against the known-good pairs.

    Without LOGDIR: this installation. With LOGDIR: the environment each tb-metal manifest
    recorded (someone else's Mac). Exit status 1 when a set-up is broken.
    """
    from . import cli_checks as checking
    from . import doctor

    if logdir:
        rows = doctor.check_logdir(logdir)
        worst = max((r["verdict"]["exit_code"] for r in rows if r["verdict"]), default=0)
        if fmt == "json":
            click.echo(json_text({"logdir": logdir, "runs": rows}))
        else:
            click.echo(checking.doctor_logdir_text(rows, terminal_width(wide)))
        sys.exit(worst)
    env = doctor.installed_environment(import_tensorflow=not no_import)
    verdict = doctor.check_environment(env, startup_checks=True)
    if fmt == "json":
        click.echo(json_text(verdict))
    else:
        click.echo(checking.doctor_text(verdict, terminal_width(wide)))
    sys.exit(verdict["exit_code"])


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
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@wide_option
@pretty_option
@errors_to_exit
def compare_cmd(paths, step, host, labels, fmt, wide):
    """Compare per-layer time of two or more profiles (first = baseline), matched by layer path.

    Each PATH is a logdir, run folder, session folder or *.xplane.pb; a path holding several
    sessions means its newest one.
    """
    from . import compare as comparing
    from . import formatting_compare

    if len(paths) < 2:
        raise click.UsageError("compare needs two or more PATHs")
    if labels and len(labels) != len(paths):
        raise click.UsageError("give one --label per PATH, or none")
    payloads = [load(p, None, None, host).layers(step) for p in paths]
    data = comparing.compare(payloads, list(labels) or list(paths))
    width = terminal_width(wide)
    emit(
        fmt,
        data,
        lambda d: formatting_compare.compare_table(d, width),
        formatting_compare.compare_csv,
    )


if __name__ == "__main__":
    main()
