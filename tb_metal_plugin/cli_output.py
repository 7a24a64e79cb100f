"""How the CLI prints: JSON (compact in pieces, or indented), tables and CSV, progress.

Kept apart from `cli.py` (the commands) so that printing JSON imports no table code.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import time

import click

from .jsonout import json_chunks, json_chunks_around, to_json

# Output formats of the commands that print payloads.
FORMATS = ("table", "json", "csv")


class StderrProgress:
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


def _remember_pretty(ctx: click.Context, _param, value: bool) -> bool:
    ctx.meta["tb_metal_pretty"] = value
    return value


pretty_option = click.option(
    "--pretty",
    is_flag=True,
    expose_value=False,
    callback=_remember_pretty,
    help="Indented JSON (default: compact, or indented when printing to a terminal).",
)


def pretty_json() -> bool:
    """True when JSON is printed indented: --pretty, or stdout is a terminal."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.meta.get("tb_metal_pretty")) or sys.stdout.isatty()


def json_text(data: dict) -> str:
    """The payload as JSON: indented for --pretty or a terminal, compact otherwise."""
    return to_json(data, pretty_json())


def echo_json(data: dict) -> None:
    """Print json_text(data) and a newline; compact JSON goes out in pieces (jsonout)."""
    if pretty_json():
        click.echo(json_text(data))
        return
    for piece in json_chunks(data):
        click.echo(piece, nl=False)
    click.echo("")


def echo_json_pieces(head: dict, key: str, pieces) -> None:
    """Print the compact JSON of `{**head, key: [...]}`, its items coming already encoded
    (jsonout.json_chunks_around's pieces), each piece as it comes."""
    for piece in json_chunks_around(head, key, pieces):
        click.echo(piece, nl=False)
    click.echo("")


def table_code():
    """The formatting module (tables, CSV), imported when a table or CSV is printed."""
    from . import formatting

    return formatting


def csv_code():
    """The CSV module, imported when CSV is printed."""
    from . import formatting_csv

    return formatting_csv


def emit(fmt: str, data: dict, table, to_csv) -> None:
    """Print a payload as JSON, CSV or a terminal table (the same data in each)."""
    if fmt == "json":
        echo_json(data)
    elif fmt == "csv":
        click.echo(to_csv(data), nl=False)
    else:
        click.echo(table(data))


@contextlib.contextmanager
def no_cycle_collection():
    """No cyclic garbage collection while a command runs.

    A load builds tens of thousands of long-lived objects (per-op records, attributions,
    rows) and almost no reference cycles; the collector would walk them again and again
    (10-15% of a small trace's load) to free nothing. Reference counting still frees
    everything else at once; a command is one short process.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
