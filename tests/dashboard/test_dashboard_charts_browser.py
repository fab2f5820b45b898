"""The dashboard after several sweeps, in a real headless Chromium driven by Playwright,
against real workers and a real `partisim serve`.

What people look at once more than one sweep exists: every series drawn with a style of
its own (colour, marker, dash), a batch selector that changes what is drawn, tick and
value labels that never run into each other, no card, pill or label overflowing its box
at laptop and phone widths, and, with every worker down, the "Qué revisar" checklist
and a warning on a sweep that will wait in the queue.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from dash_support import CHROMIUM_FLAGS, Fleet
from helpers.processes import wait_for
from playwright.sync_api import expect, sync_playwright

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = Path("/tmp/partisim-shots")
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
SMALL_PHONE = {"width": 320, "height": 700}

#: three sweeps: two differ only in their step count, the third adds numpy
SWEEPS = [
    {"engines": "python,cython", "particles": "16,32,64", "steps": "20", "seeds": "1,2"},
    {"engines": "python,cython", "particles": "16,32,64", "steps": "40", "seeds": "1"},
    {"engines": "python,numpy,cython", "particles": "16,32,64,128", "steps": "30", "seeds": "1"},
]

# Every box a reader looks at: cards, the header pill, labels and legend entries.
_OVERFLOW = """() => {
  const boxes = document.querySelectorAll(
    '.panel, .counter, .conn, .c-label, .c-value, .panel-head h2, .panel-head p, .badge, .chart-choice, ' +
    '#chart-batch, #chart-note, .legend li, .field, .engines label, .no-workers .alert, .checklist li, .message, ' +
    '.chart svg');
  const out = [];
  for (const el of boxes) {
    if (!el.getClientRects().length || getComputedStyle(el).display === 'inline') continue;
    if (el.scrollWidth > el.clientWidth) {
      out.push(`${el.tagName.toLowerCase()}.${el.className.baseVal ?? el.className} ` +
               `"${el.textContent.trim().slice(0, 24)}": ${el.scrollWidth} > ${el.clientWidth}`);
    }
  }
  return { overflow: out, page: document.documentElement.scrollWidth, view: innerWidth };
}"""

# Pairs of labels of one chart whose boxes intersect (ticks of an axis, bar values).
_COLLISIONS = """(id) => {
  const labels = [...document.querySelectorAll(`#${id} text.x-tick, #${id} text.bar-label, #${id} text.tick`)];
  const boxes = labels.map((t) => [t.textContent, t.getBoundingClientRect()]);
  const out = [];
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const [ta, a] = boxes[i], [tb, b] = boxes[j];
    const overlap = a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1;
    if (overlap) out.push(`${ta} / ${tb}`);
  }
  return { count: labels.length, out };
}"""

# The value axis and the x title of one chart (drawn by the helpers all charts share).
_AXES = """(id) => ({
  ticks: document.querySelectorAll(`#${id} g.axis text.tick:not(.x-tick)`).length,
  gridlines: document.querySelectorAll(`#${id} g.axis line.gridline`).length,
  titles: [...document.querySelectorAll(`#${id} g.axis text.axis-title`)].map((t) => t.textContent),
})"""


# the charts were drawn again for the current width (after a resize)
_REDRAWN = """() => ['chart-time', 'chart-speedup'].every((id) => {
  const box = document.getElementById(id);
  const svg = box.querySelector('svg');
  return svg && Number(svg.getAttribute('width')) === Math.max(200, Math.floor(box.clientWidth));
})"""


def _drawn(page) -> list[dict[str, str]]:
    return page.eval_on_selector_all(
        "#chart-time g.series", "gs => gs.map(g => ({key: g.dataset.key, style: g.dataset.style}))"
    )


def _legend_styles(page) -> list[str]:
    return page.eval_on_selector_all("#legend-time li", "items => items.map(li => li.dataset.style)")


def _assert_distinct_styles(page, expected: dict) -> None:
    series = expected["series"]
    expect(page.locator("#chart-time g.series")).to_have_count(len(series))
    drawn = _drawn(page)
    assert sorted(d["key"] for d in drawn) == sorted(s["key"] for s in series)
    legend = _legend_styles(page)
    assert len(legend) == len(series) and len(set(legend)) == len(legend), f"legend styles repeat: {legend}"
    assert sorted(legend) == sorted(d["style"] for d in drawn)
    # a marker shape per engine besides the colour: no two engines share one
    shapes = {(s["engine"], s["marker"]) for s in series}
    assert len({m for _, m in shapes}) == len({e for e, _ in shapes})


def _no_collisions(page) -> None:
    for chart in ("chart-time", "chart-speedup"):
        found = page.evaluate(_COLLISIONS, chart)
        assert found["count"] > 0, f"{chart}: no labels drawn"
        assert found["out"] == [], f"{chart}: labels overlap: {found['out']}"
        axes = page.evaluate(_AXES, chart)
        assert axes["ticks"] >= 2 and axes["gridlines"] >= axes["ticks"], f"{chart}: no value axis: {axes}"
        assert "partículas" in axes["titles"], f"{chart}: no x title: {axes}"


def _no_overflow(page, where: str) -> None:
    found = page.evaluate(_OVERFLOW)
    assert found["overflow"] == [], f"{where}: boxes overflow: {found['overflow']}"
    assert found["page"] <= found["view"], f"{where}: the page scrolls sideways ({found['page']} px)"


def test_charts_after_three_sweeps_in_real_chromium(chromium: str, fleet: Fleet) -> None:
    api = httpx.Client(base_url=fleet.serve.url, timeout=30.0, trust_env=False)
    batches = []
    for body in SWEEPS:
        answer = api.post("/api/sweeps", json=body)
        assert answer.status_code == 201, answer.text
        assert answer.json()["warning"] is None  # workers are active
        batches.append(answer.json()["batch"])
    for batch in batches:
        wait_for(lambda b=batch: api.get("/api/summary", params={"batch": b}).json()["done"], 120, f"{batch} done")
    # the sweeps share 2-slot workers, so their runs are "busy" and the speed-up leaves them out
    # by default: this test draws them all (the page's checkbox, the API's contended=1)
    charts = {
        key: api.get("/api/charts", params={"batch": key, "contended": "1"}).json()
        for key in ("latest", "todos", batches[0])
    }
    assert charts["latest"]["batch"] == batches[2]
    assert charts["todos"]["varied"] == ["NUM_PASOS"]
    SHOTS.mkdir(exist_ok=True)
    problems: list[str] = []

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport=LAPTOP, locale="es-ES")
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.goto(fleet.serve.url + "/")
            expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=10_000)
            page.check("#chart-contended")

            # by default: the latest batch, one configuration, so the colour says the engine
            expect(page.locator("#chart-batch")).to_have_value("latest")
            _assert_distinct_styles(page, charts["latest"])
            expect(page.locator("#chart-note")).to_contain_text(f"lote {batches[2]}")
            expect(page.locator("#chart-speedup rect.bar")).to_have_count(len(charts["latest"]["speedup"]))
            _no_collisions(page)
            page.screenshot(path=str(SHOTS / "dashboard-laptop.png"), full_page=True)

            # every batch: two step counts, each line its own colour, marker and dash
            page.select_option("#chart-batch", "todos")
            _assert_distinct_styles(page, charts["todos"])
            assert len(charts["todos"]["series"]) > len(charts["latest"]["series"])
            labels = page.locator("#legend-time li").all_inner_texts()
            assert all("pasos" in text for text in labels), labels
            expect(page.locator("#chart-speedup rect.bar")).to_have_count(len(charts["todos"]["speedup"]))
            _no_collisions(page)
            page.screenshot(path=str(SHOTS / "dashboard-laptop-todos.png"), full_page=True)

            # one older batch: only what it ran
            page.select_option("#chart-batch", batches[0])
            _assert_distinct_styles(page, charts[batches[0]])
            expect(page.locator("#chart-note")).to_contain_text(f"lote {batches[0]}")
            # the values behind the chart, for whoever cannot hover
            page.click("#chart-time + .legend + details summary")
            rows = page.locator("#values-time tbody tr")
            expect(rows).to_have_count(sum(len(s["points"]) for s in charts[batches[0]]["series"]))

            # a phone: the same choice of batch, nothing spills out of its box
            phone = browser.new_page(
                viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="es-ES"
            )
            phone.on("pageerror", lambda exc: problems.append(str(exc)))
            phone.goto(fleet.serve.url + "/")
            expect(phone.locator("#conn")).to_have_attribute("data-state", "live", timeout=10_000)
            phone.check("#chart-contended")
            _assert_distinct_styles(phone, charts["latest"])
            _no_collisions(phone)
            _no_overflow(phone, "390 px")
            phone.screenshot(path=str(SHOTS / "dashboard-phone.png"), full_page=True)
            phone.select_option("#chart-batch", "todos")
            _assert_distinct_styles(phone, charts["todos"])
            _no_collisions(phone)
            phone.close()

            # every worker down: the checklist the CLI prints, and a warning on submit
            for worker in fleet.workers.values():
                worker.kill()
            alarm = page.locator("#no-workers")
            expect(alarm).to_be_visible(timeout=20_000)
            expect(alarm.locator(".alert")).to_have_text("NO HAY MÁQUINAS ACTIVAS")
            expect(alarm).to_contain_text("Qué revisar")
            expect(alarm.locator(".checklist li")).to_have_count(4)
            expect(alarm.locator(".checklist li").first).to_contain_text("start_worker.sh")
            page.fill("#particles", "16")
            page.fill("#steps", "20")
            page.fill("#seeds", "1")
            page.click("#sweep-submit")
            message = page.locator("#sweep-message")
            expect(message).to_have_class(re.compile(r"\bwarn\b"))
            expect(message).to_contain_text("se quedarán en cola hasta que un worker responda")

            page.click("#chart-speedup + .legend + details summary")  # both tables open
            for size, where in ((LAPTOP, "1366 px"), (PHONE, "390 px"), (SMALL_PHONE, "320 px")):
                page.set_viewport_size(size)
                page.wait_for_function(_REDRAWN)
                _no_overflow(page, where)
                _no_collisions(page)
            page.screenshot(path=str(SHOTS / "dashboard-small-phone-no-workers.png"), full_page=True)
            assert problems == [], problems
        finally:
            browser.close()
            api.close()
    for name in ("dashboard-laptop.png", "dashboard-phone.png"):
        assert (SHOTS / name).stat().st_size > 10_000
