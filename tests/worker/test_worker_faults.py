"""The fault suite: bad bodies, params, ids, headers, methods, paths and raw HTTP sent to a
real worker. Every one gets a clear 4xx (never a 5xx) with a strict-JSON body
{"status", "error"} whose error names what is wrong, and nothing is executed.

The inputs are counted (distinct requests) and the count is printed.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from helpers.workers import TINY, RunningWorker, start_worker

TOKEN = "fallos-token-9f3a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_BODY = 4096


@dataclass(frozen=True)
class Case:
    """One bad request and what must come back: `code` and a `needle` in the error."""

    code: int
    needle: str
    method: str = "POST"
    path: str = "/execute"
    body: bytes | None = None
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # sent as is on a socket (what no HTTP client would send)
    token: bool = True

    def key(self) -> tuple[Any, ...]:
        """What makes two cases the same input."""
        return (
            self.method,
            self.path,
            tuple(sorted(self.params.items())),
            tuple(sorted(self.headers.items())),
            self.body,
            self.raw,
            self.token,
        )


def task(**fields: Any) -> bytes:
    return json.dumps(fields, ensure_ascii=False).encode()


def params(**values: Any) -> bytes:
    return task(benchmark="cython", params=values)


def body(raw: bytes, code: int, needle: str, path: str = "/execute") -> Case:
    return Case(code, needle, body=raw, path=path)


BODIES = [
    body(b"", 400, "vacío"),
    body(b"   \n", 400, "vacío"),
    body(b"{bad json", 400, "JSON inválido"),
    body(b'{"benchmark": "cython"} extra', 400, "JSON inválido"),
    body('\ufeff{"benchmark": "cython"}'.encode(), 400, "JSON inválido"),
    body(b"\xff\xfe\x00", 400, "UTF-8"),
    body(b"[" * 2000 + b"]" * 2000, 400, "JSON inválido"),
    body(b"[1, 2]", 422, "objeto JSON"),
    body(b'"texto"', 422, "objeto JSON"),
    body(b"null", 422, "objeto JSON"),
    body(b"42", 422, "objeto JSON"),
    body(b'{"benchmark": "python", "params": {"NUM_PARTICULAS": NaN}}', 422, "NaN"),
    body(b'{"benchmark": "python", "params": {"DT": Infinity}}', 422, "Infinity"),
    body(b'{"benchmark": "python", "params": {"DT": -Infinity}}', 422, "Infinity"),
    body(b'{"benchmark": "python", "params": {"DT": 1e999}}', 422, "fuera de rango"),
    body(b'{"benchmark": "python", "params": {"NUM_PASOS": 1' + b"0" * 400 + b"}}", 422, "demasiado grande"),
    body(b'{"benchmark": "cython", "task_id": "' + b"a" * MAX_BODY + b'"}', 422, "max_body_bytes"),
    body(b'{"benchmark": "cython", "benchmark": "Cython"}', 422, "benchmark"),  # the last one counts
    body(b'{"benchmark": "cython", "params": {"NUM_PARTICULAS": 5}}', 405, "POST", path="/tasks/x"),
]

FIELDS = [
    body(task(params=TINY), 422, "benchmark"),
    body(task(benchmark=7), 422, "benchmark"),
    body(task(benchmark=None), 422, "benchmark"),
    body(task(benchmark=["cython"]), 422, "benchmark"),
    body(task(benchmark={"name": "cython"}), 422, "benchmark"),
    *[
        body(task(benchmark=name), 422, "benchmark")
        for name in [
            "Cython",
            "CYTHON",
            " cython",
            "cython ",
            "Benchmark.py",
            "BENCHMARK_CYTHON.PY",
            "cython\n",
            "benchmark",
            "benchmark_numpy.py",
            "../x",
            "/bin/sh",
            "benchmark.py; rm -rf /",
            "$(id)",
            "`id`",
            "",
            "x" * 300,
            "python3",
            "cython.pyx",
            "ñandú",
        ]
    ],
    body(task(benchmark="cython", parms={}), 422, "parms"),
    body(task(benchmark="cython", callback="http://127.0.0.1:1/"), 422, "callback"),
    body(task(benchmark="cython", params=[1]), 422, "params"),
    body(task(benchmark="cython", params="NUM_PARTICULAS=5"), 422, "params"),
    body(task(benchmark="cython", params=5), 422, "params"),
]

PARAMS = [
    body(params(NUM_PARTICULAS=0), 422, "NUM_PARTICULAS"),
    body(params(NUM_PARTICULAS=-1), 422, "NUM_PARTICULAS"),
    body(params(NUM_PARTICULAS=1_000_001), 422, "NUM_PARTICULAS"),
    body(params(NUM_PARTICULAS=2.5), 422, "NUM_PARTICULAS"),
    body(params(NUM_PARTICULAS="cien"), 422, "NUM_PARTICULAS"),
    body(params(NUM_PARTICULAS=True), 422, "NUM_PARTICULAS"),
    body(params(NUM_PARTICULAS=None), 422, "NUM_PARTICULAS"),
    body(params(NUM_PARTICULAS=[5]), 422, "NUM_PARTICULAS"),
    body(params(NUM_PASOS=0), 422, "NUM_PASOS"),
    body(params(NUM_PASOS=10_000_001), 422, "NUM_PASOS"),
    body(params(NUM_PASOS="5.5"), 422, "NUM_PASOS"),  # a numeric text is its number ("5" is 5): not a whole one
    body(params(SEMILLA=-1), 422, "SEMILLA"),
    body(params(SEMILLA=2**63), 422, "SEMILLA"),
    body(params(SEMILLA=1.5), 422, "SEMILLA"),
    body(params(ANCHO_MUNDO=0), 422, "ANCHO_MUNDO"),
    body(params(ANCHO_MUNDO=-800), 422, "ANCHO_MUNDO"),
    body(params(ANCHO_MUNDO=1e10), 422, "ANCHO_MUNDO"),
    body(params(ANCHO_MUNDO=1e-101, RADIO_PARTICULA=1e-102), 422, "ANCHO_MUNDO"),
    body(params(ANCHO_MUNDO="ancho"), 422, "ANCHO_MUNDO"),
    body(params(ALTO_MUNDO=0), 422, "ALTO_MUNDO"),
    body(params(ALTO_MUNDO=2e9), 422, "ALTO_MUNDO"),
    body(params(ALTO_MUNDO=8.0), 422, "ALTO_MUNDO"),  # not taller than a diameter
    body(params(RADIO_PARTICULA=0), 422, "RADIO_PARTICULA"),
    body(params(RADIO_PARTICULA=-5), 422, "RADIO_PARTICULA"),
    body(params(RADIO_PARTICULA=500), 422, "ANCHO_MUNDO"),
    body(params(DT=0), 422, "DT"),
    body(params(DT=-0.1), 422, "DT"),
    body(params(DT="-0.1"), 422, "DT"),  # "0.1" is 0.1 (numeric texts are accepted); this one is out of range
    body(params(VELOCIDAD_INICIAL_MAX=-1), 422, "VELOCIDAD_INICIAL_MAX"),
    body(params(VELOCIDAD_INICIAL_MAX=1e101), 422, "VELOCIDAD_INICIAL_MAX"),
    body(params(VELOCIDAD_INICIAL_MAX=1e200, DT=1e-200), 422, "VELOCIDAD_INICIAL_MAX"),  # the input
    body(params(VELOCIDAD_INICIAL_MAX=1e6), 422, "VELOCIDAD_INICIAL_MAX"),  # crosses the box in one step
    body(params(COEF_RESTITUCION_PARED=1.5), 422, "COEF_RESTITUCION_PARED"),
    body(params(COEF_RESTITUCION_PARED=-0.1), 422, "COEF_RESTITUCION_PARED"),
    body(params(COEF_RESTITUCION_PARTICULA=2), 422, "COEF_RESTITUCION_PARTICULA"),
    body(params(COEF_RESTITUCION_PARTICULA=-1), 422, "COEF_RESTITUCION_PARTICULA"),
    body(params(NUM_PARTICULAS=10_000), 422, "NUM_PARTICULAS"),  # packing fraction
    body(params(PARTICULAS=5), 422, "PARTICULAS"),
    body(params(Num_Particles=5), 422, "Num_Particles"),
    body(params(num_particle=5), 422, "num_particle"),
    body(params(num_particles="x"), 422, "num_particles"),
    body(params(num_steps=0), 422, "num_steps"),
    body(params(seed=-5), 422, "seed"),
    body(params(num_particles=5, NUM_PARTICULAS=5), 422, "dos veces"),
    body(params(seed=1, SEMILLA=1), 422, "dos veces"),
    body(params(particles=5, NUM_PARTICULAS=5), 422, "dos veces"),
]

IDS_AND_TIMEOUTS = [
    body(task(benchmark="cython", task_id=5.5), 422, "task_id"),  # an integer id is accepted as its digits
    body(task(benchmark="cython", task_id=""), 422, "task_id"),
    body(task(benchmark="cython", task_id="a\nb"), 422, "task_id"),
    body(task(benchmark="cython", task_id="a\tb"), 422, "task_id"),
    body(task(benchmark="cython", task_id="\u0000"), 422, "task_id"),
    body(task(benchmark="cython", task_id="x\u2028y"), 422, "task_id"),
    body(task(benchmark="cython", task_id="\u0085"), 422, "task_id"),
    body(task(benchmark="cython", task_id="ñ" * 129), 422, "task_id"),
    body(b'{"benchmark": "cython", "task_id": "\\ud800"}', 422, "task_id"),  # a lone surrogate
    body(task(benchmark="cython", task_id=["a"]), 422, "task_id"),
    body(task(benchmark="cython", timeout=0), 422, "timeout"),
    body(task(benchmark="cython", timeout=-3), 422, "timeout"),
    body(task(benchmark="cython", timeout="5"), 422, "timeout"),
    body(task(benchmark="cython", timeout=True), 422, "timeout"),
    body(task(benchmark="cython", timeout=[5]), 422, "timeout"),
]

ROUTES = [
    Case(405, "PUT", method="PUT", body=task(benchmark="cython")),
    Case(405, "DELETE", method="DELETE"),
    Case(405, "GET", method="GET"),
    Case(405, "POST", method="POST", path="/ping"),
    Case(405, "PATCH", method="PATCH", path="/tasks/x"),
    Case(405, "PUT", method="PUT", path="/history"),
    Case(404, "/nope", method="GET", path="/nope"),
    Case(404, "/execute/", method="POST", path="/execute/", body=task(benchmark="cython")),
    Case(404, "no-such-task", method="GET", path="/tasks/no-such-task"),
    Case(404, "no-such-task", method="DELETE", path="/tasks/no-such-task"),
    Case(404, "tarea ñ", method="GET", path="/tasks/tarea%20%C3%B1"),
    Case(422, "limit", method="GET", path="/history", params={"limit": "muchas"}),
    Case(422, "limit", method="GET", path="/history", params={"limit": "0"}),
    Case(422, "limit", method="GET", path="/history", params={"limit": "-1"}),
    Case(422, "limit", method="GET", path="/history", params={"limit": "1e3"}),
    Case(422, "status", method="GET", path="/history", params={"status": "perdida"}),
    Case(422, "status", method="GET", path="/history", params={"status": "SUCCESS"}),
]

HEADERS = [
    Case(400, "JSON", body=b"benchmark=cython", headers={"content-type": "application/x-www-form-urlencoded"}),
    Case(400, "JSON", body=b"benchmark: cython", headers={"content-type": "text/plain"}),
    Case(
        422,
        "max_body_bytes",
        body=b"{}",
        headers={"content-length": "999999999"},
        raw=b"POST /execute HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
        + TOKEN.encode()
        + b"\r\nContent-Length: 999999999\r\n\r\n{}",
    ),
    Case(401, "Authorization", method="GET", path="/status", token=False),
    Case(401, "Authorization", body=task(benchmark="cython", params=TINY), token=False),
    Case(401, "Authorization", method="GET", path="/status", token=False, headers={"Authorization": f"Basic {TOKEN}"}),
    Case(401, "token", method="GET", path="/history", token=False, headers={"Authorization": "Bearer otro"}),
    Case(401, "token", method="GET", path="/current", token=False, headers={"Authorization": f"Bearer {TOKEN}x"}),
    Case(401, "Authorization", method="GET", path="/metrics", token=False, headers={"Authorization": "Bearer"}),
]


def raw(request: bytes, code: int, needle: str) -> Case:
    return Case(code, needle, method="RAW", raw=request)


RAW_HTTP = [
    raw(b"HELLO WORLD\r\n\r\n", 400, "petición HTTP"),
    raw(b"GET /ping HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n", 400, "cabeceras"),
    raw(b"POST /execute HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}", 400, "cabeceras"),
    raw(
        b"POST /execute HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n", 400, "cuerpo"
    ),
    raw(
        b"POST /execute HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        "cabeceras",
    ),
    raw("GET /tasks/ñ HTTP/1.1\r\nHost: x\r\n\r\n".encode(), 400, "ruta"),
    raw(b"GET /tasks/a b HTTP/1.1\r\nHost: x\r\n\r\n", 400, "ruta"),
    raw(b"GET /ping HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400, "cabeceras"),
    raw(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, "petición HTTP"),
    raw(b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "petición HTTP"),
    raw(b"GET /ping HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 70_000 + b"\r\n\r\n", 431, "cabeceras"),
    raw(b"GET /ping HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 10_000 + b"\r\n", 431, "cabeceras"),
    raw(b"GET /ping?" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 431, "cabeceras"),
]

CASES = [*BODIES, *FIELDS, *PARAMS, *IDS_AND_TIMEOUTS, *ROUTES, *HEADERS, *RAW_HTTP]


def _send_raw(worker: RunningWorker, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection((worker.host, worker.port), timeout=15) as sock:
        sock.sendall(request)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            head, sep, rest = data.partition(b"\r\n\r\n")
            if sep:
                headers = dict(line.decode("latin-1").lower().split(": ", 1) for line in head.split(b"\r\n")[1:])
                if len(rest) >= int(headers.get("content-length", "0")):
                    return int(head.split()[1]), headers, rest
    raise AssertionError(f"no complete answer: {data[:300]!r}")


def _strict(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def worker() -> RunningWorker:
    w = start_worker("127.0.0.1", None, "--capacity", "1", "--max-body", str(MAX_BODY), env={"PARTISIM_TOKEN": TOKEN})
    yield w
    w.stop()


def _executed(c: httpx.Client) -> int:
    s = c.get("/status").json()
    return s["completed"] + s["failed"] + s["cancelled"] + s["running"] + s["queued"]


def test_every_bad_input_is_a_clear_4xx(worker: RunningWorker) -> None:
    distinct = {case.key() for case in CASES}
    with worker.client() as c, httpx.Client(trust_env=False, timeout=15) as anonymous:
        # two conflicts need a task first: the same id with other parameters, cancelling a finished task
        done = c.post("/execute", json={"benchmark": "cython", "params": TINY, "task_id": "ya-hecha"})
        assert done.status_code == 200
        conflicts = [
            body(task(benchmark="cython", params={**TINY, "NUM_PASOS": 2}, task_id="ya-hecha"), 409, "task_id"),
            body(task(benchmark="python", params=TINY, task_id="ya-hecha"), 409, "task_id"),
            Case(409, "ya terminó (éxito)", method="DELETE", path="/tasks/ya-hecha"),
        ]
        distinct |= {case.key() for case in conflicts}
        before = _executed(c)
        failures: list[str] = []
        codes: list[int] = []
        for case in [*CASES, *conflicts]:
            if case.raw is not None:
                code, headers, content = _send_raw(worker, case.raw)
                text = content.decode("utf-8")
                ctype = headers.get("content-type", "")
            else:
                headers = {**(AUTH if case.token else {}), **case.headers}
                r = anonymous.request(
                    case.method,
                    worker.url + case.path,
                    content=case.body,
                    params=case.params,
                    headers={"content-type": "application/json", **headers} if case.body else headers,
                )
                code, text, ctype = r.status_code, r.text, r.headers.get("content-type", "")
            codes.append(code)
            try:
                answer = _strict(text)
                ok = (
                    code == case.code
                    and ctype.startswith("application/json")
                    and isinstance(answer.get("error"), str)
                    and case.needle in answer["error"]
                    and isinstance(answer.get("status"), str)
                )
            except ValueError:
                ok = False
            if not ok:
                failures.append(
                    f"{case.method} {case.path} {(case.raw or case.body or b'')[:80]!r}: {code} {text[:200]}"
                )
        executed = _executed(c) - before
        assert c.get("/ping").status_code == 200
    server_errors = [code for code in codes if code >= 500]
    print(
        f"\nsuite de fallos: {len(distinct)} entradas inválidas distintas; {len(server_errors)} respuestas 5xx; "
        f"códigos: {dict(sorted((k, codes.count(k)) for k in set(codes)))}"
    )
    assert not failures, "\n".join(failures)
    assert not server_errors
    assert executed == 0, f"{executed} bad input(s) executed"
    assert len(distinct) >= 80
    assert " 500 " not in worker.log() and "Traceback" not in worker.log()
