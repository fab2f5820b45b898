"""The kinetic-theory formulas of docs/fisica.md, checked against values worked out by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from partisim.errors import ParamsError
from partisim.sim import SimParams, coarse_step_warning, predict
from partisim.sim.theory import (
    MISSED_DENSITY_COEFF,
    dt_for_missed,
    edge_factor,
    henderson_g,
    missed_dilute,
    missed_fraction,
)


def test_default_box_by_hand() -> None:
    p = predict(SimParams())  # 100 disks of radius 5 in 800 x 600, vmax = 20, dt = 0.1
    # eta = 100*pi*25/(800*600) = pi/192
    assert p.packing_fraction == pytest.approx(0.0163625, rel=1e-5)
    # g = (1 - 7*eta/16)/(1 - eta)^2 = 0.9928414/0.9675427
    assert p.g_contact == pytest.approx(1.026147, rel=1e-6)
    # kT = vmax^2/3 = 400/3
    assert p.temperature == pytest.approx(133.3333, rel=1e-6)
    # centres in (800 - 10)(600 - 10) = 790*590 = 466100: n = 100/466100
    assert p.number_density == pytest.approx(2.145462e-4, rel=1e-6)
    # F = 1 - (20/pi)(1/790 + 1/590) + 100/(pi*466100) = 1 - 0.0188488 + 0.0000683
    assert p.edge_factor == pytest.approx(0.9812196, rel=1e-6)
    # nu = 2*(99/466100)*F*10*g*sqrt(pi*kT) = 4.248016e-4 * 0.9812196 * 10 * 1.026147 * 20.46654
    assert p.collision_frequency == pytest.approx(0.0875400, rel=1e-5)
    # N*nu/2 = 50*nu
    assert p.collision_rate_theory == pytest.approx(4.37700, rel=1e-5)
    # (100/466100)*(1 + 2*eta*g)*sqrt(kT/(2 pi))*2*(790 + 590) = 2.145462e-4*1.033581*4.606589*2760
    assert p.wall_rate_theory == pytest.approx(2.819381, rel=1e-5)
    # <|v|> = sqrt(pi*kT/2) = sqrt(209.4395); a = 0.1*<|v|>/10; lambda = <|v|>/nu
    assert p.mean_speed == pytest.approx(14.47203, rel=1e-6)
    assert p.step_ratio == pytest.approx(0.1447203, rel=1e-6)
    assert p.mean_free_path == pytest.approx(165.319, rel=1e-5)
    # e = 0.9: tau = 4/((1 - 0.81)*nu) = 4/(0.19*0.0875400)
    assert p.haff_tau == pytest.approx(240.49, rel=1e-4)


def test_mean_free_path_is_the_textbook_one_with_the_box_density() -> None:
    params = SimParams(particles=400, width=900.0, height=700.0, radius=3.0)
    p = predict(params)
    partners = (400 - 1) * p.edge_factor / ((900 - 6) * (700 - 6))
    assert p.mean_free_path == pytest.approx(1 / (2 * math.sqrt(2) * partners * 6.0 * p.g_contact), rel=1e-12)


def test_henderson_g() -> None:
    assert henderson_g(0.0) == 1.0
    # eta = 0.2: (1 - 1.4/16)/0.8^2 = 0.9125/0.64
    assert henderson_g(0.2) == pytest.approx(1.42578125, rel=1e-12)
    # it is the virial route of Henderson's equation of state: 1 + 2*eta*g = (1 + eta^2/8)/(1 - eta)^2
    for eta in (0.05, 0.3, 0.6):
        assert 1 + 2 * eta * henderson_g(eta) == pytest.approx((1 + eta**2 / 8) / (1 - eta) ** 2, rel=1e-12)


def test_edge_factor_by_hand_and_by_sampling() -> None:
    # a = b = 2 sigma: 1 - (2/pi)(1/2 + 1/2) + 1/(4 pi) = 1 - 0.6366198 + 0.0795775
    assert edge_factor(1.0, 2.0, 2.0) == pytest.approx(0.4429577, rel=1e-6)
    assert edge_factor(1.0, 1e9, 1e9) == pytest.approx(1.0, abs=1e-8)
    assert edge_factor(1.0, 0.5, 0.5) == 0.0  # no room for a pair at distance 1
    # Two uniform points in the rectangle: the share at distance [sigma, sigma + h) is
    # F * (area of that ring) / (a*b); the second case is narrower than sigma (clipped branch).
    rng = np.random.default_rng(1)
    h = 0.05
    for a, b in ((3.0, 2.0), (0.6, 3.0)):
        p1 = rng.random((2_000_000, 2)) * (a, b)
        p2 = rng.random((2_000_000, 2)) * (a, b)
        dist = np.hypot(*(p1 - p2).T)
        share = np.mean((dist >= 1.0) & (dist < 1.0 + h))
        expected = edge_factor(1.0 + h / 2, a, b) * math.pi * ((1 + h) ** 2 - 1) / (a * b)
        assert share == pytest.approx(expected, rel=0.02)


def test_missed_dilute_limits() -> None:
    # small a: (2/pi) a^2
    assert missed_dilute(0.01) == pytest.approx(2 / math.pi * 1e-4, rel=5e-3)
    assert missed_dilute(0.0) == 0.0
    # large a: nearly everything is missed, monotonically
    values = [missed_dilute(a) for a in (0.1, 0.3, 1.0, 3.0, 10.0)]
    assert values == sorted(values) and 0.9 < values[-1] < 1.0


def test_missed_at_one_speed_by_hand() -> None:
    from partisim.sim.theory import _missed_at

    # delta = 0.5: 1 - sqrt(0.75) - (asin(0.5) - 0.5*sqrt(0.75))/1 = 1 - 0.8660254 - (0.5235988 - 0.4330127)
    assert _missed_at(0.5) == pytest.approx(0.0433885, rel=1e-5)
    # delta = 1 from both sides: 1 - pi/4
    assert _missed_at(1.0) == pytest.approx(1 - math.pi / 4, rel=1e-12)
    assert _missed_at(1.0 - 1e-9) == pytest.approx(1 - math.pi / 4, rel=1e-6)
    # delta = 2: 1 - pi/8; tiny delta: delta^2/6
    assert _missed_at(2.0) == pytest.approx(1 - math.pi / 8, rel=1e-12)
    assert _missed_at(1e-4) == pytest.approx(1e-8 / 6, rel=1e-6)


def test_density_correction() -> None:
    assert MISSED_DENSITY_COEFF == 0.4
    # no dilute loss, nu*dt = 0.5: 1 - exp(-0.2) = 0.1812692
    assert missed_fraction(0.0, 0.5) == pytest.approx(0.1812692, rel=1e-6)
    # both: 1 - (1 - m)(exp(-0.4*0.1)) with m = missed_dilute(0.2)
    m = missed_dilute(0.2)
    assert missed_fraction(0.2, 0.1) == pytest.approx(1 - (1 - m) * math.exp(-0.04), rel=1e-12)


def test_calibration_figures() -> None:
    # measured: about 2 % at the defaults, about 7 % at eta = 0.2 with dt = 0.1, over half at dt = 0.8
    assert 0.015 < predict(SimParams()).missed_fraction_estimate < 0.025
    side = math.sqrt(1000 * math.pi * 25 / 0.2 / (4 / 3))
    dense = SimParams(particles=1000, width=side * 4 / 3, height=side)
    assert dense.packing_fraction == pytest.approx(0.2)
    assert 0.06 < predict(dense).missed_fraction_estimate < 0.08
    assert predict(SimParams(dt=0.8)).missed_fraction_estimate > 0.5


def test_dt_max_keeps_the_estimate_at_two_percent() -> None:
    for params in (SimParams(), SimParams(particles=1000, width=1000.0, height=800.0, max_speed=50.0)):
        dt_max = predict(params).dt_max_2pct
        assert dt_max is not None
        at = predict(params.model_copy(update={"dt": dt_max})).missed_fraction_estimate
        assert at == pytest.approx(0.02, rel=1e-6)
    assert dt_for_missed(SimParams(), 0.05) > predict(SimParams()).dt_max_2pct


def test_warning_for_a_coarse_step_only() -> None:
    assert coarse_step_warning(SimParams()) is None
    text = coarse_step_warning(SimParams(dt=0.8))
    assert text is not None
    assert "DT = 0,8" in text and "57 %" in text and "Use DT <= 0,1 " in text
    assert coarse_step_warning(SimParams(dt=0.8, particles=1)) is None  # no pairs, nothing to miss
    assert coarse_step_warning(SimParams(dt=0.8, max_speed=0.0)) is None


def test_temperature_argument() -> None:
    hot, cold = predict(SimParams(), temperature=400.0), predict(SimParams(), temperature=100.0)
    # rates go as sqrt(kT): twice as fast at four times the temperature
    assert hot.collision_rate_theory == pytest.approx(2 * cold.collision_rate_theory, rel=1e-12)
    assert hot.wall_rate_theory == pytest.approx(2 * cold.wall_rate_theory, rel=1e-12)
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ParamsError, match="temperatura"):
            predict(SimParams(), temperature=bad)


@pytest.mark.parametrize(
    "params",
    [
        SimParams(max_speed=0.0),
        SimParams(particles=1),
        SimParams(particle_restitution=1.0),
        SimParams(width=1e9, height=1e9, max_speed=1e100, dt=1e-91),  # the largest accepted speed
        SimParams(width=1e-100, height=1e-100, radius=5e-324, max_speed=1e-300, dt=1.0, particles=2),
    ],
)
def test_edge_cases_give_strict_json(params: SimParams) -> None:
    data = predict(params).to_dict()
    json.dumps(data, allow_nan=False)
    assert set(data) >= {
        "packing_fraction",
        "collision_rate_theory",
        "wall_rate_theory",
        "missed_fraction_estimate",
        "dt_max_2pct",
        "haff_tau",
    }
