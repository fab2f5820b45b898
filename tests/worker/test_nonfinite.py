"""A non-finite value that reaches the worker anyway (the input limits should make it
impossible) fails its task with a clear message and never reaches any JSON.

The limits leave no input that overflows, so the value is injected at the one seam
where a result enters the worker: the runner. The task manager, the records and their
serialisation are the real ones.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
from typing import Any

import pytest
from helpers.workers import TINY

from partisim.protocol import History
from partisim.sim import SimResult, parse_params, simulate
from partisim.worker.runners import Job, OnStarted, Runner
from partisim.worker.tasks import TaskManager


class _Returns(Runner):
    """Runs the real simulation, then spoils one value of its result."""

    name = "process"

    def __init__(self, spoil: dict[str, Any]) -> None:
        self.spoil = spoil

    async def run(self, job: Job, on_started: OnStarted | None = None) -> SimResult:
        return dataclasses.replace(simulate(job.params, job.engine), **self.spoil)


@pytest.mark.parametrize(
    "spoil",
    [
        {"kinetic_energy": math.inf},
        {"kinetic_energy": math.nan},
        {"simulation_time": -math.inf},
        {"simulation_time": 5e-324},  # a finite time, but particle_steps_per_s overflows
    ],
)
def test_non_finite_result_is_a_failed_task_and_never_json(spoil: dict[str, Any]) -> None:
    async def scenario() -> None:
        manager = TaskManager(_Returns(spoil), worker_id="w", capacity=1, queue_size=1)
        rec, _ = await manager.submit(benchmark="cython", engine="cython", params=parse_params(TINY), timeout=5)
        await manager.wait(rec)
        field = "particle_steps_per_s" if spoil == {"simulation_time": 5e-324} else next(iter(spoil))
        assert rec.status == "failed" and rec.result is None
        assert rec.error is not None and field in rec.error.message and "no finitos" in rec.error.message
        state = rec.state("w", 422)
        history = History(worker_id="w", count=1, tasks=[state], task_history=[state], statistics=manager.statistics())
        text = history.model_dump_json()
        json.loads(text, parse_constant=lambda name: pytest.fail(f"not strict JSON: {name}"))
        assert history.statistics.failed_tasks == 1 and history.statistics.average_execution_time is None

    asyncio.run(scenario())
