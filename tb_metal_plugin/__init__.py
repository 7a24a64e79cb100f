"""tb-metal: per-Keras-layer GPU/CPU time and CPU-fallback finder for TensorFlow profiles.

Importing the package never imports TensorFlow; the training callback loads it on use.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "load_profile": ("api", "load_profile"),
    "load_file": ("api", "load_file"),
    "find_sessions": ("api", "find_sessions"),
    "Profile": ("api", "Profile"),
    "MetalProfileCallback": ("callback", "MetalProfileCallback"),
}


def __getattr__(name: str):
    """Resolve public names on first use, so `import tb_metal_plugin` stays light."""
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f".{module}", __name__), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_LAZY) + ["__version__"]
