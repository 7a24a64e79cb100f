"""Typed errors: every failure names what went wrong and, for traces, which file."""

from __future__ import annotations


class TbMetalError(Exception):
    """Base class for every error tb-metal raises on purpose."""


class TraceError(TbMetalError):
    """A trace or manifest file that cannot be read; carries the file's path."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = str(path)
        self.message = message


class NotFoundError(TbMetalError):
    """A run, session, host, step or layer that does not exist."""


class InvalidArgumentError(TbMetalError, ValueError):
    """A request whose arguments are malformed (bad step, unsafe path, unknown format)."""
