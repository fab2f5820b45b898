"""Results of queued tasks as rows: a rich table, CSV or JSON, plus per-group statistics
and checksum comparisons for ``--verify``. Input is the task dicts of ``GET /api/tasks``.
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
    "kinetic_energy", "checksum", "error", "verify_of",
)

STATUS_LABELS = {
    "queued": "en cola",
    "running": "en curso",
    "success": "éxito",
    "failed": "fallida",
    "cancelled": "cancelada",
}


def flatten(task: dict[str, Any]) -> dict[str, Any]:
    """One flat row per task (the CSV columns)."""
    params = task.get("params") or {}
    result = task.get("result") or {}
    return {
        "id": task.get("id"),
        "batch": task.get("batch"),
        "status": task.get("status"),
        "engine": result.get("engine") or task.get("benchmark"),
        "particles": params.get("NUM_PARTICULAS"),
        "steps": params.get("NUM_PASOS"),
        "seed": params.get("SEMILLA"),
        "worker": task.get("worker"),
        "attempts": task.get("attempts"),
        "simulation_time": result.get("simulation_time"),
        "execution_time": result.get("execution_time"),
        "particle_collisions": result.get("particle_collisions"),
        "wall_collisions": result.get("wall_collisions"),
        "kinetic_energy": result.get("kinetic_energy"),
        "checksum": result.get("checksum"),
        "error": task.get("error") if task.get("status") != "success" else None,
        "verify_of": task.get("verify_of"),
    }


def _ordered(tasks: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    # the API answers newest first; results read better in submission order
    return sorted(tasks, key=lambda t: (t.get("seq") or 0, t.get("id") or ""))


def to_csv(tasks: Iterable[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for task in _ordered(tasks):
        writer.writerow({k: ("" if v is None else v) for k, v in flatten(task).items()})
    return out.getvalue()


def to_json(tasks: Iterable[dict[str, Any]]) -> str:
    return json.dumps(_ordered(tasks), indent=2, ensure_ascii=False)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def results_table(tasks: Sequence[dict[str, Any]], *, checks: dict[str, Check] | None = None) -> Table:
    """A rich table of tasks; with ``checks`` a column says whether a re-run agreed."""
    table = Table(title=f"Resultados ({len(tasks)} tareas)", show_lines=False)
    for header, justify in (
        ("Tarea", "left"), ("Estado", "left"), ("Motor", "left"), ("Partículas", "right"),
        ("Pasos", "right"), ("Semilla", "right"), ("Worker", "left"), ("Intentos", "right"),
        ("T. simulación (s)", "right"), ("Colisiones", "right"), ("Checksum", "left"),
    ):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
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
            (row["checksum"] or "—")[:12],
        ]
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


def group_times(tasks: Iterable[dict[str, Any]]) -> list[Group]:
    """Successful, non-verification runs grouped by (engine, particles, steps)."""
    found: dict[tuple[str, int, int], list[float]] = defaultdict(list)
    for task in tasks:
        if task.get("status") != "success" or task.get("verify_of"):
            continue
        row = flatten(task)
        if row["simulation_time"] is None or row["particles"] is None:
            continue
        found[(str(row["engine"]), int(row["particles"]), int(row["steps"]))].append(
            float(row["simulation_time"])
        )
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


def compare_checksums(originals: dict[str, dict[str, Any]], reruns: Iterable[dict[str, Any]]) -> list[Check]:
    """Pair each re-run (``verify_of``) with its original task."""
    checks = []
    for rerun in reruns:
        original = originals.get(rerun.get("verify_of") or "")
        if original is None:
            continue
        checks.append(Check(
            original_id=original["id"],
            verify_id=rerun["id"],
            original_worker=original.get("worker"),
            verify_worker=rerun.get("worker"),
            original_checksum=(original.get("result") or {}).get("checksum"),
            verify_checksum=(rerun.get("result") or {}).get("checksum"),
            verify_status=str(rerun.get("status")),
        ))
    return checks
