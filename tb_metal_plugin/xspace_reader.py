"""Read one `.xplane.pb` plane by plane and line by line, so memory stays near the file size.

Parsing a whole XSpace at once costs several times the file in Python objects. Instead we
walk the protobuf wire format of the two outer messages ourselves (only their field
headers), parse each plane's metadata in one go, and hand out its lines one parsed
`XLine` at a time. The file is read with bounded `pread`s, never memory-mapped: a file
truncated under a map faults the whole process (SIGBUS), a short read is only a TraceError.
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.message import DecodeError

from .errors import TraceError
from .validate import Checks
from .xplane import XLine, XLineLite, XPlane

_SPACE_PLANES = 1
_PLANE_LINES = 3
_LINE_ID = 1
_LINE_NAME = 2
# Field headers are read through a window of 512 B to 256 KB; one read is at most _MAX_READ.
_WINDOW_MIN = 1 << 9
_WINDOW_MAX = 1 << 18
_MAX_READ = 1 << 24


class _File:
    """A trace file read with bounded `pread`s: a file that shrinks or is rewritten under us
    gives a short read (a TraceError naming the file), never a fault as a memory map would."""

    def __init__(self, path: str):
        self.path = path
        try:
            # O_NONBLOCK: a FIFO put where a trace was expected must not block the open.
            flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
            self.fd = os.open(path, flags)
        except OSError as e:
            raise TraceError(path, f"cannot read trace file ({e.strerror or e})") from e
        try:
            st = os.fstat(self.fd)
        except OSError as e:
            os.close(self.fd)
            raise TraceError(path, f"cannot read trace file ({e.strerror or e})") from e
        if not stat.S_ISREG(st.st_mode):
            os.close(self.fd)
            raise TraceError(path, "not a regular file")
        self.size = st.st_size
        self.identity = _identity(st)

    def read(self, start: int, end: int) -> bytes:
        """Bytes start..end of the file; a TraceError when the file no longer holds them."""
        parts = []
        pos = start
        while pos < end:
            try:
                chunk = os.pread(self.fd, min(end - pos, _MAX_READ), pos)
            except OSError as e:
                raise TraceError(self.path, f"read failed at byte {pos} ({e.strerror or e})") from e
            if not chunk:
                raise TraceError(
                    self.path,
                    f"file shrank while being read (wanted bytes {start}..{end} of the "
                    f"{self.size} it had): it is being rewritten, load it again when done",
                )
            parts.append(chunk)
            pos += len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def changed(self) -> str | None:
        """How the file changed since it was opened (size, time, inode), or None."""
        try:
            st = os.fstat(self.fd)
        except OSError as e:
            return f"cannot stat it any more ({e.strerror or e})"
        if _identity(st) != self.identity:
            return f"it changed while being read ({self.size} -> {st.st_size} bytes)"
        return None

    def close(self) -> None:
        """Close the file descriptor."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _identity(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ino)


class _Walker:
    """Walks the field headers of a message stored in the file, reading a window at a time."""

    def __init__(self, f: _File, start: int, end: int):
        self.f = f
        self.end = end
        self.base = start
        self.data = b""
        self.window = _WINDOW_MIN

    def _fill(self, pos: int) -> None:
        # Dense runs of small fields (metadata) grow the window; a jump over a big field
        # (a line) shrinks it, so skipping lines never reads them.
        if pos - (self.base + len(self.data)) < 16:
            self.window = min(2 * self.window, _WINDOW_MAX)
        else:
            self.window = _WINDOW_MIN
        self.base = pos
        self.data = self.f.read(pos, min(self.end, pos + self.window))

    def varint(self, pos: int) -> tuple[int, int]:
        """Decode the varint at file offset pos: (value, offset after it)."""
        i = pos - self.base
        if i < 0 or i + 10 > len(self.data) and self.base + len(self.data) < self.end:
            self._fill(pos)
            i = 0
        data = self.data
        result = shift = 0
        while True:
            if i >= len(data):
                raise ValueError("truncated varint")
            b = data[i]
            i += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result, self.base + i
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")

    def fields(self) -> Iterator[tuple[int, int, int, int]]:
        """Yield (field number, wire type, value start, value end) of each field."""
        pos, end = self.base, self.end
        while pos < end:
            key, pos = self.varint(pos)
            number, wtype = key >> 3, key & 7
            if number == 0:
                raise ValueError("field number 0")
            if wtype == 0:
                start = pos
                _, pos = self.varint(pos)
            elif wtype == 2:
                length, start = self.varint(pos)
                pos = start + length
            elif wtype == 1:
                start, pos = pos, pos + 8
            elif wtype == 5:
                start, pos = pos, pos + 4
            else:
                raise ValueError(f"unsupported wire type {wtype}")
            if pos > end:
                raise ValueError("field runs past the end (truncated file?)")
            yield number, wtype, start, pos


def stat_value(stat, names: dict[int, str]) -> object:
    """An XStat's value: the referenced stat name for `ref_value`, bytes as hex, else as is."""
    kind = stat.WhichOneof("value")
    if kind == "ref_value":
        return names.get(stat.ref_value, "")
    if kind == "bytes_value":
        return stat.bytes_value.hex()
    return getattr(stat, kind) if kind else None


@dataclass
class PlaneData:
    """One plane: its name, metadata and stats parsed; its lines parsed on demand."""

    path: str
    file: _File = field(repr=False)
    header: object = field(repr=False)  # an XPlane holding everything but the lines
    line_spans: list[tuple[int, int]] = field(repr=False)
    checks: Checks = field(default_factory=Checks, repr=False)
    # The file spans whose bytes, joined, are what `header` was parsed from.
    header_spans: list[tuple[int, int]] = field(default_factory=list, repr=False)

    def header_bytes(self) -> bytes:
        """The serialized header (the plane without its lines), read again from the file."""
        return b"".join(self.file.read(s, e) for s, e in self.header_spans)

    @property
    def name(self) -> str:
        """The plane's name, such as `/host:CPU` or `/device:GPU:0`."""
        return self.header.name

    @functools.cached_property
    def stat_names(self) -> dict[int, str]:
        """Stat metadata id → stat name."""
        return {k: v.name for k, v in self.header.stat_metadata.items()}

    @property
    def bytes(self) -> int:
        """Size of the plane's lines in the file."""
        return sum(e - s for s, e in self.line_spans)

    def line_name(self, index: int) -> str:
        """The name of line `index` without parsing its events."""
        start, end = self.line_spans[index]
        try:
            for number, wtype, s, e in _Walker(self.file, start, end).fields():
                if number == _LINE_NAME and wtype == 2:
                    return self.file.read(s, e).decode("utf-8", "replace")
        except ValueError as e:
            raise TraceError(self.path, f"corrupt line in plane {self.name!r}: {e}") from e
        return ""

    def line_id(self, index: int) -> int:
        """Line `index`'s id (XLine field 1, an int64) without parsing its events."""
        start, end = self.line_spans[index]
        walker = _Walker(self.file, start, end)
        try:
            for number, wtype, s, _e in walker.fields():
                if number == _LINE_ID and wtype == 0:
                    value, _ = walker.varint(s)
                    return value - (1 << 64) if value >= 1 << 63 else value
                if number > _LINE_ID:
                    break  # fields are written in number order: no id field means id 0
        except ValueError as e:
            raise TraceError(self.path, f"corrupt line in plane {self.name!r}: {e}") from e
        return 0

    def line(self, index: int):
        """Parse and return line `index` as an XLine."""
        return self._parse(XLine, index)

    def line_lite(self, index: int):
        """Parse line `index` as an XLineLite: event stats left as serialized bytes."""
        return self._parse(XLineLite, index)

    def _parse(self, cls, index: int):
        start, end = self.line_spans[index]
        data = self.file.read(start, end)
        try:
            return cls.FromString(data)
        except DecodeError as e:
            raise TraceError(self.path, f"corrupt line in plane {self.name!r}: {e}") from e


class TraceFile:
    """An open trace file; use as a context manager so the file is closed (and a file that
    changed while it was read is reported rather than half-read figures returned)."""

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        self._file = _File(self.path)
        self.size = self._file.size
        self.checks = Checks(self.path)

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def __enter__(self) -> TraceFile:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                why = self._file.changed()
                if why is not None:
                    raise TraceError(
                        self.path, f"{why}; it is being written: load it again when done"
                    )
        finally:
            self.close()

    def planes(self) -> list[PlaneData]:
        """Split the file into planes and parse each plane's metadata (not its lines)."""
        if self.size == 0:
            raise TraceError(self.path, "empty file (0 bytes): the profiler wrote nothing")
        out = []
        try:
            for number, wtype, start, end in _Walker(self._file, 0, self.size).fields():
                if number == _SPACE_PLANES and wtype == 2:
                    out.append(self._plane(start, end))
                elif number > 4:
                    raise ValueError(f"unexpected field {number} for an XSpace")
        except (ValueError, DecodeError) as e:
            raise TraceError(
                self.path,
                f"not a readable XSpace trace ({e}); the file may be truncated, "
                "half-written or not a profiler trace",
            ) from e
        if not out or not any(p.name for p in out):
            raise TraceError(self.path, "no profiler planes in this file: not an XSpace trace")
        return out

    def _plane(self, start: int, end: int) -> PlaneData:
        spans = []
        # Every field but the lines, as runs of the file's own bytes (key, length, value):
        # the metadata maps are thousands of small fields in a row, read in one go.
        runs: list[tuple[int, int]] = []
        key_start = start
        tried = False
        for number, wtype, s, e in _Walker(self._file, start, end).fields():
            if number == _PLANE_LINES and wtype == 2:
                spans.append((s, e))
                key_start = e
                continue
            if spans and not tried and (end - key_start) * 4 <= key_start - start:
                # The profiler writes the lines, then the metadata maps (thousands of small
                # fields, small next to the lines): when the rest holds no more lines, parse
                # it whole, unwalked. (A rest as big as a quarter of the lines is walked: a
                # parse that finds lines there after all would cost their size in objects.)
                tried = True
                header = self._header_with_rest(runs, key_start, end)
                if header is not None:
                    runs.append((key_start, end))
                    return PlaneData(self.path, self._file, header, spans, self.checks, runs)
            if runs and runs[-1][1] == key_start:
                runs[-1] = (runs[-1][0], e)
            else:
                runs.append((key_start, e))
            key_start = e
        header = XPlane.FromString(b"".join(self._file.read(s, e) for s, e in runs))
        return PlaneData(self.path, self._file, header, spans, self.checks, runs)

    def _header_with_rest(self, runs: list[tuple[int, int]], start: int, end: int):
        """The plane's fields so far plus all of start..end, as one parse of their bytes would
        give; None when the rest holds a line or does not parse (the field walk then reads
        it, and words any error)."""
        try:
            header = XPlane.FromString(b"".join(self._file.read(s, e) for s, e in runs))
            header.MergeFromString(self._file.read(start, end))
        except DecodeError:
            return None
        return None if len(header.lines) else header


def open_trace(path: str | os.PathLike | Path) -> TraceFile:
    """Open a trace file for plane-by-plane reading."""
    return TraceFile(path)
