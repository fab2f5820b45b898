"""Every accepted input gives finite results; every answer is strict JSON; never a 5xx.

A hypothesis property over the whole parameter space, extremes included (1e-300, the
largest accepted values, values just past each limit), sent to a real worker process.
The worker must agree with the local validator (accepted -> 200, refused -> 422), the
kinetic energy must respect the bound the limits are built on (KE <= N*vmax^2), and
/history must keep answering 200 with strict JSON.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import httpx
import pytest
from helpers.workers import RunningWorker, start_worker
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from partisim.errors import ParamsError
from partisim.sim import parse_params
from partisim.sim.params import MAX_SIDE, MAX_SPEED, MIN_SIDE

EXAMPLES = int(os.environ.get("PARTISIM_PROPERTY_EXAMPLES", "120"))
ENGINES = ["python", "numpy", "cython", "benchmark.py", "benchmark_cython.py"]
LARGEST = 1.7976931348623157e308


def strict_loads(text: str) -> Any:
    """json.loads that refuses NaN, Infinity and -Infinity (Python's accepts them)."""

    def refuse(name: str) -> Any:
        raise ValueError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def logs(lo: int, hi: int) -> st.SearchStrategy[float]:
    """Floats spread over the exponents lo..hi."""
    return st.floats(lo, hi).map(lambda e: 10.0**e)


@st.composite
def tasks(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly inputs inside the accepted space (its corners included); one in four may also
    step just past a limit."""
    past = draw(st.integers(0, 3)) == 0

    def pick(valid: list[Any], invalid: list[Any], spread: st.SearchStrategy[Any] | None = None) -> Any:
        choices = st.sampled_from(valid + invalid if past else valid)
        return draw(st.one_of(choices, spread) if spread is not None else choices)

    sides = [MIN_SIDE, MAX_SIDE, 800.0]
    width = pick(sides, [1e-300, MIN_SIDE * 0.999, MAX_SIDE * 1.001], logs(-100, 9))
    height = pick(sides, [MAX_SIDE * 1.001], logs(-100, 9))
    short = min(width, height)
    particles = draw(st.integers(1, 12))
    # up to the largest disk that fits (f = 1), and the densest packing (just past it when past)
    room = min(short / 2, math.sqrt(0.9 * width * height / (particles * math.pi)))
    radius = pick([1e-300, 5e-324], [short / 2], st.floats(0.0, 1.0 if past else 0.999).map(lambda f: f * room))
    vmax = pick([0.0, 1e-300, MAX_SPEED], [MAX_SPEED * (1 + 2**-52), 1e200, LARGEST], logs(-300, 100))
    # right at, or (when past) just beyond, the rule max_speed*dt <= shorter side
    at_rule = st.floats(0.5, 1.01 if past else 1.0).map(lambda f: f * short / vmax if vmax else 1.0)
    dt = pick([1e-300], [1e-200, 0.1], st.one_of(logs(-300, 300), at_rule) if past else at_rule)
    assume(math.isfinite(dt) and dt > 0)
    params = {
        "NUM_PARTICULAS": particles,
        "NUM_PASOS": draw(st.integers(1, 4)),
        "SEMILLA": pick([0, 2**63 - 1], [2**63], st.integers(0, 2**63 - 1)),
        "ANCHO_MUNDO": width,
        "ALTO_MUNDO": height,
        "RADIO_PARTICULA": radius,
        "DT": dt,
        "VELOCIDAD_INICIAL_MAX": vmax,
        "COEF_RESTITUCION_PARED": pick([0.0, 0.5, 1.0], [1.0000001]),
        "COEF_RESTITUCION_PARTICULA": pick([0.0, 0.9, 1.0], [-1e-300]),
    }
    if draw(st.booleans()):  # the ETAPA-6 names too
        params["num_particles"] = params.pop("NUM_PARTICULAS")
    return {"benchmark": draw(st.sampled_from(ENGINES)), "params": params}


@pytest.fixture(scope="module")
def worker() -> RunningWorker:
    w = start_worker("127.0.0.1", None, "--capacity", "2", "--max-timeout", "30")
    yield w
    w.stop()


@pytest.fixture(scope="module")
def http(worker: RunningWorker) -> httpx.Client:
    with worker.client() as c:
        yield c


def _check_history(http: httpx.Client) -> None:
    r = http.get("/history", params={"limit": 50})
    assert r.status_code == 200, r.text[:500]
    body = strict_loads(r.text)
    assert body["count"] == len(body["tasks"]) == len(body["task_history"])
    assert body["statistics"]["total_tasks"] >= body["count"]


def test_every_accepted_input_gives_finite_strict_json(worker: RunningWorker, http: httpx.Client) -> None:
    seen = {"accepted": 0, "refused": 0}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(tasks())
    # the input: once a 500 that poisoned /history, now a 422 naming the field
    @example(
        {
            "benchmark": "cython",
            "params": {"NUM_PARTICULAS": 10, "NUM_PASOS": 1, "VELOCIDAD_INICIAL_MAX": 1e200, "DT": 1e-200},
        }
    )
    # the largest accepted speed, the tiniest radius, the biggest box
    @example(
        {
            "benchmark": "cython",
            "params": {
                "NUM_PARTICULAS": 12,
                "NUM_PASOS": 4,
                "VELOCIDAD_INICIAL_MAX": 1e100,
                "DT": 1e-91,
                "ANCHO_MUNDO": 1e9,
                "ALTO_MUNDO": 1e9,
                "RADIO_PARTICULA": 1e-300,
            },
        }
    )
    @example(
        {
            "benchmark": "python",
            "params": {
                "NUM_PARTICULAS": 12,
                "NUM_PASOS": 4,
                "VELOCIDAD_INICIAL_MAX": 1e-300,
                "DT": 1e199,
                "ANCHO_MUNDO": 1e-100,
                "ALTO_MUNDO": 1e-100,
                "RADIO_PARTICULA": 1e-101,
            },
        }
    )
    @example(
        {
            "benchmark": "numpy",
            "params": {
                "NUM_PARTICULAS": 12,
                "NUM_PASOS": 4,
                "VELOCIDAD_INICIAL_MAX": 0.0,
                "DT": LARGEST,
                "RADIO_PARTICULA": 1e-300,
                "COEF_RESTITUCION_PARTICULA": 1.0,
            },
        }
    )
    def check(task: dict[str, Any]) -> None:
        body = json.dumps(task, allow_nan=False)
        try:
            params = parse_params(task["params"])
        except ParamsError:
            params = None
        r = http.post("/execute", content=body, headers={"content-type": "application/json"})
        assert r.status_code < 500, (task, r.status_code, r.text)
        answer = strict_loads(r.text)  # strict JSON whatever the outcome
        if params is None:
            seen["refused"] += 1
            assert r.status_code == 422 and answer["status"] == "invalid", (task, r.text)
            return
        seen["accepted"] += 1
        assert r.status_code == 200, (task, r.text)
        for key in ("kinetic_energy", "simulation_time", "execution_time", "particle_steps_per_s"):
            assert math.isfinite(answer[key]), (key, answer)
        # the bound the input limits rest on: the kinetic energy never exceeds N*vmax^2
        bound = params.particles * params.max_speed**2
        assert answer["kinetic_energy"] <= bound * (1 + 1e-9) + 1e-300, (task, answer["kinetic_energy"], bound)
        record = http.get(f"/tasks/{answer['task_id']}")
        assert record.status_code == 200 and strict_loads(record.text)["status"] == "success"
        if (seen["accepted"] + seen["refused"]) % 15 == 0:
            _check_history(http)

    check()
    _check_history(http)
    print(
        f"\n{seen['accepted']} aceptadas (200, resultados finitos) y {seen['refused']} rechazadas (422); "
        "ningún 5xx; /history 200"
    )
    assert seen["accepted"] >= EXAMPLES // 2 and seen["refused"] >= 1
    assert " 500 " not in worker.log() and "Traceback" not in worker.log()
