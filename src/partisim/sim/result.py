"""The outcome of one simulation run."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["SimResult"]


@dataclass(frozen=True)
class SimResult:
    engine: str
    particles: int
    steps: int
    seed: int
    params: dict[str, Any]
    particle_collisions: int
    wall_collisions: int
    checksum: str
    kinetic_energy: float
    simulation_time: float
    threads: int = 1  # threads the engine really used

    @property
    def particle_steps_per_s(self) -> float:
        t = self.simulation_time
        return self.particles * self.steps / t if t > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["particle_steps_per_s"] = self.particle_steps_per_s
        return data
