"""The queue of ``partisim serve`` from the command line: ``queue`` lists it (counts,
workers, latest batches and the tasks still pending) and ``cancel`` cancels tasks, one,
several or a whole batch. Both are clients of serve's REST API at ``--server``."""

from __future__ import annotations

import argparse

from partisim.cli._commands import command_help
from partisim.cli._output import console, fail

__all__ = ["register"]

#: pending tasks listed by ``partisim queue`` unless --all
SHOWN_PENDING = 20


def _queue(args: argparse.Namespace) -> int:
    from partisim.cli.serve import connect
    from partisim.orchestrator.batches import pending_tasks, require_batch
    from partisim.orchestrator.results_table import results_table
    from partisim.orchestrator.views import queue_status
    from partisim.sim.numbers import count

    with connect(args) as client:
        if args.batch:
            require_batch(client, args.batch)
        console.print(queue_status(client.summary(batch=args.batch), client.workers(), client.batches(limit=10)))
        pending = pending_tasks(client, args.batch)
    where = f"del lote {args.batch}" if args.batch else "de la cola"
    if not pending:
        console.print(f"No hay tareas pendientes {where}.")
        return 0
    shown = pending if args.all else pending[:SHOWN_PENDING]
    title = f"Tareas pendientes {where} ({count(len(pending), 'tarea', 'tareas')})"
    console.print(results_table(shown, title=title))
    if len(shown) < len(pending):
        console.print(f"Se muestran las {len(shown)} más antiguas; todas con: partisim queue --all")
    console.print("Cancelar: partisim cancel TAREA… o partisim cancel --batch LOTE")
    return 0


def _cancel(args: argparse.Namespace) -> int:
    from partisim.cli.serve import connect
    from partisim.orchestrator.batches import cancel_tasks, pending_tasks, require_batch
    from partisim.sim.numbers import count

    if args.ids and args.batch:
        return fail("indique las tareas a cancelar (sus id) o --batch LOTE, no ambas cosas")
    if not args.ids and not args.batch:
        return fail("indique qué cancelar: los id de las tareas, o --batch LOTE (partisim queue las lista)")
    with connect(args) as client:
        ids = list(args.ids)
        if args.batch:
            require_batch(client, args.batch)
            # the queued ones first, next to run first: serve would otherwise start some of
            # them while the others are cancelled one by one
            pending = pending_tasks(client, args.batch)
            ids = [t.id for t in sorted(pending, key=lambda t: (t.status != "queued", -t.priority, t.seq))]
            if not ids:
                console.print(f"El lote {args.batch} no tiene tareas pendientes: nada que cancelar.")
                return 0
        done = cancel_tasks(client, ids)
    running = sum(1 for _, before in done.cancelled if before == "running")
    if done.cancelled:
        text = f"{count(len(done.cancelled), 'tarea cancelada', 'tareas canceladas')}"
        if running == 1:
            text += " (1 estaba en curso y se detuvo en su worker)"
        elif running:
            text += f" ({running} estaban en curso y se detuvieron en sus workers)"
        console.print(text)
    for task_id, reason in done.refused:
        console.print(f"[yellow]{task_id}:[/] {reason}", soft_wrap=False)
    return 1 if done.refused else 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from partisim.cli.serve import add_server

    p = subparsers.add_parser(
        "queue",
        help=command_help("queue"),
        description="Estado de la cola de partisim serve: cuentas, workers, últimos lotes y las tareas "
        "que aún no terminaron (en cola o en curso).",
    )
    p.add_argument("--batch", default=None, metavar="LOTE", help="solo este lote")
    p.add_argument(
        "--all", action="store_true", help=f"todas las tareas pendientes (por defecto las {SHOWN_PENDING} más antiguas)"
    )
    add_server(p)
    p.set_defaults(func=_queue)

    p = subparsers.add_parser(
        "cancel",
        help=command_help("cancel"),
        description="Cancela tareas que aún no terminaron: una tarea en curso se detiene en su worker. "
        "Las tareas ya terminadas no cambian.",
    )
    p.add_argument("ids", nargs="*", metavar="TAREA", help="id de las tareas a cancelar")
    p.add_argument("--batch", default=None, metavar="LOTE", help="cancelar todas las tareas pendientes de este lote")
    add_server(p)
    p.set_defaults(func=_cancel)
