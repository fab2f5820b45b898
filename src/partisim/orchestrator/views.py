"""Rich renderables for the orchestrator's terminal output (menu and CLI).

Every function here only builds something to print; none talks to a worker.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from partisim.fleet import Config, WorkerEntry
from partisim.fleet.advice import NO_ACTIVE_WORKERS, no_worker_hints
from partisim.fleet.health import WorkerHealth
from partisim.orchestrator.check import WorkerChecks
from partisim.orchestrator.dispatch import DemoRow, EngineRun, run_seconds
from partisim.orchestrator.tables import Column, FittedTable
from partisim.protocol import BatchInfo, ExecuteResult, ForeignResult, MemberView, Summary
from partisim.serve.client import Check
from partisim.sim import numbers
from partisim.sim.numbers import count, integer, significant

__all__ = [
    "NO_ACTIVE_WORKERS",
    "no_active_workers",
    "ping_table",
    "status_table",
    "result_table",
    "comparison_table",
    "config_table",
    "check_table",
    "count",
    "fmt_seconds",
    "fmt_latency",
    "yes_no",
    "queue_status",
    "BatchProgress",
    "checks_table",
]


def fmt_seconds(value: object) -> str:
    """A time in the unit that fits, with a decimal comma (``12,4 ms``, ``85,0 µs``)."""
    if not isinstance(value, (int, float)):
        return "-"
    return numbers.duration(value)


def fmt_latency(value: float | None) -> str:
    return "-" if value is None else f"{numbers.decimal(value, 1)} ms"


def yes_no(value: object) -> Text:
    if value is True:
        return Text("sí", style="green")
    if value is False:
        return Text("no", style="red")
    return Text("-", style="dim")


def _state(h: WorkerHealth) -> Text:
    if h.active:
        return Text("ACTIVO", style="bold green")
    return Text("INACTIVO", style="bold red")


def no_active_workers(config_path: str | None = None, workers: Sequence[WorkerEntry] = ()) -> Group:
    """The loud message plus what to check, for when no worker answers."""
    hints = ["Qué revisar:", *(f"  • {hint}" for hint in no_worker_hints(config_path))]
    if workers:
        listed = ", ".join(f"{w.id} → {w.address}" for w in workers)
        hints.insert(1, f"  Workers configurados: {listed}")
    return Group(
        Panel(Text(NO_ACTIVE_WORKERS, style="bold red", justify="center"), border_style="red"),
        Text("\n".join(hints)),
    )


def _detail(h: WorkerHealth, default: str = "sin respuesta") -> str:
    """The last error without the address the table already shows."""
    return (h.last_error or default).replace(f"{h.url}: ", "")


def ping_table(healths: Iterable[WorkerHealth], *, title: str = "Verificación de workers") -> FittedTable:
    rows: list[list[str | Text]] = []
    for h in healths:
        reported = Text(h.reported_id or "-")
        detail = ""
        if h.active and h.reported_id and h.reported_id != h.id:
            reported.stylize("yellow")
            detail = "el worker se identifica con otro id"
        if not h.active:
            detail = _detail(h)
        rows.append([h.id, h.address, _state(h), fmt_latency(h.latency_ms if h.active else None), reported, detail])
    columns = [
        Column("ID"),
        Column("Dirección"),
        Column("Estado"),
        Column("Latencia", justify="right"),
        Column("ID reportado", "ID rep.", drop=1),
        Column("Detalle", wrap=12),
    ]
    return FittedTable(columns, rows, title=title)


#: a worker's own word for its load (``/status``), as the tables say it
_LOAD_STATES = {"ready": "libre", "busy": "ocupado"}


def status_table(healths: Iterable[WorkerHealth], *, title: str = "Estado detallado") -> FittedTable:
    """One row per worker: its state (ACTIVO/INACTIVO, and libre/ocupado from /status),
    slots in use of its capacity, tasks done and failed since it started, CPUs and the
    1-minute load average, how it runs tasks, and whether Docker and the image are there."""
    rows: list[list[str | Text]] = []
    images: set[str] = set()
    for h in healths:
        s = h.last_status
        if not h.active:
            rows.append([h.id, _state(h), *(["-"] * 8)])
            continue
        if s is None:
            rows.append([h.id, Text(f"ACTIVO\n{_detail(h, 'sin /status')}", style="yellow"), *(["-"] * 8)])
            continue
        if s.docker_image:
            images.add(s.docker_image)
        load = _LOAD_STATES.get(s.status, s.status)
        state = Text.assemble(("ACTIVO", "bold green"), "\n", (load, "green" if s.status == "ready" else "yellow"))
        rows.append(
            [
                # slots in use (a task of k threads takes k); a worker that does not say: its tasks
                h.id,
                state,
                f"{max(s.slots_used, s.running)}/{s.capacity}",
                str(s.completed),
                str(s.failed),
                str(s.cpu_count) if s.cpu_count is not None else "-",
                f"{s.load_avg[0]:.2f}".replace(".", ",") if s.load_avg else "-",
                s.runner or "-",
                yes_no(s.docker_available),
                yes_no(s.image_available),
            ]
        )
    caption = None
    if images:
        caption = (
            f"Imagen Docker que busca cada worker: {', '.join(sorted(images))} "
            "(«no» en Imagen: esa máquina aún no la tiene; créela con `partisim images build`)"
        )
    columns = [
        Column("ID"),
        Column("Estado", wrap=10),
        Column("En curso", justify="right"),
        Column("Hechas", justify="right"),
        Column("Fallidas", "Fall.", justify="right"),
        Column("CPU", justify="right", drop=2),
        Column("Carga 1 min", "Carga", justify="right", drop=3),
        Column("Runner", drop=4),
        Column("Docker"),
        Column("Imagen"),
    ]
    return FittedTable(columns, rows, title=title, caption=caption)


def _threads(result: ExecuteResult) -> str:
    """Threads used, and those asked for when the worker gave fewer."""
    used = "—" if result.threads is None else str(result.threads)
    asked = result.threads_requested
    if asked is not None and result.threads is not None and asked > result.threads:
        return f"{used} (se pidieron {asked}; el máximo de este worker para el motor {result.engine})"
    return used


def result_table(result: ExecuteResult, *, title: str = "Resultado de la tarea") -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("Campo", style="bold")
    table.add_column("Valor", overflow="fold")
    rows = [
        ("Worker", result.worker_id),
        ("Benchmark", result.benchmark),
        ("Motor", result.engine),
        ("Partículas", result.particles),
        ("Pasos", result.steps),
        ("Semilla", result.seed),
        ("Tiempo de simulación", fmt_seconds(result.simulation_time)),
        ("Tiempo de ejecución", fmt_seconds(result.execution_time)),
        ("Colisiones entre partículas", result.particle_collisions),
        ("Colisiones con paredes", result.wall_collisions),
        ("Energía cinética", significant(result.kinetic_energy, 6)),
        ("Partículas·paso/s", integer(round(result.particle_steps_per_s))),
        ("Hilos", _threads(result)),
        ("Checksum", result.checksum),
        ("Runner", result.runner),
        ("Tarea", result.task_id),
    ]
    for label, value in rows:
        table.add_row(label, str(value))
    return table


def foreign_result_table(result: ForeignResult, *, title: str = "Resultado de la tarea (no verificable)") -> Table:
    """What a worker that is not partisim reported: no engine, no checksum to check."""
    table = Table(
        title=title,
        title_justify="left",
        show_header=False,
        caption="El worker no es partisim: su respuesta no trae motor ni checksum, no se puede verificar.",
        caption_justify="left",
    )
    table.add_column("Campo", style="bold")
    table.add_column("Valor", overflow="fold")
    sim, run = result.simulation_time, result.execution_time
    shown = {
        "Worker": result.worker_id,
        "Benchmark": result.benchmark,
        "Motor pedido": result.engine,
        "Tiempo de simulación": fmt_seconds(sim) if sim is not None else None,
        "Tiempo de ejecución": fmt_seconds(run) if run is not None else None,
        "Colisiones entre partículas": result.particle_collisions,
        "Colisiones con paredes": result.wall_collisions,
    }
    for label, value in shown.items():
        table.add_row(label, "—" if value is None else str(value))
    for key, value in result.reported.items():
        if key not in (
            "worker_id",
            "benchmark",
            "execution_time",
            "simulation_time",
            "particle_collisions",
            "wall_collisions",
        ):
            table.add_row(f"[dim]{key}[/]", str(value)[:300])
    return table


def _busy(run: EngineRun) -> bool:
    # an original-design worker's result (ForeignResult) carries no environment
    env = run.result.environment if isinstance(run.result, ExecuteResult) else None
    return bool(env is not None and env.contended)


def comparison_table(rows: Iterable[DemoRow], *, title: str = "Comparación Python vs Cython") -> FittedTable:
    cells: list[list[str | Text]] = []
    busy = False
    for row in rows:
        py, cy = row.python, row.cython
        mark = "*" if _busy(py) or _busy(cy) else ""
        busy = busy or bool(mark)
        cells.append(
            [
                row.worker_id,
                _run_time(py),
                _run_time(cy),
                f"{numbers.ratio(row.speedup)}{mark}" if row.speedup is not None else "-",
                f"{_collisions(py)} / {_collisions(cy)}",
                _match(row.checksums_match),
            ]
        )
    columns = [
        Column("Worker"),
        Column("Tiempo Python", "T. Python", justify="right"),
        Column("Tiempo Cython", "T. Cython", justify="right"),
        Column("Aceleración", "Acel.", justify="right"),
        Column("Colisiones (Py / Cy)", "Colisiones", justify="right"),
        Column("Checksums", justify="center"),
    ]
    caption = "* medido con la máquina ocupada: la aceleración puede no ser fiable" if busy else None
    return FittedTable(columns, cells, title=title, caption=caption)


def _run_time(run: EngineRun) -> Text:
    if run.result is None:
        return Text("ERROR", style="bold red")  # the reason is printed below the table
    if not run.verifiable:
        return Text(f"{fmt_seconds(run_seconds(run.result))} (no verificable)")
    return Text(fmt_seconds(run_seconds(run.result)))


def _collisions(run: EngineRun) -> str:
    if run.result is None or run.result.particle_collisions is None:
        return "-"
    return str(run.result.particle_collisions)


def _match(value: bool | None) -> Text:
    if value is None:
        return Text("-", style="dim")
    return Text("coinciden", style="green") if value else Text("DIFIEREN", style="bold red")


def config_table(config: Config) -> Group:
    workers = Table(title=f"Configuración: {config.path or ''}", title_justify="left")
    workers.add_column("ID")
    workers.add_column("IP")
    workers.add_column("Puerto", justify="right")
    workers.add_column("URL")
    for w in config.workers:
        workers.add_row(w.id, w.ip, str(w.port), w.url)
    settings = Table(title="Orquestador", title_justify="left", show_header=False)
    settings.add_column("Parámetro", style="bold")
    settings.add_column("Valor")
    o = config.orchestrator
    for label, value in [
        ("Tiempo límite (s)", o.timeout),
        ("Reintentos", o.retry_attempts),
        ("Tareas concurrentes máx.", o.max_concurrent_tasks),
        ("Intervalo de ping (s)", o.ping_interval),
        ("Fallos antes de inactivo", o.failures_before_inactive),
    ]:
        settings.add_row(label, str(value))
    return Group(workers, settings)


def check_table(reports: Iterable[WorkerChecks], *, title: str = "Resumen de pruebas") -> FittedTable:
    """One row per worker, one column per check."""
    reports = list(reports)
    names: list[tuple[str, str]] = []
    for report in reports:
        for r in report.results:
            if (r.key, r.short_name) not in names:
                names.append((r.key, r.short_name))
    rows = []
    for report in reports:
        by_key = {r.key: r for r in report.results}
        cells: list[str | Text] = [report.id]
        for key, _ in names:
            found = by_key.get(key)
            if found is None or found.skipped:
                cells.append(Text("-", style="dim"))
            elif found.unsupported:
                cells.append(Text("N/S", style="yellow"))
            else:
                cells.append(Text("OK", style="green") if found.ok else Text("FALLO", style="bold red"))
        cells.append(Text("SUPERADO", style="bold green") if report.passed else Text("FALLIDO", style="bold red"))
        rows.append(cells)
    columns = [
        Column("Worker"),
        *(Column(name, justify="center") for _, name in names),
        Column("Resultado", justify="center"),
    ]
    return FittedTable(columns, rows, title=title)


# -- partisim serve: the queue ---------------------------------------------------------


def queue_status(summary: Summary, workers: Sequence[MemberView], batches: Sequence[BatchInfo]) -> Group:
    """Queue counts, the executor's members and the latest batches."""
    s = summary
    parts: list[Any] = [
        Text.from_markup(
            f"[bold]Cola:[/] {count(s.total, 'tarea', 'tareas')} — en cola {s.queued}, en curso {s.running}, "
            f"éxito {s.success}, fallidas {s.failed}, canceladas {s.cancelled} · "
            f"{s.finished_last_60s} terminadas en el último minuto ({numbers.decimal(s.throughput_per_s, 2)}/s)"
        )
    ]
    rows: list[list[str | Text]] = []
    for w in workers:
        state = Text("ACTIVO", style="bold green") if w.state == "active" else Text("INACTIVO", style="bold red")
        rows.append([w.id, w.address, state, str(w.capacity), str(w.inflight), str(w.completed)])
    parts.append(
        FittedTable(
            [
                Column("Worker"),
                Column("Dirección"),
                Column("Estado"),
                Column("Capacidad", "Cap.", justify="right"),
                Column("En curso", justify="right"),
                Column("Completadas", "Hechas", justify="right"),
            ],
            rows,
            title=f"Workers ({s.workers_active}/{s.workers_total} activos)",
        )
    )
    if s.workers_active == 0 and s.workers_total > 0:
        parts.append(Text(NO_ACTIVE_WORKERS, style="bold red"))
    if batches:
        parts.append(
            FittedTable(
                [
                    Column("Lote"),
                    Column("Total", justify="right"),
                    Column("Éxito", justify="right"),
                    Column("Fallidas", "Fall.", justify="right"),
                    Column("En curso", "Curso", justify="right"),
                    Column("En cola", "Cola", justify="right"),
                    Column("Canceladas", "Canc.", justify="right"),
                ],
                [
                    [
                        b.batch,
                        str(b.total),
                        str(b.success),
                        str(b.failed),
                        str(b.running),
                        str(b.queued),
                        str(b.cancelled),
                    ]
                    for b in batches
                ],
                title="Últimos lotes",
            )
        )
    return Group(*parts)


class BatchProgress:
    """A progress bar for `serve.client.wait_batch`: ``with BatchProgress(console, label)
    as bar: wait_batch(..., on_progress=bar.update)``. Below 100 columns the label, the
    bar and the details shrink so the bar and the N/M count always fit on one line."""

    NARROW = 100

    def __init__(self, console: Console, label: str, *, show: bool = True) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._narrow = console.width < self.NARROW
        if self._narrow and len(label) > 14:
            label = label.split(maxsplit=1)[0].capitalize()  # "lote b-2024...-3f9a" -> "Lote"
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=16 if self._narrow else 40),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            disable=not show,
            transient=False,
        )
        self._bar = self._progress.add_task(label, total=None, detail="")
        self._waiting: str | None = None  # the last reason shown for tasks that do not move

    def __enter__(self) -> BatchProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(None, None, None)

    def update(self, s: Summary) -> None:
        if self._narrow:
            detail = f"curso {s.running} · cola {s.queued}" + (f" · fallidas {s.failed}" if s.failed else "")
        else:
            detail = f"éxito {s.success} · fallidas {s.failed} · en curso {s.running} · en cola {s.queued}"
        self._progress.update(self._bar, total=s.total, completed=s.finished, detail=detail)
        if s.waiting and s.waiting != self._waiting:
            self._progress.console.print(f"[yellow]En espera:[/] {escape(s.waiting)}")
        self._waiting = s.waiting


class RowsProgress:
    """A progress bar for rows read from serve (an export, the data of a report):
    ``with RowsProgress(console, label) as bar: save_export(..., on_progress=bar.update)``."""

    def __init__(self, console: Console, label: str, *, show: bool = True) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not show,
            transient=False,
        )
        self._bar = self._progress.add_task(label, total=None)

    def __enter__(self) -> RowsProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(None, None, None)

    def update(self, done: int, total: int) -> None:
        self._progress.update(self._bar, total=max(total, done), completed=done)


def checks_table(checks: Sequence[Check]) -> FittedTable:
    """Verification runs next to their originals."""
    return FittedTable(
        [
            Column("Tarea"),
            Column("Worker", drop=1),
            Column("Repetición"),
            Column("Worker", drop=1),
            Column("Resultado", wrap=14),
        ],
        [[c.original_id, str(c.original_worker), c.verify_id, str(c.verify_worker), c.label] for c in checks],
        title="Verificación en otro worker",
    )
