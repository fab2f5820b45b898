"""Rich renderables for the orchestrator's terminal output (menu and CLI).

Every function here only builds something to print; none talks to a worker.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from partisim.orchestrator.registry import WorkerHealth

__all__ = [
    "NO_ACTIVE_WORKERS",
    "no_active_workers",
    "ping_table",
    "status_table",
    "result_table",
    "comparison_table",
    "config_table",
    "check_table",
    "fmt_seconds",
    "fmt_latency",
    "yes_no",
]

NO_ACTIVE_WORKERS = "NO HAY MÁQUINAS ACTIVAS"


def fmt_seconds(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "-"
    if value < 1:
        return f"{value * 1000:.1f} ms"
    return f"{value:.3f} s"


def fmt_latency(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def yes_no(value: Any) -> Text:
    if value is True:
        return Text("sí", style="green")
    if value is False:
        return Text("no", style="red")
    return Text("-", style="dim")


def _state(h: WorkerHealth) -> Text:
    if h.active:
        return Text("ACTIVO", style="bold green")
    return Text("INACTIVO", style="bold red")


def no_active_workers(config_path: str | None = None, workers: Sequence[Any] = ()) -> Group:
    """The loud message plus what to check, for when no worker answers."""
    where = f" ({config_path})" if config_path else ""
    hints = [
        "Qué revisar:",
        "  • Que el servicio worker esté en marcha en cada máquina: ./start_worker.sh "
        "o `partisim worker --host 0.0.0.0 --port 8080`.",
        f"  • Que las direcciones y puertos del archivo de configuración{where} sean los de "
        "sus máquinas.",
        "  • Que la red y el cortafuegos permitan conexiones a ese puerto "
        "(prueba: curl http://IP:PUERTO/ping).",
        "  • Para probar en este equipo sin máquinas: `partisim demo --local 2`.",
    ]
    if workers:
        listed = ", ".join(f"{w.id} → {getattr(w, 'address', None) or w.url}" for w in workers)
        hints.insert(1, f"  Workers configurados: {listed}")
    return Group(
        Panel(Text(NO_ACTIVE_WORKERS, style="bold red", justify="center"), border_style="red"),
        Text("\n".join(hints)),
    )


def ping_table(healths: Iterable[WorkerHealth], *, title: str = "Verificación de workers") -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("ID")
    table.add_column("Dirección")
    table.add_column("Estado")
    table.add_column("Latencia", justify="right")
    table.add_column("ID reportado")
    table.add_column("Detalle", overflow="fold")
    for h in healths:
        reported = Text(h.reported_id or "-")
        detail = ""
        if h.active and h.reported_id and h.reported_id != h.id:
            reported.stylize("yellow")
            detail = "el worker se identifica con otro id"
        if not h.active:
            detail = h.last_error or "sin respuesta"
        table.add_row(
            h.id,
            h.address,
            _state(h),
            fmt_latency(h.latency_ms if h.active else None),
            reported,
            detail,
        )
    return table


def status_table(healths: Iterable[WorkerHealth], *, title: str = "Estado detallado") -> Table:
    healths = list(healths)
    table = Table(title=title, title_justify="left", caption_justify="left")
    table.add_column("ID", no_wrap=True)
    table.add_column("Estado")
    table.add_column("Runner")
    table.add_column("Docker")
    table.add_column("Imagen")
    table.add_column("Uso", justify="right")
    table.add_column("OK/Fallos", justify="right")
    table.add_column("CPU/carga", justify="right")
    images: set[str] = set()
    for h in healths:
        s: Mapping[str, Any] = h.last_status or {}
        if not h.active:
            table.add_row(h.id, _state(h), *(["-"] * 6))
            continue
        if not s:
            table.add_row(h.id, Text(h.last_error or "sin /status", style="yellow"), *(["-"] * 6))
            continue
        if s.get("docker_image"):
            images.add(str(s["docker_image"]))
        capacity = f"{s.get('running', 0)}/{s['capacity']}" if "capacity" in s else "-"
        load = s.get("load_avg")
        load_text = f"/{load[0]:.2f}" if isinstance(load, (list, tuple)) and load else ""
        state = Text(str(s.get("status", "?")), style="green" if s.get("status") == "ready" else "yellow")
        table.add_row(
            h.id,
            state,
            str(s.get("runner", "-")),
            yes_no(s.get("docker_available")),
            yes_no(s.get("image_available")),
            capacity,
            f"{s.get('completed', '-')}/{s.get('failed', '-')}",
            f"{s.get('cpu_count', '-')}{load_text}",
        )
    if images:
        table.caption = "Imagen Docker: " + ", ".join(sorted(images))
    return table


def result_table(result: Mapping[str, Any], *, title: str = "Resultado de la tarea") -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("Campo", style="bold")
    table.add_column("Valor", overflow="fold")
    params = result.get("params") or {}
    rows = [
        ("Worker", result.get("worker_id")),
        ("Benchmark", result.get("benchmark")),
        ("Motor", result.get("engine")),
        ("Partículas", params.get("NUM_PARTICULAS")),
        ("Pasos", params.get("NUM_PASOS")),
        ("Semilla", params.get("SEMILLA")),
        ("Tiempo de simulación", fmt_seconds(result.get("simulation_time"))),
        ("Tiempo de ejecución", fmt_seconds(result.get("execution_time"))),
        ("Colisiones entre partículas", result.get("particle_collisions")),
        ("Colisiones con paredes", result.get("wall_collisions")),
        ("Energía cinética", _num(result.get("kinetic_energy"))),
        ("Partículas·paso/s", _num(result.get("particle_steps_per_s"), ".0f")),
        ("Checksum", result.get("checksum")),
        ("Runner", result.get("runner")),
        ("Tarea", result.get("task_id")),
    ]
    for label, value in rows:
        table.add_row(label, "-" if value is None else str(value))
    return table


def _num(value: Any, spec: str = ".4f") -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "-"


def comparison_table(rows: Iterable[Any], *, title: str = "Comparación Python vs Cython") -> Table:
    """Rows are ``partisim.orchestrator.demo.DemoRow`` objects."""
    table = Table(title=title, title_justify="left")
    table.add_column("Worker")
    table.add_column("Tiempo Python", justify="right")
    table.add_column("Tiempo Cython", justify="right")
    table.add_column("Aceleración", justify="right")
    table.add_column("Colisiones (Py / Cy)", justify="right")
    table.add_column("Checksums", justify="center")
    for row in rows:
        py, cy = row.python, row.cython
        table.add_row(
            row.worker_id,
            _run_time(py),
            _run_time(cy),
            f"{row.speedup:.1f}x" if row.speedup is not None else "-",
            f"{_collisions(py)} / {_collisions(cy)}",
            _match(row.checksums_match),
        )
    return table


def _run_time(run: Any) -> Text:
    if run.error:
        return Text("ERROR", style="bold red")  # the reason is printed below the table
    return Text(fmt_seconds(run.result.get("simulation_time")))


def _collisions(run: Any) -> str:
    if run.error or not run.result:
        return "-"
    return str(run.result.get("particle_collisions", "-"))


def _match(value: bool | None) -> Text:
    if value is None:
        return Text("-", style="dim")
    return Text("coinciden", style="green") if value else Text("DIFIEREN", style="bold red")


def config_table(config: Any) -> Group:
    workers = Table(title=f"Configuración: {getattr(config, 'path', '')}", title_justify="left")
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
    for label, attr in [
        ("Tiempo límite (s)", "timeout"),
        ("Reintentos", "retry_attempts"),
        ("Tareas concurrentes máx.", "max_concurrent_tasks"),
        ("Intervalo de ping (s)", "ping_interval"),
        ("Fallos antes de inactivo", "failures_before_inactive"),
    ]:
        if hasattr(o, attr):
            settings.add_row(label, str(getattr(o, attr)))
    return Group(workers, settings)


def check_table(reports: Iterable[Any], *, title: str = "Resumen de pruebas") -> Table:
    """Rows are ``partisim.orchestrator.check.WorkerChecks``: one column per check."""
    reports = list(reports)
    names: list[tuple[str, str]] = []
    for report in reports:
        for r in report.results:
            if (r.key, r.short_name) not in names:
                names.append((r.key, r.short_name))
    table = Table(title=title, title_justify="left")
    table.add_column("Worker", no_wrap=True)
    for _, name in names:
        table.add_column(name, justify="center")
    table.add_column("Resultado", justify="center")
    for report in reports:
        by_key = {r.key: r for r in report.results}
        cells: list[Text] = []
        for key, _ in names:
            r = by_key.get(key)
            if r is None or r.skipped:
                cells.append(Text("-", style="dim"))
            else:
                cells.append(Text("OK", style="green") if r.ok else Text("FALLO", style="bold red"))
        verdict = Text("SUPERADO", style="bold green") if report.passed else Text("FALLIDO", style="bold red")
        table.add_row(report.id, *cells, verdict)
    return table
