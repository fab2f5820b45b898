"""Queue commands: serve, submit, sweep, wait (results and report: `cli.results`).

``serve`` runs the orchestrator service; the others are clients of its REST API at
``--server`` (default ``PARTISIM_SERVER`` or http://127.0.0.1:8000). Exit codes: 0 ok,
1 a task failed / a verification mismatch / a wait timed out, 2 usage or config error.
Handlers only parse, call `partisim.serve` and print.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from partisim.cli import _types
from partisim.cli._commands import command_help
from partisim.cli._output import console, fail, install_log_handler, warn
from partisim.cli._serve_limits import add_limit_options, limit_options
from partisim.defaults import DEFAULT_CONFIG_PATH, default_server
from partisim.serve.options import ServeOptions
from partisim.sim.numbers import count as plural
from partisim.sim.options import OPTIONS

if TYPE_CHECKING:
    from partisim.fleet import Config
    from partisim.protocol import Submitted, Summary
    from partisim.serve.client import ServerClient
    from partisim.serve.server import Listening

# httpx, sqlite3, rich.progress... are imported where they are used: every `partisim`
# command builds this parser (also `partisim run` in each task's container).

__all__ = ["register", "connect", "add_server", "add_wait"]

_number, _port, _positive_int, _seconds = _types.number, _types.port, _types.positive_int, _types.seconds

DEFAULTS = ServeOptions()


def connect(args: argparse.Namespace) -> ServerClient:
    from partisim.fleet import client_token
    from partisim.serve.client import ServerClient

    return ServerClient(args.server, token=client_token(args.token_file), ca_file=args.ca_file)


def _setup_logging(verbose: bool) -> None:
    import logging

    install_log_handler()
    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("partisim").setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _serve_config(args: argparse.Namespace) -> Config:
    """The config file; with --dask and no file at the default path, the defaults."""
    from partisim.fleet import Config, load_config

    if args.dask and args.config == DEFAULT_CONFIG_PATH and not Path(args.config).exists():
        return Config()
    return load_config(args.config)


def _serve(args: argparse.Namespace) -> int:
    if args.local is not None:
        from partisim.cli.local_serve import serve_with_local_workers

        return serve_with_local_workers(args, _serve_on)
    return _serve_on(args, _serve_config(args))


def _serve_on(args: argparse.Namespace, config: Config) -> int:
    from partisim.fleet.tokens import server_token
    from partisim.serve.executors.dask.provision import require_dask
    from partisim.serve.server import dask_target, serve

    if not 0 <= args.port <= 65535:
        return fail(f"--port debe estar entre 0 y 65535 (0: uno libre; recibido {args.port})")
    token = server_token(args.token_file)
    options = ServeOptions(
        db=args.db,
        host=args.host,
        port=args.port,
        inbox=args.inbox,
        token=token,
        ca_file=args.ca_file,
        tls_cert=args.tls_cert or os.environ.get("PARTISIM_TLS_CERT") or None,
        tls_key=args.tls_key or os.environ.get("PARTISIM_TLS_KEY") or None,
        page_size=args.page_size,
        dask=args.dask,
        **limit_options(args),
    )
    target = dask_target(config, options)
    if target is None and not config.workers:
        return fail(
            f'{args.config}: la lista "workers" está vacía; añada al menos un worker '
            "(o use --dask para ejecutar las tareas en un clúster Dask)"
        )
    if target is not None:
        require_dask(target.kind)  # before anything starts: say what to install
    if args.job_script:
        if target is None or target.kind not in ("slurm", "pbs"):
            return fail("--job-script necesita --dask slurm o --dask pbs (o dask.address en la configuración)")
        from partisim.serve.executors.dask.provision import job_script

        print(job_script(target.kind, config.dask.jobqueue))
        return 0
    _setup_logging(args.verbose)
    runs_on = f"Dask: {target.label}" if target is not None else f"{len(config.workers)} workers en {config.path}"
    if args.local is not None:
        runs_on = f"{len(config.workers)} workers locales ({', '.join(w.url for w in config.workers)})"

    def banner(where: Listening) -> None:
        # printed only once the server accepts connections
        console.print(
            f"[bold]partisim serve[/] en {where.url} · panel: {where.dashboard} · base de datos {args.db} · "
            f"{runs_on}" + (f" · bandeja {args.inbox}" if args.inbox else ""),
            soft_wrap=True,
        )
        access = "con token" if options.token else "sin token"
        console.print(
            f"API: /api/tasks, /api/workers, /api/summary ({access}) · Ctrl-C o SIGTERM para parar", soft_wrap=True
        )

    serve(config, options, on_listening=banner)
    console.print("partisim serve detenido.")
    return 0


def _wait(client: ServerClient, batch: str | None, timeout: float | None) -> Summary:
    from partisim.orchestrator.batches import wait_batch
    from partisim.orchestrator.views import BatchProgress

    with BatchProgress(console, f"lote {batch}" if batch else "cola") as bar:
        return wait_batch(client, batch, timeout=timeout, on_progress=bar.update)


def _finish_wait(client: ServerClient, batch: str | None, timeout: float | None) -> int:
    from partisim.orchestrator.batches import require_batch

    if batch:
        require_batch(client, batch)  # an unknown batch: its error, before any progress bar
    try:
        state = _wait(client, batch, timeout)
    except TimeoutError:
        return fail(f"el lote {batch or '(toda la cola)'} no terminó en {timeout:g} s", 1)
    if state.failed:
        console.print(
            f"[red]{plural(state.failed, 'tarea fallida', 'tareas fallidas')}[/]; vea: partisim results"
            + (f" --batch {batch}" if batch else "")
        )
        return 1
    console.print(
        f"[green]Terminado:[/] {plural(state.success, 'tarea', 'tareas')} con éxito"
        + (f", {plural(state.cancelled, 'cancelada', 'canceladas')}" if state.cancelled else "")
    )
    return 0


def _after_submit(client: ServerClient, args: argparse.Namespace, answer: Submitted) -> int:
    from partisim.orchestrator.views import count

    console.print(f"{count(answer.count, 'tarea', 'tareas')} en cola · lote [bold]{answer.batch}[/]")
    if answer.warning:
        warn(answer.warning)
    for text in answer.warnings:  # one per distinct text: advice, the tasks run as asked
        warn(text)
    console.print(f"Siga el progreso con: partisim wait --batch {answer.batch}")
    if not args.wait:
        return 0
    return _finish_wait(client, answer.batch, args.timeout_wait)


def _submit(args: argparse.Namespace) -> int:
    from partisim.orchestrator.batches import submit_file

    with connect(args) as client:
        return _after_submit(client, args, submit_file(client, args.file, batch=args.batch, priority=args.priority))


#: simulation parameters a sweep keeps fixed for every task (the others are its lists)
_FIXED = ("width", "height", "radius", "dt", "max_speed", "wall_restitution", "particle_restitution")


def _sweep(args: argparse.Namespace) -> int:
    from partisim.orchestrator.batches import submit_sweep
    from partisim.sim.params import ALIASES

    fixed = {ALIASES[f]: getattr(args, f) for f in _FIXED if getattr(args, f) is not None}
    # an error names the option: under the API name or the field name, as it was raised
    names = {key: OPTIONS[f][0] for f in _FIXED for key in (ALIASES[f], f)}
    with connect(args) as client:
        answer = submit_sweep(
            client,
            engines=args.engines,
            particles=args.particles,
            steps=args.steps,
            seeds=args.seeds,
            repeat=args.repeat,
            timeout=args.timeout,
            threads=args.threads,
            batch=args.batch,
            params=fixed,
            names=names,
            priority=args.priority,
        )
        return _after_submit(client, args, answer)


def _wait_command(args: argparse.Namespace) -> int:
    with connect(args) as client:
        return _finish_wait(client, args.batch, args.timeout_wait)


# -- argument parsing -------------------------------------------------------------------


def _add_fixed_params(p: argparse.ArgumentParser) -> None:
    """The simulation parameters every task of a sweep shares (the table of `partisim run`)."""
    group = p.add_argument_group("parámetros fijos (iguales en todas las tareas)")
    for field in _FIXED:
        option, text = OPTIONS[field]
        group.add_argument(option, dest=field, type=_number, default=None, metavar="X", help=text)


def _priority(text: str) -> int:
    from partisim.errors import ParamsError
    from partisim.serve.queue.etapa6 import parse_priority

    try:
        return parse_priority(text, "--priority")
    except ParamsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_priority(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument(
        "--priority",
        type=_priority,
        default=None,
        metavar="P",
        help=f"prioridad: un entero (mayor sale antes) o high, medium, low ({default})",
    )


def add_server(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--server",
        default=None,
        metavar="URL",
        help=f"dirección de partisim serve (por defecto PARTISIM_SERVER o {default_server()})",
    )
    _add_credentials(p, serving=False)


def _add_credentials(p: argparse.ArgumentParser, *, serving: bool) -> None:
    what = "que exige este servidor" if serving else "de partisim serve"
    p.add_argument(
        "--token-file",
        default=None,
        metavar="RUTA",
        help=f"archivo con el token {what} (o PARTISIM_TOKEN_FILE / PARTISIM_TOKEN)",
    )
    target = "los workers https" if serving else "serve por https"
    p.add_argument(
        "--ca-file",
        default=None,
        metavar="RUTA",
        help=f"autoridad certificadora para verificar {target} (o PARTISIM_CA_FILE)",
    )


def add_wait(p: argparse.ArgumentParser, *, flag: bool) -> None:
    if flag:
        p.add_argument("--wait", action="store_true", help="esperar a que termine el lote, con barra de progreso")
    p.add_argument(
        "--timeout-wait",
        type=_seconds,
        default=None,
        metavar="S",
        help="máximo de segundos a esperar (por defecto sin límite)",
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "serve",
        help=command_help("serve"),
        description="Orquestador de larga duración: vigila los workers, reparte la cola de tareas "
        "(SQLite) con reintentos y ofrece la API REST /api/*.",
    )
    p.add_argument(
        "--config",
        default=DEFAULT_CONFIG_PATH,
        metavar="RUTA",
        help=f"configuración de workers (por defecto {DEFAULT_CONFIG_PATH})",
    )
    p.add_argument(
        "--db", default=DEFAULTS.db, metavar="RUTA", help=f"base de datos SQLite (por defecto {DEFAULTS.db})"
    )
    p.add_argument(
        "--host", default=DEFAULTS.host, metavar="DIRECCIÓN", help=f"dirección de escucha (por defecto {DEFAULTS.host})"
    )
    p.add_argument(
        "--port",
        type=_port,
        default=DEFAULTS.port,
        metavar="PUERTO",
        help=f"puerto de escucha (por defecto {DEFAULTS.port})",
    )
    p.add_argument(
        "--local",
        type=_positive_int,
        default=None,
        metavar="N",
        help="iniciar N workers en esta máquina (127.0.0.1) y repartir en ellos la cola, sin archivo de "
        "configuración; se detienen con serve",
    )
    p.add_argument(
        "--inbox",
        default=None,
        metavar="CARPETA",
        help="carpeta vigilada: cada archivo JSON de tareas que aparezca se encola",
    )
    p.add_argument(
        "--page-size",
        type=_positive_int,
        default=DEFAULTS.page_size,
        metavar="N",
        help=f"máximo de tareas por página de /api/tasks y por lectura de una exportación "
        f"(por defecto {DEFAULTS.page_size})",
    )
    add_limit_options(p, DEFAULTS)
    _add_credentials(p, serving=True)
    p.add_argument(
        "--tls-cert",
        default=None,
        metavar="RUTA",
        help="certificado PEM para servir por https (con --tls-key; o PARTISIM_TLS_CERT)",
    )
    p.add_argument(
        "--tls-key", default=None, metavar="RUTA", help="clave privada PEM del certificado (o PARTISIM_TLS_KEY)"
    )
    p.add_argument(
        "--dask",
        default=None,
        metavar="DIRECCIÓN",
        help="ejecutar las tareas en un clúster Dask en lugar de los workers de la configuración: "
        "tcp://HOST:PUERTO (un planificador existente), local:N (N procesos en esta máquina), "
        "slurm o pbs (trabajos de dask-jobqueue, sección dask.jobqueue de la configuración); "
        "necesita pip install 'partisim[dask]'",
    )
    p.add_argument(
        "--job-script",
        action="store_true",
        help="con --dask slurm|pbs: mostrar el script de trabajo que se enviaría y salir",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="registro detallado")
    p.set_defaults(func=_serve)

    p = subparsers.add_parser("submit", help=command_help("submit"))
    p.add_argument(
        "file",
        metavar="ARCHIVO.json",
        help='lista de tareas o {"tasks": [...]}; cada tarea: benchmark, params, repeat, timeout, threads, '
        "priority, label; también los archivos de ETAPA 6 tal cual",
    )
    p.add_argument("--batch", default=None, metavar="ID", help="id de lote (por defecto uno nuevo)")
    _add_priority(p, "para todas las tareas del archivo, en lugar de la suya")
    add_server(p)
    add_wait(p, flag=True)
    p.set_defaults(func=_submit)

    p = subparsers.add_parser("sweep", help=command_help("sweep"))
    p.add_argument(
        "--engines",
        default="python,cython",
        metavar="LISTA",
        help="motores separados por comas (por defecto python,cython)",
    )
    p.add_argument("--particles", required=True, metavar="LISTA", help="partículas, p. ej. 100,1000")
    p.add_argument("--steps", default="500", metavar="LISTA", help="pasos, p. ej. 500 (por defecto 500)")
    p.add_argument("--seeds", default="42", metavar="LISTA", help="semillas, p. ej. 1-10 o 1,2,3 (por defecto 42)")
    p.add_argument("--repeat", type=_positive_int, default=1, metavar="N", help="repeticiones de cada combinación")
    p.add_argument("--timeout", type=_seconds, default=None, metavar="S", help="tiempo máximo de cada tarea")
    p.add_argument(
        "--threads",
        "-t",
        type=_positive_int,
        default=1,
        metavar="N",
        help="hilos de cada simulación (solo cython los aprovecha; por defecto 1); cada hilo ocupa una "
        "plaza del worker, que los limita a su max_threads",
    )
    p.add_argument("--batch", default=None, metavar="ID", help="id de lote (por defecto uno nuevo)")
    _add_priority(p, "por defecto 0")
    _add_fixed_params(p)
    add_server(p)
    add_wait(p, flag=True)
    p.set_defaults(func=_sweep)

    p = subparsers.add_parser("wait", help=command_help("wait"))
    p.add_argument("--batch", default=None, metavar="ID", help="lote a esperar (por defecto toda la cola)")
    add_server(p)
    add_wait(p, flag=False)
    p.set_defaults(func=_wait_command)
