"""The results table of ``partisim results`` and the menu: tasks as rows that fit the
terminal, with the warnings and the errors of failed tasks numbered in the caption (a
long error wraps there at its words, across the whole width, addresses kept whole)."""

from __future__ import annotations

from collections.abc import Sequence

from partisim.orchestrator.tables import Column, FittedTable
from partisim.protocol import TaskView
from partisim.serve.client import STATUS_LABELS, Check, flatten, ordered
from partisim.sim.environment import CONTENDED_LABEL
from partisim.sim.numbers import count, duration, integer

__all__ = ["results_table"]

#: warnings the results table names in its caption; past that, a count
MAX_TABLE_WARNINGS = 5
#: the mark, in the state cell, of a result measured on a busy machine
CONTENDED_CELL = "*"


def _fmt(value: object, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}".replace(".", ",")
    if isinstance(value, int):
        return integer(value)
    return str(value)


_RESULT_COLUMNS = (
    Column("Tarea"),
    Column("Estado", wrap=12),
    Column("Motor"),
    Column("Partículas", "Part.", justify="right"),
    Column("Pasos", justify="right"),
    Column("Semilla", "Sem.", justify="right", drop=2),
    Column("Worker", drop=3),
    Column("Intentos", "Int.", justify="right", drop=5),
    Column("T. simulación", "T. sim.", justify="right"),
    Column("Colisiones", "Colis.", justify="right", drop=4),
    Column("Checksum", drop=6),
)


#: the columns of `_RESULT_COLUMNS` left out when no row has a value there (tasks still pending)
_EMPTY_DROPPABLE = frozenset({"Worker", "T. simulación", "Colisiones", "Checksum"})


def results_table(
    tasks: Sequence[TaskView], *, checks: dict[str, Check] | None = None, title: str | None = None
) -> FittedTable:
    """A table of tasks that fits the console it is printed on (columns go, least useful
    first, rather than cutting a value); with ``checks`` a column says whether a re-run
    agreed."""
    columns = list(_RESULT_COLUMNS)
    in_order = ordered(tasks)
    # each distinct warning gets a number; the column names it, the caption says it
    numbers: dict[str, int] = {}
    for task in in_order:
        for text in task.result.warnings if task.result else []:
            numbers.setdefault(text, len(numbers) + 1)
    if numbers:
        columns.append(Column("Aviso", "Av.", drop=1))
    duplicated = any(t.duplicates for t in tasks)
    if duplicated:
        columns.append(Column("Duplicadas", "Dup.", justify="right", drop=1))
    threaded = any(t.threads > 1 or (t.result is not None and (t.result.threads or 1) > 1) for t in tasks)
    if threaded:
        columns.append(Column("Hilos", justify="right", drop=1))
    contended = any(t.result is not None and t.result.environment and t.result.environment.contended for t in tasks)
    if checks is not None:
        columns.append(Column("Verificación", wrap=14))
    rows = []
    errors: dict[str, int] = {}  # each distinct error of a failed task gets a number too
    for task in in_order:
        row = flatten(task)
        status = STATUS_LABELS.get(row["status"], str(row["status"]))
        if row["status"] == "failed" and row["error"]:
            status += f" (error {errors.setdefault(str(row['error']), len(errors) + 1)})"
        if row["contended"]:  # in the state cell, which is never dropped for width
            status += CONTENDED_CELL
        cells = [
            row["id"],
            status,
            row["engine"],
            _fmt(row["particles"]),
            _fmt(row["steps"]),
            _fmt(row["seed"]),
            _fmt(row["worker"]),
            _fmt(row["attempts"]),
            duration(row["simulation_time"]) if row["simulation_time"] is not None else "—",
            _fmt(row["particle_collisions"]),
            (row["checksum"] or "—")[:12] if row["verifiable"] else "no verificable",
        ]
        if numbers:
            marks = [numbers[t] for t in task.result.warnings] if task.result else []
            cells.append(",".join(str(n) if n <= MAX_TABLE_WARNINGS else "+" for n in marks) or "—")
        if duplicated:
            cells.append(str(row["duplicates"]) if row["duplicates"] else "—")
        if threaded:  # the threads used once it ran (and those asked for, when fewer); asked until then
            used, asked = row["threads"], row["threads_requested"]
            shown = _fmt(used) if task.result else str(task.threads)
            if task.result and used is not None and asked is not None and used < asked:
                shown += f" de {asked}"
            cells.append(shown)
        if checks is not None:
            check = checks.get(row["id"])
            cells.append("—" if check is None else check.label)
        rows.append(cells)
    # a column with nothing in it (the results of tasks still pending) gives its room to the rest
    empty = {
        k for k, c in enumerate(columns) if c.header in _EMPTY_DROPPABLE and rows and all(r[k] == "—" for r in rows)
    }
    columns = [c for k, c in enumerate(columns) if k not in empty]
    rows = [[cell for k, cell in enumerate(r) if k not in empty] for r in rows]
    notes = [f"Error {n}: {text}" for text, n in errors.items()]
    notes += [f"Aviso {n}: {text}" for text, n in numbers.items() if n <= MAX_TABLE_WARNINGS]
    if contended:
        notes.append(
            f"{CONTENDED_CELL} {CONTENDED_LABEL} (la carga, los hilos en uso u otra tarea del worker ocupaban "
            "los núcleos); la aceleración las deja fuera"
        )
    if len(numbers) > MAX_TABLE_WARNINGS:
        notes.append(
            f"Aviso +: {len(numbers) - MAX_TABLE_WARNINGS} avisos más; vea la columna warnings de --format csv"
        )
    return FittedTable(
        columns,
        rows,
        title=title or f"Resultados ({count(len(tasks), 'tarea', 'tareas')})",
        caption="\n".join(notes) or None,
    )
