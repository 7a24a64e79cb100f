"""The host picker's "all hosts" in headless Chromium: the all-hosts table says what the API
says, and picking one host goes back to its own breakdown. A session of three hosts built
from committed real traces (no TensorFlow needed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tb_metal_plugin import api
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, metal_frame, playwright_api, run_tensorboard

pytestmark = [pytest.mark.slow, pytest.mark.browser]

FIXTURES = Path(__file__).parent / "fixtures" / "attribution"
HOSTS = {"worker0": "conv_bn", "worker1": "conv_bn", "worker2": "mixed_float16"}


def test_all_hosts_in_the_tab(tmp_path):
    d = tmp_path / "logs" / "run" / "plugins" / "profile" / "2026_01_01_00_00_00"
    d.mkdir(parents=True)
    for host, fixture in HOSTS.items():
        shutil.copyfile(next((FIXTURES / fixture).rglob("*.xplane.pb")), d / f"{host}.xplane.pb")
    want = api.load_session(tmp_path / "logs").layers("all")
    (tmp_path / "tb").mkdir()
    with run_tensorboard(tmp_path / "logs", tmp_path / "tb") as base:
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(60_000)
            page.goto(f"{base}/#metal")
            frame = metal_frame(page)
            frame.locator("[data-testid=layer-row]").first.wait_for()
            frame.locator("[data-testid=host-select]").select_option("all")
            table = frame.locator("[data-testid=all-hosts]")
            table.wait_for()
            rows = table.locator("tbody tr")
            assert rows.count() == len(want["layers"])
            first = rows.first.locator("td").all_inner_texts()
            top = want["layers"][0]
            assert first[0] == ("[bucket] " if top["bucket"] else "") + " / ".join(top["path"])
            assert first[3] == top["slowest_host"]
            frame.locator("[data-testid=host-select]").select_option("worker2")
            frame.locator("[data-testid=layer-row]").first.wait_for()
            assert table.count() == 0
            browser.close()
