"""Read one `.xplane.pb` plane by plane and line by line, so memory stays near the file size.

Parsing a whole XSpace at once costs several times the file in Python objects. Instead we
walk the protobuf wire format of the two outer messages ourselves (only their field
headers), parse each plane's metadata in one go, and hand out its lines one parsed
`XLine` at a time.
"""

from __future__ import annotations

import functools
import mmap
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.message import DecodeError

from .errors import TraceError
from .xplane import XLine, XLineLite, XPlane

_SPACE_PLANES = 1
_PLANE_LINES = 3
_LINE_NAME = 2


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(buf: memoryview, pos: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """Yield (field number, wire type, value start, value end) for each field in buf[pos:end]."""
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wtype = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if wtype == 0:
            start = pos
            _, pos = _varint(buf, pos, end)
        elif wtype == 2:
            length, start = _varint(buf, pos, end)
            pos = start + length
            if pos > end:
                raise ValueError("length-delimited field runs past the end (truncated file?)")
        elif wtype == 1:
            start, pos = pos, pos + 8
        elif wtype == 5:
            start, pos = pos, pos + 4
        else:
            raise ValueError(f"unsupported wire type {wtype}")
        if pos > end:
            raise ValueError("field runs past the end (truncated file?)")
        yield number, wtype, start, pos


@dataclass
class PlaneData:
    """One plane: its name, metadata and stats parsed; its lines parsed on demand."""

    path: str
    buf: memoryview = field(repr=False)
    header: object = field(repr=False)  # an XPlane holding everything but the lines
    line_spans: list[tuple[int, int]] = field(repr=False)
    release_pages: Callable[[int, int], None] | None = field(default=None, repr=False)

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
        for number, wtype, s, e in _fields(self.buf, start, end):
            if number == _LINE_NAME and wtype == 2:
                return bytes(self.buf[s:e]).decode("utf-8", "replace")
        return ""

    def line(self, index: int):
        """Parse and return line `index` as an XLine."""
        return self._parse(XLine, index)

    def line_lite(self, index: int):
        """Parse line `index` as an XLineLite: event stats left as serialized bytes."""
        return self._parse(XLineLite, index)

    def _parse(self, cls, index: int):
        start, end = self.line_spans[index]
        try:
            return cls.FromString(self.buf[start:end])
        except DecodeError as e:
            raise TraceError(self.path, f"corrupt line in plane {self.name!r}: {e}") from e
        finally:
            self.release(start, end)

    def release(self, start: int, end: int) -> None:
        """Drop the file pages of a parsed range from memory (they are re-read if needed)."""
        if self.release_pages is not None:
            self.release_pages(start, end)


class TraceFile:
    """An open trace file; use as a context manager so the mapping is released."""

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        try:
            size = os.path.getsize(self.path)
            with open(self.path, "rb") as f:
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else None
        except OSError as e:
            raise TraceError(self.path, f"cannot read trace file ({e.strerror or e})") from e
        self.size = size
        self.buf = memoryview(self._map) if self._map is not None else memoryview(b"")

    def close(self) -> None:
        """Release the memory mapping."""
        try:
            self.buf.release()
            if self._map is not None:
                self._map.close()
        except BufferError:
            # A caller still holds a parsed slice; the mapping goes when it is collected.
            pass

    def __enter__(self) -> TraceFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def planes(self) -> list[PlaneData]:
        """Split the file into planes and parse each plane's metadata (not its lines)."""
        if self.size == 0:
            raise TraceError(self.path, "empty file (0 bytes): the profiler wrote nothing")
        out = []
        try:
            for number, wtype, start, end in _fields(self.buf, 0, len(self.buf)):
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
        rest = bytearray()
        for number, wtype, s, e in _fields(self.buf, start, end):
            if number == _PLANE_LINES and wtype == 2:
                spans.append((s, e))
            else:
                # Keep the field (key + value) bytes: re-find the key bytes before `s`.
                rest += _encode_key(number, wtype)
                if wtype == 2:
                    rest += _encode_varint(e - s)
                rest += self.buf[s:e]
        header = XPlane.FromString(bytes(rest))
        return PlaneData(self.path, self.buf, header, spans, self._release)

    def _release(self, start: int, end: int) -> None:
        # A read-only file mapping's pages count towards our resident memory once read;
        # dropping them after each line keeps the peak near one line, not the whole file.
        if self._map is None or not hasattr(mmap, "MADV_DONTNEED"):
            return
        page = mmap.PAGESIZE
        lo = (start // page) * page
        try:
            self._map.madvise(mmap.MADV_DONTNEED, lo, end - lo)
        except (OSError, ValueError):
            pass


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _encode_key(number: int, wtype: int) -> bytes:
    return _encode_varint((number << 3) | wtype)


def open_trace(path: str | os.PathLike | Path) -> TraceFile:
    """Open a trace file for plane-by-plane reading."""
    return TraceFile(path)
