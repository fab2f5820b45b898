"""Slow or stalled clients are cut off: real sockets on loopback that send nothing, half a
header or half a body are closed within --request-timeout (408 + JSON), /ping keeps
answering meanwhile, and beyond --max-connections the answer is a JSON 503."""

from __future__ import annotations

import json
import selectors
import socket
import statistics
import time

import httpx
import pytest
from helpers.processes import wait_for
from helpers.workers import RunningWorker

BOUND_S = 1.0
#: what the loaded CI machine may add to the bound before a socket is seen closed
SLACK_S = 2.5

HALF_HEADER = b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Lento: "
HALF_BODY = (
    b"POST /execute HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: 200\r\n\r\n" + b'{"benchmark": "cython", "params": {'
)
FULL_PING = b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def _strict(text: str) -> object:
    def refuse(name: str) -> object:
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def _read_response(sock: socket.socket) -> bytes:
    """One complete small response on a blocking socket (headers + Content-Length body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before a response"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head


class Stalled:
    """A socket that stops mid-request; `closed_after` is set when the worker closes it."""

    def __init__(self, worker: RunningWorker, kind: str) -> None:
        self.kind = kind
        self.sock = socket.create_connection((worker.host, worker.port), timeout=10)
        self.opened = time.monotonic()
        if kind == "keep-alive":  # one full request answered, then half of the next one
            self.sock.sendall(FULL_PING)
            assert _read_response(self.sock).startswith(b"HTTP/1.1 200")
            self.opened = time.monotonic()
            self.sock.sendall(HALF_HEADER)
        elif kind == "half-header":
            self.sock.sendall(HALF_HEADER)
        elif kind == "half-body":
            self.sock.sendall(HALF_BODY)
        self.sock.setblocking(False)
        self.received = b""
        self.closed_after: float | None = None

    def read(self) -> None:
        try:
            chunk = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except ConnectionResetError:
            chunk = b""
        if chunk:
            self.received += chunk
        else:
            self.closed_after = time.monotonic() - self.opened


@pytest.fixture
def guarded(fresh_worker) -> RunningWorker:
    return fresh_worker("--capacity", "1", "--request-timeout", str(BOUND_S), "--max-connections", "500")


def test_stalled_connections_are_cut_within_the_bound_while_ping_answers(guarded: RunningWorker) -> None:
    kinds = ["nothing", "half-header", "half-body", "keep-alive"]
    stalled = [Stalled(guarded, kinds[i % len(kinds)]) for i in range(200)]
    selector = selectors.DefaultSelector()
    for s in stalled:
        selector.register(s.sock, selectors.EVENT_READ, s)
    pings: list[int] = []
    deadline = time.monotonic() + BOUND_S + SLACK_S + 5
    with httpx.Client(trust_env=False, timeout=5) as ping_client:
        while any(s.closed_after is None for s in stalled) and time.monotonic() < deadline:
            # /ping on fresh connections keeps answering while the others stall
            r = ping_client.get(guarded.url + "/ping", headers={"Connection": "close"})
            if any(s.closed_after is None for s in stalled):
                pings.append(r.status_code)
            for key, _ in selector.select(timeout=0.05):
                s = key.data
                s.read()
                if s.closed_after is not None:
                    selector.unregister(s.sock)
    for s in stalled:
        s.sock.close()
    open_ones = [s.kind for s in stalled if s.closed_after is None]
    assert not open_ones, f"still open after {BOUND_S + SLACK_S + 5} s: {open_ones}"
    times = sorted(s.closed_after for s in stalled if s.closed_after is not None)
    print(
        f"\n{len(stalled)} conexiones detenidas, límite {BOUND_S:g} s: cerradas entre {times[0]:.3f} s y "
        f"{times[-1]:.3f} s (mediana {statistics.median(times):.3f} s); /ping respondió {len(pings)} veces "
        f"mientras tanto, códigos {sorted(set(pings))}"
    )
    assert pings and set(pings) == {200}, pings
    assert len(pings) >= 3  # answered repeatedly during the stall, not once by luck
    for s in stalled:
        assert s.closed_after is not None
        # not before the bound (an honest slow client gets its full time), and soon after it
        assert BOUND_S - 0.05 <= s.closed_after <= BOUND_S + SLACK_S, (s.kind, s.closed_after)
        # nothing was answered yet on these requests: each gets a 408 with a JSON error
        head, _, body = s.received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), (s.kind, s.received[:200])
        error = _strict(body.decode())
        assert error["status"] == "timeout" and f"{BOUND_S:g} s" in error["error"], error
    # the worker is unharmed: the half-sent /execute bodies ran nothing, and it serves on
    with guarded.client() as c:
        status = c.get("/status").json()
        assert status["completed"] + status["failed"] + status["running"] == 0
        assert status["request_timeout"] == BOUND_S
        assert c.post("/execute", json={"benchmark": "cython", "params": {"NUM_PARTICULAS": 5}}).status_code == 200


def test_a_slow_but_complete_request_within_the_bound_is_served(guarded: RunningWorker) -> None:
    """The bound is on the whole request, not on each byte: a body that arrives in pieces
    within the bound is answered normally."""
    body = b'{"benchmark": "cython", "params": {"NUM_PARTICULAS": 5, "NUM_PASOS": 2}}'
    head = (
        b"POST /execute HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    with socket.create_connection((guarded.host, guarded.port), timeout=10) as sock:
        sock.sendall(head + body[:10])
        time.sleep(0.2)  # a slow client's pause (not synchronisation): well inside the bound
        sock.sendall(body[10:])
        assert _read_response(sock).startswith(b"HTTP/1.1 200")


def test_over_the_connection_limit_is_a_json_503(fresh_worker) -> None:
    w = fresh_worker("--capacity", "1", "--request-timeout", "60", "--max-connections", "20")
    held = [Stalled(w, "half-header") for _ in range(25)]
    try:
        r = httpx.get(w.url + "/ping", trust_env=False, timeout=10)
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("application/json") and r.headers["retry-after"] == "1"
        body = _strict(r.text)
        assert body["status"] == "unavailable" and "máximo 20" in body["error"]
    finally:
        for s in held:
            s.sock.close()
    # the held connections gone, the worker answers again
    wait_for(lambda: httpx.get(w.url + "/ping", trust_env=False, timeout=5).status_code == 200, 10, "ping 200")
    assert "Conexiones: como máximo 20 abiertas" in w.log()
