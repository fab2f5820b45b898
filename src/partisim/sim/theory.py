"""Kinetic-theory predictions for the canonical model (derivations in docs/fisica.md).

Hard disks in 2D, unit mass. Pure functions over `SimParams`: nothing here runs
a simulation (see `partisim.sim.measure` for that). Every quantity keeps the
finite-box corrections of docs/fisica.md: centres live in (W - 2r)(H - 2r),
each particle has N - 1 partners, and walls remove partners near the edges.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

from partisim.errors import ParamsError
from partisim.sim.params import SimParams

__all__ = [
    "MISSED_DENSITY_COEFF",
    "TARGET_MISSED",
    "WARN_MISSED",
    "Prediction",
    "coarse_step_warning",
    "coarse_step_warnings",
    "dt_for_missed",
    "edge_factor",
    "henderson_g",
    "missed_dilute",
    "missed_fraction",
    "predict",
]

#: Fitted: beyond the dilute formula, a fraction exp(-0.4*nu*dt) of the collisions
#: survives (docs/fisica.md, "Choques perdidos"; fitted on 39 measured cases).
MISSED_DENSITY_COEFF = 0.4
#: `coarse_step_warning` speaks above this estimated missed fraction...
WARN_MISSED = 0.05
#: ...and suggests the dt that keeps it at or below this one.
TARGET_MISSED = 0.02

# Midpoint rule for averages over the collision-weighted relative speed:
# x = |v_rel| / sqrt(4 kT) has density (4/sqrt(pi)) x^2 exp(-x^2); beyond x = 6
# the weight is below 1e-14.
_NODES = 240
_X_MAX = 6.0
_QUADRATURE: tuple[tuple[float, float], ...] = tuple(
    (x, (4.0 / math.sqrt(math.pi)) * x * x * math.exp(-x * x) * (_X_MAX / _NODES))
    for x in ((k + 0.5) * (_X_MAX / _NODES) for k in range(_NODES))
)


@dataclass(frozen=True)
class Prediction:
    """What kinetic theory expects from a run with these parameters (time unit: the model's)."""

    packing_fraction: float  # eta = N*pi*r^2/(W*H)
    number_density: float  # n = N/((W-2r)(H-2r)): centres per unit of the area they can reach
    temperature: float  # kT = <v^2>/2
    g_contact: float  # Henderson's g(sigma)
    edge_factor: float  # share of contact partners the walls leave (1 in an infinite box)
    collision_frequency: float  # nu: collisions of one particle per unit time
    collision_rate_theory: float  # N*nu/2: pair collisions per unit time
    wall_rate_theory: float  # wall hits per unit time, whole perimeter
    mean_speed: float  # <|v|> = sqrt(pi*kT/2)
    mean_free_path: float | None  # <|v|>/nu; None with no partner to meet
    step_ratio: float  # a = dt*<|v|>/sigma
    missed_fraction_estimate: float  # share of true collisions the fixed step misses
    dt_max_2pct: float | None  # largest dt keeping the missed share <= 2 %; None when nothing moves
    haff_tau: float | None  # Haff's cooling time; None when collisions are elastic or absent

    def to_dict(self) -> dict[str, float | None]:
        """Field -> value, with any non-finite value as None (strict JSON)."""
        return {k: (v if v is None or math.isfinite(v) else None) for k, v in asdict(self).items()}


def henderson_g(eta: float) -> float:
    """Contact value of the hard-disk pair correlation (Henderson 1975)."""
    return (1.0 - 7.0 * eta / 16.0) / (1.0 - eta) ** 2


def edge_factor(sigma: float, a: float, b: float) -> float:
    """Pairs at distance sigma of two points uniform in an a x b rectangle, relative to the open plane.

    The angular average of (1 - sigma|cos t|/a)(1 - sigma|sin t|/b), clipped at zero; for
    sigma <= min(a, b) it is 1 - (2 sigma/pi)(1/a + 1/b) + sigma^2/(pi a b).
    """
    lo = math.acos(min(1.0, a / sigma))
    hi = math.asin(min(1.0, b / sigma))
    if lo >= hi:
        return 0.0

    def primitive(t: float) -> float:
        s, c = math.sin(t), math.cos(t)
        return t - sigma / a * s + sigma / b * c + sigma * sigma / (a * b) * s * s / 2.0

    return max(0.0, 2.0 / math.pi * (primitive(hi) - primitive(lo)))


def _missed_at(delta: float) -> float:
    """Missed share of the encounters of one relative speed; delta = |v_rel|*dt/sigma.

    Impact parameters are uniform; an encounter is caught when a step ends inside
    the approaching half of the chord, of length sqrt(sigma^2 - b^2).
    """
    if delta <= 0.0:
        return 0.0
    if delta >= 1.0:
        return 1.0 - math.pi / (4.0 * delta)
    if delta < 1e-3:  # the closed form below cancels badly here
        return delta * delta / 6.0 + delta**4 / 40.0
    s = math.sqrt(1.0 - delta * delta)
    return 1.0 - s - (math.asin(delta) - delta * s) / (2.0 * delta)


@functools.lru_cache(maxsize=4096)
def missed_dilute(a: float) -> float:
    """Missed share in a dilute gas at equilibrium; about (2/pi)*a^2 for small a.

    Cached: a sweep over sizes keeps the same a = dt*<|v|>/sigma for every size."""
    if a <= 0.0:
        return 0.0
    scale = a * math.sqrt(8.0 / math.pi)  # delta = scale * x
    return sum(w * _missed_at(scale * x) for x, w in _QUADRATURE)


def missed_fraction(a: float, nu_dt: float) -> float:
    """Estimated missed share: the dilute loss, then exp(-0.4*nu*dt) of the rest survives."""
    return 1.0 - (1.0 - missed_dilute(a)) * math.exp(-MISSED_DENSITY_COEFF * nu_dt)


def _thermal_speed(params: SimParams, temperature: float | None) -> float:
    """sqrt(kT): from `temperature`, or from the initial velocities without squaring a huge vmax.

    Uniform in [-vmax, vmax) per axis: <vx^2> = vmax^2/3, <v^2> = 2 vmax^2/3, kT = vmax^2/3.
    """
    if temperature is None:
        return params.max_speed / math.sqrt(3.0)
    is_number = isinstance(temperature, (int, float)) and not isinstance(temperature, bool)
    if not (is_number and math.isfinite(temperature) and temperature >= 0):
        raise ParamsError(
            f"la temperatura kT debe ser un número finito >= 0 (recibido {temperature!r})", field="temperature"
        )
    return math.sqrt(temperature)


def _predict(params: SimParams, thermal_speed: float) -> Prediction:
    """Every figure but dt_max_2pct (which needs this one to search over dt)."""
    n_particles, dt = params.particles, params.dt
    sigma = 2.0 * params.radius
    eta = params.packing_fraction
    g = henderson_g(eta)
    side_a, side_b = params.width - sigma, params.height - sigma
    reach = side_a * side_b  # where the centres can be
    density = n_particles / reach
    edge = edge_factor(sigma, side_a, side_b)
    partners = (n_particles - 1) / reach * edge
    # nu = 2 n sigma g <|v_rel|>, with <|v_rel|> = sqrt(pi kT)
    nu = 2.0 * partners * sigma * g * math.sqrt(math.pi) * thermal_speed
    mean_speed = math.sqrt(math.pi / 2.0) * thermal_speed
    # wall hits per unit length: contact density n(1 + 2 eta g) times <v_x^+> = sqrt(kT/(2 pi))
    per_length = density * (1.0 + 2.0 * eta * g) * thermal_speed / math.sqrt(2.0 * math.pi)
    step_ratio = dt * mean_speed / sigma
    e = params.particle_restitution
    return Prediction(
        packing_fraction=eta,
        number_density=density,
        temperature=thermal_speed * thermal_speed,  # inf for absurd speeds; to_dict() makes it None
        g_contact=g,
        edge_factor=edge,
        collision_frequency=nu,
        collision_rate_theory=n_particles * nu / 2.0,
        wall_rate_theory=per_length * 2.0 * (side_a + side_b),
        mean_speed=mean_speed,
        mean_free_path=mean_speed / nu if nu > 0 else None,
        step_ratio=step_ratio,
        missed_fraction_estimate=missed_fraction(step_ratio, nu * dt),
        dt_max_2pct=None,
        # T(t) = T0/(1 + t/tau)^2 with tau = 4/((1 - e^2) nu0) in 2D
        haff_tau=4.0 / ((1.0 - e * e) * nu) if e < 1.0 and nu > 0 else None,
    )


def _dt_reaching(params: SimParams, base: Prediction, target: float) -> float | None:
    """Bisection for the dt whose estimated missed share is `target`; None when nothing moves."""
    if not (0.0 < base.mean_speed < math.inf and 0.0 < target < 1.0):
        return None
    sigma = 2.0 * params.radius
    # a and nu*dt both grow with dt: nu*dt = k*a, with k = nu*sigma/<|v|> (temperature-free)
    k = base.collision_frequency * sigma / base.mean_speed

    def missed(a: float) -> float:
        return missed_fraction(a, k * a)

    lo, hi = 0.0, 1.0
    while missed(hi) < target:
        lo, hi = hi, 2.0 * hi
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if missed(mid) < target:
            lo = mid
        else:
            hi = mid
    dt = lo * sigma / base.mean_speed
    return dt if 0.0 < dt < math.inf else None  # 0: it underflowed (no dt to advise)


def dt_for_missed(params: SimParams, target: float, temperature: float | None = None) -> float | None:
    """The dt at which the estimated missed share reaches `target`, the other parameters kept."""
    return _dt_reaching(params, _predict(params, _thermal_speed(params, temperature)), target)


def predict(params: SimParams, temperature: float | None = None, *, advise_dt: bool = True) -> Prediction:
    """Kinetic-theory figures for `params`, at `temperature` (kT) or at the initial one.

    ``advise_dt=False`` leaves ``dt_max_2pct`` None and skips its search (the costly part)."""
    base = _predict(params, _thermal_speed(params, temperature))
    return replace(base, dt_max_2pct=_dt_reaching(params, base, TARGET_MISSED)) if advise_dt else base


def _floor_2_digits(x: float) -> float:
    """x rounded down to two significant digits, so the advice stays on the safe side."""
    quantum = 10.0 ** (math.floor(math.log10(x)) - 1)
    if quantum == 0.0:  # x near the smallest floats: nothing to round
        return x
    return math.floor(x / quantum) * quantum


#: what the missed share depends on: particles, width, height, radius, dt, max_speed
_StepKey = tuple[int, float, float, float, float, float]


def _step_key(params: SimParams) -> _StepKey:
    return (params.particles, params.width, params.height, params.radius, params.dt, params.max_speed)


def _from_key(key: _StepKey) -> SimParams:
    """Parameters validated before: `key` comes from a `SimParams`."""
    particles, width, height, radius, dt, max_speed = key
    return SimParams.model_construct(
        particles=particles, width=width, height=height, radius=radius, dt=dt, max_speed=max_speed
    )


@functools.lru_cache(maxsize=65536)
def _missed_too_many(key: _StepKey) -> bool:
    if key[0] < 2:
        return False
    params = _from_key(key)
    return _predict(params, _thermal_speed(params, None)).missed_fraction_estimate > WARN_MISSED


def coarse_step_warning(params: SimParams) -> str | None:
    """A Spanish warning when the step is so coarse that over 5 % of the collisions go unseen.

    Estimated at the initial temperature (a dissipative run only cools, so it is an
    upper bound). None when the estimate is within 5 % or there are no pairs.
    The text carries no prefix: each surface adds its own ("AVISO: " on a terminal).
    """
    return _coarse_step_warning(_step_key(params))


@functools.lru_cache(maxsize=1024)
def _coarse_step_warning(key: _StepKey) -> str | None:
    if not _missed_too_many(key):
        return None
    params = _from_key(key)
    base = _predict(params, _thermal_speed(params, None))
    dt_ok = _dt_reaching(params, base, TARGET_MISSED)
    if dt_ok is None:
        return None
    percent = 100.0 * base.missed_fraction_estimate
    # numbers as people read them in Spanish: decimal comma (partisim.sim.numbers)
    shown = (f"{percent:.0f}" if percent >= 10 else f"{percent:.1f}").replace(".", ",")
    dt_now = f"{params.dt:g}".replace(".", ",")
    dt_fine = f"{_floor_2_digits(dt_ok):.2g}".replace(".", ",")
    return (
        f"paso de tiempo grueso: con DT = {dt_now} se estima que se pierde el {shown} % de las "
        "colisiones entre partículas (pares que se cruzan entre dos pasos sin llegar a solaparse). "
        f"Use DT <= {dt_fine} para perder como mucho el {100 * TARGET_MISSED:.0f} %."
    )


def coarse_step_warnings(configurations: Iterable[SimParams], limit: int = 5) -> list[str]:
    """The distinct `coarse_step_warning`s of several runs, in order: at most `limit`
    texts, then one line counting the other configurations with a coarse step (their
    texts are not worked out: a sweep over thousands of sizes stays fast)."""
    shown: list[str] = []
    seen: set[_StepKey] = set()
    more = 0
    for params in configurations:
        key = _step_key(params)
        if key in seen:
            continue
        seen.add(key)
        if not _missed_too_many(key):
            continue
        if len(shown) < limit:
            text = _coarse_step_warning(key)
            if text is not None and text not in shown:
                shown.append(text)
        else:
            more += 1
    if more:
        what = "otra configuración" if more == 1 else f"otras {more} configuraciones"
        shown.append(f"paso de tiempo grueso también en {what} del envío (vea partisim theory con sus parámetros).")
    return shown
