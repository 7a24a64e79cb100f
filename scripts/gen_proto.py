"""Regenerate tb_metal_plugin/proto/xplane_pb2.py from xplane.proto (needs grpcio-tools)."""

import pathlib
import sys

from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main() -> int:
    """Run protoc with the package root as the include path."""
    return protoc.main(
        [
            "protoc",
            f"-I{ROOT}",
            f"--python_out={ROOT}",
            str(ROOT / "tb_metal_plugin" / "proto" / "xplane.proto"),
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
