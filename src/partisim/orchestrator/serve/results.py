"""Results of queued tasks as rows: a rich table, CSV or JSON, plus per-group statistics
and checksum comparisons for ``--verify``. Input is the `TaskView`s of ``GET /api/tasks``.

Two columns come from the hardening of the queue: ``verifiable`` (False when a worker
that is not partisim ran the task: its row shows what it reported, without checksum)
and ``duplicates`` (runs of the task on other workers besides the recorded one).
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from partisim.protocol import TaskView

__all__ = [
    "COLUMNS",
    "STATUS_LABELS",
    "flatten",
    "to_csv",
    "to_json",
    "results_table",
    "Group",
    "group_times",
    "Speedup",
    "speedups",
    "Check",
    "compare_checksums",
]

COLUMNS = (
    "id", "batch", "status", "engine", "particles", "steps", "seed", "worker", "attempts",
    "simulation_time", "execution_time", "particle_collisions", "wall_collisions",
    "kinetic_energy", "checksum", "error", "verify_of", "verifiable", "duplicates",
)

STATUS_LABELS = {
    "queued": "en cola",
    "running": "en curso",
    "success": "éxito",
    "failed": "fallida",
    "cancelled": "cancelada",
}


def flatten(task: TaskView) -> dict[str, Any]:
    """One flat row per task (the CSV columns)."""
    params = task.params
    r = task.result or task.foreign_result  # a foreign one has no checksum, and may lack the rest
    return {
        "id": task.id,
        "batch": task.batch,
        "status": task.status,
        "engine": r.engine if r else task.benchmark,
        "particles": params.get("NUM_PARTICULAS"),
        "steps": params.get("NUM_PASOS"),
        "seed": params.get("SEMILLA"),
        "worker": task.worker,
        "attempts": task.attempts,
        "simulation_time": r.simulation_time if r else None,
        "execution_time": r.execution_time if r else None,
        "particle_collisions": r.particle_collisions if r else None,
        "wall_collisions": r.wall_collisions if r else None,
        "kinetic_energy": r.kinetic_energy if r else None,
        "checksum": task.result.checksum if task.result else None,
        "error": task.error if task.status != "success" else None,
        "verify_of": task.verify_of,
        "verifiable": task.verifiable,
        "duplicates": task.duplicates,
    }


def _ordered(tasks: Iterable[TaskView]) -> list[TaskView]:
    # the API answers newest first; results read better in submission order
    return sorted(tasks, key=lambda t: (t.seq, t.id))


def to_csv(tasks: Iterable[TaskView]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for task in _ordered(tasks):
        writer.writerow({k: ("" if v is None else v) for k, v in flatten(task).items()})
    return out.getvalue()


def to_json(tasks: Iterable[TaskView]) -> str:
    rows = [t.model_dump(mode="json") for t in _ordered(tasks)]
    return json.dumps(rows, indent=2, ensure_ascii=False, allow_nan=False)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def results_table(tasks: Sequence[TaskView], *, checks: dict[str, Check] | None = None,
                  title: str | None = None) -> Table:
    """A rich table of tasks; with ``checks`` a column says whether a re-run agreed."""
    table = Table(title=title or f"Resultados ({len(tasks)} tareas)", show_lines=False)
    for header, justify in (
        ("Tarea", "left"), ("Estado", "left"), ("Motor", "left"), ("Partículas", "right"),
        ("Pasos", "right"), ("Semilla", "right"), ("Worker", "left"), ("Intentos", "right"),
        ("T. simulación (s)", "right"), ("Colisiones", "right"), ("Checksum", "left"),
    ):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    duplicated = any(t.duplicates for t in tasks)
    if duplicated:
        table.add_column("Duplicadas", justify="right")
    if checks is not None:
        table.add_column("Verificación", justify="left")
    for task in _ordered(tasks):
        row = flatten(task)
        status = STATUS_LABELS.get(row["status"], str(row["status"]))
        if row["status"] == "failed" and row["error"]:
            status += f": {str(row['error'])[:60]}"
        cells = [
            row["id"], status, row["engine"], _fmt(row["particles"]), _fmt(row["steps"]),
            _fmt(row["seed"]), _fmt(row["worker"]), _fmt(row["attempts"]),
            _fmt(row["simulation_time"]), _fmt(row["particle_collisions"]),
            (row["checksum"] or "—")[:12] if row["verifiable"] else "no verificable",
        ]
        if duplicated:
            cells.append(str(row["duplicates"]) if row["duplicates"] else "—")
        if checks is not None:
            check = checks.get(row["id"])
            cells.append("—" if check is None else check.label)
        table.add_row(*cells)
    return table


# -- statistics -----------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """Simulation times of the successful runs of one engine at one size."""

    engine: str
    particles: int
    steps: int
    times: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.times)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.times)

    @property
    def stdev(self) -> float:
        return statistics.stdev(self.times) if len(self.times) > 1 else 0.0


def group_times(tasks: Iterable[TaskView]) -> list[Group]:
    """Successful, non-verification runs grouped by (engine, particles, steps)."""
    found: dict[tuple[str, int, int], list[float]] = defaultdict(list)
    for task in tasks:
        r = task.result
        if task.status != "success" or task.verify_of or r is None:
            continue
        found[(r.engine, r.particles, r.steps)].append(r.simulation_time)
    return [Group(e, n, s, tuple(ts)) for (e, n, s), ts in sorted(found.items())]


@dataclass(frozen=True)
class Speedup:
    particles: int
    steps: int
    python_mean: float
    cython_mean: float

    @property
    def value(self) -> float:
        return self.python_mean / self.cython_mean if self.cython_mean > 0 else float("inf")


def speedups(groups: Iterable[Group]) -> list[Speedup]:
    """cython vs python at each (particles, steps) where both engines ran."""
    by_size: dict[tuple[int, int], dict[str, Group]] = defaultdict(dict)
    for g in groups:
        by_size[(g.particles, g.steps)][g.engine] = g
    out = []
    for (n, s), engines in sorted(by_size.items()):
        if "python" in engines and "cython" in engines:
            out.append(Speedup(n, s, engines["python"].mean, engines["cython"].mean))
    return out


# -- verification ---------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """A task run again on another worker: did the checksum agree?"""

    original_id: str
    verify_id: str
    original_worker: str | None
    verify_worker: str | None
    original_checksum: str | None
    verify_checksum: str | None
    verify_status: str

    @property
    def match(self) -> bool | None:
        if self.verify_status != "success" or not self.original_checksum or not self.verify_checksum:
            return None
        return self.original_checksum == self.verify_checksum

    @property
    def label(self) -> str:
        if self.match is None:
            return f"sin verificar ({STATUS_LABELS.get(self.verify_status, self.verify_status)})"
        where = f"{self.original_worker} vs {self.verify_worker}"
        return f"coincide ({where})" if self.match else f"¡NO COINCIDE! ({where})"


def compare_checksums(originals: dict[str, TaskView], reruns: Iterable[TaskView]) -> list[Check]:
    """Pair each re-run (``verify_of``) with its original task."""
    checks = []
    for rerun in reruns:
        original = originals.get(rerun.verify_of or "")
        if original is None:
            continue
        checks.append(Check(
            original_id=original.id,
            verify_id=rerun.id,
            original_worker=original.worker,
            verify_worker=rerun.worker,
            original_checksum=original.result.checksum if original.result else None,
            verify_checksum=rerun.result.checksum if rerun.result else None,
            verify_status=rerun.status,
        ))
    return checks
