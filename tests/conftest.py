"""Shared fixtures and the two test tiers.

Fast tier, `python -m pytest -m "not slow"`: committed real traces, no TensorFlow.
Slow tier, `python -m pytest -m slow`: tests that record traces with TensorFlow or drive
the browser. A test is slow when its module says so (`pytestmark = pytest.mark.slow`) or
when it, or any fixture it uses, records: the `corpus` fixture or one of the recording
helpers of tests/test_plugin_support.py. Without TensorFlow the slow tests skip with the
reason and the fast tier runs in full. Browser tests fail (not skip) when Chromium or
Playwright is missing, naming the install command, unless TB_METAL_SKIP_BROWSER=1.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Helpers in tests/test_plugin_support.py that record a logdir with TensorFlow.
RECORDERS = frozenset({"shared_logdir", "augment_logdir", "record_logdir"})
NO_TENSORFLOW = (
    "records traces with TensorFlow, which is not installed here "
    '(pip install -e ".[record]"); the viewing tests run without it'
)
BROWSER_INSTALL = (
    "the browser tests need Debian's Chromium and Playwright for Python: "
    'apt-get install -y chromium && pip install -e ".[test]" '
    "(or point TB_METAL_CHROMIUM at a Chromium; TB_METAL_SKIP_BROWSER=1 skips them)"
)


def tensorflow_installed() -> bool:
    """True when TensorFlow can be imported (checked without importing it)."""
    return importlib.util.find_spec("tensorflow") is not None


def _records(item: pytest.Item) -> bool:
    """Whether the test or a fixture in its closure records traces with TensorFlow."""
    if "corpus" in item.fixturenames:
        return True
    funcs = [getattr(item, "function", None)]
    for defs in item._fixtureinfo.name2fixturedefs.values():
        funcs += [d.func for d in defs]
    codes = [getattr(f, "__code__", None) for f in funcs]
    return any(RECORDERS & set(c.co_names) for c in codes if c is not None)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config, items):
    """Mark recording tests slow; skip the slow tier, with the reason, without TensorFlow."""
    have_tf = tensorflow_installed()
    for item in items:
        if _records(item):
            item.add_marker(pytest.mark.slow)
        if not have_tf and item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.skip(reason=NO_TENSORFLOW))


def pytest_runtest_setup(item):
    """Browser tests: fail loudly without Chromium or Playwright, unless opted out."""
    # A conftest hook runs after pytest's skip markers are applied (they are tryfirst) and
    # before the fixtures are set up (pytest's own setup is registered earlier, so runs
    # later): a test bound to fail records nothing first.
    if not item.get_closest_marker("browser"):
        return
    if os.environ.get("TB_METAL_SKIP_BROWSER") == "1":
        pytest.skip("TB_METAL_SKIP_BROWSER=1")
    chromium = os.environ.get("TB_METAL_CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).exists():
        pytest.fail(f"no Chromium at {chromium}: {BROWSER_INSTALL}", pytrace=False)
    if importlib.util.find_spec("playwright") is None:
        pytest.fail(f"Playwright is not installed: {BROWSER_INSTALL}", pytrace=False)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """Every corpus case recorded with tensorflow-cpu: {case: run dir}."""
    if not tensorflow_installed():
        pytest.skip(NO_TENSORFLOW)
    from tests import corpus as c

    root = tmp_path_factory.mktemp("corpus")
    return c.build(root)
