"""Fit text tables and notes to the terminal: shorten names in the middle, wrap, drop columns.

Every CLI table goes through `render`: with a width it shrinks the columns that may shrink,
then hides the least needed ones (and says which), so no line is wider than the terminal;
with width None (`--wide`) every column is shown at full width.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from dataclasses import dataclass

ELLIPSIS = "…"
GAP = "  "
# Columns with a drop rank from here up are extras: hidden before names are shortened.
EXTRA = 5


def terminal_width(wide: bool = False) -> int | None:
    """Columns to fit: None with --wide, else COLUMNS when set, else the terminal's width."""
    if wide:
        return None
    env = os.environ.get("COLUMNS", "")
    if env.strip().isdigit() and int(env) > 0:
        return int(env)
    return shutil.get_terminal_size((80, 24)).columns


def shorten_middle(text: str, width: int, head: float = 0.4) -> str:
    """Text cut in the middle to `width` characters, keeping its indent and more of the tail.

    The tail of an op or layer name is the part that identifies it (`.../conv1/Relu`), the
    head tells where it sits: both are kept, the middle goes.
    """
    if len(text) <= width:
        return text
    body = text.lstrip(" ")
    indent = text[: len(text) - len(body)][: max(width - 2, 0)]
    room = width - len(indent)
    if room <= 1:
        return (indent + body)[:width]
    keep = room - 1
    n = int(keep * head)
    return indent + body[:n] + ELLIPSIS + body[len(body) - (keep - n) :]


def wrap(text: str, width: int | None, indent: str = "", first: str = "") -> list[str]:
    """A note as lines no wider than width, later lines indented (one line when width is None)."""
    if width is None:
        return [first + text]
    return textwrap.wrap(
        text,
        max(width, len(indent) + 8),
        initial_indent=first,
        subsequent_indent=indent,
        break_on_hyphens=False,
    ) or [first.rstrip()]


def wrap_fields(fields: list[str], width: int | None, indent: str = "  ") -> list[str]:
    """`label value` fields on as few lines as fit, never split between a label and its value."""
    lines: list[str] = []
    for field in (f for f in fields if f):
        joined = f"{lines[-1]}{GAP}{field}" if lines else field
        if lines and (width is None or len(joined) <= width):
            lines[-1] = joined
        else:
            lines += wrap(field, width, indent + "  ", indent if lines else "")
    return lines


@dataclass
class Col:
    """One column: header, alignment, how far it may shrink, and when it may be hidden.

    `min`: the column may shrink to this width (cells shortened in the middle, keeping
    `head` of them from the start, or wrapped onto more lines at the separator `wrap`);
    None: never. `drop`: 0 never hidden; among the
    others the highest is hidden first when the table cannot fit otherwise.
    """

    header: str
    right: bool = False
    min: int | None = None
    wrap: str = ""  # wrap cells at this separator instead of shortening them ("": never)
    drop: int = 0
    head: float = 0.4  # share of a shortened cell kept from its start (the rest: its end)


def _natural(cols: list[Col], rows: list[list[str]]) -> list[int]:
    widths = [len(c.header) for c in cols]
    for r in rows:
        for i, cell in enumerate(r):
            widths[i] = max(widths[i], len(cell))
    return widths


def _shrink(cols: list[Col], widths: list[int], width: int) -> list[int]:
    """Narrow the shrinkable columns, widest first, until the table fits or none can shrink."""
    widths = list(widths)
    excess = sum(widths) + len(GAP) * (len(widths) - 1) - width
    while excess > 0:
        can = [i for i, c in enumerate(cols) if c.min is not None and widths[i] > c.min]
        if not can:
            break
        i = max(can, key=lambda k: (widths[k] - (cols[k].min or 0), -k))
        widths[i] -= 1
        excess -= 1
    return widths


def _cell_lines(col: Col, cell: str, w: int) -> list[str]:
    if len(cell) <= w:
        return [cell]
    if not col.wrap:
        return [shorten_middle(cell, w, col.head)]
    # Pack whole parts (words, or "GPU* 1.2 ms" lanes) per line; cut a part only if it
    # alone is wider than the column.
    lines: list[str] = []
    for part in cell.split(col.wrap):
        joined = lines[-1] + col.wrap + part if lines else part
        if lines and len(joined.rstrip()) <= w:
            lines[-1] = joined
        else:
            lines.append(part)
    return [shorten_middle(ln.rstrip(), w, col.head) for ln in lines]


def _choose(cols: list[Col], rows: list[list[str]], width: int) -> tuple[list[int], list[int]]:
    """(indices of the columns kept, their widths) for a table that should fit width."""
    keep = list(range(len(cols)))

    def widths_of(shrink: bool) -> list[int]:
        kept = [cols[i] for i in keep]
        natural = _natural(kept, [[r[i] for i in keep] for r in rows])
        return _shrink(kept, natural, width) if shrink else natural

    def fits(widths: list[int]) -> bool:
        return sum(widths) + len(GAP) * (len(widths) - 1) <= width

    def drop_one(least: int) -> bool:
        ranks = [i for i in keep if cols[i].drop >= least]
        if ranks:
            keep.remove(max(ranks, key=lambda i: (cols[i].drop, i)))
        return bool(ranks)

    # Empty columns and extras go before any name is shortened; the others only when
    # shrinking is not enough.
    for i in [i for i in keep if cols[i].drop and not any(r[i] for r in rows)]:
        if not fits(widths_of(False)):
            keep.remove(i)
    while not fits(widths_of(False)) and drop_one(EXTRA):
        pass
    while not fits(widths_of(True)) and drop_one(1):
        pass
    return keep, widths_of(True)


def render(
    cols: list[Col], rows: list[list[str]], width: int | None = None
) -> tuple[str, list[str]]:
    """The table as text no wider than width, and the headers of the columns it hid."""
    if width is None:
        keep, widths = list(range(len(cols))), _natural(cols, rows)
    else:
        keep, widths = _choose(cols, rows, width)
    hidden = [c.header for i, c in enumerate(cols) if i not in keep]
    shown = [cols[i] for i in keep]

    def line(cells: list[str]) -> str:
        out = GAP.join(
            c.rjust(widths[k]) if shown[k].right else c.ljust(widths[k])
            for k, c in enumerate(cells)
        ).rstrip()
        if width is not None and len(out) > width:
            out = out[: max(width - 1, 0)] + ELLIPSIS
        return out

    heads = [h.header if len(h.header) <= widths[k] else h.header[: max(widths[k] - 1, 0)]
             + ELLIPSIS for k, h in enumerate(shown)]  # fmt: skip
    lines = [line(heads), line(["-" * w for w in widths])]
    for r in rows:
        cells = [_cell_lines(shown[k], r[i], widths[k]) for k, i in enumerate(keep)]
        for j in range(max((len(c) for c in cells), default=0)):
            lines.append(line([c[j] if j < len(c) else "" for c in cells]))
    return "\n".join(lines), hidden


def hidden_note(
    hidden: list[str], width: int | None, how: str = "--wide shows every column"
) -> list[str]:
    """The line saying which columns were hidden to fit, wrapped (nothing when none were)."""
    if not hidden:
        return []
    text = f"(hidden to fit {width} columns: {', '.join(h.strip(' |') for h in hidden)}; {how})"
    return wrap(text, width)
