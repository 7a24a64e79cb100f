"""The step graph a stock TensorBoard run writes beside its profile: which ops feed which.

Keras's `TensorBoard(profile_batch=...)` traces the graph while it profiles
(`tf.summary.trace_on(graph=True)`) and writes the partition graphs of the functions that
ran into the run's event file, as a `graph_run_metadata_graph` summary. Their node names
are the trace's op names, and each node lists its inputs: what names cannot say (which
gradients a tape's `AddN` sums) can be read there. Read without TensorFlow: the TFRecord
framing here, the messages with tensorboard's compat protos. A damaged or missing event
file only means the graph is not used; it never fails a load.
"""

from __future__ import annotations

import os
import stat
import struct
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# `trace_export` writes the graphs alone (`..._graph`); with the profiler also on (older
# tf.keras callbacks), the whole run metadata under the shorter name: both hold them.
PLUGINS = frozenset({"graph_run_metadata_graph", "graph_run_metadata"})
PLUGIN = b"graph_run_metadata"  # in both names: what a record is searched for
EVENTS_PREFIX = "events.out.tfevents."
# Event files also hold every scalar of the run; past this size one is not scanned (a
# graph written at the start of a very long run is lost, not a slow load).
MAX_EVENT_FILE = 1 << 30
_HEADER = struct.Struct("<Q")
_CRC = struct.Struct("<I")
# graph_spans' memory: (path, inode, device) -> (bytes scanned, graph record spans).
_SCANNED: dict[tuple[str, int, int], tuple[int, tuple[tuple[int, int], ...]]] = {}
_SCANNED_LOCK = threading.Lock()
_MESSAGES: tuple | None = None
# An Event holding a graph is far larger than this (a scalar's is under 100 bytes).
_SMALLEST_GRAPH = 256  # TFRecord: length, crc32c(length), data, crc32c(data)


def run_dir_of(xplane_path: str | os.PathLike) -> Path | None:
    """`<run>` of `<run>/plugins/profile/<session>/<host>.xplane.pb` (None for other paths)."""
    parts = Path(xplane_path).parts
    if len(parts) < 5 or parts[-4] != "plugins" or parts[-3] != "profile":
        return None
    return Path(*parts[:-4])


def event_files(xplane_path: str | os.PathLike) -> list[Path]:
    """The run's event files beside a standard session folder (regular files, no links).

    Keras 3 writes the profile and the events into the same `train` folder; tf_keras
    (Keras 2) writes the profile under the log dir itself and the events under its
    `train` folder: there, that folder's files.
    """
    run = run_dir_of(xplane_path)
    if run is None:
        return []
    return _events_in(run) or _events_in(run / "train")


def _events_in(folder: Path) -> list[Path]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return []
    return [
        Path(e.path)
        for e in entries
        if e.name.startswith(EVENTS_PREFIX) and e.is_file(follow_symlinks=False)
    ]


def _crc_check():
    """TFRecord's masked CRC32C of some bytes, where a native crc32c is installed (else
    None: pure Python would cost seconds on a graph record, and framing is still checked)."""
    try:
        import google_crc32c
    except ImportError:
        return None
    if getattr(google_crc32c, "implementation", "") != "c":
        return None

    def masked(data: bytes) -> int:
        crc = google_crc32c.value(data)
        return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    return masked


def _open(path: Path):
    """The file opened for reading (no link followed, no FIFO waited on), or None."""
    try:
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        f = os.fdopen(os.open(path, flags), "rb")
    except OSError:
        return None
    st = os.fstat(f.fileno())
    if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_EVENT_FILE:
        f.close()
        return None
    return f


def _scan(f, pos: int, size: int, spans: list[tuple[int, int]]) -> int:
    """Add the (offset, length) of each graph record from `pos` on; return where the
    scan stopped: the end, or the start of a record cut short (still being written) or
    of a length that cannot be a record (damage)."""
    f.seek(pos)
    while pos + 12 <= size:
        head = f.read(12)
        if len(head) < 12:
            break
        (length,) = _HEADER.unpack_from(head)
        if pos + 16 + length > size:
            break
        if length < _SMALLEST_GRAPH:  # a scalar: skipped unread
            f.seek(length + 4, os.SEEK_CUR)
        else:
            data = f.read(length + 4)
            if len(data) < length + 4:
                break
            if PLUGIN in data:
                spans.append((pos + 12, length))
        pos += 16 + length
    return pos


def graph_spans(path: Path) -> tuple[tuple[int, int], ...]:
    """(offset, length) of each graph record in one event file.

    Event files only grow (every epoch adds scalars): each file is scanned once and then
    only past where the last scan stopped; one that shrank or was replaced is scanned
    again. So the spans, unlike the file's size, change only when a graph is added.
    """
    f = _open(path)
    if f is None:
        return ()
    with f:
        return _spans(f, path)


def _spans(f, path: Path) -> tuple[tuple[int, int], ...]:
    """`graph_spans` of a file opened with `_open`."""
    try:
        st = os.fstat(f.fileno())
        key = (str(path), st.st_ino, st.st_dev)
        with _SCANNED_LOCK:
            done, spans = _SCANNED.get(key, (0, ()))
        if done > st.st_size:
            done, spans = 0, ()
        if done < st.st_size:
            found = list(spans)
            done = _scan(f, done, st.st_size, found)
            spans = tuple(found)
            with _SCANNED_LOCK:
                _SCANNED[key] = (done, spans)
        return spans
    except (OSError, ValueError):
        return ()


def graph_records(path: Path, damaged: list[str] | None = None) -> Iterable[bytes]:
    """The raw Event records of one file that name the run-metadata graph plugin.

    A record whose checksum is wrong is left out and named in `damaged`. Plain reads, not
    a mapping: a file cut shorter while it is read ends the reading, not the process.
    """
    masked = _crc_check()
    f = _open(path)
    if f is None:
        return
    with f:
        for offset, length in _spans(f, path):
            try:
                f.seek(offset)
                data = f.read(length + 4)
            except (OSError, ValueError):
                return
            if len(data) < length + 4:
                return
            if masked is not None and masked(data[:length]) != _CRC.unpack_from(data, length)[0]:
                if damaged is not None:
                    damaged.append(f"{path.name}: a graph record at byte {offset - 12}")
                continue
            yield data[:length]


class StepGraph:
    """The executed nodes of one exported run-metadata graph: op type and data inputs."""

    def __init__(self, run_metadata: Any, wall_time: float = 0.0):
        self.wall_time = wall_time
        graphs = [g for fg in run_metadata.function_graphs for g in fg.partition_graphs]
        self._nodes: dict[str, Any] = {}
        self._consumers: dict[str, list[str]] | None = None
        # Functions inline their callees under the same names (`StatefulPartitionedCall/...`
        # in the train step and in an evaluation step): the biggest graph, the train
        # step's, keeps a shared name.
        graphs.sort(key=lambda g: -len(g.node))
        for graph in graphs or run_metadata.partition_graphs:
            for node in graph.node:
                self._nodes.setdefault(node.name, node)

    def __contains__(self, name: str) -> bool:
        return name in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def op(self, name: str) -> str | None:
        """The node's op type (None for a name the graph does not hold)."""
        node = self._nodes.get(name)
        return node.op if node is not None else None

    def dtype(self, name: str, keys: tuple[str, ...] = ("T", "dtype")) -> int | None:
        """The node's first attribute of `keys` (`T`, `dtype`; a Cast's `DstT`), a
        tensorflow DataType number, if any."""
        node = self._nodes.get(name)
        if node is None:
            return None
        for key in keys:
            if key in node.attr:
                return node.attr[key].type
        return None

    def calls(self) -> list[str]:
        """The nodes that call a function the runtime did not inline (`*PartitionedCall`)."""
        return [n for n, node in self._nodes.items() if node.op.endswith("PartitionedCall")]

    def called_function(self, name: str) -> str | None:
        """The name of the function a call node (`*PartitionedCall`) runs, if it is one."""
        node = self._nodes.get(name)
        if node is None or "f" not in node.attr:
            return None
        return node.attr["f"].func.name or None

    def consumers(self, name: str) -> list[str]:
        """The nodes that read one of `name`'s outputs (control edges left out)."""
        if self._consumers is None:
            self._consumers = {}
            for node_name in self._nodes:
                for i in self.inputs(node_name) or ():
                    self._consumers.setdefault(i, []).append(node_name)
        return self._consumers.get(name, [])

    def inputs(self, name: str) -> list[str] | None:
        """The node names feeding `name`'s data inputs (control inputs left out)."""
        node = self._nodes.get(name)
        if node is None:
            return None
        return [i.partition(":")[0] for i in node.input if not i.startswith("^")]


def _messages():
    """(Event, RunMetadata) classes that parse only the fields read here.

    The exported run metadata also holds each function's graph before and after
    optimization (twice the partition graphs' size): declared with only the fields used,
    protobuf skips the rest without building them (about half the parse time).
    """
    global _MESSAGES
    if _MESSAGES is None:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
        from tensorboard.compat.proto import graph_pb2

        f = descriptor_pb2.FileDescriptorProto(
            name="tb_metal/run_graph_fields.proto", package="tb_metal_run_graph", syntax="proto3"
        )
        f.dependency.append(graph_pb2.DESCRIPTOR.name)
        rep, opt = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED, 1
        msg, byt, dbl = 11, 12, 1  # TYPE_MESSAGE, TYPE_BYTES, TYPE_DOUBLE
        graph = ".tensorboard.GraphDef"
        own = ".tb_metal_run_graph."
        for name, fields in (
            ("PluginData", [("plugin_name", 1, opt, 9, None)]),  # 9: TYPE_STRING
            ("Metadata", [("plugin_data", 1, opt, msg, own + "PluginData")]),
            ("Tensor", [("string_val", 8, rep, byt, None)]),
            (
                "Value",
                [
                    ("tensor", 8, opt, msg, own + "Tensor"),
                    ("metadata", 9, opt, msg, own + "Metadata"),
                ],
            ),
            ("Summary", [("value", 1, rep, msg, own + "Value")]),
            (
                "Event",
                [("wall_time", 1, opt, dbl, None), ("summary", 5, opt, msg, own + "Summary")],
            ),
            ("FunctionGraphs", [("partition_graphs", 1, rep, msg, graph)]),
            (
                "RunMetadata",
                [
                    ("partition_graphs", 3, rep, msg, graph),
                    ("function_graphs", 4, rep, msg, own + "FunctionGraphs"),
                ],
            ),
        ):
            m = f.message_type.add(name=name)
            for fname, number, label, ftype, type_name in fields:
                field = m.field.add(name=fname, number=number, label=label, type=ftype)
                if type_name:
                    field.type_name = type_name
        pool = descriptor_pool.Default()  # where importing graph_pb2 put GraphDef
        try:
            pool.FindFileByName(f.name)
        except KeyError:
            pool.Add(f)
        _MESSAGES = tuple(
            message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tb_metal_run_graph.{n}"))
            for n in ("Event", "RunMetadata")
        )
    return _MESSAGES


def _graphs_in(path: Path, damaged: list[str]) -> Iterable[StepGraph]:
    from google.protobuf.message import DecodeError

    event_cls, run_metadata_cls = _messages()
    for raw in graph_records(path, damaged):
        try:
            event = event_cls.FromString(raw)
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name not in PLUGINS:
                    continue
                for blob in value.tensor.string_val[:1]:
                    yield StepGraph(run_metadata_cls.FromString(blob), event.wall_time)
        except (DecodeError, RecursionError, ValueError):
            damaged.append(f"{path.name}: a graph summary that does not parse")


def graph_ops(ops: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The trace's ops a step graph can hold (name -> type): those inside a function.

    Ops run eagerly (one op per call, no scope) are in no exported graph.
    """
    return {name: op_type for name, op_type in ops if "/" in name}


def step_graph_for(
    xplane_path: str | os.PathLike, want: dict[str, str]
) -> tuple[StepGraph | None, list[str]]:
    """The run's exported graph that ran the ops in `want` (`graph_ops`), and warnings.

    Several profiles of one run each export a graph: the one holding most of `want` with
    the same op types wins; among equals (the same model fitted twice), the one exported
    closest in time to the trace, which Keras writes right after it. None when no graph
    holds at least half.
    """
    if not want:
        return None, []
    try:
        written = os.stat(xplane_path).st_mtime
    except OSError:
        written = 0.0
    best, best_key = None, (0, 0.0)
    damaged: list[str] = []
    for path in event_files(xplane_path):
        for graph in _graphs_in(path, damaged):
            hits = sum(1 for name, t in want.items() if graph.op(name) == t)
            key = (hits, -abs(graph.wall_time - written))
            if hits and (best is None or key > best_key):
                best, best_key = graph, key
    best_hits = best_key[0]
    if best is None:
        if not damaged:
            return None, []
        return None, [
            f"the run's step graph is damaged ({'; '.join(damaged[:3])}): attribution reads "
            "op names and neighbours only"
        ]
    if best_hits * 2 < len(want):
        return None, [
            f"the run's event file holds a step graph, but not the one of this trace "
            f"({best_hits} of {len(want)} of its ops found): attribution reads op names "
            "and neighbours only"
        ]
    return best, []


def file_identity(xplane_path: str | os.PathLike) -> tuple:
    """What a load may read of the run's event files: each one's name and inode, and where
    its graph records are (not its size: scalars appended every epoch change no graph)."""
    out: list = []
    for path in event_files(xplane_path):
        try:
            st = path.lstat()
        except OSError:
            continue
        out.append((path.name, st.st_ino, graph_spans(path)))
    return tuple(out)
