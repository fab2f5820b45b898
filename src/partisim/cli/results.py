"""Result commands: results (table, CSV, JSON) and report (PNG), clients of the REST
API of `partisim serve` (`--server`, see `cli.serve`). Exit codes: 0 ok, 1 nothing to
show / a verification mismatch / a wait timed out, 2 usage error."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from partisim.cli import _types
from partisim.cli._checks import print_checks as _print_checks
from partisim.cli._checks import verify as _verify
from partisim.cli._commands import command_help
from partisim.cli._output import console, err_console, fail
from partisim.cli.serve import add_server, add_wait, connect
from partisim.sim.numbers import count as plural

if TYPE_CHECKING:
    from partisim.protocol import TaskView
    from partisim.serve.client import Check, ServerClient

__all__ = ["register"]

_positive_int = _types.positive_int
_status, _format, _results_format = _types.status, _types.output_format, _types.results_format


def _results(args: argparse.Namespace) -> int:
    from partisim.orchestrator.batches import require_batch, save_export
    from partisim.orchestrator.views import RowsProgress
    from partisim.serve.client import STATUS_LABELS

    args.format = _results_format(args.format, args.output)
    with connect(args) as client:
        if args.batch:
            require_batch(client, args.batch)
        # verification re-runs are left out, unless the selection holds nothing else
        originals = bool(
            client.tasks_page(batch=args.batch, status=args.status, limit=1, after_seq=0, originals=True).tasks
        )
        if not originals and not client.tasks_page(batch=args.batch, status=args.status, limit=1, after_seq=0).tasks:
            where = f"el lote {args.batch}" if args.batch else "la cola"
            if args.status:
                return fail(f"{where} no tiene tareas en estado «{STATUS_LABELS[args.status]}»", 1)
            return fail("la cola está vacía", 1)
        try:
            checks = _verify(client, args.batch, args.verify, args.timeout_wait) if args.verify else None
        except TimeoutError:
            return fail(f"la verificación no terminó en {args.timeout_wait:g} s", 1)
        if args.format == "table":
            by_original = {c.original_id: c for c in checks} if checks is not None else None
            _print_results(client, args.batch, args.status, originals, by_original)
            if args.status is None:
                _print_speedups(client, args.batch, args.contended)
        elif args.output:
            with RowsProgress(err_console, "exportando") as bar:
                rows = save_export(
                    client,
                    args.output,
                    args.format,
                    status=args.status,
                    batch=args.batch,
                    originals=originals,
                    on_progress=bar.update,
                )
            err_console.print(f"{plural(rows, 'tarea escrita', 'tareas escritas')} en {args.output}")
        else:
            save_export(client, None, args.format, status=args.status, batch=args.batch, originals=originals)
    if checks is not None:
        return _print_checks(checks)
    return 0


def _add_contended(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--contended",
        action="store_true",
        help="incluir en la aceleración las ejecuciones medidas con la máquina ocupada "
        "(por defecto se dejan fuera y se cuentan)",
    )


def _print_speedups(client: ServerClient, batch: str | None, contended: bool) -> None:
    """After the results: the cython/python speed-ups of the selection, with their 95%
    confidence interval (runs on a busy machine left out, and counted, unless
    ``contended``)."""
    from partisim.orchestrator.report_tables import contended_note, speedup_table

    chart = client.charts(batch, contended=contended)
    if chart.speedup:
        console.print(speedup_table(chart))
    note = contended_note(chart)
    if note:
        console.print(note)


#: rows per printed table: a long listing comes as several tables, printed as it is read
TABLE_ROWS = 500


def _print_results(
    client: ServerClient, batch: str | None, status: str | None, originals: bool, checks: dict[str, Check] | None
) -> None:
    from partisim.orchestrator.results_table import results_table

    pending: list[TaskView] = []
    first = shown = 0
    for task in client.iter_tasks(batch=batch, status=status, originals=originals):
        pending.append(task)
        if len(pending) > TABLE_ROWS:  # more to come: this part gets its range as a title
            part, pending = pending[:TABLE_ROWS], pending[TABLE_ROWS:]
            first, shown = shown + 1, shown + len(part)
            console.print(results_table(part, checks=checks, title=f"Resultados (tareas {first}–{shown})"))
    if shown == 0:
        console.print(results_table(pending, checks=checks))
        return
    console.print(
        results_table(pending, checks=checks, title=f"Resultados (tareas {shown + 1}–{shown + len(pending)})")
    )
    console.print(f"{plural(shown + len(pending), 'tarea', 'tareas')} en total")


def _report(args: argparse.Namespace) -> int:
    import textwrap

    from rich.markup import escape

    from partisim.orchestrator.batches import require_batch
    from partisim.orchestrator.report_tables import speedup_table, time_table
    from partisim.serve.results.report import failed_note, write_report

    with connect(args) as client:
        if args.batch:
            require_batch(client, args.batch)
        chart = client.charts(args.batch, contended=args.contended)
        failed = client.summary(batch=args.batch).failed
        errors = [(t.id, t.error or "") for t in client.tasks(status="failed", batch=args.batch, limit=3)]
        failures = failed_note(failed, errors)
        if not chart.series:
            where = f"el lote {args.batch}" if args.batch else "la cola"
            extra = f" ({plural(failed, 'tarea fallida', 'tareas fallidas')})" if failed else ""
            return fail(f"{where} no tiene tareas terminadas con éxito{extra}: no hay nada que dibujar", 1)
        try:
            checks = _verify(client, args.batch, args.verify, args.timeout_wait) if args.verify else None
        except TimeoutError:
            return fail(f"la verificación no terminó en {args.timeout_wait:g} s", 1)
    title = f"Informe partisim — lote {args.batch}" if args.batch else "Informe partisim — todos los lotes"
    write_report(chart, args.output, title=title, failed=failures)
    console.print(time_table(chart))
    if chart.speedup:
        console.print(speedup_table(chart))
    if chart.physics is not None:
        # textwrap breaks only at ASCII spaces: "35 210" (no-break space) stays whole
        console.print(escape("\n".join(textwrap.wrap(chart.physics.text, max(40, console.width)))), soft_wrap=True)
    if failures:
        # wrapped at words to the width, piped or not, like the Física line above
        console.print(f"[bold red]{escape(chr(10).join(textwrap.wrap(failures, max(40, console.width))))}[/]")
    for text in chart.warnings:  # what the workers said of these results' parameters: part of the report
        console.print(f"[bold yellow]AVISO:[/] {escape(text)}", soft_wrap=not console.is_terminal)
    console.print(f"Informe guardado en [bold]{args.output}[/]")
    if checks is not None:
        return _print_checks(checks)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("results", help=command_help("results"))
    p.add_argument("--batch", default=None, metavar="ID", help="solo este lote")
    p.add_argument(
        "--status",
        default=None,
        type=_status,
        metavar="ESTADO",
        help=f"solo tareas en este estado: {', '.join(_types.STATUS_WORDS)} (también los nombres de la API: "
        "queued, running, success, failed, cancelled)",
    )
    p.add_argument(
        "--format",
        default=None,
        type=_format,
        metavar="{tabla,csv,json,ndjson}",
        help="formato (por defecto tabla, o el de la extensión de -o; ndjson: una tarea JSON por línea)",
    )
    p.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="ARCHIVO",
        help="escribir CSV/JSON en este archivo; el formato sale de la extensión (.csv, .json, .ndjson) "
        "si no se indica --format (se escribe según llega, con barra de progreso)",
    )
    p.add_argument(
        "--verify",
        type=_positive_int,
        default=None,
        metavar="K",
        help="repetir K tareas al azar en otro worker y comparar checksums",
    )
    _add_contended(p)
    add_server(p)
    add_wait(p, flag=False)
    p.set_defaults(func=_results)

    p = subparsers.add_parser("report", help=command_help("report"))
    p.add_argument("--batch", default=None, metavar="ID", help="solo este lote")
    p.add_argument(
        "-o", "--output", default="report.png", metavar="ARCHIVO.png", help="imagen (por defecto report.png)"
    )
    p.add_argument(
        "--verify",
        type=_positive_int,
        default=None,
        metavar="K",
        help="repetir K tareas al azar en otro worker y comparar checksums",
    )
    _add_contended(p)
    add_server(p)
    add_wait(p, flag=False)
    p.set_defaults(func=_report)
