"""CLI JSON output: compact for pipes and files, indented with --pretty; the same data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tb_metal_plugin.cli import main

ROOT = Path(__file__).resolve().parent.parent
DEMO = str(ROOT / "demo" / "logs")


@pytest.mark.parametrize("command", ["layers", "ops", "metal-check"])
def test_json_is_compact_unless_pretty(command):
    runner = CliRunner()  # not a terminal, as a pipe
    args = [command, DEMO, "--run", "cnn/train", "--format", "json"]
    compact = runner.invoke(main, args)
    pretty = runner.invoke(main, args + ["--pretty"])
    assert compact.exit_code == 0 and pretty.exit_code == 0, compact.output + pretty.output
    assert compact.output.count("\n") == 1  # one line
    assert pretty.output.count("\n") > 20 and '\n  "' in pretty.output
    assert len(compact.output) < len(pretty.output)
    assert json.loads(compact.output) == json.loads(pretty.output)
