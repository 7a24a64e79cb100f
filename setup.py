"""Packaging for tb-metal: a TensorBoard plugin, Keras callback and CLI for per-layer profiles."""

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
FRONTEND = HERE / "frontend"
STATIC = HERE / "tb_metal_plugin" / "static"


def _bundle_is_fresh() -> bool:
    """True when static/index.js and style.css are newer than every frontend source."""
    outputs = [STATIC / "index.js", STATIC / "style.css"]
    if not all(p.exists() for p in outputs):
        return False
    sources = [p for p in FRONTEND.rglob("*") if p.is_file() and "node_modules" not in p.parts]
    newest = max((p.stat().st_mtime for p in sources), default=0)
    return min(p.stat().st_mtime for p in outputs) >= newest


class BuildPyWithFrontend(build_py):
    """Build the Metal tab's bundle (TypeScript -> static/index.js + style.css) with npm.

    Runs for `pip install .` and `pip install -e .` (editable builds run build_py too),
    before package data is collected, so the wheel ships the bundle.
    """

    def run(self):
        if os.environ.get("TB_METAL_SKIP_FRONTEND") != "1" and (FRONTEND / "package.json").exists():
            if not _bundle_is_fresh():
                npm = shutil.which("npm")
                if npm is None:
                    raise RuntimeError(
                        "tb-metal: building the Metal tab needs node and npm (node >= 18); "
                        "install them or set TB_METAL_SKIP_FRONTEND=1 to skip the tab"
                    )
                if not (FRONTEND / "node_modules").exists():
                    subprocess.check_call([npm, "ci", "--no-audit", "--no-fund"], cwd=FRONTEND)
                subprocess.check_call([npm, "run", "bundle"], cwd=FRONTEND)
        super().run()


# Metadata, dependencies and entry points live in pyproject.toml (PEP 621), the version in
# tb_metal_plugin/__init__.py; here only what pyproject cannot say: the extras (their
# platform markers are long) and the frontend build step.
setup(
    packages=find_packages(include=["tb_metal_plugin", "tb_metal_plugin.*"]),
    package_data={"tb_metal_plugin": ["proto/*.proto", "data/*.json", "static/*"]},
    extras_require={
        # Recording profiles (the training callback) needs TensorFlow. On Apple
        # silicon that is tensorflow(-macos) plus Apple's Metal plugin, whose wheels
        # exist for Python 3.9-3.12 only: on Python 3.13 or an Intel Mac the extra offers
        # TensorFlow without Metal (it runs on the CPU, and tb-metal doctor says why).
        "record": [
            "tensorflow-cpu>=2.15; sys_platform == 'linux'",
            # Apple silicon: the last tensorflow-metal (1.2.0) loads into TensorFlow 2.18 and
            # 2.19, not 2.20+, and has wheels up to CPython 3.12; it declares no TensorFlow pin
            # itself. See tb_metal_plugin/data/compatibility.json (tested in test_doctor.py).
            "tensorflow>=2.18,<2.20; sys_platform == 'darwin' and platform_machine == 'arm64' "
            "and python_version < '3.13'",
            "tensorflow-metal==1.2.0; sys_platform == 'darwin' and platform_machine == 'arm64' "
            "and python_version < '3.13'",
            # TensorBoard 2.18/2.19 (what those TensorFlows bring) import pkg_resources, which
            # setuptools 82 removed: without this pin `tensorboard` does not start.
            "setuptools<82; sys_platform == 'darwin' and platform_machine == 'arm64' "
            "and python_version < '3.13'",
            # No tensorflow-metal wheel for these: TensorFlow runs on the CPU (tb-metal doctor
            # says so).
            "tensorflow>=2.15; sys_platform == 'darwin' and (platform_machine != 'arm64' "
            "or python_version >= '3.13')",
            "keras>=3.0",
            "tensorboard-plugin-profile>=2.15",
        ],
        "profile-tab": ["tensorboard-plugin-profile>=2.15"],
        # Tests record with TensorFlow (the record extra), drive Chromium with Playwright,
        # build the compatibility matrix's venvs with uv and validate payloads against
        # docs/schema.json with jsonschema.
        "test": [
            "tb-metal[record]",
            "pytest>=7",
            "ruff>=0.5",
            "playwright>=1.40",
            "uv>=0.4",
            "jsonschema>=4.18",
        ],
    },
    # The host-line hot loop in C (tb_metal_plugin/hostline.py): optional, so an install
    # without a compiler still works and reads traces with the pure-Python twin.
    # TB_METAL_NO_NATIVE=1 builds a pure-Python wheel (one for every Python: the
    # compatibility matrix installs it into 3.10-3.13 venvs).
    ext_modules=[]
    if os.environ.get("TB_METAL_NO_NATIVE") == "1"
    else [
        Extension(
            "tb_metal_plugin._hostline",
            [
                "tb_metal_plugin/_hostline.c",
                "tb_metal_plugin/_hostmeta.c",
                "tb_metal_plugin/_slotsum.c",
            ],
            depends=["tb_metal_plugin/_hostline.h", "tb_metal_plugin/_wire.h"],
            optional=True,
        ),
        # Compact JSON of payloads (tb_metal_plugin/jsonout.py), the same bytes as json's.
        Extension(
            "tb_metal_plugin._jsonrows",
            ["tb_metal_plugin/_jsonrows.c"],
            optional=True,
        ),
    ],
    cmdclass={"build_py": BuildPyWithFrontend},
)
