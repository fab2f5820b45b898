"""The full demo: ping, detailed status, both benchmarks on every active worker,
and a Python-vs-Cython comparison. Used by menu option 3 and ``partisim demo``.

``run_demo`` prints as it goes (to the console it is given) and returns a
``DemoReport``; ``execute_on`` runs one task on one worker and is shared with
menu option 2 and ``partisim exec``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from rich.console import Console

from partisim.errors import PartisimError, TaskRejected, TaskTimedOut, WorkerUnavailable
from partisim.orchestrator import views
from partisim.orchestrator.client import WorkerClient
from partisim.orchestrator.registry import WorkerHealth, ping_all, token_from_env
from partisim.sim import SimParams, parse_params

__all__ = [
    "DEMO_ENGINES",
    "DEFAULT_DEMO_PARAMS",
    "EngineRun",
    "DemoRow",
    "DemoReport",
    "execute_on",
    "explain_task_error",
    "run_demo",
    "run_parallel",
]

log = logging.getLogger(__name__)

DEMO_ENGINES = ("python", "cython")
# The users' own example: 100 particles, 500 steps, seed 42.
DEFAULT_DEMO_PARAMS: dict[str, int] = {"NUM_PARTICULAS": 100, "NUM_PASOS": 500, "SEMILLA": 42}
ENGINE_LABELS = {"python": "Python", "cython": "Cython", "numpy": "NumPy"}

T = TypeVar("T")
R = TypeVar("R")


def run_parallel(func: Callable[[T], R], items: Iterable[T], *, limit: int) -> list[R]:
    """``func`` over ``items`` in threads, at most ``limit`` at once; results in order.

    Daemon threads rather than a ThreadPoolExecutor: on Ctrl-C the program leaves
    at once instead of waiting for requests still running on remote workers.
    """
    items = list(items)
    results: list[Any] = [None] * len(items)
    done: queue.Queue[BaseException | None] = queue.Queue()
    gate = threading.Semaphore(max(1, limit))

    def work(index: int, item: T) -> None:
        try:
            results[index] = func(item)
            done.put(None)
        except BaseException as exc:  # handed to the caller's thread below
            done.put(exc)
        finally:
            gate.release()

    for index, item in enumerate(items):
        gate.acquire()
        threading.Thread(target=work, args=(index, item), daemon=True, name=f"partisim-{index}").start()
    for _ in items:
        error = done.get()
        if error is not None:
            raise error
    return results


def explain_task_error(worker_id: str, exc: BaseException) -> str:
    """One Spanish sentence for a failed task, naming the worker."""
    detail = str(exc).strip()
    if isinstance(exc, WorkerUnavailable):
        return f"el worker {worker_id} no responde ({detail})"
    if isinstance(exc, TaskTimedOut):
        return f"la tarea superó el tiempo límite en {worker_id} ({detail})"
    if isinstance(exc, TaskRejected):
        return f"el worker {worker_id} rechazó la tarea: {detail}"
    if isinstance(exc, PartisimError):
        return f"fallo en {worker_id}: {detail or type(exc).__name__}"
    return f"fallo inesperado en {worker_id}: {type(exc).__name__}: {detail}"


def execute_on(
    url: str,
    engine: str,
    params: SimParams,
    *,
    timeout: float | None = None,
    connect_timeout: float = 5.0,
    token: str | None = None,
) -> dict[str, Any]:
    """Run one benchmark on one worker and return the worker's answer."""
    with WorkerClient(url, timeout=connect_timeout, token=token) as client:
        return client.execute(engine, params.to_api(), timeout=timeout)


@dataclass
class EngineRun:
    worker_id: str
    engine: str
    result: dict[str, Any] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.result is not None


@dataclass
class DemoRow:
    worker_id: str
    python: EngineRun
    cython: EngineRun

    @property
    def speedup(self) -> float | None:
        if not (self.python.ok and self.cython.ok):
            return None
        t_py = self.python.result.get("simulation_time")  # type: ignore[union-attr]
        t_cy = self.cython.result.get("simulation_time")  # type: ignore[union-attr]
        if not isinstance(t_py, (int, float)) or not isinstance(t_cy, (int, float)) or t_cy <= 0:
            return None
        return t_py / t_cy

    @property
    def checksums_match(self) -> bool | None:
        if not (self.python.ok and self.cython.ok):
            return None
        return (
            self.python.result.get("checksum") == self.cython.result.get("checksum")  # type: ignore[union-attr]
            and self.python.result.get("particle_collisions")  # type: ignore[union-attr]
            == self.cython.result.get("particle_collisions")  # type: ignore[union-attr]
        )


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
            run.result["checksum"]
            for row in self.rows
            for run in (row.python, row.cython)
            if run.ok and run.result and "checksum" in run.result
        }

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
    config: Any,
    console: Console,
    *,
    params: SimParams | None = None,
    token: str | None = None,
    healths: list[WorkerHealth] | None = None,
) -> DemoReport:
    """Run the whole demo against ``config``'s workers, printing as it goes."""
    token = token if token is not None else token_from_env()
    params = params or parse_params(DEFAULT_DEMO_PARAMS)
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
        console.print(views.no_active_workers(getattr(config, "path", None), config.workers))
        report.elapsed = time.perf_counter() - started
        return report
    console.print(views.status_table(report.active))

    console.print(
        f"[bold]2/3[/bold] Ejecutando Python y Cython en {len(report.active)} worker(s) en paralelo "
        f"({params.particles} partículas, {params.steps} pasos, semilla {params.seed})..."
    )
    report.rows = _run_benchmarks(config, report.active, params, console, token)

    console.print("[bold]3/3[/bold] Resultados")
    console.print(views.comparison_table(report.rows))
    _print_verdict(console, report)
    report.elapsed = time.perf_counter() - started
    console.print(f"Demo terminada en {report.elapsed:.1f} s.")
    return report


def _run_benchmarks(
    config: Any,
    active: list[WorkerHealth],
    params: SimParams,
    console: Console,
    token: str | None,
) -> list[DemoRow]:
    settings = config.orchestrator
    limit = max(1, int(getattr(settings, "max_concurrent_tasks", 4)))
    connect_timeout = float(getattr(settings, "timeout", 5.0))
    pending = {(h.id, e) for h in active for e in DEMO_ENGINES}
    lock = threading.Lock()

    with console.status("Ejecutando benchmarks...") as spinner:

        def progress(run: EngineRun) -> None:
            label = ENGINE_LABELS.get(run.engine, run.engine)
            with lock:
                pending.discard((run.worker_id, run.engine))
                left = len(pending)
            if run.ok:
                t = views.fmt_seconds(run.result.get("simulation_time"))  # type: ignore[union-attr]
                console.print(f"  [green]✓[/green] {run.worker_id} · {label}: {t}")
            else:
                console.print(f"  [red]✗[/red] {run.worker_id} · {label}: {run.error}")
            spinner.update(f"Ejecutando benchmarks... ({left} pendiente(s))")

        def one_worker(h: WorkerHealth) -> DemoRow:
            # Engines run one after the other on a worker so their times compare fairly.
            runs = {
                engine: _run_one(h, engine, params, connect_timeout, token, progress)
                for engine in DEMO_ENGINES
            }
            return DemoRow(h.id, runs["python"], runs["cython"])

        return run_parallel(one_worker, active, limit=limit)


def _run_one(
    h: WorkerHealth,
    engine: str,
    params: SimParams,
    connect_timeout: float,
    token: str | None,
    progress: Callable[[EngineRun], None],
) -> EngineRun:
    run = EngineRun(h.id, engine)
    try:
        run.result = execute_on(h.url, engine, params, connect_timeout=connect_timeout, token=token)
    except Exception as exc:  # reported in the table; the demo goes on with the others
        log.debug("demo: %s/%s falló", h.id, engine, exc_info=True)
        run.error = explain_task_error(h.id, exc)
    progress(run)
    return run


def _print_verdict(console: Console, report: DemoReport) -> None:
    for run in report.failures:
        console.print(f"[red]Tarea fallida[/red] ({run.worker_id}, {run.engine}): {run.error}")
    if report.checksums and report.consistent:
        console.print(
            "[green]Todos los resultados coinciden[/green] (mismo checksum en todos los workers "
            "y motores)."
        )
    elif not report.consistent:
        console.print("[bold red]Los checksums NO coinciden entre ejecuciones.[/bold red]")
    speedups = [r.speedup for r in report.rows if r.speedup is not None]
    if speedups:
        console.print(f"Aceleración media de Cython sobre Python: {sum(speedups) / len(speedups):.1f}x")
