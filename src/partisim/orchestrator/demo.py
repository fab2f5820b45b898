"""The full demo: ping, detailed status, both benchmarks on every active worker,
and a Python-vs-Cython comparison. Used by menu option 3 and ``partisim demo``.

``run_demo`` prints as it goes (to the console it is given) and returns a
``DemoReport``. Tasks go out through `orchestrator.dispatch` (one attempt each).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rich.console import Console

from partisim.fleet import Config
from partisim.fleet.health import WorkerHealth, ping_all, worker_tokens
from partisim.orchestrator import views
from partisim.orchestrator.dispatch import (
    DEFAULT_PARAMS,
    DemoRow,
    EngineRun,
    execute_any,
    explain_task_error,
    run_parallel,
    run_seconds,
)
from partisim.protocol import ExecuteResult
from partisim.sim import SimParams, parse_params
from partisim.sim.numbers import decimal, ratio

__all__ = ["DEMO_ENGINES", "ENGINE_LABELS", "DemoReport", "run_demo"]

log = logging.getLogger(__name__)

DEMO_ENGINES = ("python", "cython")
ENGINE_LABELS = {"python": "Python", "cython": "Cython", "numpy": "NumPy"}


@dataclass
class DemoReport:
    params: SimParams
    healths: list[WorkerHealth] = field(default_factory=list)
    rows: list[DemoRow] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def active(self) -> list[WorkerHealth]:
        return [h for h in self.healths if h.active]

    @property
    def failures(self) -> list[EngineRun]:
        return [run for row in self.rows for run in (row.python, row.cython) if not run.ok]

    @property
    def checksums(self) -> set[str]:
        return {
            run.result.checksum
            for row in self.rows
            for run in (row.python, row.cython)
            if isinstance(run.result, ExecuteResult)
        }

    @property
    def unverifiable(self) -> int:
        """Successful runs on workers that are not partisim: no checksum to compare."""
        return sum(1 for row in self.rows for run in (row.python, row.cython) if run.ok and not run.verifiable)

    @property
    def consistent(self) -> bool:
        """Every successful run, on every worker and engine, gave the same checksum."""
        return len(self.checksums) <= 1

    @property
    def ok(self) -> bool:
        return bool(self.rows) and not self.failures and self.consistent

    def exit_code(self) -> int:
        return 0 if self.ok else 1


def run_demo(
    config: Config,
    console: Console,
    *,
    params: SimParams | None = None,
    token: str | None = None,
    healths: list[WorkerHealth] | None = None,
) -> DemoReport:
    """Run the whole demo against ``config``'s workers, printing as it goes."""
    params = params or parse_params(DEFAULT_PARAMS)
    report = DemoReport(params=params)
    started = time.perf_counter()

    console.rule("[bold]Demo completa del sistema")
    console.print("[bold]1/3[/bold] Verificando workers y su estado...")
    if healths is None:
        with console.status("Enviando ping a los workers..."):
            healths = ping_all(config, with_status=True, token=token)
    report.healths = healths
    console.print(views.ping_table(healths))
    if not report.active:
        console.print(views.no_active_workers(config.path, config.workers))
        report.elapsed = time.perf_counter() - started
        return report
    console.print(views.status_table(report.active))

    machines = len(by_machine(report.active))
    shared = len(report.active) - machines
    order = (
        "en paralelo"
        if not shared
        else "uno tras otro (comparten máquina)"
        if machines == 1
        else f"en paralelo por máquina; los {shared + 1} o más que comparten una máquina, uno tras otro"
    )
    console.print(
        f"[bold]2/3[/bold] Ejecutando Python y Cython en {views.count(len(report.active), 'worker', 'workers')} "
        f"{order} "
        f"({views.count(params.particles, 'partícula', 'partículas')}, "
        f"{views.count(params.steps, 'paso', 'pasos')}, semilla {params.seed})..."
    )
    report.rows = _run_benchmarks(config, report.active, params, console, worker_tokens(config, token))

    console.print("[bold]3/3[/bold] Resultados")
    console.print(views.comparison_table(report.rows))
    _print_verdict(console, report)
    report.elapsed = time.perf_counter() - started
    console.print(f"Demo terminada en {decimal(report.elapsed, 1)} s.")
    return report


def _run_benchmarks(
    config: Config,
    active: list[WorkerHealth],
    params: SimParams,
    console: Console,
    tokens: dict[str, str | None],
) -> list[DemoRow]:
    limit = config.orchestrator.max_concurrent_tasks
    connect_timeout = config.orchestrator.timeout
    ca_file = config.ca_file()
    pending = {(h.id, e) for h in active for e in DEMO_ENGINES}
    lock = threading.Lock()

    with console.status("Ejecutando benchmarks...") as spinner:

        def progress(run: EngineRun) -> None:
            label = ENGINE_LABELS.get(run.engine, run.engine)
            with lock:
                pending.discard((run.worker_id, run.engine))
                left = len(pending)
            if run.result is not None:
                t = views.fmt_seconds(run_seconds(run.result))
                note = "" if run.verifiable else " (no verificable: el worker no es partisim)"
                console.print(f"  [green]✓[/green] {run.worker_id} · {label}: {t}{note}")
            else:
                console.print(f"  [red]✗[/red] {run.worker_id} · {label}: {run.error}")
            spinner.update(f"Ejecutando benchmarks... ({left} pendiente(s))")

        def one_worker(h: WorkerHealth) -> DemoRow:
            # Engines run one after the other on a worker so their times compare fairly.
            runs = {
                engine: _run_one(h, engine, params, connect_timeout, tokens.get(h.id), ca_file, progress)
                for engine in DEMO_ENGINES
            }
            return DemoRow(h.id, runs["python"], runs["cython"])

        def one_machine(workers: list[WorkerHealth]) -> list[DemoRow]:
            return [one_worker(h) for h in workers]

        done = run_parallel(one_machine, list(by_machine(active).values()), limit=limit)
        rows = {row.worker_id: row for machine in done for row in machine}
        return [rows[h.id] for h in active]


def by_machine(active: list[WorkerHealth]) -> dict[str, list[WorkerHealth]]:
    """The workers grouped by the machine they run on (their /status says which): workers
    of one machine run the demo one after another, or each would measure the other's load
    (two local workers on a 2-core machine flagged every run "medido con la máquina
    ocupada"); different machines run at the same time. A worker that does not say is a
    machine of its own."""
    groups: dict[str, list[WorkerHealth]] = {}
    for h in active:
        machine = h.last_status.host_id if h.last_status is not None else ""
        groups.setdefault(machine or f"worker:{h.id}", []).append(h)
    return groups


def _run_one(
    h: WorkerHealth,
    engine: str,
    params: SimParams,
    connect_timeout: float,
    token: str | None,
    ca_file: str | None,
    progress: Callable[[EngineRun], None],
) -> EngineRun:
    run = EngineRun(h.id, engine)
    try:
        run.result = execute_any(h.url, engine, params, connect_timeout=connect_timeout, token=token, ca_file=ca_file)
    except Exception as exc:  # reported in the table; the demo goes on with the others
        log.debug("demo: %s/%s falló", h.id, engine, exc_info=True)
        run.error = explain_task_error(h.id, exc)
    progress(run)
    return run


def _print_verdict(console: Console, report: DemoReport) -> None:
    for run in report.failures:
        console.print(f"[red]Tarea fallida[/red] ({run.worker_id}, {run.engine}): {run.error}")
    if report.unverifiable:
        console.print(
            f"[yellow]{views.count(report.unverifiable, 'resultado', 'resultados')} no verificable(s):[/yellow] "
            "vienen de workers que no son partisim (sin motor ni checksum que comparar)."
        )
    if report.checksums and report.consistent:
        console.print("[green]Todos los resultados coinciden[/green] (mismo checksum en todos los workers y motores).")
    elif not report.consistent:
        console.print("[bold red]Los checksums NO coinciden entre ejecuciones.[/bold red]")
    speedups = [r.speedup for r in report.rows if r.speedup is not None]
    if speedups:
        console.print(f"Aceleración media de Cython sobre Python: {ratio(sum(speedups) / len(speedups))}")
