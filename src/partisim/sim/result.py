"""The outcome of one simulation run."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

from pydantic import JsonValue

from partisim.errors import ParamsError
from partisim.sim.params import ApiParams

__all__ = ["SimResult", "NonFiniteResult", "non_finite_message"]


def non_finite_message(fields: list[str]) -> str:
    """The one Spanish sentence for a result that JSON cannot carry (NaN or Infinity)."""
    return (
        f"la simulación dio valores no finitos ({', '.join(fields)}); reduzca VELOCIDAD_INICIAL_MAX o DT. "
        "Los límites de docs/modelo.md deberían impedirlo: comuníquelo como un error de partisim"
    )


class NonFiniteResult(ParamsError):
    """A result with NaN or Infinity: never written as JSON; the task fails with this message.

    A `ParamsError` (422 on a worker): the same input gives the same values anywhere,
    so retrying it elsewhere would not help."""

    def __init__(self, fields: list[str]) -> None:
        super().__init__(non_finite_message(fields), field=fields[0] if fields else None)
        self.fields = fields


@dataclass(frozen=True)
class SimResult:
    engine: str
    particles: int
    steps: int
    seed: int
    params: ApiParams
    particle_collisions: int
    wall_collisions: int
    checksum: str
    kinetic_energy: float
    simulation_time: float
    threads: int = 1  # threads the engine really used
    threads_requested: int = 1  # threads the run asked for
    threads_reason: str = "requested"  # why `threads` (`engines.ThreadReason`)

    @property
    def particle_steps_per_s(self) -> float:
        t = self.simulation_time
        return self.particles * self.steps / t if t > 0 else 0.0

    def to_dict(self) -> dict[str, JsonValue]:
        """The result as JSON-ready data, with ``particle_steps_per_s``."""
        data: dict[str, JsonValue] = asdict(self)
        data["particle_steps_per_s"] = self.particle_steps_per_s
        return data

    def non_finite(self) -> list[str]:
        """Names of the float fields that are NaN or +-Infinity (empty for a sound result)."""
        return [k for k, v in self.to_dict().items() if isinstance(v, float) and not math.isfinite(v)]

    def to_json(self, **extra: object) -> str:
        """Strict JSON (no NaN, no Infinity) of the result plus `extra` keys.

        Raises `NonFiniteResult` naming the fields instead of writing what is not JSON."""
        bad = self.non_finite()
        if bad:
            raise NonFiniteResult(bad)
        try:
            return json.dumps({**self.to_dict(), **extra}, allow_nan=False)
        except ValueError:  # a non-finite value among `extra`
            raise NonFiniteResult(sorted(extra)) from None
