"""Every validation rule of SimParams gives a clear message naming the field."""

from __future__ import annotations

import math

import pytest

from partisim.errors import ParamsError
from partisim.sim import SimParams, parse_params, resolve_engine


def test_defaults_and_aliases() -> None:
    p = parse_params({})
    assert (p.particles, p.steps, p.seed) == (100, 1000, 42)
    assert (p.width, p.height, p.radius, p.dt, p.max_speed) == (800.0, 600.0, 5.0, 0.1, 20.0)
    assert (p.wall_restitution, p.particle_restitution) == (0.8, 0.9)
    q = parse_params(
        {
            "NUM_PARTICULAS": 10,
            "NUM_PASOS": 5,
            "SEMILLA": 1,
            "ANCHO_MUNDO": 100.0,
            "ALTO_MUNDO": 90,
            "RADIO_PARTICULA": 2,
            "DT": 0.2,
            "VELOCIDAD_INICIAL_MAX": 3,
            "COEF_RESTITUCION_PARED": 1,
            "COEF_RESTITUCION_PARTICULA": 0,
        }
    )
    assert q.particles == 10 and q.height == 90.0 and q.particle_restitution == 0.0
    assert parse_params(particles=7).particles == 7
    assert q.to_api()["NUM_PARTICULAS"] == 10


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"NUM_PARTICULAS": 0}, "NUM_PARTICULAS"),
        ({"NUM_PARTICULAS": 1_000_001}, "NUM_PARTICULAS"),
        ({"NUM_PARTICULAS": "100"}, "NUM_PARTICULAS"),
        ({"NUM_PARTICULAS": 10.5}, "NUM_PARTICULAS"),
        ({"NUM_PARTICULAS": True}, "NUM_PARTICULAS"),
        ({"NUM_PASOS": 0}, "NUM_PASOS"),
        ({"NUM_PASOS": 10_000_001}, "NUM_PASOS"),
        ({"SEMILLA": -1}, "SEMILLA"),
        ({"SEMILLA": 2**63}, "SEMILLA"),
        ({"ANCHO_MUNDO": float("nan")}, "ANCHO_MUNDO"),
        ({"ANCHO_MUNDO": float("inf")}, "ANCHO_MUNDO"),
        ({"ANCHO_MUNDO": -5.0}, "ANCHO_MUNDO"),
        ({"ANCHO_MUNDO": 10.0}, "ANCHO_MUNDO"),  # not wider than a diameter
        ({"ALTO_MUNDO": 10.0}, "ALTO_MUNDO"),
        ({"RADIO_PARTICULA": 0.0}, "RADIO_PARTICULA"),
        ({"RADIO_PARTICULA": float("inf")}, "RADIO_PARTICULA"),
        ({"DT": 0}, "DT"),
        ({"DT": float("nan")}, "DT"),
        ({"VELOCIDAD_INICIAL_MAX": -1}, "VELOCIDAD_INICIAL_MAX"),
        ({"VELOCIDAD_INICIAL_MAX": 1e6}, "VELOCIDAD_INICIAL_MAX"),  # crosses the box in one step
        ({"COEF_RESTITUCION_PARED": 1.5}, "COEF_RESTITUCION_PARED"),
        ({"COEF_RESTITUCION_PARED": -0.1}, "COEF_RESTITUCION_PARED"),
        ({"COEF_RESTITUCION_PARTICULA": 2}, "COEF_RESTITUCION_PARTICULA"),
        ({"NUM_PARTICULAS": 10_000, "RADIO_PARTICULA": 5.0}, "empaquetamiento"),
        ({"NUM_PARTICLES": 10}, "NUM_PARTICLES"),  # typo: unknown key
        ({"NUM_PARTICULAS": 10, "particles": 20}, "dos veces"),
    ],
)
def test_invalid_values_are_named(data: dict, needle: str) -> None:
    with pytest.raises(ParamsError) as info:
        parse_params(data)
    assert needle in info.value.message


def test_packing_fraction_limit_is_the_densest_packing() -> None:
    # n*pi*r^2 / (w*h) just below and just above 0.9069
    area = 800.0 * 600.0
    n_ok = int(0.9 * area / (math.pi * 25))
    assert parse_params(particles=n_ok).packing_fraction <= 0.9069
    with pytest.raises(ParamsError):
        parse_params(particles=int(0.91 * area / (math.pi * 25)) + 1)


def test_params_must_be_a_mapping() -> None:
    with pytest.raises(ParamsError, match="objeto"):
        parse_params([1, 2, 3])  # type: ignore[arg-type]


def test_params_are_immutable() -> None:
    p = SimParams()
    with pytest.raises(Exception):
        p.particles = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    "name,engine",
    [
        ("python", "python"),
        ("numpy", "numpy"),
        ("cython", "cython"),
        ("benchmark.py", "python"),
        ("benchmark_cython.py", "cython"),
    ],
)
def test_engine_registry(name: str, engine: str) -> None:
    assert resolve_engine(name) == engine


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "/bin/sh",
        "benchmark.py; rm -rf /",
        "java",
        "",
        None,
        3,
        "Cython",
        "CYTHON",
        " cython",
        "cython ",
        "Benchmark.py",
        "benchmark_cython.py\n",
    ],
)
def test_engine_registry_refuses_everything_else(name) -> None:
    with pytest.raises(ParamsError, match="benchmark"):
        resolve_engine(name)
