"""A well-formed worker answer, for tests that store results without running a worker."""

from __future__ import annotations

from partisim.protocol import ExecuteResult


def execute_result(
    checksum: str = "0" * 64,
    *,
    task_id: str = "t-0",
    worker_id: str = "w1",
    engine: str = "python",
    particles: int = 10,
    steps: int = 5,
    simulation_time: float = 0.01,
) -> ExecuteResult:
    return ExecuteResult(
        task_id=task_id,
        worker_id=worker_id,
        benchmark=engine,
        engine=engine,
        params={"NUM_PARTICULAS": particles, "NUM_PASOS": steps, "SEMILLA": 42},
        particles=particles,
        steps=steps,
        seed=42,
        execution_time=simulation_time + 0.001,
        simulation_time=simulation_time,
        particle_collisions=3,
        wall_collisions=4,
        checksum=checksum,
        kinetic_energy=1.5,
        particle_steps_per_s=particles * steps / simulation_time,
        runner="process",
        timestamp="2026-12-01T00:00:00+00:00",
    )
