"""Serialised route answers, kept per payload so a repeated request costs a dictionary look-up.

TensorBoard's ``http_util.Respond`` passes a dict through ``json_util.Cleanse`` and
``json.dumps`` and gzips it again on every call (0.2 s for the ops of a 60 MB trace). A
payload here is cleansed and serialised once, gzipped once on the first request that
accepts gzip, and the bytes are handed to ``Respond`` as already encoded.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
from collections import OrderedDict
from typing import Any

from tensorboard.backend import http_util, json_util

JSON = "application/json"
_GZIP = re.compile(r"\bgzip\b")


def encode(payload: Any) -> bytes:
    """ASCII JSON as ``Respond`` would send it; ``Cleanse`` (slow) only when it changes it.

    Cleanse turns NaN and infinities into strings and decodes bytes; a payload without any
    serialises as it is (0.06 s instead of 0.3 s for the ops of a 60 MB trace).
    """
    try:
        text = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    except (ValueError, TypeError):
        text = json.dumps(json_util.Cleanse(payload), separators=(",", ":"))
    return text.encode("ascii")


class Encoded:
    """One payload as JSON bytes (what ``Respond`` would send) and, once asked, gzipped."""

    __slots__ = ("payload", "raw", "_gz", "_lock")

    def __init__(self, payload: Any, raw: bytes | None = None):
        self.payload = payload
        self.raw = raw if raw is not None else encode(payload)
        self._gz: bytes | None = None
        self._lock = threading.Lock()

    def gzipped(self) -> bytes:
        """The JSON gzipped (level 3, mtime 0: as deterministic as TensorBoard's own)."""
        with self._lock:
            if self._gz is None:
                self._gz = gzip.compress(self.raw, compresslevel=3, mtime=0)
            return self._gz

    def respond(self, request, code: int = 200):
        """A werkzeug response with these bytes, gzipped when the client accepts gzip."""
        if _GZIP.search(request.headers.get("Accept-Encoding", "")):
            return http_util.Respond(request, self.gzipped(), JSON, code, content_encoding="gzip")
        # Not textual-with-gzip: Respond sends the bytes as they are.
        return http_util.Respond(request, self.raw, JSON, code)


class EncodedCache:
    """A bounded LRU of Encoded answers (the newest ``max_entries`` and ``max_bytes``)."""

    def __init__(self, max_entries: int = 256, max_bytes: int = 256 << 20):
        self._items: OrderedDict[Any, Encoded] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0

    def get(self, key: Any) -> Encoded | None:
        """The answer stored under ``key``, if any (made the most recent)."""
        with self._lock:
            enc = self._items.get(key)
            if enc is not None:
                self._items.move_to_end(key)
            return enc

    def put(self, key: Any, payload: Any, raw: bytes | None = None) -> Encoded:
        """Serialise ``payload`` once (unless ``raw`` is its JSON) and keep it under ``key``."""
        enc = Encoded(payload, raw)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= len(old.raw)
            self._items[key] = enc
            self._bytes += len(enc.raw)
            while len(self._items) > 1 and (
                len(self._items) > self._max or self._bytes > self._max_bytes
            ):
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped.raw)
        return enc

    def drop(self, predicate) -> None:
        """Forget every answer whose key satisfies ``predicate`` (an evicted profile's)."""
        with self._lock:
            for key in [k for k in self._items if predicate(k)]:
                self._bytes -= len(self._items.pop(key).raw)


def answer_of(disk, job, key: tuple, make, disk_key: tuple | None) -> Encoded:
    """The serialised answer ``key`` of a loaded profile (``job``): read from the disk
    cache under ``disk_key`` (step, kind, params) when an intact entry is there, else made
    once by ``make`` and written there; kept with the job either way."""
    enc = job.answers.get(key)
    if enc is not None:
        return enc
    with job.payload_lock:
        enc = job.answers.get(key)
        if enc is None and disk_key is not None:
            # The entry is keyed by the file's identity and the code's fingerprint: it is
            # what `make` would compute, without the seconds a big trace's view costs
            # (after a restart the profile may finish loading before every view was asked).
            step, kind, params = disk_key
            found = disk.get_with_json(job.identity, step, kind, params)
            if found is not None:
                enc = job.answers.put(key, *found)
        if enc is None:
            payload = make()
            enc = job.answers.put(key, payload)
            if disk_key is not None:
                step, kind, params = disk_key
                disk.put(job.identity, step, payload, kind, params)
    return enc


def from_disk(disk, job, key: tuple, disk_key: tuple) -> Encoded | None:
    """While a profile reloads: its payload as an earlier TensorBoard computed it, marked
    ``"cached": true``; None when the disk cache holds no intact entry."""
    enc = job.answers.get(("disk", key))
    if enc is None:
        step, kind, params = disk_key
        found = disk.get_with_json(job.identity, step, kind, params)
        if found is None:
            return None
        cached, body = found
        cached["cached"] = True
        # The stored bytes are this payload's compact JSON object: add the flag in place
        # rather than serialise megabytes again.
        raw = body[:-1] + (b',"cached":true}' if len(body) > 2 else b'"cached":true}')
        enc = job.answers.put(("disk", key), cached, raw)
    return enc
