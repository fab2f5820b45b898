"""The communication suite (``python test_communication.py`` = ``partisim check``).

Per configured worker, in order: ping (< 5 s), status (Docker and image reported),
a Python benchmark, a Cython benchmark (same checksum as Python), an invalid
request that must be refused with 422, and a short task timeout that must be
honoured (the worker answers 504 in time, stays up and frees the slot). Workers
are checked in parallel; a worker passes when all its checks pass.

A worker that is not partisim (its /status lacks ``"software": "partisim"``, e.g. the
users' original ETAPA-4 worker) is checked too: its benchmarks pass when it answers
with success, shown as "no verificable" (it sends no engine nor checksum), and the
checks only a partisim worker can pass (422 on bad input, the timeout) are reported as
"no soportado por este worker", not as failures.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from partisim.errors import CheckFailed, PartisimError, TaskRejected, TaskTimedOut
from partisim.fleet import Config, WorkerEntry
from partisim.fleet.client import WorkerClient
from partisim.fleet.health import describe_error, worker_tokens
from partisim.orchestrator.dispatch import DEFAULT_PARAMS, run_parallel
from partisim.protocol import ExecuteRequest, ExecuteResult
from partisim.sim.numbers import count, decimal, duration

__all__ = ["CheckResult", "WorkerChecks", "run_checks", "PING_LIMIT_S", "CHECK_NAMES"]

log = logging.getLogger(__name__)

PING_LIMIT_S = 5.0
FULL_PARAMS = DEFAULT_PARAMS
QUICK_PARAMS = {"NUM_PARTICULAS": 30, "NUM_PASOS": 50, "SEMILLA": 42}
# Far more work than the short timeout allows for the pure-Python engine.
SLOW_PARAMS = {"NUM_PARTICULAS": 2000, "NUM_PASOS": 1_000_000, "SEMILLA": 7}
SHORT_TIMEOUT_S = 1.0
TIMEOUT_GRACE_S = 4.0
_CHECKSUM = re.compile(r"^[0-9a-f]{64}$")

UNSUPPORTED = "no soportado por este worker (no es un worker partisim)"

CHECK_NAMES = {
    "ping": "Ping (< 5 s)",
    "status": "Estado (Docker e imagen)",
    "python": "Benchmark Python",
    "cython": "Benchmark Cython",
    "invalid": "Petición inválida rechazada",
    "timeout": "Tiempo límite respetado",
}


SHORT_NAMES = {
    "ping": "Ping",
    "status": "Estado",
    "python": "Python",
    "cython": "Cython",
    "invalid": "Inválida",
    "timeout": "Timeout",
}


@dataclass
class CheckResult:
    key: str
    ok: bool
    detail: str
    duration: float = 0.0
    skipped: bool = False
    #: only a partisim worker could pass it: not a failure of this one
    unsupported: bool = False

    @property
    def name(self) -> str:
        return CHECK_NAMES.get(self.key, self.key)

    @property
    def short_name(self) -> str:
        return SHORT_NAMES.get(self.key, self.key)


@dataclass
class WorkerChecks:
    id: str
    url: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def reachable(self) -> bool:
        return bool(self.results) and self.results[0].key == "ping" and self.results[0].ok

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.ok for r in self.results)


def run_checks(
    config: Config,
    *,
    quick: bool = False,
    token: str | None = None,
    on_result: Callable[[WorkerChecks, CheckResult], None] | None = None,
) -> list[WorkerChecks]:
    """Run the suite on every configured worker (in parallel); reports in config order."""
    tokens = worker_tokens(config, token)
    ca_file = config.ca_file()
    timeout = config.orchestrator.timeout
    lock = threading.Lock()

    def report(wc: WorkerChecks, result: CheckResult) -> None:
        wc.results.append(result)
        if on_result is not None:
            with lock:
                on_result(wc, result)

    def one(entry: WorkerEntry) -> WorkerChecks:
        wc = WorkerChecks(entry.id, entry.url)
        _Suite(wc, timeout=timeout, token=tokens[entry.id], ca_file=ca_file, quick=quick, report=report).run()
        return wc

    workers = list(config.workers)
    return run_parallel(one, workers, limit=max(1, len(workers)))


class _Suite:
    def __init__(
        self,
        wc: WorkerChecks,
        *,
        timeout: float,
        token: str | None,
        quick: bool,
        report: Callable[[WorkerChecks, CheckResult], None],
        ca_file: str | None = None,
    ) -> None:
        self.wc = wc
        self.timeout = timeout
        self.token = token
        self.ca_file = ca_file
        self.quick = quick
        self.report = report
        self.python_result: ExecuteResult | None = None
        #: its /status says it is not partisim
        self.foreign = False

    def client(self, timeout: float | None = None) -> WorkerClient:
        return WorkerClient(self.wc.url, timeout=timeout or self.timeout, token=self.token, ca_file=self.ca_file)

    def run(self) -> None:
        steps: list[tuple[str, Callable[[], str]]] = [
            ("ping", self.ping),
            ("status", self.status),
            ("python", lambda: self.benchmark("python")),
            ("cython", lambda: self.benchmark("cython")),
            ("invalid", self.invalid),
        ]
        if not self.quick:
            steps.append(("timeout", self.short_timeout))
        partisim_only = {"invalid", "timeout"}
        for index, (key, check) in enumerate(steps):
            if self.foreign and key in partisim_only:
                self.report(self.wc, CheckResult(key, True, UNSUPPORTED, unsupported=True))
                continue
            start = time.perf_counter()
            try:
                detail = check()
                ok = True
            except CheckFailed as exc:
                detail, ok = str(exc), False
            except PartisimError as exc:
                detail, ok = describe_error(exc), False
            except Exception as exc:  # a surprise is a failed check, not a crash
                log.debug("check %s falló", key, exc_info=True)
                detail, ok = describe_error(exc), False
            self.report(self.wc, CheckResult(key, ok, detail, time.perf_counter() - start))
            if key == "ping" and not ok:
                for skipped, _ in steps[index + 1 :]:
                    self.report(
                        self.wc,
                        CheckResult(skipped, False, "omitida: el worker no responde", skipped=True),
                    )
                return

    # -- the checks: each returns a detail line or raises CheckFailed --------

    def ping(self) -> str:
        with self.client(timeout=min(self.timeout, PING_LIMIT_S)) as c:
            start = time.perf_counter()
            answer = c.ping()
            elapsed = time.perf_counter() - start
        if elapsed >= PING_LIMIT_S:
            raise CheckFailed(f"respondió en {duration(elapsed)} (límite {PING_LIMIT_S:.0f} s)")
        return f"{duration(elapsed)}, se identifica como {answer.worker_id}"

    def status(self) -> str:
        with self.client() as c:
            try:
                s = c.status()
            except TaskRejected as exc:
                if exc.status_code == 401:
                    raise
                self.foreign = True  # no /status of ours at all
                raise CheckFailed(f"/status no responde como un worker partisim ({exc})") from None
        if not s.is_partisim:
            self.foreign = True
        missing = [k for k in ("docker_available", "image_available") if k not in s.model_fields_set]
        if missing:
            raise CheckFailed(f"/status no informa {', '.join(missing)}")
        docker = "sí" if s.docker_available else "no"
        image = "sí" if s.image_available else "no"
        if self.foreign:
            return f"worker que no es partisim (Docker: {docker}, imagen: {image}); resultados no verificables"
        return (
            f"Docker: {docker}, imagen {s.docker_image or '?'}: {image}, "
            f"runner: {s.runner or '?'}, capacidad: {s.capacity}"
        )

    def benchmark(self, engine: str) -> str:
        benchmark = "benchmark.py" if engine == "python" else "benchmark_cython.py"
        params = QUICK_PARAMS if self.quick else FULL_PARAMS
        if self.foreign:
            with self.client() as c:
                answer = c.execute_foreign(ExecuteRequest(benchmark=benchmark, params=params))
            took = duration(answer.execution_time) if answer.execution_time is not None else "tiempo no informado"
            return f"{took}; no verificable (el worker no informa motor ni checksum)"
        with self.client() as c:
            r = c.execute(ExecuteRequest(benchmark=benchmark, params=params))
        if r.engine != engine:
            raise CheckFailed(f"se pidió {engine} y el worker usó {r.engine!r}")
        if not _CHECKSUM.match(r.checksum):
            raise CheckFailed("la respuesta no trae un checksum válido")
        detail = f"{duration(r.simulation_time)}, {count(r.particle_collisions, 'colisión', 'colisiones')}"
        if engine == "python":
            self.python_result = r
        elif self.python_result is not None:
            if self.python_result.checksum != r.checksum:
                raise CheckFailed("el checksum de Cython difiere del de Python")
            detail += ", checksum igual al de Python"
        return detail

    def invalid(self) -> str:
        refused = []
        bad_requests = [
            ("../../etc/passwd", {"NUM_PARTICULAS": 10}),
            ("benchmark.py", {"NUM_PARTICULAS": -5}),
        ]
        with self.client() as c:
            for benchmark, params in bad_requests:
                try:
                    c.execute(ExecuteRequest(benchmark=benchmark, params=params))
                except TaskRejected as exc:
                    code = exc.status_code
                    if code != 422:
                        raise CheckFailed(f"rechazada con código {code}, se esperaba 422") from exc
                    refused.append(benchmark)
                    continue
                raise CheckFailed(f"el worker aceptó una petición inválida ({benchmark}, {params})")
        return f"{len(refused)} peticiones inválidas rechazadas con 422"

    def short_timeout(self) -> str:
        start = time.perf_counter()
        try:
            with self.client() as c:
                c.execute(ExecuteRequest(benchmark="benchmark.py", params=SLOW_PARAMS, timeout=SHORT_TIMEOUT_S))
        except TaskTimedOut:
            elapsed = time.perf_counter() - start
        else:
            raise CheckFailed(f"la tarea terminó pese al límite de {SHORT_TIMEOUT_S:.0f} s")
        if elapsed > SHORT_TIMEOUT_S + TIMEOUT_GRACE_S:
            raise CheckFailed(
                f"cortada tras {decimal(elapsed, 1)} s"
                f" (límite {SHORT_TIMEOUT_S:.0f} s + {TIMEOUT_GRACE_S:.0f} s de margen)"
            )
        freed = self._wait_idle(deadline_s=10.0)
        if not freed:
            raise CheckFailed("el worker sigue ocupado tras el límite: no detuvo la tarea")
        return f"cortada a los {decimal(elapsed, 1)} s; el worker sigue respondiendo y quedó libre"

    def _wait_idle(self, deadline_s: float) -> bool:
        """Poll /status until no task is running (the killed one freed its slot)."""
        deadline = time.monotonic() + deadline_s
        with self.client() as c:
            while True:
                if not c.status().running:
                    return True
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.1)  # poll interval; the deadline above bounds the wait
