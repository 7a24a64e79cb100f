"""The docs describe the code as it is: every module named, only files that exist cited."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tb_metal_plugin"
DOCS = sorted((ROOT / "docs").glob("*.md"))
# A backticked file name or path with one of these endings is a citation of a file.
_CITED = re.compile(r"`([\w./-]+\.(?:py|md|json|ts|mjs|proto))`")
# Where a bare name may live: the repository, the package, the docs and the frontend.
_BASES = [
    ROOT,
    PACKAGE,
    PACKAGE / "recording",
    ROOT / "docs",
    ROOT / "frontend",
    ROOT / "frontend" / "src",
]


def test_architecture_names_every_module():
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    modules = [
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*.py")
        if p.name != "__init__.py" and "proto" not in p.parts
    ]
    missing = [m for m in modules if f"`{m}`" not in text and f"`{Path(m).name}`" not in text]
    assert not missing, f"docs/ARCHITECTURE.md does not name: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_docs_cite_only_files_in_the_repository(doc):
    text = doc.read_text(encoding="utf-8")
    assert "DOMAIN.md" not in text and "../shared" not in text
    missing = sorted({c for c in _CITED.findall(text) if not any((b / c).exists() for b in _BASES)})
    assert not missing, f"{doc.name} cites files that are not in the repository: {missing}"
