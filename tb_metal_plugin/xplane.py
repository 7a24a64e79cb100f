"""The XSpace message classes, independent of TensorFlow.

The generated module is the normal path. Generated code checks the protobuf runtime's
version, and TensorFlow releases pin protobuf majors of their own (a Mac with an older
tensorflow-macos may hold an older protobuf), so when that check refuses we build the
same classes from the same serialized descriptor, which every protobuf >= 4.21 accepts.
"""

from __future__ import annotations

from typing import Any


def _from_descriptor() -> dict[str, Any]:
    """Build the message classes from the .proto's descriptor without the generated module."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    from .proto import xplane_descriptor

    fdp = descriptor_pb2.FileDescriptorProto.FromString(xplane_descriptor.SERIALIZED)
    pool = descriptor_pool.DescriptorPool()
    fd = pool.Add(fdp) and pool.FindFileByName(fdp.name)
    classes = {}
    for name in fd.message_types_by_name:
        desc = fd.message_types_by_name[name]
        classes[name] = message_factory.GetMessageClass(desc)
    return classes


def _load() -> dict[str, Any]:
    try:
        from .proto import xplane_pb2
    except Exception:  # noqa: BLE001 - any refusal of the generated code: version, API
        return _from_descriptor()
    return {n: getattr(xplane_pb2, n) for n in xplane_pb2.DESCRIPTOR.message_types_by_name}


_CLASSES = _load()
XSpace = _CLASSES["XSpace"]
XPlane = _CLASSES["XPlane"]
XLine = _CLASSES["XLine"]
XLineLite = _CLASSES["XLineLite"]
XEvent = _CLASSES["XEvent"]
XStat = _CLASSES["XStat"]
XEventMetadata = _CLASSES["XEventMetadata"]
XStatMetadata = _CLASSES["XStatMetadata"]
