"""End to end: the dashboard in a real headless Chromium (Debian's), driven by
Playwright, against two real workers and a real `partisim serve`.

One scenario, in the order a person would use the page: open it, submit a sweep
from the form, watch the counters, results and charts arrive without reloading,
cancel tasks, lose a worker, type bad input, and lose (and regain) the server.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import httpx
import pytest
from dash_support import CHROMIUM_FLAGS, Fleet, check_live_message
from playwright.sync_api import expect, sync_playwright

from partisim.sim.numbers import decimal, integer

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

# Chromium reports every 4xx answer on the console as "Failed to load resource".
# The form's bad-input step gets 422 from /api/sweeps on purpose; nothing else may.
EXPECTED_422 = re.compile(r"Failed to load resource: the server responded with a status of 422")


def _record_console(page, sink: list[str]) -> None:
    def on_console(msg) -> None:
        if msg.type not in ("error", "warning"):
            return
        url = (msg.location or {}).get("url", "")
        if EXPECTED_422.search(msg.text) and url.endswith("/api/sweeps"):
            return
        sink.append(f"{msg.type}: {msg.text} ({url})")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: sink.append(f"pageerror: {exc}"))


def _sweep(
    page, *, engines: tuple[str, ...], particles: str, steps: str, seeds: str, repeat: str = "1", dt: str = "0,1"
) -> None:
    for engine in ("python", "numpy", "cython"):
        box = page.locator(f"#sweep-form input[name=engine][value={engine}]")
        box.set_checked(engine in engines)
    page.fill("#particles", particles)
    page.fill("#steps", steps)
    page.fill("#seeds", seeds)
    page.fill("#repeat", repeat)
    page.fill("#dt", dt)
    page.click("#sweep-submit")


def _ratio(x: float) -> str:
    """The page's Spanish format for a speedup, the CLI's and the report's: 1234×, 56,7×, 3,21×."""
    digits = 0 if x >= 100 else 1 if x >= 10 else 2
    return f"{decimal(x, digits)}×"


_RECORD_COUNTERS = """() => {
  window.__seen = {success: [], running: []};
  window.__noReload = "same page";
  for (const name of ["success", "running"]) {
    const node = document.getElementById("count-" + name);
    const note = () => window.__seen[name].push(node.textContent);
    note();
    new MutationObserver(note).observe(node, {childList: true, characterData: true, subtree: true});
  }
}"""


#: keeps the data of every live event the page's own EventSource receives, in window.__live
_RECORD_LIVE = """(() => {
  const Original = window.EventSource;
  window.__live = [];
  window.EventSource = class extends Original {
    constructor(url, init) {
      super(url, init);
      for (const name of ["snapshot", "update", "heartbeat"]) {
        this.addEventListener(name, (event) => window.__live.push(event.data));
      }
    }
  };
})();"""


def test_dashboard_live_in_real_chromium(chromium: str, fleet: Fleet, tmp_path: Path) -> None:
    url = fleet.serve.url + "/"
    problems: list[str] = []
    api = httpx.Client(base_url=fleet.serve.url, timeout=10.0, trust_env=False)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport=LAPTOP, locale="es-ES")
            _record_console(page, problems)
            page.add_init_script(_RECORD_LIVE)
            page.goto(url)

            # live, both workers active
            expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=10_000)
            expect(page.locator("#conn-text")).to_have_text("En directo")
            for worker_id in ("worker-01", "worker-02"):
                row = page.locator(f'#workers-table tr[data-key="{worker_id}"]')
                expect(row.locator(".badge")).to_have_text("Activo", timeout=10_000)
            expect(page.locator("#workers-count")).to_have_text("2 de 2 activos")
            expect(page.locator("#chart-time .empty-chart")).to_contain_text("Aún no hay resultados")
            page.evaluate(_RECORD_COUNTERS)

            # the preview counts as it is typed, in the singular for one task
            for engine in ("python", "numpy", "cython"):
                page.locator(f"#sweep-form input[name=engine][value={engine}]").set_checked(engine == "cython")
            for field, value in (("#particles", "40"), ("#steps", "120"), ("#seeds", "1"), ("#repeat", "1")):
                page.fill(field, value)
            expect(page.locator("#sweep-preview")).to_contain_text("Se creará 1 tarea (")

            # a sweep from the form: 2 engines x 3 sizes x 1 x 2 seeds = 12 tasks; 3000 steps:
            # with 120 the idle machine finished all 12 within one live push (0.5 s), and the
            # counter is to be seen climbing (python: 0.3 to 1.3 s a task here)
            _sweep(page, engines=("python", "cython"), particles="40,80,160", steps="3000", seeds="1,2")
            expect(page.locator("#sweep-preview")).to_contain_text("12 tareas")
            message = page.locator("#sweep-message")
            expect(message).to_have_class(re.compile(r"\bok\b"))
            expect(message).to_contain_text("12 tareas encoladas en el lote")
            expect(message.locator(".advice")).to_have_count(0)  # the default dt: no warning
            batch = re.search(r"lote (\S+?)\.?$", message.inner_text()).group(1)

            expect(page.locator("#count-success")).to_have_text("12", timeout=60_000)
            expect(page.locator("#count-queued")).to_have_text("0")
            expect(page.locator("#count-running")).to_have_text("0")
            seen = page.evaluate("window.__seen")
            successes = [int(v) for v in dict.fromkeys(seen["success"]) if v.isdigit()]
            assert successes[0] == 0 and successes[-1] == 12 and len(successes) >= 3, (
                f"the completed counter should climb step by step, saw {seen['success']}"
            )
            assert any(v not in ("0", "—") for v in seen["running"]), f"never saw a running task: {seen}"
            assert page.evaluate("window.__noReload") == "same page"
            # what the page received is what protocol.live says the stream carries
            live = page.evaluate("window.__live")
            assert live, "the page received no live event"
            for raw in live:
                check_live_message(json.loads(raw))

            # results: engine, parameters, worker, time, collisions, checksum, JSON link
            rows = page.locator('#recent-table tbody tr[data-status="success"]')
            expect(rows).to_have_count(12)
            stored = {t["id"]: t for t in api.get("/api/tasks", params={"batch": batch}).json()["tasks"]}
            first = rows.first
            task = stored[first.get_attribute("data-key")]
            result = task["result"]
            expect(first.locator(".c-engine")).to_have_text(result["engine"])
            expect(first.locator(".c-particles")).to_have_text(str(task["params"]["NUM_PARTICULAS"]))
            expect(first.locator(".c-worker")).to_have_text(task["worker"])
            expect(first.locator(".c-checksum .mono")).to_have_attribute("title", result["checksum"])
            expect(first.locator(".c-time")).to_have_text(re.compile(r"^\d[\d.]*(,\d+)? (ms|s)$"))
            # the number rule (docs): grouped by a space from 10 000 on, as sim.numbers does it
            collisions = f"{integer(result['particle_collisions'])} · {integer(result['wall_collisions'])}"
            expect(first.locator(".c-collisions")).to_have_text(collisions)
            link = first.locator("a", has_text="JSON")
            assert link.get_attribute("href") == f"/api/tasks/{task['id']}"
            assert page.request.get(fleet.serve.url + link.get_attribute("href")).json()["id"] == task["id"]

            # charts: a line per engine over the three sizes, three speedup bars (the runs shared
            # their 2-slot workers, so they are "busy" and left out of the speed-up until asked for)
            for engine in ("python", "cython"):
                expect(page.locator(f'#chart-time g.series[data-engine="{engine}"] .marker')).to_have_count(3)
            page.check("#chart-contended")
            expect(page.locator("#chart-speedup rect.bar")).to_have_count(3)
            speedups = api.get("/api/charts", params={"contended": "1"}).json()["speedup"]
            expect(page.locator("#chart-speedup .bar-label")).to_have_text([_ratio(s["value"]) for s in speedups])
            expect(page.locator("#legend-time")).to_contain_text("python")
            # the Física line of the batch: default restitutions, so it says why it is not shown
            expect(page.locator("#physics-line")).to_have_text(
                "Física: no se muestra: el lote no es elástico (COEF_RESTITUCION_PARTICULA = 0,9, "
                "COEF_RESTITUCION_PARED = 0,8)"
            )

            # cancel from the table: slow tasks, every one cancelled by its button; their step is
            # coarse, and the answer's warning shows next to the form
            _sweep(page, engines=("python",), particles="300", steps="4000", seeds="1-5", dt="0,8")
            expect(message).to_contain_text("5 tareas encoladas")
            expect(message).to_have_class(re.compile(r"\bwarn\b"))
            expect(message.locator(".advice li")).to_have_count(1)
            expect(message.locator(".advice li")).to_contain_text("Aviso: paso de tiempo grueso: con DT = 0,8")
            pending = page.locator(
                "#recent-table tbody tr[data-status=queued], #recent-table tbody tr[data-status=running]"
            )
            expect(pending).to_have_count(5, timeout=10_000)
            for _ in range(5):
                target = pending.first.get_attribute("data-key")
                button = page.locator(f'#recent-table tr[data-key="{target}"] button[data-cancel]')
                button.click()  # one tap only asks for confirmation
                expect(button).to_have_text("¿Cancelar? Confirme")
                expect(page.locator(f'#recent-table tr[data-key="{target}"]')).not_to_have_attribute(
                    "data-status", "cancelled"
                )
                button.click()
                expect(page.locator("#recent-message")).to_have_text(f"Tarea {target} cancelada.")
                expect(page.locator("#recent-message")).to_have_class(re.compile(r"\bok\b"))
                expect(page.locator(f'#recent-table tr[data-key="{target}"]')).to_have_attribute(
                    "data-status", "cancelled"
                )
            expect(page.locator("#count-cancelled")).to_have_text("5", timeout=10_000)
            expect(page.locator('#recent-table tbody tr[data-status="cancelled"]')).to_have_count(5)
            cancelled = page.locator('#recent-table tbody tr[data-status="cancelled"] .badge')
            expect(cancelled.first).to_have_text("Cancelada")

            # a worker dies (SIGKILL): it turns inactive on the page
            fleet.workers["worker-02"].kill()
            dead = page.locator('#workers-table tr[data-key="worker-02"]')
            expect(dead.locator(".badge")).to_have_text("Inactivo", timeout=20_000)
            expect(dead).to_have_class(re.compile(r"\bis-inactive\b"))
            expect(page.locator('#workers-table tr[data-key="worker-01"] .badge')).to_have_text("Activo")
            expect(page.locator("#workers-count")).to_have_text("1 de 2 activos")

            # bad input: the server's Spanish message next to the form, the field marked
            _sweep(page, engines=("python",), particles="10000", steps="50", seeds="1")
            expect(message).to_have_class(re.compile(r"\berror\b"))
            expect(message).to_contain_text("NUM_PARTICULAS")
            expect(message).to_contain_text("empaquetamiento")
            expect(page.locator("#particles")).to_have_attribute("aria-invalid", "true")
            _sweep(page, engines=("python",), particles="100", steps="diez", seeds="1")
            expect(message).to_contain_text("pasos: valor inválido 'diez'")
            expect(page.locator("#steps")).to_have_attribute("aria-invalid", "true")
            expect(page.locator("#particles")).not_to_have_attribute("aria-invalid", "true")
            _sweep(page, engines=(), particles="100", steps="50", seeds="1")
            expect(message).to_contain_text("motores: elija al menos un motor")
            expect(page.locator("#count-success")).to_have_text("12")  # nothing was queued

            # screenshots: laptop, then a phone
            laptop_png = tmp_path / "dashboard-laptop.png"
            page.screenshot(path=str(laptop_png), full_page=True)
            phone = browser.new_page(
                viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="es-ES"
            )
            _record_console(phone, problems)
            phone.goto(url)
            expect(phone.locator("#conn")).to_have_attribute("data-state", "live", timeout=10_000)
            expect(phone.locator('#workers-table tr[data-key="worker-02"] .badge')).to_have_text("Inactivo")
            phone.check("#chart-contended")
            expect(phone.locator("#chart-speedup rect.bar")).to_have_count(3)
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"the page scrolls sideways on a phone ({width} px)"
            phone_png = tmp_path / "dashboard-phone.png"
            phone.screenshot(path=str(phone_png), full_page=True)
            phone.close()
            shutil.copy(laptop_png, "/tmp/partisim-dashboard-laptop.png")
            shutil.copy(phone_png, "/tmp/partisim-dashboard-phone.png")
            assert problems == [], "console errors:\n" + "\n".join(problems)

            # the server goes away: the page says so, then reconnects by itself
            fleet.serve.kill()
            expect(page.locator("#conn")).to_have_attribute("data-state", "down", timeout=15_000)
            expect(page.locator("#conn-text")).to_have_text("Sin conexión · reintentando…")
            expect(page.locator("#stale")).to_be_visible()
            offline_png = tmp_path / "dashboard-offline.png"
            page.screenshot(path=str(offline_png))
            shutil.copy(offline_png, "/tmp/partisim-dashboard-offline.png")
            fleet.serve.start()
            expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=20_000)
            expect(page.locator("#stale")).to_be_hidden()
            expect(page.locator("#count-success")).to_have_text("12")
            expect(page.locator("#count-cancelled")).to_have_text("5")
            assert page.evaluate("window.__noReload") == "same page"
            # while the server was down the browser logged the broken stream and its
            # refused reconnections; anything else (a script error above all) fails
            dropped = re.compile(r"^error: Failed to load resource: net::ERR_\w+ \(http://[\d.:]+/api/")
            unexpected = [m for m in problems if not dropped.match(m)]
            assert unexpected == [], "console errors:\n" + "\n".join(unexpected)

            # the last worker dies too: the users' own alarm, in their words
            expect(page.locator("#no-workers")).to_be_hidden()
            fleet.workers["worker-01"].kill()
            expect(page.locator("#no-workers")).to_be_visible(timeout=20_000)
            expect(page.locator("#no-workers .alert")).to_have_text("NO HAY MÁQUINAS ACTIVAS")
            expect(page.locator("#workers-count")).to_have_text("0 de 2 activos")
            assert [m for m in problems if not dropped.match(m)] == [], "\n".join(problems)
        finally:
            browser.close()
            api.close()
