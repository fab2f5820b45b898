"""Finished runs against kinetic theory: the "Física" line of a batch (docs/fisica.md, section 10).

The input is what SQL can sum without decoding a result: per parameter set (the seed
aside), how many runs finished, their pair collisions and their final kinetic energies.
With both restitutions at 1 the energy never changes, so kT = E/N is the temperature of
the whole run, and the theory predicts how many collisions it should have had.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from partisim.sim.numbers import count, decimal, integer, significant
from partisim.sim.params import ALIASES, SimParams
from partisim.sim.theory import predict

__all__ = ["THEORY_MAX_PACKING", "MIN_COLLISIONS", "SHORT_RUN_COLLISIONS", "RunTotals", "RateCheck", "check_rate"]

#: densest packing where docs/fisica.md validates the theory against the engines
THEORY_MAX_PACKING = 0.2
#: fewer collisions than this: the ratio would be mostly noise (1/sqrt(200) = 7 %)
MIN_COLLISIONS = 200
#: below this many collisions per particle the start-up (disks placed overlapping,
#: uniform velocities) still adds over 1 % (docs/fisica.md, section 10): the line says so
SHORT_RUN_COLLISIONS = 20.0


@dataclass(frozen=True)
class RunTotals:
    """The finished runs of one parameter set (any seed), summed."""

    params: SimParams
    runs: int
    particle_collisions: int
    kinetic_energy: float  # sum over the runs of each one's final kinetic energy


@dataclass(frozen=True)
class RateCheck:
    """Measured pair collisions over the theory's, or why they are not compared."""

    runs: int  # runs compared
    collisions: int  # their pair collisions
    ratio: float | None  # measured / kinetic theory; None when not shown
    expected: float | None  # what this dt lets through: 1 - estimated missed share (collision-weighted)
    reason: str | None = None  # why it is not shown (Spanish, no prefix)
    left_out: int = 0  # runs outside the theory's reach, not counted
    several_dt: bool = False
    per_particle: float | None = None  # collisions per particle and run: 2 * collisions / sum(runs * N)

    @property
    def shown(self) -> bool:
        return self.ratio is not None

    def text(self) -> str:
        """The line as every surface prints it (Spanish: decimal comma)."""
        if self.ratio is None or self.expected is None:
            return f"Física: no se muestra: {self.reason}"
        steps = "con estos dt" if self.several_dt else "con este dt"
        runs = count(self.runs, "tarea", "tareas")
        extra = ""
        if self.per_particle is not None and self.per_particle < SHORT_RUN_COLLISIONS:
            extra += (
                f"; ejecuciones cortas ({decimal(self.per_particle, 1)} colisiones por partícula): "
                "el arranque añade del orden de un 1–5 %"
            )
        if self.left_out:
            extra += f"; sin contar {count(self.left_out, 'tarea', 'tareas')} fuera del alcance de la teoría"
        return (
            f"Física: colisiones medidas / teoría cinética = {decimal(self.ratio, 3)} ({steps} se espera "
            f"≈ {decimal(self.expected, 3)}; {runs}, {count(self.collisions, 'colisión', 'colisiones')}{extra})"
        )


def _outside(params: SimParams, temperature: float) -> str | None:
    """Why the theory does not apply to these runs, or None when it does."""
    inelastic = [
        f"{ALIASES[f]} = {significant(getattr(params, f), 6)}"
        for f in ("particle_restitution", "wall_restitution")
        if getattr(params, f) != 1.0
    ]
    if inelastic:
        return f"el lote no es elástico ({', '.join(inelastic)})"
    if params.packing_fraction > THEORY_MAX_PACKING:
        return (
            f"el lote es demasiado denso para la teoría (fracción de empaquetamiento "
            f"{decimal(params.packing_fraction, 2)}; se valida hasta {significant(THEORY_MAX_PACKING)})"
        )
    if params.particles < 2:
        return "con una sola partícula no hay colisiones entre partículas"
    if not temperature > 0:
        return "las partículas no se mueven (energía cinética 0)"
    return None


def check_rate(totals: Sequence[RunTotals]) -> RateCheck | None:
    """The Física line of these runs; None when there are none.

    Runs the theory does not cover (inelastic, denser than THEORY_MAX_PACKING) are left
    out and counted; with none left, the reason of the largest such group is given."""
    if not any(t.runs > 0 for t in totals):
        return None
    measured = 0
    theory = expected = 0.0
    runs = left_out = particles = 0
    reasons: list[tuple[int, str]] = []
    dts: set[float] = set()
    for group in totals:
        if group.runs <= 0:
            continue
        temperature = group.kinetic_energy / (group.runs * group.params.particles)
        why = _outside(group.params, temperature)
        if why is not None:
            left_out += group.runs
            reasons.append((group.runs, why))
            continue
        prediction = predict(group.params, temperature, advise_dt=False)
        predicted = prediction.collision_rate_theory * group.runs * group.params.steps * group.params.dt
        measured += group.particle_collisions
        theory += predicted
        expected += predicted * (1.0 - prediction.missed_fraction_estimate)
        runs += group.runs
        particles += group.runs * group.params.particles
        dts.add(group.params.dt)
    if runs == 0:
        largest = max(reasons, key=lambda r: r[0])  # the first of the largest
        return RateCheck(runs=0, collisions=0, ratio=None, expected=None, reason=largest[1], left_out=left_out)
    if measured < MIN_COLLISIONS or not theory > 0:
        why = f"hay pocas colisiones para una estadística ({integer(measured)}; hacen falta al menos {MIN_COLLISIONS})"
        return RateCheck(runs=runs, collisions=measured, ratio=None, expected=None, reason=why, left_out=left_out)
    return RateCheck(
        runs=runs,
        collisions=measured,
        ratio=measured / theory,
        expected=expected / theory,
        left_out=left_out,
        several_dt=len(dts) > 1,
        per_particle=2.0 * measured / particles,
    )
