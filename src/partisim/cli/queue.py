"""Queue commands: serve, submit, sweep, wait, results, report.

``serve`` runs the orchestrator service; the others are clients of its REST API at
``--server`` (default ``PARTISIM_SERVER`` or http://127.0.0.1:8000). Exit codes: 0 ok,
1 a task failed / a verification mismatch / a wait timed out, 2 usage or config error.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from partisim.cli._output import console, err_console, fail, install_log_handler
from partisim.errors import PartisimError
from partisim.orchestrator.config import DEFAULT_CONFIG_PATH, default_server, load_config

if TYPE_CHECKING:
    from rich.console import Console

    from partisim.orchestrator.queue import TaskSpec
    from partisim.orchestrator.results import Check
    from partisim.orchestrator.server_client import ServerClient

# httpx, sqlite3, rich.progress... are imported where they are used: every `partisim`
# command builds this parser (also `partisim run` in each task's container).

__all__ = [
    "register", "submit_file", "submit_sweep", "wait_batch", "print_status", "verify_batch", "menu_options",
]

log = logging.getLogger(__name__)


# -- actions shared with the interactive menu ---------------------------------------


def _connect(server: str | None = None) -> ServerClient:
    from partisim.orchestrator.server_client import ServerClient

    return ServerClient(server)


def _task_objects(specs: list[TaskSpec]) -> list[dict[str, Any]]:
    """Validated specs -> the task objects of ``POST /api/tasks``."""
    return [{"benchmark": s.benchmark, "params": s.params, **({"timeout": s.timeout} if s.timeout else {})}
            for s in specs]


def submit_file(client: ServerClient, path: str, *, batch: str | None = None) -> dict[str, Any]:
    """Validate a task file here (clear errors with the file name), then queue it."""
    from partisim.orchestrator.tasks import load_task_file

    specs = load_task_file(path)
    return client.submit(_task_objects(specs), batch=batch)


def submit_sweep(
    client: ServerClient,
    *,
    engines: str,
    particles: str,
    steps: str,
    seeds: str,
    repeat: int = 1,
    timeout: float | None = None,
    batch: str | None = None,
) -> dict[str, Any]:
    """The cartesian product as one batch."""
    from partisim.orchestrator.tasks import parse_engine_list, parse_int_list, sweep

    specs = sweep(
        parse_engine_list(engines),
        parse_int_list(particles, "--particles"),
        parse_int_list(steps, "--steps"),
        parse_int_list(seeds, "--seeds"),
        repeat=repeat,
        timeout=timeout,
    )
    return client.submit(_task_objects(specs), batch=batch)


def wait_batch(client: ServerClient, batch: str | None, *, timeout: float | None = None,
               show: bool = True, out: Console = console) -> dict[str, Any]:
    """Block (with a progress bar) until the batch has nothing queued or running."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    deadline = None if timeout is None else time.monotonic() + timeout
    state = client.summary(batch=batch)
    if state["total"] == 0:
        raise PartisimError(f"no hay tareas en el lote {batch}" if batch else "la cola está vacía")
    label = f"lote {batch}" if batch else "cola"
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"), TimeElapsedColumn(),
        console=out, disable=not show, transient=False,
    ) as progress:
        bar = progress.add_task(label, total=state["total"], detail="")
        while True:
            finished = state["success"] + state["failed"] + state["cancelled"]
            detail = (f"éxito {state['success']} · fallidas {state['failed']} · "
                      f"en curso {state['running']} · en cola {state['queued']}")
            progress.update(bar, total=state["total"], completed=finished, detail=detail)
            if state["done"]:
                return state
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(label)
            wait = 2.0 if left is None else max(0.05, min(2.0, left))
            state = client.summary(batch=batch, wait=wait)


def verify_batch(client: ServerClient, batch: str | None, count: int,
                 *, timeout: float | None = None) -> list[Check]:
    """Run ``count`` sampled successful tasks again on another worker; compare checksums."""
    from partisim.orchestrator.results import compare_checksums

    answer = client.verify(count, batch=batch)
    console.print(f"Verificando {answer['count']} tareas en otro worker (lote {answer['batch']})...")
    wait_batch(client, answer["batch"], timeout=timeout)
    reruns = client.tasks(batch=answer["batch"], limit=100_000)
    originals = {p["original"]: client.task(p["original"]) for p in answer["pairs"]}
    return compare_checksums(originals, reruns)


def print_status(client: ServerClient, out: Console = console) -> None:
    """Queue counts, workers and the latest batches."""
    from rich.table import Table

    s = client.summary()
    out.print(
        f"[bold]Cola:[/] {s['total']} tareas — en cola {s['queued']}, en curso {s['running']}, "
        f"éxito {s['success']}, fallidas {s['failed']}, canceladas {s['cancelled']} · "
        f"{s['finished_last_60s']} terminadas en el último minuto ({s['throughput_per_s']:.2f}/s)"
    )
    table = Table(title=f"Workers ({s['workers_active']}/{s['workers_total']} activos)")
    for header in ("Worker", "Dirección", "Estado", "Capacidad", "En curso", "Completadas"):
        table.add_column(header)
    for w in client.workers():
        state = "[green]activo[/]" if w.get("state") == "active" else "[red]inactivo[/]"
        table.add_row(str(w.get("id")), str(w.get("url")), state, str(w.get("capacity", "—")),
                      str(w.get("inflight", "—")), str(w.get("completed", 0)))
    out.print(table)
    if s["workers_active"] == 0 and s["workers_total"] > 0:
        out.print("[bold red]NO HAY MÁQUINAS ACTIVAS[/]")
    batches = client.batches(limit=10)
    if batches:
        bt = Table(title="Últimos lotes")
        for header in ("Lote", "Total", "Éxito", "Fallidas", "En curso", "En cola", "Canceladas"):
            bt.add_column(header)
        for b in batches:
            bt.add_row(b["batch"], str(b["total"]), str(b["success"]), str(b["failed"]),
                       str(b["running"]), str(b["queued"]), str(b["cancelled"]))
        out.print(bt)


# -- interactive menu entries -----------------------------------------------------------


def menu_options(menu: Any) -> list[tuple[str, Callable[[], None]]]:
    """Queue entries for `partisim.orchestrator.menu.Menu` (uses its ``ask``/``ask_yes``/
    ``console``); each reports errors on the menu's console and never raises."""
    out: Console = menu.console

    def guarded(action: Callable[[ServerClient], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                with _connect() as client:
                    action(client)
            except PartisimError as exc:
                out.print(f"[red]Error:[/red] {exc.message}")
            except TimeoutError:
                out.print("[yellow]El lote sigue en curso; consúltelo con «Estado de la cola».[/yellow]")
        return run

    def finish(client: ServerClient, answer: dict[str, Any]) -> None:
        out.print(f"{answer['count']} tareas en cola · lote [bold]{answer['batch']}[/]")
        if menu.ask_yes("¿Esperar a que termine el lote? [S/n]: "):
            state = wait_batch(client, answer["batch"], out=out)
            out.print(f"Éxito {state['success']} · fallidas {state['failed']} · canceladas {state['cancelled']}")

    def submit(client: ServerClient) -> None:
        path = menu.ask("Ruta del archivo JSON de tareas: ")
        if not path:
            out.print("[yellow]No se indicó ningún archivo.[/yellow]")
            return
        finish(client, submit_file(client, path))

    def sweep_(client: ServerClient) -> None:
        answers = {}
        for key, question, default in (
            ("engines", "Motores", "python,cython"), ("particles", "Partículas", "100,1000"),
            ("steps", "Pasos", "500"), ("seeds", "Semillas (p. ej. 1-10)", "1-3"),
        ):
            answers[key] = menu.ask(f"{question} {escape(f'[{default}]')}: ") or default
        finish(client, submit_sweep(client, **answers))

    return [
        ("Cola: enviar un archivo de tareas (partisim serve)", guarded(submit)),
        ("Cola: barrido de parámetros (partisim serve)", guarded(sweep_)),
        ("Cola: estado de la cola y de los lotes", guarded(lambda client: print_status(client, out))),
    ]


# -- handlers -------------------------------------------------------------------------


def _setup_logging(verbose: bool) -> None:
    install_log_handler()
    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("partisim").setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _serve(args: argparse.Namespace) -> int:
    from partisim.orchestrator.server import ServeOptions, serve

    config = load_config(args.config)
    if not config.workers:
        return fail(f"{args.config}: la lista \"workers\" está vacía; añada al menos un worker")
    if not 1 <= args.port <= 65535:
        return fail(f"--port debe estar entre 1 y 65535 (recibido {args.port})")
    _setup_logging(args.verbose)
    options = ServeOptions(db=args.db, host=args.host, port=args.port, inbox=args.inbox)
    console.print(
        f"[bold]partisim serve[/] en http://{args.host}:{args.port} · base de datos {args.db} · "
        f"{len(config.workers)} workers en {config.path}"
        + (f" · bandeja {args.inbox}" if args.inbox else "")
    )
    console.print("API: /api/tasks, /api/workers, /api/summary · Ctrl-C o SIGTERM para parar")
    serve(config, options)
    console.print("partisim serve detenido.")
    return 0


def _announce(answer: dict[str, Any]) -> None:
    console.print(f"{answer['count']} tareas en cola · lote [bold]{answer['batch']}[/]")
    console.print(f"Siga el progreso con: partisim wait --batch {answer['batch']}")


def _after_submit(client: ServerClient, args: argparse.Namespace, answer: dict[str, Any]) -> int:
    _announce(answer)
    if not args.wait:
        return 0
    return _finish_wait(client, answer["batch"], args.timeout_wait)


def _finish_wait(client: ServerClient, batch: str | None, timeout: float | None) -> int:
    try:
        state = wait_batch(client, batch, timeout=timeout)
    except TimeoutError:
        return fail(f"el lote {batch or '(toda la cola)'} no terminó en {timeout:g} s", 1)
    if state["failed"]:
        console.print(f"[red]{state['failed']} tareas fallidas[/]; vea: partisim results"
                      + (f" --batch {batch}" if batch else ""))
        return 1
    console.print(f"[green]Terminado:[/] {state['success']} tareas con éxito"
                  + (f", {state['cancelled']} canceladas" if state["cancelled"] else ""))
    return 0


def _submit(args: argparse.Namespace) -> int:
    with _connect(args.server) as client:
        return _after_submit(client, args, submit_file(client, args.file, batch=args.batch))


def _sweep(args: argparse.Namespace) -> int:
    with _connect(args.server) as client:
        answer = submit_sweep(
            client, engines=args.engines, particles=args.particles, steps=args.steps,
            seeds=args.seeds, repeat=args.repeat, timeout=args.timeout, batch=args.batch,
        )
        return _after_submit(client, args, answer)


def _wait(args: argparse.Namespace) -> int:
    with _connect(args.server) as client:
        return _finish_wait(client, args.batch, args.timeout_wait)


def _print_checks(checks: list[Check]) -> int:
    from rich.table import Table

    table = Table(title="Verificación en otro worker")
    for header in ("Tarea", "Worker", "Repetición", "Worker", "Resultado"):
        table.add_column(header)
    for c in checks:
        table.add_row(c.original_id, str(c.original_worker), c.verify_id, str(c.verify_worker), c.label)
    console.print(table)
    bad = [c for c in checks if c.match is False]
    unverified = [c for c in checks if c.match is None]
    if bad:
        console.print(f"[bold red]¡{len(bad)} checksums NO COINCIDEN![/] Los resultados no son reproducibles.")
        return 1
    if unverified:
        console.print(f"[yellow]{len(unverified)} tareas no se pudieron verificar[/]")
        return 1
    console.print(f"[green]Los {len(checks)} checksums coinciden.[/]")
    return 0


def _results(args: argparse.Namespace) -> int:
    from partisim.files import write_atomic
    from partisim.orchestrator.results import results_table, to_csv, to_json

    with _connect(args.server) as client:
        tasks = client.tasks(batch=args.batch, status=args.status, limit=100_000)
        if not tasks:
            return fail(f"no hay tareas en el lote {args.batch}" if args.batch else "la cola está vacía", 1)
        tasks = [t for t in tasks if not t.get("verify_of")] or tasks
        try:
            checks = verify_batch(client, args.batch, args.verify, timeout=args.timeout_wait) if args.verify else None
        except TimeoutError:
            return fail(f"la verificación no terminó en {args.timeout_wait:g} s", 1)
    if args.format == "table":
        by_original = {c.original_id: c for c in checks} if checks is not None else None
        console.print(results_table(tasks, checks=by_original))
    else:
        text = to_csv(tasks) if args.format == "csv" else to_json(tasks)
        if args.output:
            write_atomic(args.output, text)
            err_console.print(f"{len(tasks)} tareas escritas en {args.output}")
        else:
            print(text, end="" if text.endswith("\n") else "\n")
    if checks is not None:
        return _print_checks(checks)
    return 0


def _report(args: argparse.Namespace) -> int:
    from rich.table import Table

    from partisim.orchestrator.report import write_report
    from partisim.orchestrator.results import speedups

    with _connect(args.server) as client:
        tasks = client.tasks(batch=args.batch, status="success", limit=100_000)
        try:
            checks = verify_batch(client, args.batch, args.verify, timeout=args.timeout_wait) if args.verify else None
        except TimeoutError:
            return fail(f"la verificación no terminó en {args.timeout_wait:g} s", 1)
    title = f"Informe partisim — lote {args.batch}" if args.batch else None
    groups = write_report(tasks, args.output, title=title)
    table = Table(title="Tiempo de simulación (s)")
    for header in ("Motor", "Partículas", "Pasos", "Ejecuciones", "Media", "Desv. est."):
        table.add_column(header)
    for g in groups:
        table.add_row(g.engine, str(g.particles), str(g.steps), str(g.n), f"{g.mean:.4f}", f"{g.stdev:.4f}")
    console.print(table)
    for up in speedups(groups):
        console.print(f"Aceleración cython/python con {up.particles} partículas, {up.steps} pasos: "
                      f"[bold]{up.value:.1f}×[/]")
    console.print(f"Informe guardado en [bold]{args.output}[/]")
    if checks is not None:
        return _print_checks(checks)
    return 0


# -- argument parsing -------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"debe ser un número entero, se recibió {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"debe ser al menos 1, se recibió {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"debe ser un número de segundos, se recibió {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"debe ser mayor que 0, se recibió {text}")
    return value


def _port(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"debe ser un número de puerto, se recibió {text!r}") from None


def _add_server(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", default=None, metavar="URL",
                   help=f"dirección de partisim serve (por defecto PARTISIM_SERVER o {default_server()})")


def _add_wait(p: argparse.ArgumentParser, *, flag: bool) -> None:
    if flag:
        p.add_argument("--wait", action="store_true", help="esperar a que termine el lote, con barra de progreso")
    p.add_argument("--timeout-wait", type=_seconds, default=None, metavar="S",
                   help="máximo de segundos a esperar (por defecto sin límite)")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve", help="servicio orquestador: cola SQLite, planificador, bandeja y API REST",
        description="Orquestador de larga duración: vigila los workers, reparte la cola de tareas "
                    "(SQLite) con reintentos y ofrece la API REST /api/*.",
    )
    p.add_argument("--config", default=DEFAULT_CONFIG_PATH, metavar="RUTA",
                   help=f"configuración de workers (por defecto {DEFAULT_CONFIG_PATH})")
    p.add_argument("--db", default="partisim.db", metavar="RUTA", help="base de datos SQLite (por defecto partisim.db)")
    p.add_argument("--host", default="127.0.0.1", help="dirección de escucha (por defecto 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8000, help="puerto de escucha (por defecto 8000)")
    p.add_argument("--inbox", default=None, metavar="CARPETA",
                   help="carpeta vigilada: cada archivo JSON de tareas que aparezca se encola")
    p.add_argument("-v", "--verbose", action="store_true", help="registro detallado")
    p.set_defaults(func=_serve)

    p = subparsers.add_parser("submit", help="encolar un archivo JSON de tareas en partisim serve")
    p.add_argument("file", metavar="ARCHIVO.json",
                   help="lista de tareas o {\"tasks\": [...]}; cada tarea: benchmark, params, repeat, timeout")
    p.add_argument("--batch", default=None, metavar="ID", help="id de lote (por defecto uno nuevo)")
    _add_server(p)
    _add_wait(p, flag=True)
    p.set_defaults(func=_submit)

    p = subparsers.add_parser("sweep", help="encolar un barrido de parámetros (producto cartesiano) como un lote")
    p.add_argument("--engines", default="python,cython", metavar="LISTA", help="motores separados por comas (por defecto python,cython)")
    p.add_argument("--particles", required=True, metavar="LISTA", help="partículas, p. ej. 100,1000")
    p.add_argument("--steps", default="500", metavar="LISTA", help="pasos, p. ej. 500 (por defecto 500)")
    p.add_argument("--seeds", default="42", metavar="LISTA", help="semillas, p. ej. 1-10 o 1,2,3 (por defecto 42)")
    p.add_argument("--repeat", type=_positive_int, default=1, metavar="N", help="repeticiones de cada combinación")
    p.add_argument("--timeout", type=_seconds, default=None, metavar="S", help="tiempo máximo de cada tarea")
    p.add_argument("--batch", default=None, metavar="ID", help="id de lote (por defecto uno nuevo)")
    _add_server(p)
    _add_wait(p, flag=True)
    p.set_defaults(func=_sweep)

    p = subparsers.add_parser("wait", help="esperar a que termine un lote (barra de progreso)")
    p.add_argument("--batch", default=None, metavar="ID", help="lote a esperar (por defecto toda la cola)")
    _add_server(p)
    _add_wait(p, flag=False)
    p.set_defaults(func=_wait)

    p = subparsers.add_parser("results", help="resultados de las tareas: tabla, CSV o JSON")
    p.add_argument("--batch", default=None, metavar="ID", help="solo este lote")
    p.add_argument("--status", default=None, choices=("queued", "running", "success", "failed", "cancelled"),
                   help="solo tareas en este estado")
    p.add_argument("--format", default="table", choices=("table", "csv", "json"), help="formato (por defecto table)")
    p.add_argument("-o", "--output", default=None, metavar="ARCHIVO", help="escribir CSV/JSON en este archivo")
    p.add_argument("--verify", type=_positive_int, default=None, metavar="K",
                   help="repetir K tareas al azar en otro worker y comparar checksums")
    _add_server(p)
    _add_wait(p, flag=False)
    p.set_defaults(func=_results)

    p = subparsers.add_parser("report", help="informe PNG: tiempo vs partículas por motor y aceleración cython/python")
    p.add_argument("--batch", default=None, metavar="ID", help="solo este lote")
    p.add_argument("-o", "--output", default="report.png", metavar="ARCHIVO.png",
                   help="imagen (por defecto report.png)")
    p.add_argument("--verify", type=_positive_int, default=None, metavar="K",
                   help="repetir K tareas al azar en otro worker y comparar checksums")
    _add_server(p)
    _add_wait(p, flag=False)
    p.set_defaults(func=_report)
