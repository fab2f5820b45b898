"""The input limits that keep every result finite (docs/modelo.md §2), the ETAPA-6 names,
and strict JSON out of `partisim run` whatever happens."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest
from helpers.cli import run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from partisim.errors import ParamsError
from partisim.sim import SimResult, coarse_step_warning, parse_params, predict, simulate
from partisim.sim.params import MAX_SIDE, MAX_SPEED, MIN_SIDE
from partisim.sim.result import NonFiniteResult

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"VELOCIDAD_INICIAL_MAX": MAX_SPEED * (1 + 2**-52)}, "VELOCIDAD_INICIAL_MAX: debe ser <= 1e+100"),
        ({"VELOCIDAD_INICIAL_MAX": 1e200, "DT": 1e-200}, "VELOCIDAD_INICIAL_MAX"),  # the issue's input
        ({"ANCHO_MUNDO": MIN_SIDE * 0.999, "RADIO_PARTICULA": 1e-101}, "ANCHO_MUNDO: debe ser >= 1e-100"),
        ({"ALTO_MUNDO": 1e-300, "RADIO_PARTICULA": 1e-301}, "ALTO_MUNDO"),
        ({"ANCHO_MUNDO": MAX_SIDE * 1.001}, "ANCHO_MUNDO"),
        ({"DT": "0.1"}, "DT: debe ser un número"),  # numbers as numbers, as for the integers
        ({"RADIO_PARTICULA": True}, "RADIO_PARTICULA"),
    ],
)
def test_limits_are_named(data: dict, needle: str) -> None:
    with pytest.raises(ParamsError) as info:
        parse_params(data)
    assert needle in info.value.message


def test_the_corners_of_the_accepted_space() -> None:
    fast = parse_params(
        {
            "VELOCIDAD_INICIAL_MAX": MAX_SPEED,
            "DT": 1e-91,
            "ANCHO_MUNDO": MAX_SIDE,
            "ALTO_MUNDO": MAX_SIDE,
            "RADIO_PARTICULA": 1e-300,
            "NUM_PARTICULAS": 50,
            "NUM_PASOS": 20,
        }
    )
    tiny = parse_params(
        {
            "ANCHO_MUNDO": MIN_SIDE,
            "ALTO_MUNDO": MIN_SIDE,
            "RADIO_PARTICULA": 1e-101,
            "VELOCIDAD_INICIAL_MAX": 1e-300,
            "DT": 1e199,
            "NUM_PARTICULAS": 5,
            "NUM_PASOS": 20,
        }
    )
    for params in (fast, tiny):
        results = [simulate(params, engine) for engine in ("python", "numpy", "cython")]
        assert len({(r.particle_collisions, r.wall_collisions, r.checksum) for r in results}) == 1
        for r in results:
            assert r.non_finite() == [] and json.loads(r.to_json())["checksum"] == r.checksum
            assert r.kinetic_energy <= params.particles * params.max_speed**2


def test_etapa6_names_are_aliases() -> None:
    theirs = parse_params({"num_particles": 30, "num_steps": 7, "seed": 9})
    assert theirs == parse_params({"NUM_PARTICULAS": 30, "NUM_PASOS": 7, "SEMILLA": 9})
    assert theirs.to_api()["NUM_PARTICULAS"] == 30
    with pytest.raises(ParamsError) as info:
        parse_params({"num_particles": "treinta"})
    assert info.value.message.startswith("num_particles: debe ser un número entero")
    assert info.value.field == "num_particles" and info.value.reason == "debe ser un número entero (recibido 'treinta')"
    for clash in ({"num_particles": 3, "NUM_PARTICULAS": 3}, {"seed": 1, "SEMILLA": 1}, {"num_steps": 3, "steps": 3}):
        with pytest.raises(ParamsError, match="dos veces"):
            parse_params(clash)
    for unknown in ("Num_Particles", "num_particle", "NUM_PARTICLES", "nums_steps"):
        with pytest.raises(ParamsError, match="parámetro desconocido") as info:
            parse_params({unknown: 3})
        assert unknown in info.value.message


def test_a_non_finite_result_is_never_written_as_json() -> None:
    sound = simulate(parse_params({"NUM_PARTICULAS": 5, "NUM_PASOS": 2}), "python")
    json.loads(sound.to_json(warnings=[]), parse_constant=lambda name: pytest.fail(name))
    for bad in (math.inf, -math.inf, math.nan):
        broken = SimResult(**{**sound.__dict__, "kinetic_energy": bad})
        assert broken.non_finite() == ["kinetic_energy"]
        with pytest.raises(NonFiniteResult) as info:
            broken.to_json()
        assert "kinetic_energy" in info.value.message and "no finitos" in info.value.message
    with pytest.raises(NonFiniteResult):
        sound.to_json(extra=math.nan)


def test_run_json_refuses_the_issues_input_and_prints_strict_json(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli("run", "--json", *args, cwd=tmp_path)  # in this process

    refused = run("-n", "10", "-s", "1", "--max-speed", "1e200", "--dt", "1e-200")
    assert refused.returncode == 2 and refused.stdout == ""
    assert "--max-speed" in refused.stderr and "1e+100" in refused.stderr
    largest = run("-n", "10", "-s", "3", "--max-speed", "1e100", "--dt", "1e-98", "--engine", "numpy")
    assert largest.returncode == 0, largest.stderr
    data = json.loads(largest.stdout, parse_constant=lambda name: pytest.fail(f"not strict JSON: {name}"))
    assert 0 < data["kinetic_energy"] <= 10 * 1e200


def _logs(lo: int, hi: int) -> st.SearchStrategy[float]:
    return st.one_of(st.sampled_from([10.0**lo, 10.0**hi]), st.floats(lo, hi).map(lambda e: 10.0**e))


@st.composite
def _accepted(draw: st.DrawFn) -> dict:
    width, height = draw(_logs(-100, 9)), draw(_logs(-100, 9))
    short = min(width, height)
    vmax = draw(st.one_of(st.just(0.0), _logs(-300, 100)))
    return {
        "NUM_PARTICULAS": draw(st.integers(1, 1_000_000)),
        "NUM_PASOS": 1,
        "ANCHO_MUNDO": width,
        "ALTO_MUNDO": height,
        "RADIO_PARTICULA": draw(st.one_of(st.just(5e-324), st.floats(0, 0.49).map(lambda f: f * short + 5e-324))),
        "VELOCIDAD_INICIAL_MAX": vmax,
        "DT": draw(st.one_of(_logs(-300, 300), st.floats(1e-6, 1).map(lambda f: f * short / vmax if vmax else 1))),
        "COEF_RESTITUCION_PARTICULA": draw(st.sampled_from([0.0, 0.5, 1.0])),
    }


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(_accepted())
def test_theory_never_fails_on_an_accepted_input(data: dict) -> None:
    """`partisim run` (and the Docker runner through it) asks the theory for its coarse-step
    advice: it must answer, in strict JSON, for every accepted input."""
    try:
        params = parse_params(data)
    except ParamsError:
        return
    json.dumps(predict(params).to_dict(), allow_nan=False)
    advice = coarse_step_warning(params)
    assert advice is None or "DT <=" in advice
