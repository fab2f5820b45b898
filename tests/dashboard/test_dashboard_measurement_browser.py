"""Issue 20 on the page, in a real headless Chromium: the task list's "Hilos" column and
its busy-machine marker, the charts leaving a contended run out (and saying so) until
asked, then marking it with a cross, and the speed-up bars with their 95% interval.

The queue file is filled beforehand with real `TaskQueue` calls (results as workers
return them, environment included); a real `partisim serve` shows it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from dash_support import CHROMIUM_FLAGS
from helpers.config import write_config
from helpers.processes import HOST_A, free_port_on
from helpers.results import execute_result
from helpers.serve import Serve
from playwright.sync_api import expect, sync_playwright

from partisim.serve.queue.store import TaskQueue
from partisim.serve.queue.task import TaskSpec
from partisim.sim.environment import MachineEnvironment, RunSample, judge

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _seed(db: Path) -> None:
    # an older batch whose only cython run was measured on a busy machine: no pair is left
    _seed_batch(db, "ocupadas", 1000, [("python", 1, 0.5, False), ("cython", 3, 0.05, True)])
    time.sleep(0.05)
    runs = [("python", 1, t, False) for t in (2.0, 2.1, 1.9)]
    runs += [("cython", 2, t, False) for t in (0.10, 0.11, 0.09)]
    runs += [("cython", 2, 4.0, True)]  # measured beside other work: left out by default
    _seed_batch(db, "medidas", 50_000, runs)


# pairs of chart labels and marks whose boxes intersect
_HITS = """([id, marks]) => {
  const labels = [...document.querySelectorAll(`#${id} text.bar-label`)].map((t) => t.getBoundingClientRect());
  const others = [...document.querySelectorAll(`#${id} ${marks}`)].map((t) => t.getBoundingClientRect());
  let hits = 0;
  for (const a of labels) for (const b of others) {
    if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) hits += 1;
  }
  return { labels: labels.length, marks: others.length, hits };
}"""

# the x title of a chart lies inside its svg
_TITLE_INSIDE = """(id) => {
  const svg = document.querySelector(`#${id} svg`).getBoundingClientRect();
  const t = document.querySelector(`#${id} text.axis-title`).getBoundingClientRect();
  return t.left >= svg.left && t.right <= svg.right;
}"""


def _seed_batch(db: Path, batch: str, particles: int, runs: list[tuple[str, int, float, bool]]) -> None:
    machine = MachineEnvironment(
        cpu_model="CPU de prueba", logical_cpus=2, affinity="0-1", usable_cpus=2, python="3.11.0"
    ).identified()
    queue = TaskQueue(db)
    try:
        specs = [
            TaskSpec(engine, {"NUM_PARTICULAS": particles, "NUM_PASOS": 5, "SEMILLA": i}, threads=threads)
            for i, (engine, threads, _, _) in enumerate(runs)
        ]
        _, ids = queue.enqueue(specs, batch=batch)
        for task_id, (engine, threads, seconds, busy) in zip(ids, runs, strict=True):
            queue.claim_many([(task_id, "worker-01", "http://127.0.0.93:1", time.time() + 60)])
            sample = RunSample(threads)
            sample.load_start = sample.load_end = 6.0 if busy else 0.2
            env = judge(
                sample, machine=machine, threads_requested=threads, threads_used=threads, threads_reason="requested"
            )
            result = execute_result(task_id=task_id, engine=engine, particles=particles, simulation_time=seconds)
            update = {
                "threads": threads,
                "threads_requested": threads,
                "threads_reason": "requested",
                "environment": env,
            }
            assert queue.complete(task_id, 1, result.model_copy(update=update))
    finally:
        queue.close()


def test_threads_busy_marks_and_confidence_intervals_in_real_chromium(chromium: str, tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    _seed(db)
    # a worker address where nothing listens: the page works from the queue alone
    config = write_config(tmp_path / "config_workers.json", [("worker-01", HOST_A, free_port_on(HOST_A))])
    serve = Serve(config, db, workdir=tmp_path).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
            try:
                page = browser.new_page(viewport={"width": 1366, "height": 900}, locale="es-ES")
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.goto(serve.url)
                # the task list: a Hilos column, and the busy run marked
                expect(page.locator("#recent-table thead th", has_text="Hilos")).to_have_count(1)
                expect(page.locator("#recent-table td.c-threads", has_text="2")).to_have_count(4)
                expect(page.locator("#recent-table [data-contended]")).to_have_count(2)
                expect(page.locator("#recent-table [data-contended]").first).to_contain_text("máquina ocupada")
                # the time chart marks the busy run with a cross; the speed-up leaves it out, and says so
                expect(page.locator("#chart-time path.busy-mark")).to_have_count(1)
                expect(page.locator("#chart-time circle.unstable-ring")).to_have_count(1)  # 4 s among 0.1 s
                expect(page.locator("#values-time")).to_contain_text("inestable")
                note = page.locator("#chart-contended-note")
                expect(note).to_contain_text("1 ejecución medida con la máquina ocupada")
                expect(note).to_contain_text("la aceleración deja fuera 1 ejecución")
                expect(page.locator("#chart-speedup path.ci")).to_have_count(1)
                expect(page.locator("#values-speedup")).to_contain_text("mismo worker (worker-01)")
                expect(page.locator("#values-speedup")).to_contain_text("20,0×")  # 2.0 s / 0.1 s
                # one size: bars on a linear axis, and the header says so
                expect(page.locator("#chart-time-scale")).to_have_text("media ± desv. est. · escala lineal")
                # a single time in the CLI's unit (sim.numbers.duration)
                assert page.evaluate("window.partisimFormat.fmtSeconds(0.000521)") == "521 µs"
                # the value labels stand clear of the interval's whiskers
                ci = page.evaluate(_HITS, ["chart-speedup", "path.ci"])
                assert ci["labels"] == 1 and ci["marks"] == 1 and ci["hits"] == 0, ci

                # the older batch: every pair left out as busy, and the page says how to see it
                page.select_option("#chart-batch", "ocupadas")
                empty = page.locator("#chart-speedup .empty-chart")
                expect(empty).to_contain_text("máquina ocupada")
                expect(empty).to_contain_text(
                    "«Incluir en la aceleración las ejecuciones medidas con la máquina ocupada»"
                )
                expect(empty).not_to_contain_text("Aún no hay pares")
                page.check("#chart-contended")
                expect(page.locator("#chart-speedup rect.bar")).to_have_count(1)
                page.uncheck("#chart-contended")
                page.select_option("#chart-batch", "latest")
                expect(page.locator("#chart-speedup path.ci")).to_have_count(1)

                # a small phone: the time label clears the busy cross, the caption fits,
                # the checkbox keeps its label on its line, a one-thread card says "1 hilo"
                page.set_viewport_size({"width": 320, "height": 700})
                page.wait_for_function("document.querySelector('#chart-time svg').getAttribute('width') < 320")
                marks = page.evaluate(_HITS, ["chart-time", "path.busy-mark, circle.unstable-ring"])
                assert marks["labels"] == 2 and marks["marks"] >= 1 and marks["hits"] == 0, marks
                assert page.evaluate(_TITLE_INSIDE, "chart-time")
                threads = page.eval_on_selector_all(
                    "#recent-table td.c-threads",
                    "tds => tds.map((td) => td.textContent + getComputedStyle(td, '::after').content)",
                )
                assert '1" hilo"' in threads and '2" hilos"' in threads, threads
                assert not any(t.startswith('1"') and "hilos" in t for t in threads), threads
                page.set_viewport_size({"width": 390, "height": 844})
                line = page.evaluate("""() => {
                  const box = document.getElementById('chart-contended').getBoundingClientRect();
                  const text = document.querySelector('#chart-contended + span').getClientRects()[0];
                  return box.top < text.bottom && text.top < box.bottom && box.right <= text.left;
                }""")
                assert line, "the checkbox and its label are on different lines"
                # asked for, the speed-up takes it in: cython's mean grows, the ratio falls
                page.check("#chart-contended")
                expect(note).to_contain_text("incluidas también en la aceleración")
                expect(page.locator("#values-speedup")).not_to_contain_text("20,0×")
                assert errors == []
            finally:
                browser.close()
    finally:
        serve.stop()
