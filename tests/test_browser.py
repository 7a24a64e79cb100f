"""End to end in a real browser: tensorboard on loopback, the Metal tab in headless Chromium.

Needs Debian's chromium (/usr/bin/chromium) and Playwright for Python (no browser
download: Playwright drives the system Chromium). Fails with the install command when
either is missing (tests/conftest.py); TB_METAL_SKIP_BROWSER=1 skips instead.
Screenshots go to pytest's tmp folder (TB_METAL_SCREENSHOT_DIR=docs/screenshots refreshes
the committed ones).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from tests.test_plugin_support import augment_logdir, shared_logdir

CHROMIUM = os.environ.get("TB_METAL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[1]
# Screenshots go to pytest's temporary folder, so a test run leaves the tree clean; refresh
# the committed ones with TB_METAL_SCREENSHOT_DIR=docs/screenshots.
SCREENSHOTS_ENV = os.environ.get("TB_METAL_SCREENSHOT_DIR")
PREFIX = "/tbm"  # run under --path_prefix: relative URLs and the trace-viewer link must cope

pytestmark = [pytest.mark.slow, pytest.mark.browser]
try:  # missing: conftest fails each test with the install command
    from playwright import sync_api as playwright_api
except ImportError:
    playwright_api = None

# When tb-metal is not pip-installed, start TensorBoard the way its `main` does, adding
# our plugin by hand; installed, the stock `tensorboard` command finds it by entry point.
LAUNCHER = """
import sys
from tensorboard import default, program
from tb_metal_plugin.plugin import MetalPlugin
plugins = default.get_plugins()
if MetalPlugin not in plugins:
    plugins.append(MetalPlugin)
tb = program.TensorBoard(plugins=plugins)
tb.configure(argv=[None] + sys.argv[1:])
sys.exit(tb.main())
"""


def fmt_time(ps: float) -> str:
    """Python twin of the frontend's fmtTime (frontend/src/format.ts)."""
    a = abs(ps)
    if a >= 1e12:
        return f"{ps / 1e12:.2f} s"
    if a >= 1e9:
        return f"{ps / 1e9:.{0 if a >= 1e11 else 1 if a >= 1e10 else 2}f} ms"
    if a >= 1e6:
        return f"{ps / 1e6:.{0 if a >= 1e8 else 1 if a >= 1e7 else 2}f} µs"
    return "0" if a == 0 else f"{ps / 1e3:.0f} ns"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def run_tensorboard(logdir: Path, workdir: Path, prefix: str = ""):
    """Start `tensorboard` on a free loopback port; yield its base URL (prefix included)."""
    port = free_port()
    args = ["--logdir", str(logdir), "--port", str(port), "--host", "127.0.0.1"]
    if prefix:
        args += ["--path_prefix", prefix]
    installed = any(ep.name == "metal" for ep in entry_points(group="tensorboard_plugins"))
    tb_exe = shutil.which("tensorboard")
    cmd = [tb_exe, *args] if installed and tb_exe else [sys.executable, "-c", LAUNCHER, *args]
    env = dict(
        os.environ,
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONPATH=str(REPO),
        TB_METAL_CACHE_DIR=str(workdir / "payload_cache"),
    )
    log = workdir / "tensorboard.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}{prefix}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/data/plugins_listing", timeout=5) as r:
                    if "metal" in json.load(r):
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("tensorboard did not start:\n" + log.read_text()[-3000:])
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def tensorboard(tmp_path_factory):
    logdir = shared_logdir(tmp_path_factory)
    with run_tensorboard(logdir, tmp_path_factory.mktemp("tb"), PREFIX) as base:
        yield base


def api_get(base: str, route: str, **params) -> dict:
    q = urllib.parse.urlencode({**params, "wait": "60"}, doseq=True)
    with urllib.request.urlopen(f"{base}/data/plugin/metal{route}?{q}", timeout=90) as r:
        return json.load(r)


@pytest.fixture(scope="module")
def page():
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        pg = browser.new_page(viewport={"width": 1400, "height": 1100})
        pg.set_default_timeout(60_000)
        yield pg
        browser.close()


def screenshot_dir(tmp_path_factory) -> Path:
    shots = Path(SCREENSHOTS_ENV) if SCREENSHOTS_ENV else tmp_path_factory.getbasetemp() / "shots"
    shots.mkdir(parents=True, exist_ok=True)
    return shots


def metal_frame(page):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for f in page.frames:
            if "plugin_entry.html" in f.url and "name=metal" in f.url:
                return f
        page.wait_for_timeout(200)  # lets Playwright process frame events (sleep would not)
    raise AssertionError("the Metal tab's iframe never appeared")


def leaves(nodes):
    for n in nodes:
        if n["children"]:
            yield from leaves(n["children"])
        else:
            yield n


def test_metal_tab_end_to_end(tensorboard, page, tmp_path_factory):
    base = tensorboard
    sessions = api_get(base, "/sessions")["sessions"]
    names = sorted(s["name"] for s in sessions)
    # The tab opens the newest session: profiler session folders are named by start time.
    shown = max(sessions, key=lambda s: s["session"])["name"]
    layers = api_get(base, "/layers", session=shown, step="all")

    page.goto(f"{base}/#metal")
    frame = metal_frame(page)
    rows = frame.locator("[data-testid=layer-row]")
    rows.first.wait_for()

    # Layer rows: every leaf layer with the API's total time, formatted the same way.
    for leaf in leaves(layers["layers"]):
        row = frame.locator(f'[data-testid=layer-row][data-path="{"/".join(leaf["path"])}"]')
        assert row.locator("[data-col=total]").inner_text() == fmt_time(leaf["total_ps"])
    for bucket in layers["buckets"]:
        row = frame.locator(f'[data-testid=layer-row][data-path="{bucket["path"][0]}"]')
        assert row.locator("[data-col=self]").inner_text() == fmt_time(bucket["self_ps"])
    summary = frame.locator("[data-testid=summary]").inner_text()
    assert fmt_time(layers["step_time_ps"]) in summary
    # The step picker: per-step averages replace the totals.
    avg = api_get(base, "/layers", session=shown, step="avg")
    frame.locator("[data-testid=step-select]").select_option("avg")
    card = frame.locator("[data-testid=card-step-time]")
    card.filter(has_text="Step time (avg, wall)").wait_for()
    assert fmt_time(avg["step_time_ps"]) in card.inner_text()
    frame.locator("[data-testid=step-select]").select_option("all")
    card.filter(has_text="Time of profiled steps").wait_for()

    # Sorting by name puts rows in alphabetical order among siblings.
    frame.locator(".tree-header .cell", has_text="Layer").click()
    children = [
        frame.locator(f'[data-testid=layer-row][data-path="{"/".join(c["path"])}"]')
        for c in layers["layers"][0]["children"]
    ]
    tops = {c.get_attribute("data-path"): c.bounding_box()["y"] for c in children}
    assert list(sorted(tops, key=tops.get)) == sorted(tops, key=str.lower)

    # Keyboard: arrows move between rows and collapse/expand, Enter opens the ops.
    root_row = frame.locator('[data-testid=layer-row][data-path="mlp"]')
    root_row.focus()
    page.keyboard.press("ArrowLeft")
    frame.locator('[data-testid=layer-row][data-path="mlp/hidden"]').wait_for(state="detached")
    page.keyboard.press("ArrowRight")
    frame.locator('[data-testid=layer-row][data-path="mlp/hidden"]').wait_for()
    page.keyboard.press("ArrowDown")
    focused = frame.evaluate("document.activeElement.dataset.path")
    assert focused == sorted(tops, key=str.lower)[0]

    # Chart: the top leaf layers by time, the numbers the API gave.
    canvas = frame.locator("[data-testid=top-chart]")
    box = canvas.bounding_box()
    assert box and box["width"] > 200 and box["height"] > 100
    drawn = json.loads(canvas.get_attribute("data-values"))
    want = sorted(leaves(layers["layers"]), key=lambda n: -n["total_ps"])[:12]
    assert [d["path"] for d in drawn] == [n["path"] for n in want]
    assert [d["total_ps"] for d in drawn] == [n["total_ps"] for n in want]
    for d, n in zip(drawn, want, strict=True):
        assert sum(d["parts"].values()) == pytest.approx(n["total_ps"], rel=1e-6)

    # Fallback panel: rows when the core found fallbacks, else the no-GPU explanation.
    panel = frame.locator("[data-testid=fallback-panel]")
    if layers["fallbacks"]:
        fb_rows = panel.locator("[data-testid=fallback-row]")  # one per layer
        by_layer = {tuple(f["path"] or [f["bucket"]]) for f in layers["fallbacks"]}
        assert fb_rows.count() == min(25, len(by_layer))
    elif not layers["has_gpu"]:
        assert "no GPU" in panel.inner_text()

    # Op drill-down for one layer.
    layer = ["mlp", "hidden"]
    frame.locator('[data-testid=layer-row][data-path="mlp/hidden"]').click()
    frame.locator("[data-testid=ops-panel] h2", has_text="Ops of mlp / hidden").wait_for()
    ops = api_get(base, "/ops", session=shown, step="all", layer=json.dumps(layer))["ops"]
    op_rows = frame.locator("[data-testid=op-row]")
    op_rows.first.wait_for()
    assert op_rows.count() == len(ops)
    assert sorted(op_rows.evaluate_all("rs => rs.map(r => r.dataset.type)")) == sorted(
        o["type"] for o in ops
    )

    # Metal readiness: a prediction, for the newest tensorflow-metal; dense layers on Metal.
    ready = api_get(base, "/readiness", session=shown, step="all")
    headline = frame.locator("[data-testid=readiness-headline]")
    headline.wait_for()
    assert f"PREDICTION for tensorflow-metal {ready['metal_versions'][0]}" in headline.inner_text()
    for leaf in leaves(layers["layers"]):
        cell = frame.locator(f'[data-testid=layer-row][data-path="{"/".join(leaf["path"])}"]')
        badge = cell.locator("[data-col=metal] [data-verdict]")
        assert badge.get_attribute("data-verdict") == "metal_gpu", leaf["path"]

    # "Open in trace viewer" keeps TensorBoard's pathname (with --path_prefix).
    link = frame.locator("[data-testid=trace-viewer-link]")
    q = f"?run={urllib.parse.quote(shown, safe='')}&tool=trace_viewer@&host=vm#profile"
    assert link.get_attribute("href") == f"{base}/{q}"
    assert link.get_attribute("target") == "_top"

    # Comparison: baseline first, then the wide model; one layer exists only in "wide".
    frame.locator("[data-testid=tab-compare]").click()
    baseline = next(n for n in names if n.startswith("baseline/"))
    wide = next(n for n in names if n.startswith("wide/"))
    frame.locator(f'input[data-session="{baseline}"]').check()
    frame.locator(f'input[data-session="{wide}"]').check()
    frame.locator("[data-testid=compare-row]").first.wait_for()
    cmp = api_get(base, "/compare", session=[baseline, wide], step="avg")
    for r in cmp["rows"]:
        row = frame.locator(f'[data-testid=compare-row][data-key="{"/".join(r["key"])}"]')
        cells = row.locator("td").all_inner_texts()
        assert cells[1] == (fmt_time(r["total_ps"][0]) if r["present"][0] else "–")
        if r["matched"]:
            assert cells[4] == f"{r['speedup'][1]:.2f}×"
    # Columns and the unmatched list say run names, not timestamped session folders.
    unmatched = frame.locator("[data-testid=compare-unmatched]").inner_text()
    assert "mlp / extra" in unmatched and "only in wide" in unmatched
    speedups = frame.locator("[data-testid=total-speedup]").all_inner_texts()
    assert speedups[1] == f"{cmp['totals']['speedup'][1]:.2f}×"

    # Clicking the link really moves the top window to the Profile tab's URL.
    frame.locator("[data-testid=tab-breakdown]").click()
    frame.locator("[data-testid=trace-viewer-link]").click()
    page.wait_for_url("**tool=trace_viewer@**")
    assert page.url.startswith(f"{base}/?run=") and page.url.endswith("#profile")
    with urllib.request.urlopen(f"{base}/data/plugins_listing") as r:
        has_profile_tab = "profile" in json.load(r)
    if has_profile_tab:
        # xprof's Profile tab really opens the trace viewer on this session and host.
        run_q = urllib.parse.quote(shown, safe="")
        want = f"/data/plugin/profile/trace_viewer@?run={run_q}"
        deadline = time.monotonic() + 60
        while not any(want in f.url and "host=vm" in f.url for f in page.frames):
            assert time.monotonic() < deadline, [f.url for f in page.frames]
            page.wait_for_timeout(250)


def test_corrupt_trace_is_named_and_the_rest_still_shown(tmp_path_factory, page):
    """No --path_prefix here; a truncated trace beside good runs."""
    root = tmp_path_factory.mktemp("logs_with_broken")
    shutil.copytree(shared_logdir(tmp_path_factory) / "baseline", root / "baseline")
    good = next((root / "baseline").rglob("*.xplane.pb"))
    broken_dir = root / "zz_broken" / "plugins" / "profile" / "2099_01_01_00_00_00"
    broken_dir.mkdir(parents=True)
    (broken_dir / "vm.xplane.pb").write_bytes(good.read_bytes()[:4000])
    with run_tensorboard(root, tmp_path_factory.mktemp("tb2")) as base:
        page.goto(f"{base}/#metal")
        frame = metal_frame(page)
        # The newest session is the broken one: the tab says so once, naming the file, and
        # opens the newest readable session instead.
        rel = "zz_broken/plugins/profile/2099_01_01_00_00_00/vm.xplane.pb"
        note = frame.locator("[data-testid=skipped-unreadable]")
        note.wait_for()
        assert rel in note.inner_text()
        frame.locator("[data-testid=layer-row][data-path='mlp/hidden']").wait_for()
        text = frame.locator("[data-testid=metal-root]").inner_text()
        assert text.count("may be truncated") == 1  # the advice is printed once
        # The picker marks it; picking it shows its error, naming the file.
        sel = frame.locator("[data-testid=session-select]")
        broken = sel.locator("option[data-unreadable]")
        assert broken.count() == 1 and "unreadable" in broken.inner_text()
        assert sel.input_value().startswith("baseline/")
        link = frame.locator("[data-testid=trace-viewer-link]").get_attribute("href")
        assert link.startswith(f"{base}/?run=baseline%2Ftrain%2F")
        sel.select_option(broken.get_attribute("value"))
        err = frame.locator("[data-testid=load-error]")
        err.wait_for()
        assert rel in err.inner_text()
        assert err.inner_text().count("may be truncated") == 1


def test_empty_logdir_explains_how_to_record(tmp_path_factory, page):
    empty = tmp_path_factory.mktemp("empty_logdir")
    with run_tensorboard(empty, tmp_path_factory.mktemp("tb3")) as base:
        page.goto(f"{base}/#metal")
        frame = metal_frame(page)
        state = frame.locator("[data-testid=empty-state]")
        state.wait_for()
        assert "No profiles yet" in state.inner_text()
        assert "MetalProfileCallback(" in state.inner_text()
        # A profile recorded while TensorBoard runs shows up with "Look again".
        src = next(shared_logdir(tmp_path_factory).glob("baseline"))
        shutil.copytree(src, empty / "baseline")
        state.locator("button", has_text="Look again").click()
        frame.locator("[data-testid=layer-row][data-path='mlp/hidden']").wait_for()


def test_readiness_panel_names_random_rotation(tmp_path_factory, page):
    """A run with RandomRotation and a py_function layer (recorded on Linux, no Metal)."""
    logdir = augment_logdir(tmp_path_factory)
    with run_tensorboard(logdir, tmp_path_factory.mktemp("tb4")) as base:
        name = api_get(base, "/sessions")["sessions"][0]["name"]
        ready = api_get(base, "/readiness", session=name)
        page.goto(f"{base}/#metal")
        frame = metal_frame(page)
        panel = frame.locator("[data-testid=readiness-panel]")
        headline = panel.locator("[data-testid=readiness-headline]")
        headline.wait_for()
        newest = ready["metal_versions"][0]
        # Labelled a prediction, for the newest version, with the headline share.
        assert f"PREDICTION for tensorflow-metal {newest}" in headline.inner_text()
        share = panel.locator("[data-testid=readiness-share]").inner_text()
        assert (
            share
            == f"{ready['fallback_share'] * 100:.{1 if ready['fallback_share'] >= 0.1 else 2}f}%"
        )
        assert panel.locator("[data-testid=metal-version-select]").input_value() == newest
        # The layer predicted to fall back, with its op type and why.
        row = panel.locator('[data-testid=readiness-row][data-path="augment/rotate"]')
        assert (
            "ImageProjectiveTransformV3"
            in row.locator("[data-testid=readiness-op-types]").inner_text()
        )
        assert "no Metal kernel" in row.inner_text()
        fallback_rows = panel.locator("[data-testid=readiness-row]")
        paths = fallback_rows.evaluate_all("rs => rs.map(r => r.dataset.path)")
        assert "augment/conv" not in paths and "augment/head" not in paths
        # CPU-only by nature is shown apart from the fallbacks.
        cpu_only = panel.locator("[data-testid=readiness-cpu-only]").inner_text()
        assert fmt_time(ready["cpu_only_ps"]) in cpu_only
        by_nature = panel.locator(
            '[data-testid=readiness-cpu-only-row][data-path="augment/py_tanh"]'
        )
        assert "runs Python code" in by_nature.inner_text()

        # The layer tree's "Metal (predicted)" column.
        def verdict(path):
            cell = frame.locator(f'[data-testid=layer-row][data-path="{path}"] [data-col=metal]')
            return cell.locator("[data-verdict]").get_attribute("data-verdict")

        assert verdict("augment/conv") == "metal_gpu"
        assert verdict("augment/head") == "metal_gpu"
        assert verdict("augment/rotate") == "cpu_fallback"
        assert verdict("augment/py_tanh") == "cpu_only_by_nature"
        assert verdict("augment") == "cpu_fallback"  # a parent sums its sublayers' fallback
        # What to do: a sourced remedy per CPU op type, in the list and on the fallback row.
        ids = panel.locator("[data-testid=remedy]").evaluate_all(
            "rs => rs.map(r => r.dataset.remedy)"
        )
        assert "random_augmentation" in ids and "py_function" in ids
        on_row = "[data-testid=readiness-remedy] [data-remedy=random_augmentation]"
        assert row.locator(on_row).count()
        assert panel.locator("[data-testid=readiness-remedies] a[href^='https://']").count() >= 2
        # Clicking the fallback row opens that layer's ops.
        row.click()
        frame.locator("[data-testid=ops-panel] h2", has_text="Ops of augment / rotate").wait_for()
        # Another release: the label and the numbers follow the picker.
        oldest = ready["metal_versions"][-1]
        panel.locator("[data-testid=metal-version-select]").select_option(oldest)
        headline.filter(has_text=f"tensorflow-metal {oldest}").wait_for()
