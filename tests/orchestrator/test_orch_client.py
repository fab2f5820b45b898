"""WorkerClient's mapping of unusual answers, against a real (tiny) HTTP server on loopback."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from partisim.errors import AuthError, TaskRejected, TaskTimedOut, WorkerFailed, WorkerUnavailable
from partisim.fleet.client import WorkerClient

# path -> (status, content type, body)
ANSWERS = {
    "/health": (503, "text/plain", b"Service Unavailable"),  # e.g. a proxy in front of a dead worker
    "/status": (401, "application/json", json.dumps({"status": "error", "error": "token inválido"}).encode()),
    "/history": (500, "text/html", b"<h1>boom</h1>"),
    "/tasks/x": (504, "application/json", json.dumps({"status": "timeout", "error": "tarde"}).encode()),
    "/tasks/y": (422, "application/json", json.dumps({"status": "error", "error": "NUM_PASOS mal"}).encode()),
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, kind, body = ANSWERS.get(self.path.split("?")[0], (404, "text/plain", b"no"))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def odd_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_unusual_answers_map_to_the_right_errors(odd_server: str) -> None:
    with WorkerClient(odd_server, timeout=5) as client:
        with pytest.raises(WorkerFailed):  # a 503 that is not our /health JSON is an outage
            client.health()
        with pytest.raises(AuthError, match="token inválido"):
            client.status()
        with pytest.raises(WorkerFailed, match="boom"):
            client.history()
        with pytest.raises(TaskTimedOut, match="tarde"):
            client.get_task("x")
        with pytest.raises(TaskRejected, match="NUM_PASOS") as info:
            client.get_task("y")
        assert info.value.status_code == 422


def test_nothing_listening_is_worker_unavailable() -> None:
    import socket

    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with WorkerClient(f"http://127.0.0.1:{port}", timeout=2) as client, pytest.raises(WorkerUnavailable):
        client.ping()
