"""The XSpace message classes, independent of TensorFlow.

The generated module is the normal path. Generated code checks the protobuf runtime's
version, and TensorFlow releases pin protobuf majors of their own (a Mac with an older
tensorflow-macos may hold an older protobuf), so when that check refuses we build the
same classes from the same serialized descriptor.

The fallback leans on no API that differs between protobuf versions or backends: the
pure-Python pool's `Add` returns None (upb's returns the file), upb 4.21 iterates
`message_types_by_name` as descriptors instead of names, and `GetMessageClass` only
exists from protobuf 4.22 on (older ones have `MessageFactory.GetPrototype`, which newer
ones removed). So the names come from the FileDescriptorProto itself and each class from
whichever of the two factory APIs this protobuf has.
"""

from __future__ import annotations

from typing import Any

from .proto import xplane_descriptor


def _file_proto():
    """The .proto's FileDescriptorProto, parsed from the committed serialized descriptor."""
    from google.protobuf import descriptor_pb2

    return descriptor_pb2.FileDescriptorProto.FromString(xplane_descriptor.SERIALIZED)


def _message_class(pool, descriptor) -> Any:
    """The class of one message descriptor, on any protobuf >= 4.21 and either backend."""
    from google.protobuf import message_factory

    get_class = getattr(message_factory, "GetMessageClass", None)
    if get_class is not None:  # protobuf >= 4.22
        return get_class(descriptor)
    return message_factory.MessageFactory(pool).GetPrototype(descriptor)  # 4.21


def _from_descriptor() -> dict[str, Any]:
    """Build the message classes from the .proto's descriptor without the generated module."""
    from google.protobuf import descriptor_pool

    fdp = _file_proto()
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)  # its return value differs by backend: never used
    return {
        m.name: _message_class(pool, pool.FindMessageTypeByName(f"{fdp.package}.{m.name}"))
        for m in fdp.message_type
    }


def _from_generated() -> dict[str, Any]:
    """The classes of the generated module; raises when this protobuf refuses it."""
    from .proto import xplane_pb2

    return {m.name: getattr(xplane_pb2, m.name) for m in _file_proto().message_type}


def _load() -> tuple[dict[str, Any], str]:
    """The message classes and which path built them ("generated" or "descriptor")."""
    try:
        return _from_generated(), "generated"
    except Exception:  # noqa: BLE001 - any refusal of the generated code: version, API
        return _from_descriptor(), "descriptor"


_CLASSES, SOURCE = _load()
XSpace = _CLASSES["XSpace"]
XPlane = _CLASSES["XPlane"]
XLine = _CLASSES["XLine"]
XLineLite = _CLASSES["XLineLite"]
XEvent = _CLASSES["XEvent"]
XStat = _CLASSES["XStat"]
XEventMetadata = _CLASSES["XEventMetadata"]
XStatMetadata = _CLASSES["XStatMetadata"]
