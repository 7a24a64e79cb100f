"""The Compare tab on a Metal-like run vs its CPU twin: no cross-clock speedup, the reason shown.

Slow: drives TensorBoard and headless Chromium (helpers from tests/test_browser.py).
"""

from __future__ import annotations

import shutil

import pytest

from tests.metal_like import make_metal_like
from tests.test_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    api_get,
    metal_frame,
    playwright_api,
    run_tensorboard,
    screenshot_dir,
)
from tests.test_clocks import DEMO

pytestmark = pytest.mark.slow


def test_compare_tab_shows_clocks_and_no_cross_clock_speedup(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("clocks_logdir")
    make_metal_like(DEMO / "cnn", logdir / "cnn")
    shutil.copytree(DEMO / "cnn_cpu", logdir / "cnn_cpu")
    with (
        run_tensorboard(logdir, tmp_path_factory.mktemp("tb_clocks")) as base,
        playwright_api.sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(60_000)
        names = sorted(s["name"] for s in api_get(base, "/sessions")["sessions"])
        metal = next(n for n in names if n.startswith("cnn/"))
        cpu = next(n for n in names if n.startswith("cnn_cpu/"))
        page.goto(f"{base}/#metal")
        frame = metal_frame(page)
        frame.locator("[data-testid=tab-compare]").click()
        frame.locator(f'input[data-session="{metal}"]').check()
        frame.locator(f'input[data-session="{cpu}"]').check()
        frame.locator("[data-testid=compare-row]").first.wait_for()
        cmp = api_get(base, "/compare", session=[metal, cpu], step="avg")
        crossed = 0
        for r in cmp["rows"]:
            row = frame.locator(f'[data-testid=compare-row][data-key="{"/".join(r["key"])}"]')
            cells = row.locator("td").all_inner_texts()
            if r["speedup_note"][1]:
                crossed += 1
                assert r["speedup"][1] is None
                assert cells[3] == "" and cells[4] == ""  # Δ and speedup left blank
                assert r["speedup_note"][1] in cells[-1]
            elif r["speedup"][1] is not None:
                assert cells[4] == f"{r['speedup'][1]:.2f}×"
        assert crossed >= 5
        conv1 = frame.locator('[data-testid=compare-row][data-key="cnn/conv1"]')
        assert "GPU dispatch / CPU (host)" in conv1.inner_text()
        assert "GPU dispatch time vs CPU compute time" in conv1.inner_text()
        totals = frame.locator("[data-testid=compare-totals]").inner_text()
        assert "step time (wall, avg)" in totals
        assert f"{cmp['totals']['speedup'][1]:.2f}×" in totals
        page.screenshot(path=str(screenshot_dir(tmp_path_factory) / "metal-compare-clocks.png"))
        browser.close()
