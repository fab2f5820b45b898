"""``partisim serve --local N``: serve with N workers of its own on this machine.

The CLI composes the two rooms (serve never imports the orchestrator): the local
workers of `partisim.orchestrator.local` start first, on 127.0.0.1 and free ports, as
``demo --local`` starts them; serve gets their configuration; when serve stops (Ctrl-C or
SIGTERM) the workers stop with it. Each worker runs in its own session, so a Ctrl-C
reaches serve alone, which then winds down before its workers do."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from partisim.cli._output import console, fail
from partisim.defaults import DEFAULT_CONFIG_PATH
from partisim.sim.numbers import count

if TYPE_CHECKING:
    from partisim.fleet import Config

__all__ = ["MAX_LOCAL_WORKERS", "serve_with_local_workers"]

#: as `demo --local`: more would only share the same cores
MAX_LOCAL_WORKERS = 16


def serve_with_local_workers(args: argparse.Namespace, serve_on: Callable[[argparse.Namespace, Config], int]) -> int:
    """Start ``args.local`` workers, run ``serve_on`` with a configuration naming them,
    and stop them however serve ends."""
    from partisim.errors import LocalWorkersError
    from partisim.fleet import load_config
    from partisim.orchestrator.local import LocalWorkers

    if not 1 <= args.local <= MAX_LOCAL_WORKERS:
        return fail(f"--local: el número de workers locales debe estar entre 1 y {MAX_LOCAL_WORKERS}")
    if args.dask:
        return fail("--local y --dask no se combinan: elija workers locales o un clúster Dask")
    if args.config != DEFAULT_CONFIG_PATH:
        return fail(f"--local usa sus propios workers: no lee {args.config} (quite --config o --local)")
    workers = LocalWorkers(args.local)
    try:
        with console.status(f"Iniciando {count(args.local, 'worker local', 'workers locales')} en 127.0.0.1..."):
            workers.__enter__()
    except LocalWorkersError as exc:
        return fail(f"no se pudieron iniciar los workers locales: {exc.message}", 1)
    try:
        path = workers.write_config(Path(workers.workdir) / "config_workers.json")
        return serve_on(args, load_config(path))
    finally:
        workers.__exit__(None, None, None)
        console.print("Workers locales detenidos.")
