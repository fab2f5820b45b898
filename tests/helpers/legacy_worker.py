"""A stand-in for a worker of the users' original (ETAPA-4) design, written for the tests.

It knows only the scripts' names: ``benchmark_cython.py`` runs the Cython engine and
*anything else* silently runs ``benchmark.py`` (Python), as a worker of that design does.
Its answers carry the fields of that design: no ``engine``, no ``checksum``, and
collision counts that come back null (its pattern over the script's text output no
longer matched); its /status says ``"status": "online"`` and nothing about partisim, and
its task counters are in /ping (``successful_tasks``, ``failed_tasks``, ``total_tasks``).
It reads only NUM_PARTICULAS, NUM_PASOS (500 when absent) and SEMILLA and ignores every
other parameter. It computes with partisim's real engines. ``GET /legacy/runs`` tells the
test what it was asked, which parameters it was sent and what it ran.
Run: ``python legacy_worker.py --host H --port P --worker-id ID`` (``--port 0``: a free
port, printed as ``LISTENING <port>``).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from partisim.sim import parse_params
from partisim.sim.run import simulate

SCRIPTS = {"benchmark.py": "python", "benchmark_cython.py": "cython"}
#: what the original worker read; anything else in "params" is ignored
READ = ("NUM_PARTICULAS", "NUM_PASOS", "SEMILLA")
#: the original worker's own default of steps (partisim's is 1000)
DEFAULT_STEPS = 500


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class LegacyWorker(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], worker_id: str) -> None:
        super().__init__(address, Handler)
        self.worker_id = worker_id
        self.runs: list[dict[str, Any]] = []
        self.successful = 0
        self.failed = 0
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server: LegacyWorker

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        wid = self.server.worker_id
        if self.path == "/ping":
            with self.server.lock:
                ok, bad = self.server.successful, self.server.failed
            self._send(
                200,
                {
                    "status": "active",
                    "worker_id": wid,
                    "timestamp": _now(),
                    "message": f"Worker {wid} activo",
                    "successful_tasks": ok,
                    "failed_tasks": bad,
                    "total_tasks": ok + bad,
                },
            )
        elif self.path == "/status":
            self._send(
                200,
                {
                    "worker_id": wid,
                    "status": "online",
                    "docker_available": False,
                    "image_available": False,
                    "timestamp": _now(),
                },
            )
        elif self.path == "/health":
            self._send(200, {"status": "healthy", "worker_id": wid, "checks": {}, "timestamp": _now()})
        elif self.path == "/legacy/runs":
            with self.server.lock:
                self._send(200, list(self.server.runs))
        else:
            self._send(404, {"status": "error", "error": "Not Found"})

    def do_POST(self) -> None:
        if self.path != "/execute":
            self._send(404, {"status": "error", "error": "Not Found"})
            return
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            asked = body.get("benchmark", "benchmark.py")
            script = asked if asked in SCRIPTS else "benchmark.py"  # the original design's silent fallback
            sent = body.get("params") or {}
            params = parse_params({"NUM_PASOS": DEFAULT_STEPS, **{k: v for k, v in sent.items() if k in READ}})
        except Exception as exc:  # the original answered 500 with its error text
            with self.server.lock:
                self.server.failed += 1
            self._send(500, {"status": "error", "error": str(exc)})
            return
        start = time.perf_counter()
        result = simulate(params, SCRIPTS[script])
        took = time.perf_counter() - start
        with self.server.lock:
            self.server.runs.append({"asked": asked, "ran": script, "engine": result.engine, "sent": sorted(sent)})
            self.server.successful += 1
        output = (
            f"Simulación completada: {params.particles} partículas, {params.steps} pasos\n"
            f"Tiempo de simulación: {result.simulation_time:.4f} segundos\n"
            f"Colisiones: {result.particle_collisions + result.wall_collisions}\n"
        )
        self._send(
            200,
            {
                "status": "success",
                "worker_id": self.server.worker_id,
                "benchmark": script,
                "execution_time": round(took, 4),
                "particle_collisions": None,
                "wall_collisions": None,
                "output": output,
                "timestamp": _now(),
            },
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--worker-id", default="legacy-01")
    args = parser.parse_args()
    server = LegacyWorker((args.host, args.port), args.worker_id)
    print(f"LISTENING {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
