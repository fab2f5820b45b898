"""`partisim worker`: start the worker service on this machine."""

from __future__ import annotations

import argparse

from partisim.cli import _spanish
from partisim.cli._commands import command_help
from partisim.worker.settings import OPTIONS, WorkerSettings

__all__ = ["register"]

_EPILOG = """\
Cada opción también se puede dar con su variable de entorno (entre corchetes);
la opción gana. PARTISIM_TOKEN fija el token exigido en Authorization: Bearer.

Ejemplos:
  partisim worker                                  # 0.0.0.0:8080, id según config_workers.json
  partisim worker --host 127.0.0.93 --port 8080
  WORKER_ID=worker-01 partisim worker --runner process --capacity 2
"""


def _run(args: argparse.Namespace) -> int:
    from partisim.worker.settings import build_settings

    settings = build_settings({opt.name: getattr(args, opt.name) for opt in OPTIONS})
    if args.whoami:
        return _whoami(settings)
    from partisim.worker.server import run_worker  # heavy imports (uvicorn, FastAPI) only when serving

    return run_worker(settings)


def _whoami(s: WorkerSettings) -> int:
    """Print the id and addresses this worker would take, and exit (start_worker.sh uses it)."""
    from partisim.fleet import resolve_identity

    ident = resolve_identity(
        s.host, s.port, worker_id=s.worker_id, config_path=s.config_path, config_explicit=s.config_explicit
    )
    print(f"{ident.worker_id} {ident.address}")  # plain: start_worker.sh reads it
    return 0


#: the placeholder of an option's value in the help, in Spanish, by the end of its name
_METAVARS = {
    "host": "DIRECCIÓN",
    "port": "PUERTO",
    "config": "RUTA",
    "path": "RUTA",
    "bytes": "BYTES",
    "file": "RUTA",
    "cert": "RUTA",
    "key": "RUTA",
    "bin": "PROGRAMA",
    "image": "IMAGEN",
    "memory": "MEMORIA",
    "cpus": "CPU",
    "level": "NIVEL",
    "runner": "MODO",
    "body": "BYTES",
    "mb": "MB",
    "grace": "S",
    "timeout": "S",
    "id": "ID",
}


def _metavar(name: str) -> str:
    return _METAVARS.get(name.rsplit("_", 1)[-1], "N")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "worker",
        help=command_help("worker"),
        description="Inicia el servicio worker: una API HTTP/REST que ejecuta simulaciones a pedido.",
        epilog=_EPILOG,
        formatter_class=_spanish.TextFormatter,
    )
    for opt in OPTIONS:
        env = f" [{opt.env}]" if opt.env else ""
        parser.add_argument(opt.flag, dest=opt.name, default=None, metavar=_metavar(opt.name), help=opt.help + env)
    parser.add_argument(
        "--whoami", action="store_true", help="muestra el id y la dirección que tomaría el worker, y termina"
    )
    parser.set_defaults(func=_run)
