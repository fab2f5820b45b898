"""The Física line (`partisim.sim.rate_check`): measured collisions over kinetic theory,
from per-configuration sums, checked against numbers worked out by hand."""

from __future__ import annotations

import pytest

from partisim.sim import SimParams, predict
from partisim.sim.rate_check import MIN_COLLISIONS, RunTotals, check_rate
from partisim.sim.theory import coarse_step_warning, coarse_step_warnings

ELASTIC = SimParams(particle_restitution=1.0, wall_restitution=1.0)  # 100 disks in 800 x 600, dt 0.1
#: kT = vmax^2/3 = 400/3: the kinetic energy of 100 disks is N*kT = 40000/3 per run
ENERGY = 40_000 / 3


def test_ratio_by_hand_in_the_default_box() -> None:
    # test_theory: at kT = 400/3 the default box has 4.37700 pair collisions per unit time;
    # 2 runs of 1000 steps of 0.1 = 200 time units: 875.400 expected by theory
    check = check_rate([RunTotals(ELASTIC, runs=2, particle_collisions=860, kinetic_energy=2 * ENERGY)])
    assert check is not None and check.shown
    assert check.ratio == pytest.approx(860 / 875.400, rel=2e-5)
    missed = predict(ELASTIC).missed_fraction_estimate  # 1.7 % at dt = 0.1 (docs/fisica.md)
    assert check.expected == pytest.approx(1 - missed, rel=1e-12)
    assert 0.98 < check.expected < 0.99
    assert (check.runs, check.collisions, check.left_out) == (2, 860, 0)
    # 860 collisions of 100 particles over 2 runs: 2*860/200 = 8.6 per particle, a short run
    assert check.per_particle == pytest.approx(8.6)
    assert check.text() == (
        "Física: colisiones medidas / teoría cinética = 0,982 (con este dt se espera ≈ "
        f"{1 - missed:.3f}; 2 tareas, 860 colisiones; ejecuciones cortas (8,6 colisiones por partícula): "
        "el arranque añade del orden de un 1–5 %)".replace("0.9", "0,9")
    )


def test_temperature_comes_from_the_energy() -> None:
    # four times the energy: kT four times higher, twice the collisions expected (rate ~ sqrt(kT))
    cold = check_rate([RunTotals(ELASTIC, 2, 860, 2 * ENERGY)])
    hot = check_rate([RunTotals(ELASTIC, 2, 860, 8 * ENERGY)])
    assert cold is not None and hot is not None and cold.ratio is not None and hot.ratio is not None
    assert hot.ratio == pytest.approx(cold.ratio / 2, rel=1e-12)


def test_groups_are_weighted_by_the_collisions_theory_expects() -> None:
    # + 1 run of 500 steps (50 time units: 218.850 expected): (860 + 230)/(875.400 + 218.850)
    short = ELASTIC.model_copy(update={"steps": 500})
    check = check_rate([RunTotals(ELASTIC, 2, 860, 2 * ENERGY), RunTotals(short, 1, 230, ENERGY)])
    assert check is not None and check.ratio == pytest.approx(1090 / 1094.250, rel=2e-5)
    assert check.runs == 3 and check.collisions == 1090 and not check.several_dt
    # two time steps: a collision-weighted expectation; 10000 steps of 0.01 = 100 time units again
    fine = ELASTIC.model_copy(update={"dt": 0.01, "steps": 10_000})
    mixed = check_rate([RunTotals(ELASTIC, 2, 860, 2 * ENERGY), RunTotals(fine, 2, 875, 2 * ENERGY)])
    assert mixed is not None and mixed.several_dt and "con estos dt" in mixed.text()
    expected = (2 - predict(ELASTIC).missed_fraction_estimate - predict(fine).missed_fraction_estimate) / 2
    assert mixed.expected == pytest.approx(expected, rel=1e-9)


def test_why_not_shown() -> None:
    inelastic = check_rate([RunTotals(SimParams(), 12, 5000, 12 * ENERGY)])
    assert inelastic is not None and not inelastic.shown and inelastic.ratio is None
    assert inelastic.text() == (
        "Física: no se muestra: el lote no es elástico (COEF_RESTITUCION_PARTICULA = 0,9, COEF_RESTITUCION_PARED = 0,8)"
    )
    wall_only = check_rate([RunTotals(SimParams(particle_restitution=1.0), 1, 5000, ENERGY)])
    assert wall_only is not None and wall_only.reason == "el lote no es elástico (COEF_RESTITUCION_PARED = 0,8)"
    # 2000 disks of radius 5 in 800 x 600: eta = 2000*pi*25/480000 = 0.327
    dense = ELASTIC.model_copy(update={"particles": 2000})
    check = check_rate([RunTotals(dense, 1, 10**6, 2000 * 400 / 3)])
    assert check is not None and check.reason == (
        "el lote es demasiado denso para la teoría (fracción de empaquetamiento 0,33; se valida hasta 0,2)"
    )
    few = check_rate([RunTotals(ELASTIC, 1, MIN_COLLISIONS - 1, ENERGY)])
    assert few is not None and few.text() == (
        "Física: no se muestra: hay pocas colisiones para una estadística (199; hacen falta al menos 200)"
    )
    still = check_rate([RunTotals(ELASTIC, 1, 0, 0.0)])
    assert still is not None and still.reason == "las partículas no se mueven (energía cinética 0)"
    assert check_rate([]) is None


def test_runs_outside_the_theory_are_left_out_and_counted() -> None:
    long_run = ELASTIC.model_copy(update={"steps": 100_000})  # 10^4 time units: 43 770 expected
    check = check_rate([RunTotals(SimParams(), 4, 900, 4 * ENERGY), RunTotals(long_run, 1, 43_000, ENERGY)])
    assert check is not None and check.shown and check.left_out == 4 and check.runs == 1
    assert check.ratio == pytest.approx(43_000 / 43_770.0, rel=2e-5)
    # 2*43000/100 = 860 collisions per particle: not a short run; "43 000" does not break
    assert check.text().endswith("1 tarea, 43\u00a0000 colisiones; sin contar 4 tareas fuera del alcance de la teoría)")


def test_warnings_of_many_configurations() -> None:
    coarse = [SimParams(dt=0.8, seed=s, steps=10 * s) for s in range(1, 6)]  # one configuration
    assert coarse_step_warnings(coarse) == [coarse_step_warning(coarse[0])]
    assert coarse_step_warnings([SimParams(seed=s) for s in range(5)]) == []
    sizes = [SimParams(dt=0.8, particles=n) for n in range(100, 400, 10)]
    texts = [coarse_step_warning(p) for p in sizes]
    distinct = list(dict.fromkeys(texts))
    assert len(distinct) > 3
    shown = coarse_step_warnings(sizes, limit=3)
    assert shown[:3] == distinct[:3] and len(shown) == 4
    # the rest are counted by configuration (their texts are not worked out)
    rest = len(sizes) - texts.index(distinct[3])
    assert shown[3] == (
        f"paso de tiempo grueso también en otras {rest} configuraciones del envío "
        "(vea partisim theory con sus parámetros)."
    )
