"""The Metal tab as a Mac user reads it (issue 14), in headless Chromium at 1000 and 1400 px.

On the committed demo traces (no TensorFlow needed): the demo runs as recorded, plus the `cnn`
run with its manifest rewritten as a Mac run records it (tests/metal_like.py), so measured
fallbacks exist. Checks: the verdict strip says what the API says; nothing is clipped
without a scroll that keeps the header and layer column in place; the view survives
reload and back/forward through the URL; the keyboard paths work. Also writes the README
screenshots (TB_METAL_SCREENSHOT_DIR=docs/screenshots refreshes the committed ones).
"""

from __future__ import annotations

import json
import shutil
import urllib.parse
from pathlib import Path

import pytest

from tests.metal_like import make_metal_like
from tests.test_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    api_get,
    fmt_time,
    leaves,
    metal_frame,
    playwright_api,
    run_tensorboard,
    screenshot_dir,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

DEMO = Path(__file__).resolve().parents[1] / "demo" / "logs"
METAL = "cnn_metal_like"


@pytest.fixture(scope="module")
def tab(tmp_path_factory):
    """TensorBoard on the demo runs plus a Metal-like run; yields (base URL, sessions)."""
    logdir = tmp_path_factory.mktemp("tab_logdir")
    for run in ("cnn", "cnn_cpu", "augment"):
        shutil.copytree(DEMO / run, logdir / run)
    make_metal_like(DEMO / "cnn", logdir / METAL)
    with run_tensorboard(logdir, tmp_path_factory.mktemp("tb_tab")) as base:
        yield base, api_get(base, "/sessions")["sessions"]


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def open_tab(browser, base, width, query="", ready="[data-testid=layer-row]"):
    """A page at `width` px on the Metal tab; returns (page, frame) once `ready` shows."""
    page = browser.new_page(viewport={"width": width, "height": 800 if width < 1400 else 900})
    page.set_default_timeout(60_000)
    page.goto(f"{base}/{query}#metal")
    frame = metal_frame(page)
    frame.locator(ready).first.wait_for()
    return page, frame


def session(sessions, run):
    return next(s["name"] for s in sessions if s["run"] == f"{run}/train")


def url_state(page) -> dict:
    q = urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)
    return {k[4:]: v[0] for k, v in q.items() if k.startswith("tbm_")}


def in_viewport(frame, selector) -> bool:
    return frame.evaluate(
        """sel => { const r = document.querySelector(sel).getBoundingClientRect();
                    return r.top >= 0 && r.top < innerHeight - 20; }""",
        selector,
    )


def pick_run(page, frame, name):
    frame.locator("[data-testid=session-select]").select_option(name)
    page.wait_for_function(
        "n => new URL(location.href).searchParams.get('tbm_run') === n", arg=name
    )
    frame.locator("[data-testid=verdict-strip]").wait_for()


# Elements sticking out of the frame's viewport, or cut by an ancestor, with no scroll box
# to reach them: [description], empty when nothing is clipped.
CLIPPED_JS = """() => {
  const bad = [];
  const scrolls = el => { for (let a = el.parentElement; a; a = a.parentElement) {
      const s = getComputedStyle(a);
      if (/(auto|scroll)/.test(s.overflowX) && a.scrollWidth > a.clientWidth) return true; }
    return false; };
  if (document.documentElement.scrollWidth > innerWidth + 1) bad.push('page scrolls sideways');
  for (const el of document.querySelectorAll('main *')) {
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height) continue;
    const shut = el.closest('details:not([open])');  // laid out, not shown, in Chromium
    if (shut && !el.closest('summary')) continue;
    if (r.right > innerWidth + 1 && !scrolls(el))
      bad.push(`${el.tagName}.${el.className} ends at ${Math.round(r.right)}: ` +
               (el.textContent || '').slice(0, 40));
  }
  for (const el of document.querySelectorAll('.tree-header .th-label, .data-table th')) {
    if (el.scrollWidth > el.clientWidth + 1) bad.push('header cut: ' + el.textContent);
  }
  return bad; }"""


@pytest.mark.parametrize("width", [1000, 1400])
def test_verdict_strip_matches_the_api(tab, browser, width, tmp_path_factory):
    base, sessions = tab
    # The default run is the newest session (profiler session folders are start times).
    newest = max(sessions, key=lambda s: s["session"])["name"]
    page, frame = open_tab(browser, base, width)
    assert url_state(page)["run"] == newest
    strip = frame.locator("[data-testid=verdict-strip]")

    # CPU-only run: slowest layers and, labelled PREDICTION, what would fall back on Metal.
    layers = api_get(base, "/layers", session=newest, step="all")
    ready = api_get(base, "/readiness", session=newest, step="all")
    want = sorted(leaves(layers["layers"]), key=lambda n: -n["total_ps"])[:3]
    slow = strip.locator("[data-testid=verdict-slow]")
    assert slow.evaluate_all("es => es.map(e => e.dataset.path)") == [
        "/".join(n["path"]) for n in want
    ]
    for i, n in enumerate(want):
        assert fmt_time(n["total_ps"]) in slow.nth(i).inner_text()
    fb_box = strip.locator("[data-testid=verdict-fallbacks]")
    fb_box.locator("[data-testid=verdict-fallback]").first.wait_for()
    assert fb_box.get_attribute("data-kind") == "predicted"
    assert "PREDICTION" in fb_box.inner_text()
    groups = [g for g in ready["layers"] + ready["buckets"] if g["verdict"] == "cpu_fallback"]
    groups.sort(key=lambda g: -g["fallback_ps"])
    items = fb_box.locator("[data-testid=verdict-fallback]")
    assert items.count() == min(4, len(groups)) > 0
    for i, g in enumerate(groups[:4]):
        text = items.nth(i).inner_text()
        assert fmt_time(g["fallback_ps"]) in text
        assert all(t in text for t in g["fallback_op_types"][:4])
    doctor = ready["environment_doctor"]
    assert (
        doctor and doctor["summary"] in strip.locator("[data-testid=verdict-doctor]").inner_text()
    )
    # Nothing of the answer needs scrolling, at 1000 px too.
    assert strip.bounding_box()["y"] + strip.bounding_box()["height"] <= 800

    # Each entry links to the layer's ops, brought into view.
    first = groups[0]["layer"]
    items.first.locator("button").click()
    frame.locator("[data-testid=ops-panel] h2", has_text=f"Ops of {' / '.join(first)}").wait_for()
    assert in_viewport(frame, "[data-testid=ops-panel] h2")
    assert url_state(page)["layer"] == "/".join(first)
    if width == 1400:
        page.evaluate("scrollTo(0, 0)")
        frame.evaluate("scrollTo(0, 0)")
        page.screenshot(path=str(screenshot_dir(tmp_path_factory) / "metal-layers.png"))

    # A run with a GPU: the measured fallbacks, one entry per layer, as the API groups them.
    metal = session(sessions, METAL)
    pick_run(page, frame, metal)
    mlayers = api_get(base, "/layers", session=metal, step="all")
    by_layer: dict[str, dict] = {}
    for f in mlayers["fallbacks"]:
        key = "/".join(f["path"] or [f["bucket"]])
        g = by_layer.setdefault(key, {"ps": 0, "types": set()})
        g["ps"] += f["self_ps"]
        g["types"].add(f["op_type"])
    assert by_layer, "the Metal-like run has measured fallbacks"
    fb_box = strip.locator("[data-testid=verdict-fallbacks][data-kind=measured]")
    fb_box.wait_for()
    shown = fb_box.locator("[data-testid=verdict-fallback]")
    ranked = sorted(by_layer, key=lambda k: (-by_layer[k]["ps"], k))[:4]
    assert shown.evaluate_all("es => es.map(e => e.dataset.path)") == ranked
    for i, key in enumerate(ranked):
        text = shown.nth(i).inner_text()
        assert fmt_time(by_layer[key]["ps"]) in text
        assert all(t in text for t in by_layer[key]["types"])
    assert "PREDICTION" not in fb_box.inner_text()
    page.close()


@pytest.mark.parametrize("width", [1000, 1400])
def test_nothing_is_clipped_without_a_scroll(tab, browser, width):
    base, sessions = tab
    metal = session(sessions, METAL)
    page, frame = open_tab(browser, base, width, f"?tbm_run={urllib.parse.quote(metal)}")
    frame.locator("[data-testid=readiness-headline]").wait_for()
    assert frame.evaluate(CLIPPED_JS) == []

    # Phase columns that are zero for every layer are hidden, the toggle brings them back.
    layers = api_get(base, "/layers", session=metal, step="all")
    used = {p for n in leaves(layers["layers"]) for p, v in n["phases"].items() if v}
    header = frame.locator("[data-testid=tree-header]")
    keys = header.locator("[data-key]").evaluate_all("es => es.map(e => e.dataset.key)")
    assert {k[6:] for k in keys if k.startswith("phase:")} == used
    # The headers name the clock: a Metal run's GPU times are host-side.
    assert "host-side" in header.locator("[data-key=total]").inner_text()
    frame.locator("[data-testid=toggle-empty-cols] input").check()
    keys = header.locator("[data-key]").evaluate_all("es => es.map(e => e.dataset.key)")
    assert {"phase:optimizer", "phase:loss"} <= set(keys)

    # Wider than its box now (at 1000 px): it scrolls sideways, keeping the header over
    # its columns and the layer column in place.
    body = frame.locator("[data-testid=layer-tree]")
    wide = body.evaluate("b => b.scrollWidth > b.clientWidth")
    assert wide or width == 1400
    assert frame.evaluate(CLIPPED_JS) == []
    body.evaluate("b => { b.scrollLeft = b.scrollWidth; }")
    page.wait_for_timeout(100)
    left = body.bounding_box()["x"]
    row = frame.locator("[data-testid=layer-row]").first
    name_cell = row.locator(".cell.name")
    assert abs(name_cell.bounding_box()["x"] - left) <= 2
    assert abs(header.locator("[data-key=name]").bounding_box()["x"] - left) <= 2
    for col in ("total", "share"):
        head_x = header.locator(f"[data-key={col}]").bounding_box()
        cell_x = row.locator(f"[data-col={col}]").bounding_box()
        assert abs(head_x["x"] - cell_x["x"]) <= 1 and abs(head_x["width"] - cell_x["width"]) <= 1
    page.close()


def test_url_keeps_the_view_through_reload_and_history(tab, browser):
    base, sessions = tab
    page, frame = open_tab(browser, base, 1400)
    cpu = session(sessions, "cnn_cpu")
    pick_run(page, frame, cpu)
    frame.locator("[data-testid=step-select]").select_option("avg")
    frame.locator("[data-testid=card-step-time]", has_text="avg").wait_for()
    frame.locator('[data-testid=layer-row][data-path="cnn/conv2"]').click()
    frame.locator("[data-testid=ops-panel] h2", has_text="Ops of cnn / conv2").wait_for()
    assert url_state(page) == {"run": cpu, "host": "vm", "step": "avg", "layer": "cnn/conv2"}

    # Back: the layer goes, then the step; forward brings them back.
    page.go_back()
    page.wait_for_function("!new URL(location.href).searchParams.get('tbm_layer')")
    frame.locator("[data-testid=ops-panel] .empty").wait_for()
    page.go_back()
    page.wait_for_function("!new URL(location.href).searchParams.get('tbm_step')")
    frame.locator("[data-testid=card-step-time]", has_text="profiled steps").wait_for()
    page.go_forward()
    frame.locator("[data-testid=card-step-time]", has_text="avg").wait_for()
    assert frame.locator("[data-testid=step-select]").input_value() == "avg"
    page.go_forward()
    frame.locator("[data-testid=ops-panel] h2", has_text="Ops of cnn / conv2").wait_for()
    assert url_state(page) == {"run": cpu, "host": "vm", "step": "avg", "layer": "cnn/conv2"}

    # Reload (TensorBoard re-creates the iframe): same run, step and layer, its ops open.
    page.reload()
    frame = metal_frame(page)
    frame.locator("[data-testid=ops-panel] h2", has_text="Ops of cnn / conv2").wait_for()
    assert frame.locator("[data-testid=session-select]").input_value() == cpu
    assert frame.locator("[data-testid=step-select]").input_value() == "avg"
    row = frame.locator('[data-testid=layer-row][data-path="cnn/conv2"]')
    assert row.get_attribute("aria-selected") == "true"

    # Compare: the set and its baseline are in the URL too.
    metal = session(sessions, METAL)
    frame.locator("[data-testid=tab-compare]").click()
    frame.locator(f'input[data-session="{metal}"]').check()
    frame.locator(f'input[data-session="{cpu}"]').check()
    frame.locator("[data-testid=compare-row]").first.wait_for()
    frame.locator(f'[data-testid=make-baseline][data-session="{cpu}"]').click()
    page.wait_for_function(
        "c => new URL(location.href).searchParams.get('tbm_cmp') === c",
        arg=json.dumps([[cpu, "vm"], [metal, "vm"]], separators=(",", ":")),
    )
    page.reload()
    frame = metal_frame(page)
    frame.locator("[data-testid=compare-row]").first.wait_for()
    head = frame.locator("[data-testid=compare-totals] thead th").all_inner_texts()
    assert head[1].startswith("cnn_cpu") and "baseline" in head[1]
    page.close()


def test_compare_says_what_changed(tab, browser, tmp_path_factory):
    base, sessions = tab
    cnn, cpu = session(sessions, "cnn"), session(sessions, "cnn_cpu")
    metal = session(sessions, METAL)
    cmp_set = json.dumps([[metal, "vm"], [cpu, "vm"]])
    page, frame = open_tab(
        browser,
        base,
        1400,
        f"?tbm_view=compare&tbm_cmp={urllib.parse.quote(cmp_set)}",
        "[data-testid=compare-row]",
    )
    frame.locator("[data-testid=compare-row]").first.wait_for()
    data = api_get(base, "/compare", session=[metal, cpu], step="avg")
    # Run names head the columns, not the profiler's timestamped session folders.
    head = frame.locator("[data-testid=compare-totals] thead th").all_inner_texts()
    assert head[1].startswith(METAL) and head[2].startswith("cnn_cpu")
    assert not any(s.split("/")[-1] in "".join(head) for s in (metal, cpu))
    assert "host_only" not in frame.locator("[data-testid=compare-view]").inner_text()
    zero = [r for r in data["rows"] if not any(r["total_ps"][i] for i in range(2))]
    shown = frame.locator("[data-testid=compare-row]")
    assert shown.count() == len(data["rows"]) - len(zero)
    for r in data["rows"]:
        row = frame.locator(f'[data-testid=compare-row][data-key="{"/".join(r["key"])}"]')
        if r in zero:
            assert row.count() == 0  # zero-time layers (a renamed InputLayer) hidden
            continue
        a, b = r["fallback_count"]
        want = f"{a} → {b} ({'+' if b > a else '−' if b < a else '±'}{abs(b - a)})"
        cell = row.locator("[data-testid=fallback-delta]")
        assert cell.inner_text() == want
        for ps in r["fallback_ps"]:  # the fallen-back CPU time of each run, on hover
            assert fmt_time(ps) in cell.get_attribute("title")
        assert row.locator("[data-testid=compare-split] .split-bar").count() == 2
    # The fallback the Metal run had and the CPU run has not shows as a change.
    assert any(r["fallback_count"][0] != r["fallback_count"][1] for r in data["rows"])
    # Swapping the baseline flips the speedup the API reports for the same pair.
    frame.locator("[data-testid=make-baseline-col]").click()
    swapped = api_get(base, "/compare", session=[cpu, metal], step="avg")
    frame.locator("[data-testid=compare-totals] thead th", has_text="cnn_cpu").locator(
        ".badge.base"
    ).wait_for()
    total = frame.locator("[data-testid=total-speedup]").all_inner_texts()
    assert total[1] == f"{swapped['totals']['speedup'][1]:.2f}×"
    # The original demo pair for the README: both CPU runs, one clock, real speedups.
    frame.locator(f'input[data-session="{metal}"]').uncheck()
    frame.locator(f'input[data-session="{cpu}"]').uncheck()
    frame.locator(f'input[data-session="{cnn}"]').check()
    frame.locator(f'input[data-session="{cpu}"]').check()
    frame.locator("[data-testid=compare-row]").first.wait_for()
    page.screenshot(path=str(screenshot_dir(tmp_path_factory) / "metal-compare.png"))
    page.close()


def test_keyboard_paths(tab, browser, tmp_path_factory):
    base, sessions = tab
    metal = session(sessions, METAL)
    page, frame = open_tab(browser, base, 1000, f"?tbm_run={urllib.parse.quote(metal)}")
    rows = frame.locator("[data-testid=layer-row]")
    active = "document.activeElement.dataset.path ?? null"
    # The tree is one Tab stop: Tab from its last header lands on a row, the next Tab leaves.
    frame.locator("[data-testid=tree-header] [data-key=metal]").focus()
    page.keyboard.press("Tab")
    first = frame.evaluate(active)
    assert first == rows.first.get_attribute("data-path")
    page.keyboard.press("Tab")
    assert frame.evaluate("document.activeElement.dataset.testid") != "layer-row"
    page.keyboard.press("Shift+Tab")
    assert frame.evaluate(active) == first
    # End / Home: the last and first rows; Down then Left: back to the parent.
    page.keyboard.press("End")
    assert frame.evaluate(active) == rows.last.get_attribute("data-path")
    page.keyboard.press("Home")
    assert frame.evaluate(active) == first
    page.keyboard.press("ArrowDown")
    child = frame.evaluate(active)
    assert child.startswith(first + "/")
    page.keyboard.press("ArrowLeft")
    assert frame.evaluate(active) == first
    # Enter opens the ops of the focused layer.
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    frame.locator("[data-testid=ops-panel] h2", has_text=f"Ops of {child.replace('/', ' / ')}")
    frame.locator("[data-testid=ops-panel] h2", has_text="Ops of").wait_for()
    # Sortable headers are focusable and sort on Enter.
    name_head = frame.locator("[data-testid=tree-header] [data-key=name]")
    name_head.focus()
    page.keyboard.press("Enter")
    assert name_head.get_attribute("aria-sort") == "ascending"
    # Clickable table rows: focus, Enter opens the layer's ops.
    fb_row = frame.locator("[data-testid=fallback-row]").first
    target = fb_row.get_attribute("data-path")
    fb_row.focus()
    page.keyboard.press("Enter")
    frame.locator("[data-testid=ops-panel] h2", has_text=f"in {target}").wait_for()
    th = frame.locator("[data-testid=fallback-table] th").first
    th.focus()
    page.keyboard.press("Enter")
    assert th.get_attribute("aria-sort") in ("ascending", "descending")
    # Op names are shortened in the middle, whole on hover.
    for op in frame.locator("[data-testid=op-row] .op-name").all():
        full, shown = op.get_attribute("title"), op.inner_text()
        if shown != full:
            head, tail = shown.split("…")
            assert full.startswith(head) and full.endswith(tail) and len(tail) > len(head)
    page.close()


def test_chart_note_follows_the_stacking_and_readiness_shot(tab, browser, tmp_path_factory):
    base, sessions = tab
    augment = session(sessions, "augment")
    page, frame = open_tab(browser, base, 1400, f"?tbm_run={urllib.parse.quote(augment)}")
    note = frame.locator("[data-testid=chart-note]")
    assert "stacked by device" in note.inner_text()
    frame.locator("[data-testid=stack-select]").select_option("phase")
    assert "stacked by phase" in note.inner_text()
    # A CPU-only Linux run does not talk about GPU-placed ops.
    assert "GPU-placed" not in frame.locator("[data-testid=note-time]").inner_text()
    # Reasons said once per sentence: no "Why" line repeats in a readiness row.
    panel = frame.locator("[data-testid=readiness-panel]")
    panel.locator("[data-testid=readiness-row]").first.wait_for()
    for reasons in panel.locator("ul.reasons").all():
        lines = reasons.locator("li").all_inner_texts()
        assert len(lines) == len(set(lines))
    # The panel just under the tab's sticky bar, in a window tall enough for all of it.
    page.set_viewport_size({"width": 1400, "height": 1100})
    frame.evaluate(
        """() => { const r = document.querySelector('[data-testid=readiness-panel]');
                   scrollTo(0, r.getBoundingClientRect().top + scrollY - 56); }"""
    )
    page.wait_for_timeout(200)
    page.screenshot(path=str(screenshot_dir(tmp_path_factory) / "metal-readiness.png"))
    page.close()


def test_shares_over_100_percent_are_explained_in_place(tab, browser):
    base, sessions = tab
    for run in ("cnn_cpu", "augment"):
        name = session(sessions, run)
        layers = api_get(base, "/layers", session=name, step="all")
        page, frame = open_tab(browser, base, 1000, f"?tbm_run={urllib.parse.quote(name)}")
        over = layers["total_ps"] > layers["step_time_ps"]
        note = frame.locator("[data-testid=over-100-note]")
        assert note.count() == int(over), run
        card = frame.locator("[data-testid=card-total-time]")
        if over:  # op time past the wall-clock step: parallel threads, said where it shows
            assert "parallel threads" in note.inner_text()
            assert "parallel threads" in card.get_attribute("title")
        else:
            assert card.get_attribute("title") is None
        frame.locator("[data-testid=tree-header]").wait_for()
        frame.evaluate(
            "() => document.querySelectorAll('.toggle[aria-expanded=false]')"
            ".forEach(b => b.click())"
        )
        marked = frame.locator("[data-testid=layer-row]:has([data-testid=over-100])")
        want = sorted(
            "/".join(n["path"])
            for n in [*layers["layers"], *layers["buckets"]]
            if (n.get("step_share") or 0) > 1
        )
        assert sorted(marked.evaluate_all("rs => rs.map(r => r.dataset.path)")) == want
        page.close()
