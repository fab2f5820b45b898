"""A real ``partisim serve`` process against slow clients, bad configuration files, short
tokens and wrong tokens; and the worker's limit on wrong tokens.

- stalled sockets (nothing, half a header, half a body) are cut with a JSON 408 within
  ``--request-timeout`` while /api/health answers, and the dashboard's event stream
  (long-lived by design) keeps streaming past that timeout;
- beyond ``--max-connections`` the answer is a JSON 503;
- a config_workers.json that is not UTF-8, or nested 50 000 deep, ends serve, ping and
  worker with exit code 2 and a clear message (no traceback);
- a token shorter than 16 characters ends serve and worker with exit code 2, and
  ``partisim token`` prints a good one.

The refusals of bad configuration files and short tokens come before anything listens:
those commands run in this process (`queue_support.run_here`), as does the large `submit`;
the worker's limit on wrong tokens is its app's, checked in this process too.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import httpx
import pytest
from helpers.config import write_config
from helpers.inprocess import worker_app
from helpers.processes import free_port_on
from helpers.serve import Serve
from queue_support import run_cli, run_here
from stalled import STALLS, StalledSockets

from partisim.listen.guards import AUTH_BURST

HOST = "127.0.0.1"


def _config(tmp: Path) -> Path:
    return write_config(tmp / "config_workers.json", [("nadie", "127.0.0.61", free_port_on("127.0.0.61"))])


@pytest.fixture
def quick_serve(tmp_path: Path):
    serve = Serve(
        _config(tmp_path),
        tmp_path / "q.db",
        workdir=tmp_path,
        extra=("--request-timeout", "1", "--max-connections", "40"),
    ).start()
    try:
        yield serve
    finally:
        serve.stop()


def test_stalled_sockets_are_cut_while_health_answers_and_events_keep_streaming(quick_serve: Serve) -> None:
    events = httpx.Client(base_url=quick_serve.url, timeout=10.0, trust_env=False)
    stream_cm = events.stream("GET", "/api/events")
    stream = stream_cm.__enter__()
    lines = stream.iter_lines()
    assert next(lines).startswith("retry:")
    kinds = [kind for kind in STALLS for _ in range(6)]
    stalled = StalledSockets(quick_serve.port, [STALLS[kind] for kind in kinds])
    health = []
    deadline = time.monotonic() + 20
    while stalled.open and time.monotonic() < deadline:
        with httpx.Client(base_url=quick_serve.url, timeout=5.0, trust_env=False) as client:
            health.append(client.get("/api/health").status_code)
        stalled.poll(0.1)
    cut_after = time.monotonic() - stalled.opened
    assert not stalled.open, f"{len(stalled.open)} sockets still open after {cut_after:.1f} s"
    assert health and set(health) == {200}
    answered = [stalled.answer(sock) for kind, sock in zip(kinds, stalled.socks, strict=True) if kind != "nada"]
    assert all(r.startswith(b"HTTP/1.1 408") and b'"status": "timeout"' in r for r in answered), answered[:2]
    stalled.close()
    # the event stream outlived the request timeout: a new task brings an update on it
    with quick_serve.http() as client:
        assert client.post("/api/tasks", json={"benchmark": "python"}).status_code == 201
    update = next((line for line in lines if line.startswith("event: update")), None)
    assert update is not None
    stream_cm.__exit__(None, None, None)
    events.close()


def test_beyond_max_connections_the_answer_is_a_json_503(tmp_path: Path) -> None:
    serve = Serve(
        _config(tmp_path),
        tmp_path / "q.db",
        workdir=tmp_path,
        extra=("--request-timeout", "30", "--max-connections", "5"),
    ).start()
    held = []
    try:
        for _ in range(5):
            sock = socket.create_connection((HOST, serve.port), timeout=10)
            sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")  # headers never end
            held.append(sock)
        answer = httpx.get(f"{serve.url}/api/health", timeout=10.0, headers={"Connection": "close"})
        assert answer.status_code == 503
        assert "demasiadas conexiones" in answer.json()["error"] and answer.headers["retry-after"] == "1"
    finally:
        for sock in held:
            sock.close()
        serve.stop()


BAD_CONFIGS = {
    "no UTF-8": (b'{"workers": [{"id": "w\xff\xfe", "ip": "127.0.0.61", "port": 9}]}', "UTF-8"),
    "50 000 niveles": (b'{"workers": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", "anidado"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_files_are_exit_2_with_a_clear_message(tmp_path: Path, case: str) -> None:
    content, needle = BAD_CONFIGS[case]
    config = tmp_path / "config_workers.json"
    config.write_bytes(content)
    runs = {
        "serve": run_here(
            "serve", "--config", str(config), "--db", str(tmp_path / "q.db"), "--port", "0", cwd=tmp_path
        ),
        "ping": run_here("ping", "--config", str(config), cwd=tmp_path),
        "worker": run_here("worker", "--config", str(config), "--host", HOST, "--port", "0", cwd=tmp_path),
    }
    for name, out in runs.items():
        text = out.stdout + out.stderr
        assert out.returncode == 2, (name, text[-2000:])
        assert needle in text and "config_workers.json" in text and "Traceback" not in text, (name, text[-2000:])


def test_short_tokens_are_refused_and_partisim_token_prints_a_good_one(tmp_path: Path) -> None:
    made = run_cli("token", cwd=tmp_path)
    token = made.stdout.strip()
    assert made.returncode == 0 and len(token) >= 32 and token.isprintable() and " " not in token
    assert run_here("token", cwd=tmp_path).stdout.strip() != token
    config = _config(tmp_path)
    short = {"PARTISIM_TOKEN": "x"}
    serve = run_here(
        "serve", "--config", str(config), "--db", str(tmp_path / "q.db"), "--port", "0", cwd=tmp_path, env=short
    )
    worker = run_here("worker", "--host", HOST, "--port", "0", cwd=tmp_path, env=short)
    for out in (serve, worker):
        assert out.returncode == 2, out.stderr[-2000:]
        assert "al menos 16" in out.stderr and "partisim token" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "q.db").exists()


def test_the_worker_limits_wrong_tokens_per_address() -> None:
    token = "token-del-worker-de-prueba-42"
    # the limit is the app's (its middleware keys on the ASGI client address): no worker process needed
    with worker_app({"capacity": "1"}, token=token) as client:
        bad = {"Authorization": "Bearer mal"}
        codes = [client.get("/status", headers=bad).status_code for _ in range(AUTH_BURST + 4)]
        assert codes[:AUTH_BURST] == [401] * AUTH_BURST and set(codes[AUTH_BURST:]) == {429}, codes
        blocked = client.get("/status", headers={"Authorization": f"Bearer {token}"})
        assert blocked.status_code == 429 and "intentos" in blocked.json()["error"]
        assert client.get("/ping").status_code == 200  # open paths stay open


def test_a_large_submission_goes_in_requests_under_the_body_limit(tmp_path: Path) -> None:
    serve = Serve(_config(tmp_path), tmp_path / "q.db", workdir=tmp_path, extra=("--max-body-mb", "4")).start()
    try:
        tasks = tmp_path / "tareas.json"
        # 30 000 tasks with every parameter: about 10 MB as one body, refused by a 4 MiB limit
        tasks.write_text(json.dumps([{"benchmark": "python", "params": {"NUM_PASOS": 2}, "repeat": 10_000}] * 3))
        out = run_here("submit", str(tasks), "--server", serve.url, "--batch", "grande", cwd=tmp_path)
        assert out.returncode == 0, out.stdout + out.stderr
        summary = httpx.get(f"{serve.url}/api/summary", params={"batch": "grande"}, trust_env=False).json()
        assert summary["total"] == 30_000
        padded = b" " * (5 * 2**20) + b'{"benchmark": "python"}'  # valid JSON, 5 MiB
        refused = httpx.post(f"{serve.url}/api/tasks", content=padded, trust_env=False, timeout=60)
        assert refused.status_code == 413 and "límite" in refused.json()["error"]
    finally:
        serve.stop()
