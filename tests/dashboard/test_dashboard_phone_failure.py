"""The dashboard's rough edges (issue 24 §3): a failed task on a phone wraps its error and
the page never scrolls sideways at 390 or 320 px; a batch of one size gets bars per
engine, with the box from the form. Real Chromium, real workers, real serve."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from dash_support import CHROMIUM_FLAGS, DASH_SETTINGS, Fleet
from helpers.config import write_config
from helpers.processes import HOST_A, wait_for
from helpers.serve import Serve
from helpers.workers import start_worker
from playwright.sync_api import expect, sync_playwright

from partisim.serve.client import ServerClient

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width", [390, 320])
def test_a_failed_task_never_widens_the_phone_page(chromium: str, tmp_path: Path, width: int) -> None:
    worker = start_worker(HOST_A, None, "--capacity", "2", "--max-particles", "50", env={"WORKER_ID": "worker-01"},
                          cwd=tmp_path / "worker")  # fmt: skip
    serve = None
    try:
        config = write_config(tmp_path / "config.json", [("worker-01", worker.host, worker.port)], **DASH_SETTINGS)
        serve = Serve(config, tmp_path / "q.db", workdir=tmp_path).start()
        serve.wait_workers(1)
        with ServerClient(serve.url) as client:
            answer = client.submit(
                [
                    {"benchmark": "python", "params": {"NUM_PARTICULAS": 100, "NUM_PASOS": 3}},
                    {"benchmark": "cython", "params": {"NUM_PARTICULAS": 20, "NUM_PASOS": 3}},
                ]
            )
            (failed,) = [t for t in (client.task(i, wait=30) for i in answer.ids) if t.status == "failed"]
        assert failed.error and len(failed.error) > 60  # a long error, on one line unless it wraps
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
            try:
                page = browser.new_page(
                    viewport={"width": width, "height": 844},
                    device_scale_factor=2,
                    is_mobile=True,
                    has_touch=True,
                    locale="es-ES",
                )
                page.goto(serve.url + "/")
                expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=10_000)
                error = page.locator("#recent-table .err")
                expect(error).to_have_text(failed.error)
                page_width = page.evaluate("document.documentElement.scrollWidth")
                assert page_width <= width, f"the page scrolls sideways at {width} px ({page_width} px wide)"
                box = error.bounding_box()
                assert box is not None and box["x"] + box["width"] <= width
                assert box["height"] > 2 * 16, "the error wraps onto several lines"
                shot = tmp_path / f"phone-{width}-failed.png"
                page.screenshot(path=str(shot), full_page=True)
                shutil.copy(shot, f"/tmp/partisim-phone-{width}-failed.png")
            finally:
                browser.close()
    finally:
        if serve is not None:
            serve.stop()
        worker.stop()


def test_a_one_size_batch_gets_bars_per_engine(chromium: str, fleet: Fleet) -> None:
    api = httpx.Client(base_url=fleet.serve.url, timeout=30.0, trust_env=False)
    body = {
        "engines": "python,cython",
        "particles": "60",
        "steps": "30",
        "seeds": "1,2",
        "width": "400",
        "height": "300",
    }
    answer = api.post("/api/sweeps", json=body)
    assert answer.status_code == 201, answer.text
    batch = answer.json()["batch"]
    assert batch.startswith("b-")  # the batch ids the CLI makes
    wait_for(lambda: api.get("/api/summary", params={"batch": batch}).json()["done"], 120, "the sweep is done")
    tasks = api.get("/api/tasks", params={"batch": batch}).json()["tasks"]
    assert {(t["params"]["ANCHO_MUNDO"], t["params"]["ALTO_MUNDO"]) for t in tasks} == {(400.0, 300.0)}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, locale="es-ES")
            page.goto(fleet.serve.url + "/")
            expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=10_000)
            bars = page.locator("#chart-time rect.time-bar")
            expect(bars).to_have_count(2, timeout=15_000)
            expect(page.locator("#chart-time .bar-label")).to_have_count(2)
            inside = page.evaluate(
                """() => {
                  const svg = document.querySelector('#chart-time svg').getBoundingClientRect();
                  return [...document.querySelectorAll('#chart-time text')].every((t) => {
                    const r = t.getBoundingClientRect();
                    return r.left >= svg.left - 1 && r.right <= svg.right + 1 && r.top >= svg.top - 1;
                  });
                }"""
            )
            assert inside, "a label of the one-size chart leaves its frame"
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            page.locator("#chart-time").screenshot(path="/tmp/partisim-dashboard-one-size.png")
        finally:
            browser.close()
