"""``partisim serve`` attacked as issue 19 did: the figures its closing note asks for.

    .venv/bin/python bench/serve_hardening.py [--stalled 200] [--request-timeout 5] [--fuzz 150]

One run, printed as plain lines (nothing here fails on a figure):

1. distinct bad requests to a real serve process on loopback: how many, and how many
   answers were 5xx (and which statuses came back);
2. serve's resident memory (VmRSS from /proc) before and after the 10^10-task sweep
   request, and that request's answer;
3. ``--stalled`` sockets that stop mid-request: the time until the last one is cut,
   against ``--request-timeout``, and /api/health's answers and latency meanwhile;
4. each damaged-row, foreign-file, full-disk and bad-config case: exit code or HTTP
   status and the message (the full disk needs root, for a small tmpfs);
5. the in-process fuzzing run (schemathesis, tests/helpers/fuzz.py) over serve's and
   the worker's OpenAPI: requests made, per class of answer.
"""

# ruff: noqa: E402  (the imports must follow the sys.path line below)
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "queue"))

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from typing import Any

import httpx
from helpers.config import write_config
from helpers.processes import free_port_on
from helpers.serve import Serve
from queue_support import run_cli, write_foreign_sqlite
from stalled import STALLS, StalledSockets

from partisim.serve.queue.store import TaskQueue
from partisim.serve.queue.task import TaskSpec

HOST = "127.0.0.1"
TINY = {"NUM_PARTICULAS": 4, "NUM_PASOS": 2}


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def bad_requests() -> list[tuple[str, str, Any]]:
    """(method, path with query, body bytes or None): each different from the others."""
    out: list[tuple[str, str, Any]] = []
    for depth in (33, 100, 1000, 10_000, 100_000):
        for path in ("/api/tasks", "/api/sweeps", "/api/verify"):
            out.append(("POST", path, b"[" * depth + b"]" * depth))
            out.append(("POST", path, b'{"a":' * depth + b"1" + b"}" * depth))
    for name in ("after_seq", "before_seq", "limit"):
        for value in ("99999999999999999999", "9223372036854775808", "-1", "1e3", "abc", "9" * 5000, "0x10", " "):
            out.append(("GET", f"/api/tasks?{name}={value}", None))
    for value in ("zombie", "SUCCESS", "%00", "x" * 300):
        out.append(("GET", f"/api/tasks?status={value}", None))
        out.append(("GET", f"/api/export?status={value}", None))
    for value in ("xml", "CSV", "json", ""):
        out.append(("GET", f"/api/export?format={value}x", None))
    for value in ("-1", "61", "nan", "inf", "1e400", "abc"):
        out.append(("GET", f"/api/summary?wait={value}", None))
        out.append(("GET", f"/api/tasks/t-1?wait={value}", None))
    for value in ("0", "100001", "abc"):
        out.append(("GET", f"/api/batches?limit={value}", None))
    bodies: list[Any] = [
        b"",
        b"not json",
        b"\xff\xfe\x00",
        b"NaN",
        b"[]",
        b"{}",
        b"null",
        b"42",
        b'"texto"',
        b'{"tasks": []}',
        b'{"tasks": {}}',
        b'{"tasks": [1]}',
        b'{"benchmark": "../../bin/sh"}',
        b'{"benchmark": "python", "params": {"NUM_PARTICULAS": 0}}',
        b'{"benchmark": "python", "params": {"NUM_PARTICULAS": 1e400}}',
        b'{"benchmark": "python", "params": {"NUM_PARTICULAS": ' + b"9" * 5000 + b"}}",
        b'{"benchmark": "python", "params": {"NUM_PARTICULAS": NaN}}',
        b'{"benchmark": "python", "params": {"DT": -1}}',
        b'{"benchmark": "python", "params": {"RADIO_PARTICULA": 1e300}}',
        b'{"benchmark": "python", "params": {"ANCHO_MUNDO": "ancho"}}',
        b'{"benchmark": "python", "params": []}',
        b'{"benchmark": "python", "repeat": 0}',
        b'{"benchmark": "python", "repeat": 100001}',
        b'{"benchmark": "python", "repeat": true}',
        b'{"benchmark": "python", "timeout": -5}',
        b'{"benchmark": "python", "timeout": 1e400}',
        b'{"benchmark": "python", "threads": 0}',
        b'{"benchmark": "python", "threads": 100000}',
        b'{"benchmark": "python", "engine": "numpy"}',
        b'{"benchmark": "python", "otro": 1}',
        b'{"tasks": [{"benchmark": "python"}], "batch": "../x"}',
        b'{"tasks": [{"benchmark": "python"}], "batch": ""}',
        b'{"tasks": [{"benchmark": "python"}], "batch": 5}',
        b'{"tasks": [{"benchmark": "python"}], "batch": "' + b"b" * 65 + b'"}',
        b'{"tasks": [{"benchmark": "python", "repeat": 10000}], "otro": 1}',
        b'[{"benchmark": "python", "repeat": 10000}' + b', {"benchmark": "python", "repeat": 10000}' * 10 + b"]",
        b'{"benchmark": "\\ud800"}',
    ]
    out.extend(("POST", "/api/tasks", body) for body in bodies)
    names = ["NUM_PARTICULAS", "NUM_PASOS", "SEMILLA", "ANCHO_MUNDO", "ALTO_MUNDO", "RADIO_PARTICULA", "DT"]
    names += ["VELOCIDAD_INICIAL_MAX", "COEF_RESTITUCION_PARED", "COEF_RESTITUCION_PARTICULA"]
    for name in names:
        for value in ("-1", '"texto"', "1e400", "9" * 40, "[1]"):
            body = f'{{"benchmark": "python", "params": {{"{name}": {value}}}}}'.encode()
            out.append(("POST", "/api/tasks", body))
    for value in ("2", "quizás", "sí-no", "TRUE1", "-"):
        out.append(("GET", f"/api/tasks?originals={value}", None))
        out.append(("GET", f"/api/export?originals={value}", None))
    sweeps = [
        {"engines": "python", "particles": "1-99999", "steps": "1-99999"},
        {"engines": "python", "particles": "1-2000", "steps": "1-1000"},
        {"engines": "python,numpy,cython", "particles": "1-99999", "steps": "1-2"},
        {"engines": "", "particles": "10", "steps": "10"},
        {"engines": "fortran", "particles": "10", "steps": "10"},
        {"engines": "python", "particles": "10-1", "steps": "10"},
        {"engines": "python", "particles": "1-200000", "steps": "10"},
        {"engines": "python", "particles": "a-b", "steps": "10"},
        {"engines": "python", "particles": "1,,2", "steps": "10"},
        {"engines": "python", "particles": "9" * 400, "steps": "10"},
        {"engines": "python", "particles": "0", "steps": "10"},
        {"engines": "python", "particles": "10", "steps": "10", "repeat": 0},
        {"engines": "python", "particles": "10", "steps": "10", "repeat": "muchas"},
        {"engines": "python", "particles": "10", "steps": "10", "threads": -1},
        {"engines": "python", "particles": "10", "steps": "10", "dt": "rápido"},
        {"engines": "python", "particles": "10", "steps": "10", "otro": 1},
        {"engines": "python", "particles": "10"},
        {"engines": ["python", 7], "particles": "10", "steps": "10"},
        {"engines": "python", "particles": {"a": 1}, "steps": "10"},
        {"engines": "python", "particles": "10", "steps": "10", "seeds": "1-99999", "repeat": 2},
    ]
    out.extend(("POST", "/api/sweeps", json.dumps(body).encode()) for body in sweeps)
    verifies = [b'{"count": 0}', b'{"count": 1001}', b'{"count": "3"}', b'{"batch": 7}', b"[]", b'"x"']
    out.extend(("POST", "/api/verify", body) for body in verifies)
    for method, path in (("PUT", "/api/tasks"), ("PATCH", "/api/summary"), ("DELETE", "/api/tasks/no-existe")):
        out.append((method, path, None))
    out.extend(("GET", path, None) for path in ("/api/nada", "/api/tasks/%FF%FE", "/api/charts?batch=no-existe"))
    return out


def send_all(serve: Serve, requests: list[tuple[str, str, Any]]) -> list[int]:
    """Each request's status code, in order."""
    with httpx.Client(base_url=serve.url, timeout=60.0, trust_env=False) as client:
        return [
            client.request(method, path, content=body, headers={"content-type": "application/json"}).status_code
            for method, path, body in requests
        ]


def big_body(serve: Serve) -> None:
    """A 50 MiB body, declared: refused before it is read (and serve's memory with it)."""
    before = rss_mb(serve.pid)
    big = b"[" + b"0," * (25 * 1024 * 1024) + b"0]"
    with httpx.Client(base_url=serve.url, timeout=60.0, trust_env=False) as client:
        t0 = time.perf_counter()
        answer = client.post("/api/tasks", content=big)
        took = (time.perf_counter() - t0) * 1000
    print(
        f"   cuerpo de 50 MiB: {answer.status_code} en {took:.0f} ms «{answer.json()['error']}»; memoria de serve "
        f"{before:.1f} -> {rss_mb(serve.pid):.1f} MB"
    )


def stalled(serve: Serve, count: int, timeout: float) -> None:
    kinds = list(STALLS.values())
    socks = StalledSockets(serve.port, [kinds[k % 3] for k in range(count)])
    health: list[float] = []
    codes: Counter[int] = Counter()
    deadline = socks.opened + timeout * 4 + 10
    with httpx.Client(base_url=serve.url, timeout=5.0, trust_env=False) as client:
        while socks.open and time.monotonic() < deadline:
            t0 = time.perf_counter()
            codes[client.get("/api/health", headers={"Connection": "close"}).status_code] += 1
            health.append((time.perf_counter() - t0) * 1000)
            socks.poll(0.05)
    socks.close()
    left, last_cut = len(socks.open), socks.last_cut
    print(
        f"3. {count} sockets parados (--request-timeout {timeout:g} s): {count - left} cortados, el último a los "
        f"{last_cut:.1f} s; /api/health: {dict(codes)}, mediana {statistics.median(health):.1f} ms, "
        f"máx {max(health):.1f} ms ({len(health)} peticiones)"
    )


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:240] if lines else ""


def cases(tmp: Path, config: Path) -> None:
    print("4. casos de filas dañadas, archivos ajenos, disco lleno y configuración:")
    # damaged rows
    db = tmp / "danada.db"
    with TaskQueue(db) as queue:
        _, ids = queue.enqueue([TaskSpec("python", dict(TINY))] * 215)
    con = sqlite3.connect(db)
    with con:
        con.execute("UPDATE tasks SET status = 'zombie' WHERE id = ?", (ids[0],))
        con.execute("UPDATE tasks SET status = 'success', result = '{\"checksum\": ' WHERE id = ?", (ids[1],))
    con.close()
    serve = Serve(config, db, workdir=tmp).start()
    try:
        with serve.http() as client:
            page = client.get("/api/tasks", params={"limit": 1000})
            damaged = [t for t in page.json()["tasks"] if t["damaged"]]
            export = client.get("/api/export")
            results = run_cli("results", "--server", serve.url, "--format", "csv", cwd=tmp)
            print(
                f"   filas dañadas: arranque {'con aviso' if 'filas dañadas' in serve.log() else 'SIN aviso'}; "
                f"/api/tasks {page.status_code} ({len(page.json()['tasks'])} tareas, {len(damaged)} dañadas: "
                f"{damaged[0]['id']} «{damaged[0]['damaged']}»); /api/summary damaged="
                f"{client.get('/api/summary').json()['damaged']}; /api/charts {client.get('/api/charts').status_code}"
                f"; /api/export {export.status_code}, X-Total-Count {export.headers.get('X-Total-Count')}, "
                f"{len(export.text.strip().splitlines()) - 1} filas CSV; partisim results: rc {results.returncode}, "
                f"{len(results.stdout.strip().splitlines()) - 1} filas"
            )
    finally:
        serve.stop()
    # foreign file
    foreign = tmp / "ajena.db"
    write_foreign_sqlite(foreign)
    before = foreign.read_bytes()
    out = run_cli("serve", "--config", str(config), "--db", str(foreign), "--port", "0", cwd=tmp)
    print(
        f"   archivo ajeno: rc {out.returncode}, intacto: {foreign.read_bytes() == before}: «{last_line(out.stderr)}»"
    )
    # bad configuration files
    for name, content in (
        ("no UTF-8", b'{"workers": [{"id": "w\xff", "ip": "127.0.0.61", "port": 9}]}'),
        ("50 000 niveles", b'{"workers": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
    ):
        bad = tmp / "config_workers.json"
        bad.write_bytes(content)
        for command in (
            ("serve", "--config", str(bad), "--db", str(tmp / "c.db"), "--port", "0"),
            ("ping", "--config", str(bad)),
            ("worker", "--config", str(bad), "--host", HOST, "--port", "0"),
        ):
            out = run_cli(*command, cwd=tmp)
            print(f"   configuración {name}, {command[0]}: rc {out.returncode}: «{last_line(out.stdout + out.stderr)}»")
    out = run_cli("serve", "--config", str(config), "--db", str(tmp / "t.db"), "--port", "0", cwd=tmp,
              env={"PARTISIM_TOKEN": "x"})  # fmt: skip
    print(f"   token de 1 carácter, serve: rc {out.returncode}: «{last_line(out.stderr)}»")
    full_disk(tmp, config)


def full_disk(tmp: Path, config: Path) -> None:
    if os.geteuid() != 0:
        print("   disco lleno: no medido (montar un tmpfs requiere root)")
        return
    mount = tmp / "tmpfs"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)]).returncode != 0:
        print("   disco lleno: no medido (mount falló)")
        return
    try:
        serve = Serve(config, mount / "q.db", workdir=tmp).start()
        try:
            statuses: Counter[int] = Counter()
            message = ""
            accepted = 0
            batch = [{"benchmark": "python", "params": TINY}] * 5
            with serve.http() as client:
                for _ in range(1000):
                    answer = client.post("/api/tasks", json=batch)
                    statuses[answer.status_code] += 1
                    if answer.status_code == 201:
                        accepted += 5
                    else:
                        message = answer.json()["error"]
                        if statuses[answer.status_code] >= 5:
                            break
                total = client.get("/api/summary").json()["total"]
                print(
                    f"   disco lleno (tmpfs de 1 MiB): {accepted} tareas aceptadas, respuestas {dict(statuses)}, "
                    f"total en la cola {total}: «{message}»; registro: "
                    f"{'rollback fallido' if 'cannot rollback' in serve.log() else 'sin errores de rollback'}"
                )
                # space comes back while serve runs
                subprocess.run(["mount", "-o", "remount,size=8m", str(mount)], check=True)
                again = client.post("/api/tasks", json=batch)
                total = client.get("/api/summary").json()["total"]
                print(f"   con espacio de nuevo (sin reiniciar serve): {again.status_code}, total en la cola {total}")
        finally:
            serve.stop()
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fuzzing(tmp: Path, examples: int) -> None:
    from helpers.fuzz import fuzz_app, small_worker_app
    from serve_inprocess import serve_app
    from test_serve_fuzz import _cap_wait

    t0 = time.perf_counter()
    seen = fuzz_app(serve_app(tmp / "fuzz"), examples, adjust=_cap_wait)
    took = time.perf_counter() - t0
    print(f"5. fuzzing de serve ({examples} ejemplos/operación y modo): {sum(seen.values())} peticiones "
          f"{dict(seen)} en {took:.0f} s, sin fallos de comprobación")  # fmt: skip
    t0 = time.perf_counter()
    seen = fuzz_app(small_worker_app(tmp), examples)
    print(f"   fuzzing del worker: {sum(seen.values())} peticiones {dict(seen)} en {time.perf_counter() - t0:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stalled", type=int, default=200)
    parser.add_argument("--request-timeout", type=float, default=5.0)
    parser.add_argument("--fuzz", type=int, default=150, help="ejemplos por operación y modo (0: sin fuzzing)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        (tmp / "fuzz").mkdir()
        config = write_config(tmp / "workers.json", [("nadie", "127.0.0.61", free_port_on("127.0.0.61"))])
        serve = Serve(
            config,
            tmp / "q.db",
            workdir=tmp,
            extra=("--request-timeout", str(args.request_timeout), "--max-connections", str(args.stalled + 100)),
        ).start()
        try:
            requests = bad_requests()
            distinct = len({(m, p, b) for m, p, b in requests})
            codes = send_all(serve, requests)
            statuses = Counter(codes)
            accepted = [r for r, code in zip(requests, codes, strict=True) if code < 300]
            if accepted:
                print(f"   (aceptadas como válidas: {[(m, p, b[:80] if b else b) for m, p, b in accepted]})")
            fives = sum(n for code, n in statuses.items() if code >= 500)
            shown = dict(sorted(statuses.items()))
            print(f"1. {distinct} peticiones malas distintas: {fives} respuestas 5xx; estados {shown}")
            before = rss_mb(serve.pid)
            with serve.http(timeout=120.0) as client:
                t0 = time.perf_counter()
                answer = client.post(
                    "/api/sweeps", json={"engines": "python", "particles": "1-99999", "steps": "1-99999"}
                )
                took = (time.perf_counter() - t0) * 1000
            after = rss_mb(serve.pid)
            print(
                f"2. barrido de 10^10 tareas: {answer.status_code} en {took:.0f} ms «{answer.json()['error']}»; "
                f"memoria de serve {before:.1f} MB antes, {after:.1f} MB después ({after - before:+.1f} MB)"
            )
            big_body(serve)
            stalled(serve, args.stalled, args.request_timeout)
        finally:
            serve.stop()
        cases(tmp, config)
        if args.fuzz:
            fuzzing(tmp, args.fuzz)


if __name__ == "__main__":
    main()
