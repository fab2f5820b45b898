"""Orchestrator commands: orchestrator (menu), ping, status, exec, demo, check.

Exit codes: 0 ok, 1 no active workers or a failed task/check, 2 usage or
configuration error. Handlers only parse, call the library and print.
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from partisim.cli._commands import command_help
from partisim.cli._output import console, fail, install_log_handler, warn
from partisim.cli.run import add_param_options, params_from_args, positive_threads
from partisim.defaults import DEFAULT_CONFIG_PATH
from partisim.errors import ConfigError, ParamsError, PartisimError
from partisim.sim.numbers import count

if TYPE_CHECKING:
    from partisim.fleet import Config
    from partisim.fleet.health import WorkerHealth
    from partisim.sim import SimParams

# The orchestrator's modules (httpx, rich tables...) are imported inside the handlers:
# every `partisim` command builds this parser, and most never talk to a worker.

__all__ = ["register"]

DEMO_DEFAULTS = {"particles": 100, "steps": 500, "seed": 42}
DEFAULT_LOCAL_WORKERS = 2


# -- shared helpers -------------------------------------------------------------


def _setup_logging(verbose: bool) -> None:
    """Timestamped log lines on stderr; DEBUG with --verbose, warnings otherwise."""
    import logging

    install_log_handler()
    logging.getLogger().setLevel(logging.DEBUG if verbose else logging.WARNING)
    # httpx logs every request at INFO/DEBUG; only worth it with --verbose.
    logging.getLogger("httpx").setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def _load(path: str | None) -> Config:
    from pathlib import Path

    from partisim.fleet import load_config

    try:
        return load_config(path or DEFAULT_CONFIG_PATH)
    except ConfigError as exc:
        if path is None and not Path(DEFAULT_CONFIG_PATH).exists():
            # the README's first recipe (`serve --local`) writes no config: say where its workers are
            hint = "los workers de un `partisim serve --local` se ven con `partisim queue`"
            raise ConfigError(f"{exc.message}; {hint}") from None
        raise


def _command(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Every handler: logging per --verbose first; a bad configuration or bad
    parameters are a usage error (code 2) with their one-line message."""

    @functools.wraps(func)
    def handler(args: argparse.Namespace) -> int:
        _setup_logging(args.verbose)
        try:
            return func(args)
        except (ConfigError, ParamsError) as exc:
            return fail(exc.message)

    return handler


def _print_health(healths: list[WorkerHealth], config: Config, *, detailed: bool) -> int:
    from partisim.orchestrator import views

    console.print(views.ping_table(healths))
    active = [h for h in healths if h.active]
    if not active:
        console.print(views.no_active_workers(config.path, config.workers))
        return 1
    if detailed:
        console.print(views.status_table(healths))
    console.print(f"Workers activos: {len(active)}/{len(healths)}")
    return 0


def _health_command(args: argparse.Namespace, *, detailed: bool) -> int:
    from partisim.fleet.health import ping_all

    config = _load(args.config)
    if args.json:
        healths = ping_all(config, with_status=detailed)
        print(json.dumps([h.to_dict() for h in healths], ensure_ascii=False))
        return 0 if any(h.active for h in healths) else 1
    with console.status("Enviando ping a los workers..."):
        healths = ping_all(config, with_status=detailed)
    return _print_health(healths, config, detailed=detailed)


# -- handlers -------------------------------------------------------------------


@_command
def _orchestrator(args: argparse.Namespace) -> int:
    from partisim.orchestrator.menu import Menu

    return Menu(_load(args.config), console).run()


@_command
def _ping(args: argparse.Namespace) -> int:
    return _health_command(args, detailed=False)


@_command
def _status(args: argparse.Namespace) -> int:
    return _health_command(args, detailed=True)


@_command
def _exec(args: argparse.Namespace) -> int:
    from partisim.fleet.health import worker_tokens
    from partisim.orchestrator import views
    from partisim.orchestrator.dispatch import execute_any, explain_task_error
    from partisim.protocol import ExecuteResult
    from partisim.sim import coarse_step_warning, resolve_engine

    config = _load(args.config)
    entry = config.worker(args.worker)
    engine = resolve_engine(args.engine)
    params = params_from_args(args)
    if args.timeout is not None and not args.timeout > 0:
        return fail("--timeout: debe ser un número de segundos mayor que 0")
    try:
        with console.status(f"Ejecutando {engine} en {entry.id}..."):
            result = execute_any(
                entry.url,
                engine,
                params,
                timeout=args.timeout,
                threads=args.threads,
                connect_timeout=config.orchestrator.timeout,
                token=worker_tokens(config)[entry.id],
                ca_file=config.ca_file(),
            )
    except PartisimError as exc:
        message = explain_task_error(entry.id, exc)
        if args.json:
            print(json.dumps({"status": "error", "worker_id": entry.id, "error": message}, ensure_ascii=False))
        return fail(message, 1)
    if args.json:
        print(result.model_dump_json())
    elif isinstance(result, ExecuteResult):
        console.print(views.result_table(result))
    else:
        console.print(views.foreign_result_table(result))
    # the worker's own warnings; a worker that is not partisim sends none: worked out here
    local = coarse_step_warning(params)
    for text in result.warnings if isinstance(result, ExecuteResult) else [local] if local else []:
        warn(text)  # on stderr: the JSON on stdout stays one object
    return 0


def _demo_params(args: argparse.Namespace) -> SimParams:
    from partisim.sim import parse_params

    given = {f: getattr(args, f) for f in DEMO_DEFAULTS if getattr(args, f, None) is not None}
    return parse_params({**DEMO_DEFAULTS, **given})


@_command
def _demo(args: argparse.Namespace) -> int:
    from partisim.errors import LocalWorkersError
    from partisim.orchestrator.demo import run_demo
    from partisim.orchestrator.local import LocalWorkers

    params = _demo_params(args)
    local = args.local
    if local is None and args.config is None and not Path(DEFAULT_CONFIG_PATH).exists():
        console.print(
            f"No existe {DEFAULT_CONFIG_PATH}: la demo se ejecuta con {DEFAULT_LOCAL_WORKERS} "
            "workers locales en 127.0.0.1."
        )
        local = DEFAULT_LOCAL_WORKERS
    if local is None:
        config = _load(args.config)
        return run_demo(config, console, params=params).exit_code()
    if not 1 <= local <= 16:
        return fail("--local: el número de workers locales debe estar entre 1 y 16")
    workers = LocalWorkers(local)
    try:
        with console.status(f"Iniciando {count(local, 'worker local', 'workers locales')} en 127.0.0.1..."):
            workers.__enter__()
    except LocalWorkersError as exc:
        return fail(f"no se pudieron iniciar los workers locales: {exc.message}", 1)
    try:
        for w in workers.workers:
            console.print(f"  Worker local {w.id} en {w.url} (pid {w.proc.pid})")
        from partisim.fleet import load_config

        config = load_config(workers.write_config())
        return run_demo(config, console, params=params).exit_code()
    finally:
        workers.__exit__(None, None, None)
        console.print("Workers locales detenidos.")


@_command
def _check(args: argparse.Namespace) -> int:
    from partisim.orchestrator import views
    from partisim.orchestrator.check import CheckResult, WorkerChecks, run_checks

    config = _load(args.config)
    mode = "rápida" if args.quick else "completa"
    console.rule(f"[bold]Prueba de comunicación ({mode})")
    console.print(f"Configuración: {config.path} ({count(len(config.workers), 'worker', 'workers')})")

    def show(wc: WorkerChecks, result: CheckResult) -> None:
        if result.skipped:
            return
        mark = "[yellow]–[/yellow]" if result.unsupported else "[green]✓[/green]" if result.ok else "[red]✗[/red]"
        note = " (resto de pruebas omitidas)" if result.key == "ping" and not result.ok else ""
        console.print(f"  {mark} {wc.id} · {result.name}: {result.detail}{note}", soft_wrap=True)

    with console.status("Probando workers..."):
        reports = run_checks(config, quick=args.quick, on_result=show)
    console.print(views.check_table(reports))
    reachable = sum(1 for r in reports if r.reachable)
    passed = sum(1 for r in reports if r.passed)
    if reachable == 0:
        console.print(views.no_active_workers(config.path, config.workers))
    console.print(f"Workers activos: {reachable}/{len(reports)}")
    console.print(f"Workers que superan todas las pruebas: {passed}/{len(reports)}")
    ok = bool(reports) and passed == len(reports)
    console.print("[bold green]RESULTADO: TODO CORRECTO[/]" if ok else "[bold red]RESULTADO: HAY FALLOS[/]")
    return 0 if ok else 1


# -- registration ---------------------------------------------------------------


def _common() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--config",
        metavar="RUTA",
        default=None,
        help=f"archivo de configuración de workers (por defecto ./{DEFAULT_CONFIG_PATH})",
    )
    parent.add_argument(
        "-v", "--verbose", action="store_true", help="registro detallado con marcas de tiempo en stderr"
    )
    return parent


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = _common()

    p = subparsers.add_parser(
        "orchestrator",
        parents=[common],
        help=command_help("orchestrator"),
        description="Menú interactivo: verificar workers, ejecutar tareas, demo completa.",
    )
    p.set_defaults(func=_orchestrator)

    for name, func, text in [
        ("ping", _ping, command_help("ping")),
        ("status", _status, command_help("status")),
    ]:
        p = subparsers.add_parser(name, parents=[common], help=text, description=text.capitalize() + ".")
        p.add_argument("--json", action="store_true", help="salida JSON para scripts")
        p.set_defaults(func=func)

    p = subparsers.add_parser(
        "exec",
        parents=[common],
        help=command_help("exec"),
        description="Ejecuta un benchmark en un worker de la configuración y muestra sus métricas.",
        epilog="Ejemplo: partisim exec --worker worker-01 --engine cython -n 100 -s 500 --seed 42",
    )
    p.add_argument("--worker", "-w", required=True, metavar="ID", help="id del worker (de la configuración)")
    p.add_argument(
        "--engine",
        "-e",
        default="cython",
        metavar="MOTOR",
        help="python, numpy, cython, benchmark.py o benchmark_cython.py (por defecto cython)",
    )
    p.add_argument("--timeout", type=float, default=None, metavar="SEG", help="tiempo límite de la tarea en segundos")
    p.add_argument(
        "--threads",
        "-t",
        type=positive_threads,
        default=None,
        metavar="N",
        help="hilos de la simulación (solo cython los aprovecha); el worker los limita a su max_threads "
        "y cuenta cada uno como una plaza de su capacidad; la respuesta dice los usados",
    )
    p.add_argument("--json", action="store_true", help="imprime la respuesta del worker como JSON")
    add_param_options(p)
    p.set_defaults(func=_exec)

    p = subparsers.add_parser(
        "demo",
        parents=[common],
        help=command_help("demo"),
        description=(
            "Demo completa en los workers configurados. Con --local K (o si no existe "
            f"./{DEFAULT_CONFIG_PATH}) inicia K workers en 127.0.0.1, la ejecuta y los detiene."
        ),
    )
    p.add_argument(
        "--local",
        type=int,
        nargs="?",
        const=DEFAULT_LOCAL_WORKERS,
        default=None,
        metavar="K",
        help=f"usa K workers locales temporales (por defecto {DEFAULT_LOCAL_WORKERS})",
    )
    group = p.add_argument_group("parámetros de la simulación")
    group.add_argument(
        "-n",
        "--particles",
        type=int,
        default=None,
        metavar="N",
        help=f"número de partículas (por defecto {DEMO_DEFAULTS['particles']})",
    )
    group.add_argument(
        "-s",
        "--steps",
        type=int,
        default=None,
        metavar="N",
        help=f"número de pasos (por defecto {DEMO_DEFAULTS['steps']})",
    )
    group.add_argument(
        "--seed", type=int, default=None, metavar="N", help=f"semilla (por defecto {DEMO_DEFAULTS['seed']})"
    )
    p.set_defaults(func=_demo)

    p = subparsers.add_parser(
        "check",
        parents=[common],
        help=command_help("check"),
        description=(
            "Por cada worker: ping (< 5 s), estado, benchmark Python, benchmark Cython, petición "
            "inválida rechazada y tiempo límite respetado. Código 0 solo si todos pasan."
        ),
    )
    p.add_argument(
        "--quick", action="store_true", help="prueba rápida: parámetros pequeños y sin la prueba de tiempo límite"
    )
    p.set_defaults(func=_check)
