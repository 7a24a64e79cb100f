"""tb-metal doctor: every known tensorflow-metal / TensorFlow pair, the broken set-ups users hit,
the install pins of the `record` extra, and the CLI (by feeding versions: no Mac here)."""

import ast
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from packaging.requirements import Requirement

from tb_metal_plugin import doctor as d
from tb_metal_plugin.cli import main

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo" / "logs"

# Ground truth written from shared/DOMAIN.md (users' reports and release notes), independent
# of data/compatibility.json: (tensorflow-metal, TensorFlow, works on the Metal GPU?).
DOMAIN_PAIRS = [
    ("0.5.0", "2.9.2", True),
    ("0.6.0", "2.10.1", True),
    ("0.8.0", "2.12.0", True),
    ("1.0.0", "2.13.1", True),
    ("1.1.0", "2.14.0", True),
    ("1.1.0", "2.17.0", True),  # "reported up to 2.17"
    ("1.2.0", "2.18.0", True),
    ("1.2.0", "2.18.1", True),
    ("1.2.0", "2.19.0", True),  # "2.19 likely" (a PR author reports it working)
    ("1.2.0", "2.20.0", False),  # 2.20 / 2.21 fail to load the plugin
    ("1.2.0", "2.21.0", False),
    ("1.1.0", "2.20.0", False),
    ("0.8.0", "2.21.0", False),
]


def mac(metal, tf, gpu=None, python="3.11.7", keras="3.8.0", machine="arm64"):
    """A recorded-environment dict as the callback writes it, for an Apple-silicon Mac."""
    env = {
        "os": "Darwin",
        "machine": machine,
        "python": python,
        "tensorflow": tf,
        "keras": keras,
        "tensorflow_metal": metal,
    }
    if gpu is not None:
        env["physical_devices"] = ["/physical_device:CPU:0"] + (
            ["/physical_device:GPU:0"] if gpu else []
        )
    return env


@pytest.mark.parametrize(("metal", "tf", "works"), DOMAIN_PAIRS)
def test_domain_pairs(metal, tf, works):
    # A working pair loads the plugin (the GPU shows); a broken one loads nothing.
    v = d.check_environment(mac(metal, tf, gpu=works))
    assert v["status"] == ("ok" if works else "broken"), v["summary"]
    assert v["exit_code"] == (0 if works else 1)
    pair = next(c for c in v["checks"] if c["check"] == "pair")
    assert pair["sources"], "every verdict on a listed pair names its sources"
    if not works:
        assert 'tensorflow>=2.18,<2.20" "tensorflow-metal==1.2.0"' in v["fix"]


def _table_pairs():
    for rel in d.load_table()["releases"]:
        for pair in rel["tensorflow"]:
            yield rel["tensorflow_metal"], pair["series"], pair["status"]


@pytest.mark.parametrize(("metal", "series", "status"), list(_table_pairs()))
def test_every_pair_in_the_table(metal, series, status):
    got = d.pair_status(metal, series + ".0")
    assert got["status"] == status
    assert got["sources"] and all(s.get("url") or s.get("title") for s in got["sources"])
    v = d.check_environment(mac(metal, series + ".0", gpu=status != "broken"))
    assert v["exit_code"] == (1 if status == "broken" else 0)


def test_table_sources_resolve_and_every_release_has_a_working_pair():
    table = d.load_table()
    for rel in table["releases"]:
        assert any(p["status"] == "works" for p in rel["tensorflow"]), rel["tensorflow_metal"]
    for src in table["sources"].values():
        assert src["title"] and (src["url"] is None or src["url"].startswith("https://"))


def test_plugin_installed_but_no_gpu_is_broken_even_for_a_good_pair():
    v = d.check_environment(mac("1.2.0", "2.18.1", gpu=False))
    assert v["status"] == "broken" and v["gpu_visible"] is False
    gpu = next(c for c in v["checks"] if c["check"] == "gpu")
    assert gpu["status"] == "broken" and "did not load" in gpu["message"]


def test_gpu_not_checked_is_not_an_error():
    v = d.check_environment(mac("1.2.0", "2.19.0"))
    assert v["status"] == "ok" and v["gpu_visible"] is None


def test_no_plugin_on_a_mac_says_what_to_install():
    v = d.check_environment(mac(None, "2.21.0", gpu=False))
    assert v["status"] == "broken"
    assert "tensorflow-metal is not installed" in v["summary"]
    assert v["fix"] == 'python -m pip install "tensorflow>=2.18,<2.20" "tensorflow-metal==1.2.0"'


def test_python_without_plugin_wheels():
    v = d.check_environment(mac("1.2.0", "2.18.1", gpu=True, python="3.13.1"))
    assert v["status"] == "broken"
    py = next(c for c in v["checks"] if c["check"] == "python")
    assert "3.12" in py["fix"] and "venv" in py["fix"]


def test_old_plugin_gets_both_ways_out():
    v = d.check_environment(mac("1.1.0", "2.18.0", gpu=False))
    pair = next(c for c in v["checks"] if c["check"] == "pair")
    assert pair["status"] == "broken"
    assert "tensorflow-metal==1.2.0" in pair["fix"]
    assert '"tensorflow>=2.14,<2.18" "tensorflow-metal==1.1.0"' in pair["fix"]


def test_tensorflow_macos_for_old_pairs():
    assert "tensorflow-macos>=2.9,<2.10" in d.install_command(["2.9"], "0.5.0")
    assert '"tensorflow>=2.13,<2.14"' in d.install_command(["2.13"], "1.0.0")


def test_unlisted_pair_is_a_warning_and_patch_release_pairs_like_its_series():
    v = d.check_environment(mac("1.2.0", "2.16.1", gpu=True))
    assert v["status"] == "warning" and v["exit_code"] == 0
    assert d.pair_status("1.0.1", "2.13.0")["status"] == "likely"
    assert d.pair_status("9.9.0", "2.18.0")["status"] == "untested"


def test_intel_mac_and_keras_2_warn():
    assert d.check_environment(mac("1.2.0", "2.18.1", gpu=True, machine="x86_64"))["status"] == (
        "warning"
    )
    keras = d.check_environment(mac("1.2.0", "2.18.1", gpu=True, keras="2.15.0"))
    assert keras["status"] == "warning" and "Keras 3" in keras["summary"]


def test_linux_is_not_applicable():
    env = {"os": "Linux", "machine": "x86_64", "python": "3.11.7", "tensorflow": "2.21.0",
           "keras": "3.15.1", "tensorflow_metal": None}  # fmt: skip
    v = d.check_environment(env)
    assert v["status"] == "not_applicable" and v["exit_code"] == 0


def test_version_helpers():
    assert d.series("2.18.1") == "2.18" and d.series("2.20.0rc1") == "2.20"
    assert d.vkey("2.9") < d.vkey("2.10")


# --- the `record` extra's pins, read from setup.py, checked against the table ----------------


def _record_extra() -> list[str]:
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "extras_require":
            return ast.literal_eval(node.value)["record"]
    raise AssertionError("setup.py has no extras_require")


def _resolved(python: str, machine: str = "arm64") -> dict[str, Requirement]:
    marker_env = {"sys_platform": "darwin", "platform_machine": machine,
                  "python_version": python, "platform_system": "Darwin"}  # fmt: skip
    out = {}
    for line in _record_extra():
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(marker_env):
            assert req.name not in out, f"two requirements for {req.name} on {python}"
            out[req.name] = req
    return out


@pytest.mark.parametrize("python", ["3.9", "3.10", "3.11", "3.12"])
def test_record_extra_resolves_to_a_working_pair_on_apple_silicon(python):
    reqs = _resolved(python)
    metal = reqs["tensorflow-metal"].specifier
    (pinned,) = [s.version for s in metal]
    assert str(metal) == f"=={pinned}"
    # Every TensorFlow series the pin allows is one the table reports working with the plugin.
    allowed = [f"2.{m}" for m in range(5, 40) if reqs["tensorflow"].specifier.contains(f"2.{m}.0")]
    assert allowed, "the pin allows no TensorFlow"
    for s in allowed:
        assert d.pair_status(pinned, s + ".0")["status"] == "works", s
    assert not reqs["tensorflow"].specifier.contains(
        d.load_table()["broken_from_tensorflow"]["series"] + ".0"
    )
    assert reqs["keras"].specifier.contains("3.0.0")


def test_record_extra_installs_no_plugin_where_it_has_no_wheel():
    rel = next(r for r in d.load_table()["releases"] if r.get("python_max"))
    major, minor = d.vkey(rel["python_max"])[:2]
    too_new = f"{major}.{minor + 1}"
    assert "tensorflow-metal" not in _resolved(too_new)
    assert "tensorflow" in _resolved(too_new)
    assert "tensorflow-metal" not in _resolved("3.11", machine="x86_64")
    linux = {"sys_platform": "linux", "platform_machine": "x86_64", "python_version": "3.11"}
    names = [Requirement(r).name for r in _record_extra()
             if Requirement(r).marker is None or Requirement(r).marker.evaluate(linux)]  # fmt: skip
    assert "tensorflow-cpu" in names and "tensorflow-metal" not in names


# --- CLI ------------------------------------------------------------------------------------


def test_cli_doctor_here_json_and_table():
    run = CliRunner().invoke(main, ["doctor", "--no-import", "--format", "json"])
    verdict = json.loads(run.output)
    assert run.exit_code == verdict["exit_code"]
    assert {c["check"] for c in verdict["checks"]} >= {"keras"}
    table = CliRunner().invoke(main, ["doctor", "--no-import"])
    assert "check" in table.output and "status" in table.output


def _logdir_with_env(tmp_path: Path, env: dict) -> Path:
    src = next((DEMO / "cnn").rglob("*.xplane.pb"))
    dst = tmp_path / "mac_run" / src.relative_to(DEMO / "cnn")
    dst.parent.mkdir(parents=True)
    shutil.copy(src, dst)
    manifest = json.loads(src.with_name("vm.tb_metal.json").read_text())
    manifest["environment"] = env
    dst.with_name("vm.tb_metal.json").write_text(json.dumps(manifest))
    return tmp_path


def test_cli_doctor_on_a_logdir_recorded_on_a_broken_mac(tmp_path):
    logdir = _logdir_with_env(tmp_path, mac("1.2.0", "2.21.0", gpu=False))
    run = CliRunner().invoke(main, ["doctor", str(logdir)])
    assert run.exit_code == 1, run.output
    assert "BROKEN" in run.output and "tensorflow-metal==1.2.0" in run.output
    js = CliRunner().invoke(main, ["doctor", str(logdir), "--format", "json"])
    (row,) = json.loads(js.output)["runs"]
    assert row["verdict"]["status"] == "broken" and row["verdict"]["gpu_visible"] is False


def test_cli_doctor_on_a_good_mac_run_and_on_the_demo(tmp_path):
    logdir = _logdir_with_env(tmp_path, mac("1.2.0", "2.18.1", gpu=True))
    assert CliRunner().invoke(main, ["doctor", str(logdir)]).exit_code == 0
    run = CliRunner().invoke(main, ["doctor", str(DEMO)])
    assert run.exit_code == 0 and "Not a Mac" in run.output


def test_cli_doctor_bad_logdir_is_a_clear_error(tmp_path):
    run = CliRunner().invoke(main, ["doctor", str(tmp_path / "missing")])
    assert run.exit_code == 2 and "no such file" in run.output


def test_tensorboard_startup_problems_join_the_verdict(monkeypatch):
    # environment_check returns (message, fix) pairs; each becomes a warning with its fix.
    from tb_metal_plugin import environment_check

    problems = [("TensorBoard 2.12 needs setuptools<81", "pin it")]
    monkeypatch.setattr(environment_check, "tensorboard_startup_problems", lambda: problems)
    v = d.check_environment(mac("1.2.0", "2.18.1", gpu=True), startup_checks=True)
    tb = [c for c in v["checks"] if c["check"] == "tensorboard"]
    assert tb == [d._check("tensorboard", "warning", None, "TensorBoard 2.12 needs setuptools<81",
                           "pin it")]  # fmt: skip
    assert v["status"] == "warning" and v["exit_code"] == 0
    # With no start-up problem the verdict stands on the versions alone.
    problems.clear()
    assert d.check_environment(mac("1.2.0", "2.18.1", gpu=True), startup_checks=True)["status"] == (
        "ok"
    )


def test_fit_start_check_warns_once_and_returns_the_verdict(monkeypatch):
    monkeypatch.setattr(d, "_warned_at_fit", False)
    broken = mac("1.2.0", "2.21.0", gpu=False)
    with pytest.warns(RuntimeWarning, match="tensorflow-metal==1.2.0"):
        first = d.check_at_fit_start(broken)
    assert first["status"] == "broken"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second fit in the same process stays quiet
        assert d.check_at_fit_start(broken)["status"] == "broken"
        assert d.check_at_fit_start(mac("1.2.0", "2.18.1", gpu=True))["status"] == "ok"
