"""The particle viewer in a real headless Chromium (Debian's), driven by Playwright,
against a real worker and a real `partisim serve`: "Ver simulación" on a finished task
plays frames that advance and ends at the task's own counters and checksum; the form's
button plays its first combination."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from dash_support import CHROMIUM_FLAGS, Fleet
from helpers.processes import wait_for
from playwright.sync_api import expect, sync_playwright

from partisim.sim.numbers import integer

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1280, "height": 860}
PARAMS = {"NUM_PARTICULAS": 120, "NUM_PASOS": 400, "SEMILLA": 3, "ANCHO_MUNDO": 300.0, "ALTO_MUNDO": 200.0}


def _es(n: int) -> str:
    """The page's integers, as the CLI writes them (sim.numbers.integer)."""
    return integer(n)


# Words of the viewer's title and stat labels drawn across two lines (a mid-word break).
_SPLIT_WORDS = """() => {
  const out = [];
  for (const el of document.querySelectorAll('#viewer-title, #viewer .viewer-stat .c-label')) {
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.data.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
        if (tops.size > 1) out.push(m[0]);
      }
    }
  }
  return out;
}"""

# the viewer's text, for numbers written with a thousands dot ("3.000")
_VIEWER_TEXT = (
    "() => ['viewer-subtitle', 'viewer-step', 'viewer-pc', 'viewer-wc', 'viewer-note']"
    ".map((id) => document.getElementById(id).textContent).join(' | ')"
)


_WATCH_FRAMES = """() => {
  window.__frames = [];
  const canvas = document.getElementById("viewer-canvas");
  const note = () => window.__frames.push(Number(canvas.dataset.frame));
  new MutationObserver(note).observe(canvas, {attributes: true, attributeFilter: ["data-frame"]});
}"""


def test_viewer_plays_a_task_to_its_counters(chromium: str, small_fleet: Fleet, tmp_path: Path) -> None:
    problems: list[str] = []
    with httpx.Client(base_url=small_fleet.serve.url, timeout=30.0, trust_env=False) as api:
        sent = api.post("/api/tasks", json={"benchmark": "cython", "params": PARAMS})
        task_id = sent.json()["ids"][0]
        task = wait_for(
            lambda: (t := api.get(f"/api/tasks/{task_id}").json())["status"] == "success" and t, 60, "the task"
        )
    result = task["result"]

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport=LAPTOP, locale="es-ES")
            page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.goto(small_fleet.serve.url + "/")
            row = page.locator(f'#recent-table tr[data-key="{task_id}"]')
            expect(row.locator(".badge")).to_have_text("Completada", timeout=15_000)

            row.get_by_role("button", name="Ver simulación").click()
            viewer = page.locator("#viewer")
            expect(viewer).to_be_visible()
            expect(page.locator("#viewer-title")).to_have_text(f"Simulación de la tarea {task_id}")
            # slow from the start (the controls exist while the frames load), a picture
            # mid-run, then faster to the end
            page.evaluate(_WATCH_FRAMES)
            page.select_option("#viewer-speed", "0.25")
            expect(viewer).to_have_attribute("data-state", "playing", timeout=30_000)
            wait_for(lambda: int(page.get_attribute("#viewer-canvas", "data-frame") or 0) >= 40, 30, "frame 40")
            page.screenshot(path=str(tmp_path / "viewer-mid-run.png"))
            mid_step = page.inner_text("#viewer-step")
            assert re.fullmatch(r"\d+ de 400", mid_step), mid_step
            page.select_option("#viewer-speed", "4")
            expect(viewer).to_have_attribute("data-state", "end", timeout=60_000)

            frames = page.evaluate("window.__frames")
            assert len(set(frames)) >= 10, f"the frames should advance one after another, saw {frames}"
            assert frames == sorted(frames), f"frames went backwards: {frames}"
            expect(page.locator("#viewer-step")).to_have_text("400 de 400")
            expect(page.locator("#viewer-pc")).to_have_text(_es(result["particle_collisions"]))
            expect(page.locator("#viewer-wc")).to_have_text(_es(result["wall_collisions"]))
            assert result["particle_collisions"] > 0 and result["wall_collisions"] > 0
            expect(page.locator("#viewer-check")).to_have_class(re.compile(r"\bok\b"))
            expect(page.locator("#viewer-check")).to_contain_text(result["checksum"][:12])
            expect(page.locator("#viewer-note")).to_contain_text("Se dibujan las 120 partículas")
            expect(page.locator("#viewer-play")).to_have_text("↺ Repetir")
            # the canvas keeps the box's aspect ratio (300 × 200)
            box = page.locator("#viewer-canvas").bounding_box()
            assert box is not None and abs(box["width"] / box["height"] - 1.5) < 0.02

            # pause and scrub: the counters follow the slider
            page.click("#viewer-play")
            page.click("#viewer-play")
            expect(viewer).to_have_attribute("data-state", "paused")
            page.locator("#viewer-slider").fill("0")
            expect(page.locator("#viewer-step")).to_have_text("0 de 400")
            expect(page.locator("#viewer-pc")).to_have_text("0")
            page.keyboard.press("Escape")
            expect(viewer).to_be_hidden()

            # from the form: the first combination of its lists
            page.locator("#sweep-form input[name=engine][value=cython]").set_checked(True)
            page.fill("#particles", "30,60")
            page.fill("#steps", "50")
            page.fill("#seeds", "9")
            page.click("#sweep-view")
            expect(page.locator("#viewer-title")).to_have_text("Simulación del formulario (primera combinación)")
            expect(viewer).to_have_attribute("data-state", re.compile("playing|end"), timeout=30_000)
            expect(page.locator("#viewer-subtitle")).to_contain_text("30 partículas · 50 pasos · semilla 9")
            expect(viewer).to_have_attribute("data-state", "end", timeout=30_000)
            expect(page.locator("#viewer-step")).to_have_text("50 de 50")

            # the form's box travels too: 8000 particles in a 3000,5 × 3000 box (too dense
            # for the default 800 × 600), drawn with the dashboard's numbers
            page.keyboard.press("Escape")
            page.fill("#particles", "8000")
            page.fill("#steps", "20")
            page.fill("#width", "3000,5")
            page.fill("#height", "3000")
            page.click("#sweep-view")
            expect(viewer).to_have_attribute("data-state", "end", timeout=60_000)
            subtitle = page.locator("#viewer-subtitle")
            expect(subtitle).to_contain_text("8000 partículas · 20 pasos · semilla 9 · caja 3000,5 × 3000")
            expect(subtitle).to_contain_text(re.compile(r"\d+ fotogramas, uno cada paso$"))
            expect(page.locator("#viewer-step")).to_have_text("20 de 20")
            shown = page.evaluate(_VIEWER_TEXT)
            assert not re.search(r"\d\.\d{3}", shown), shown
            assert "1 pasos" not in shown, shown
            box = page.locator("#viewer-canvas").bounding_box()
            assert box is not None and abs(box["width"] / box["height"] - 3000.5 / 3000) < 0.02
            assert page.evaluate("window.partisimFormat.fmtInt(163868)") == "163\u00a0868"
            page.fill("#width", "800")
            page.fill("#height", "600")

            # an error is shown in the viewer, in Spanish
            page.keyboard.press("Escape")
            page.fill("#particles", "1000")
            page.fill("#steps", "1000000")
            page.click("#sweep-view")
            expect(page.locator("#viewer-status")).to_contain_text("demasiado grande para el visor")
            expect(viewer).to_have_attribute("data-state", "error")

            # on a phone: the viewer fits the screen, nothing scrolls sideways
            page.keyboard.press("Escape")
            page.set_viewport_size({"width": 390, "height": 844})
            row.get_by_role("button", name="Ver simulación").click()
            expect(viewer).to_have_attribute("data-state", re.compile("playing|end"), timeout=30_000)
            page.screenshot(path=str(tmp_path / "viewer-phone.png"))
            canvas = page.locator("#viewer-canvas").bounding_box()
            assert canvas is not None and canvas["x"] >= 0 and canvas["x"] + canvas["width"] <= 390
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            # small phones: words wrap whole (labels at their spaces, the id as one piece)
            for width in (390, 320):
                page.set_viewport_size({"width": width, "height": 700})
                page.wait_for_timeout(200)
                assert page.evaluate(_SPLIT_WORDS) == [], f"{width} px: words broken mid-word"
                assert page.evaluate("document.documentElement.scrollWidth") == width
            id_box = page.locator("#viewer-title .viewer-id").bounding_box()
            assert id_box is not None and id_box["x"] + id_box["width"] <= 320
        finally:
            browser.close()
    unexpected = [m for m in problems if "status of 422" not in m]
    assert not unexpected, unexpected
