"""Shared fixtures: a corpus of real traces recorded once per test session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """Every corpus case recorded with tensorflow-cpu: {case: run dir}."""
    from tests import corpus as c

    root = tmp_path_factory.mktemp("corpus")
    return c.build(root)
