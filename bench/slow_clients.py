"""Stalled clients against one worker: when is each connection cut, and does /ping answer?

One run, printed as a table (no timed assertions anywhere). A worker starts with its
default --request-timeout (10 s) unless told otherwise; N sockets per kind then stop
mid-request on loopback:

- ``nada``: connect and send nothing;
- ``media cabecera``: half of a request's headers;
- ``medio cuerpo``: full headers of a POST /execute, half of its body;
- ``keep-alive``: one complete request answered, then half of the next one.

Meanwhile /ping is asked on fresh connections, and its latency recorded.

Run: ``.venv/bin/python bench/slow_clients.py [--per-kind 50] [--request-timeout 10]``.
"""

# ruff: noqa: E402  (the imports must follow the sys.path line below)
from __future__ import annotations

import sys
from pathlib import Path

# The process starter is the test suite's (tests/helpers), as in bench/worker.py.
_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE.parent / "tests"))

import argparse
import selectors
import socket
import statistics
import time

import httpx
from helpers.workers import start_worker

KINDS = {
    "nada": b"",
    "media cabecera": b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Lento: ",
    "medio cuerpo": (
        b"POST /execute HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b'Content-Length: 200\r\n\r\n{"benchmark": "cython", "params": {'
    ),
    "keep-alive": b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Lento: ",
}
PING = b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def _open(host: str, port: int, kind: str) -> tuple[socket.socket, float]:
    sock = socket.create_connection((host, port), timeout=10)
    if kind == "keep-alive":  # one whole request and its whole answer first
        sock.sendall(PING)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        head, _, body = answer.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
        while len(body) < length:
            body += sock.recv(65536)
    opened = time.monotonic()
    sock.sendall(KINDS[kind])
    sock.setblocking(False)
    return sock, opened


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=50, help="conexiones detenidas de cada tipo")
    parser.add_argument("--request-timeout", type=float, default=10.0, help="--request-timeout del worker")
    args = parser.parse_args()
    worker = start_worker("127.0.0.1", None, "--capacity", "1", "--request-timeout", str(args.request_timeout))
    try:
        selector = selectors.DefaultSelector()
        closed: dict[str, list[float]] = {kind: [] for kind in KINDS}
        answered: dict[str, int] = {kind: 0 for kind in KINDS}
        for kind in KINDS:
            for _ in range(args.per_kind):
                sock, opened = _open(worker.host, worker.port, kind)
                selector.register(sock, selectors.EVENT_READ, (kind, opened))
        pending = len(KINDS) * args.per_kind
        pings: list[float] = []
        ping_codes: set[int] = set()
        deadline = time.monotonic() + args.request_timeout + 30
        with httpx.Client(trust_env=False, timeout=10) as client:
            while pending and time.monotonic() < deadline:
                start = time.perf_counter()
                r = client.get(worker.url + "/ping", headers={"Connection": "close"})
                pings.append(time.perf_counter() - start)
                ping_codes.add(r.status_code)
                for key, _ in selector.select(timeout=0.1):
                    kind, opened = key.data
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    try:
                        data = sock.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except ConnectionResetError:
                        data = b""
                    if data.startswith(b"HTTP/1.1 408"):
                        answered[kind] += 1
                    if not data or b"connection: close" in data:
                        closed[kind].append(time.monotonic() - opened)
                        selector.unregister(sock)
                        sock.close()
                        pending -= 1
        print(
            f"Worker con --request-timeout {args.request_timeout:g} s; {args.per_kind} conexiones detenidas "
            "de cada tipo\n"
        )
        print(f"{'tipo':>16} {'cerradas':>9} {'con 408':>8} {'mín (s)':>9} {'mediana (s)':>12} {'máx (s)':>9}")
        for kind, times in closed.items():
            if times:
                print(
                    f"{kind:>16} {len(times):>9} {answered[kind]:>8} {min(times):>9.3f} "
                    f"{statistics.median(times):>12.3f} {max(times):>9.3f}"
                )
            else:
                print(f"{kind:>16} {0:>9} {answered[kind]:>8}")
        print(
            f"\n/ping mientras tanto: {len(pings)} respuestas, códigos {sorted(ping_codes)}, latencia mediana "
            f"{statistics.median(pings) * 1000:.1f} ms, máxima {max(pings) * 1000:.1f} ms"
        )
        if pending:
            print(f"¡{pending} conexiones seguían abiertas al final!")
        return 1 if pending else 0
    finally:
        worker.stop()


if __name__ == "__main__":
    sys.exit(main())
