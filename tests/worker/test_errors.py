"""Bad input: 4xx with a JSON {"status", "error"} body naming the problem; nothing executed; never a 5xx."""

from __future__ import annotations

import httpx
import pytest
from helpers.workers import TINY, RunningWorker


def _executed(client: httpx.Client) -> int:
    s = client.get("/status").json()
    return s["completed"] + s["failed"] + s["cancelled"] + s["running"] + s["queued"]


def _error(r: httpx.Response, code: int, *needles: str) -> dict:
    assert r.status_code == code, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) >= {"status", "error"} and isinstance(body["error"], str) and body["error"]
    for needle in needles:
        assert needle in body["error"], (needle, body["error"])
    return body


UNSAFE_BENCHMARKS = [
    "../x",
    "/bin/sh",
    "benchmark.py; rm -rf /",
    "benchmark.py && echo hi",
    "$(id)",
    "`id`",
    "..\\..\\windows",
    "python|sh",
    "C:\\python.exe",
    "",
    " ",
    "x" * 500,
    "benchmark",
    "benchmark_numpy.py",
    "_crash",
    "cython.pyx",
]


@pytest.mark.parametrize("name", UNSAFE_BENCHMARKS)
def test_unknown_or_path_like_benchmark_is_422_and_not_run(app_client: httpx.Client, name: str) -> None:
    before = _executed(app_client)
    body = _error(app_client.post("/execute", json={"benchmark": name, "params": TINY}), 422, "benchmark")
    assert body["status"] == "invalid"
    assert len(body["error"]) < 300  # a huge name is not echoed back whole
    assert _executed(app_client) == before


@pytest.mark.parametrize(
    "raw,code,needle",
    [
        (b"{bad json", 400, "JSON inválido"),
        (b"", 400, "vacío"),
        (b"\xff\xfe", 400, "UTF-8"),
        (b"[1, 2]", 422, "objeto JSON"),
        (b'"texto"', 422, "objeto JSON"),
        (b"null", 422, "objeto JSON"),
        (b'{"benchmark": "python", "params": {"NUM_PARTICULAS": NaN}}', 422, "NaN"),
        (b'{"benchmark": "python", "params": {"DT": Infinity}}', 422, "Infinity"),
        (b'{"benchmark": "python", "params": {"DT": -Infinity}}', 422, "Infinity"),
        (b'{"benchmark": "python", "params": {"DT": 1e999}}', 422, "fuera de rango"),
        (b'{"benchmark": "python", "params": {"NUM_PASOS": 1' + b"0" * 200 + b"}}", 422, "demasiado grande"),
        (b'{"benchmark": "python", "params": {"NUM_PASOS": 1' + b"0" * 5000 + b"}}", 422, "demasiado grande"),
        (b"[" * 5000 + b"]" * 5000, 400, "JSON inválido"),
        (b'{"params": {}}', 422, "benchmark"),
        (b'{"benchmark": 7}', 422, "benchmark"),
        (b'{"benchmark": "python", "params": [1]}', 422, "params"),
        (b'{"benchmark": "python", "params": {"NUM_PARTICULAS": "cien"}}', 422, "NUM_PARTICULAS"),
        (b'{"benchmark": "python", "params": {"NUM_PARTICULAS": 0}}', 422, "NUM_PARTICULAS"),
        (b'{"benchmark": "python", "params": {"NUM_PARTICULAS": 2.5}}', 422, "NUM_PARTICULAS"),
        (b'{"benchmark": "python", "params": {"NUM_PARTICULAS": true}}', 422, "NUM_PARTICULAS"),
        (b'{"benchmark": "python", "params": {"NUM_PARTICULAS": 1000001}}', 422, "NUM_PARTICULAS"),
        (b'{"benchmark": "python", "params": {"SEMILLA": -1}}', 422, "SEMILLA"),
        (b'{"benchmark": "python", "params": {"COEF_RESTITUCION_PARED": 2}}', 422, "COEF_RESTITUCION_PARED"),
        (b'{"benchmark": "python", "params": {"PARTICULAS": 5}}', 422, "PARTICULAS"),
        (b'{"benchmark": "python", "params": {"RADIO_PARTICULA": 500}}', 422, "ANCHO_MUNDO"),
        (b'{"benchmark": "python", "parms": {}}', 422, "parms"),
        (b'{"benchmark": "python", "task_id": "tarea\\n2"}', 422, "task_id"),
        (b'{"benchmark": "python", "task_id": "' + b"x" * 129 + b'"}', 422, "task_id"),
        (b'{"benchmark": "python", "task_id": 5.5}', 422, "task_id"),
        (b'{"benchmark": "python", "task_id": [5]}', 422, "task_id"),
        (b'{"benchmark": "python", "params": {"NUM_PARTICULAS": "2.5"}}', 422, "NUM_PARTICULAS"),
        (b'{"benchmark": "python", "task_id": ""}', 422, "task_id"),
        (b'{"benchmark": "python", "timeout": 0}', 422, "timeout"),
        (b'{"benchmark": "python", "timeout": -3}', 422, "timeout"),
        (b'{"benchmark": "python", "timeout": "5"}', 422, "timeout"),
        (b'{"benchmark": "python", "timeout": true}', 422, "timeout"),
    ],
)
def test_malformed_bodies_are_4xx_json(app_client: httpx.Client, raw: bytes, code: int, needle: str) -> None:
    before = _executed(app_client)
    for path in ("/execute", "/tasks"):
        _error(app_client.post(path, content=raw, headers={"content-type": "application/json"}), code, needle)
    assert _executed(app_client) == before


def test_limits_each_named(limited_app: httpx.Client) -> None:
    c = limited_app  # in this process: the limits need no worker process
    cases = [
        ({"NUM_PARTICULAS": 5001, "NUM_PASOS": 1}, "max_particles = 5000"),
        ({"NUM_PARTICULAS": 1, "NUM_PASOS": 200001}, "max_steps = 200000"),
        ({"NUM_PARTICULAS": 5000, "NUM_PASOS": 201}, "max_work = 1000000"),
    ]
    for params, needle in cases:
        _error(c.post("/execute", json={"benchmark": "cython", "params": params}), 422, needle)
    # exactly at the budget is fine
    ok = c.post(
        "/execute",
        json={"benchmark": "cython", "params": {"NUM_PARTICULAS": 1000, "NUM_PASOS": 1000, "RADIO_PARTICULA": 1.0}},
    )
    assert ok.status_code == 200, ok.text
    big = b'{"benchmark": "cython", "params": {}, "task_id": "' + b"a" * 3000 + b'"}'
    _error(c.post("/execute", content=big), 422, "max_body_bytes = 2048")
    status = c.get("/status").json()
    assert status["limits"] == {
        "max_particles": 5000,
        "max_steps": 200000,
        "max_work": 1_000_000,
        "max_body_bytes": 2048,
    }


def test_body_limit_without_content_length(limited_worker: RunningWorker) -> None:
    """A chunked body (no Content-Length) is cut at the limit too."""

    def chunks():
        yield b'{"benchmark": "cython", "params": {}, "task_id": "'
        for _ in range(10):
            yield b"a" * 1000
        yield b'"}'

    with limited_worker.client() as c:
        _error(c.post("/execute", content=chunks()), 422, "max_body_bytes")


def test_routes_and_methods_json(app_client: httpx.Client) -> None:
    client = app_client
    _error(client.get("/nope"), 404, "/nope")
    _error(client.put("/execute", json={}), 405, "PUT")
    _error(client.get("/tasks/does-not-exist"), 404, "does-not-exist")
    _error(client.delete("/tasks/does-not-exist"), 404, "does-not-exist")
    _error(client.get("/history", params={"limit": "muchas"}), 422, "limit")
    _error(client.get("/history", params={"limit": 0}), 422, "limit")
    _error(client.get("/history", params={"status": "perdida"}), 422, "status")
    big = client.get("/history", params={"limit": 10**12})
    assert big.status_code == 200 and big.json()["count"] <= 1000


def test_form_and_other_content_types(app_client: httpx.Client) -> None:
    client = app_client
    _error(client.post("/execute", data={"benchmark": "python"}), 400, "JSON")
    _error(client.post("/execute", content=b"benchmark=python", headers={"content-type": "text/plain"}), 400, "JSON")
