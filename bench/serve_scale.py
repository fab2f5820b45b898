#!/usr/bin/env python3
"""``partisim serve`` at scale, measured in one run and printed as a table.

    .venv/bin/python bench/serve_scale.py [--sizes 1000,5000,20000] [--runs 1] [--big 100000]

1. Batches of tiny tasks (n = 10, 1 step, python) through serve and 2 local workers
   (capacity 2 each), so that the queue itself is the bottleneck: each size once with
   nobody watching and once with one dashboard event stream open, in turns, on the same
   growing database. Printed: tasks/s, serve CPU per task (utime + stime of the serve
   process from /proc/<pid>/stat), and the stream's messages.
2. A database of ``--big`` tasks made quickly (generated success rows, as a long
   history would leave them), served by a fresh serve with the same workers:
   ``/api/summary`` and ``/api/workers`` latency (p50/p99 from the client, HTTP
   included), a 1 000-task batch on top of that history with and without a stream, serve
   CPU with a stream open and nothing happening, and ``partisim results --format csv -o``
   of every row: time, peak memory of the command and of serve, rows in the file.

Targets (from the issue) are printed beside the figures; nothing here fails on them.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers.config import write_config  # noqa: E402
from helpers.processes import clean_env  # noqa: E402
from helpers.serve import Serve  # noqa: E402
from helpers.workers import RunningWorker, start_worker  # noqa: E402

from partisim.protocol import ExecuteResult  # noqa: E402
from partisim.serve.client import ServerClient  # noqa: E402
from partisim.serve.queue.store import TaskQueue  # noqa: E402

HOSTS = ("127.0.0.93", "127.0.0.155")
TINY = {"NUM_PARTICULAS": 10, "NUM_PASOS": 1, "SEMILLA": 1}
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))]


class Stream:
    """One dashboard event stream, read in a thread: counts messages and bytes."""

    def __init__(self, url: str) -> None:
        self.messages = 0
        self.heartbeats = 0
        self.bytes = 0
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=60), trust_env=False)
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(url,), daemon=True)
        self._thread.start()
        if not self._ready.wait(15):
            raise SystemExit("el flujo de eventos no respondió")

    def _read(self, url: str) -> None:
        try:
            with self._client.stream("GET", url + "/api/events") as response:
                for line in response.iter_lines():
                    self.bytes += len(line) + 1
                    if line in ("event: snapshot", "event: update"):
                        self.messages += 1
                        self._ready.set()
                    elif line == "event: heartbeat":
                        self.heartbeats += 1
        except (httpx.HTTPError, RuntimeError, OSError):
            pass  # closed by close()

    def close(self) -> None:
        """Drop the connection now (so the next run is really unobserved)."""
        self._client.close()
        self._thread.join(10)


@dataclass
class Batch:
    size: int
    observed: bool
    rate: float
    cpu_ms_per_task: float
    messages: int = 0
    bytes_per_message: float = 0.0


def run_batch(url: str, serve_pid: int, size: int, observed: bool) -> Batch:
    stream = Stream(url) if observed else None
    try:
        time.sleep(0.5)  # let the stream's first snapshot go out before measuring
        before_msgs, before_bytes = (stream.messages, stream.bytes) if stream else (0, 0)
        with ServerClient(url, timeout=120) as client:
            cpu0 = cpu_seconds(serve_pid)
            start = time.perf_counter()
            # one submission (repeat is at most 10 000 per task object)
            answer = client.submit(
                [
                    {"benchmark": "python", "params": TINY, "repeat": min(10_000, size - k)}
                    for k in range(0, size, 10_000)
                ]
            )
            state = client.summary(batch=answer.batch)
            while not state.done:
                state = client.summary(batch=answer.batch, wait=5.0)
            elapsed = time.perf_counter() - start
            cpu = cpu_seconds(serve_pid) - cpu0
        if state.success != size:
            raise SystemExit(f"lote incompleto: {state}")
        result = Batch(size, observed, size / elapsed, cpu / size * 1e3)
        if stream:
            result.messages = stream.messages - before_msgs
            result.bytes_per_message = (stream.bytes - before_bytes) / max(1, result.messages)
        return result
    finally:
        if stream:
            stream.close()


@contextmanager
def workers(tmp: Path) -> Iterator[list[RunningWorker]]:
    started = []
    try:
        for k, host in enumerate(HOSTS):
            started.append(
                start_worker(host, None, "--capacity", "2", "--worker-id", f"bench-{k}", cwd=tmp / f"worker-{k}")
            )
        yield started
    finally:
        for w in started:
            w.stop()


@contextmanager
def serving(tmp: Path, fleet: list[RunningWorker], db: Path) -> Iterator[Serve]:
    config = write_config(
        tmp / "config.json",
        [(f"bench-{k}", w.url) for k, w in enumerate(fleet)],
        timeout=10.0,
        max_concurrent_tasks=4,
        ping_interval=1.0,
    )
    serve = Serve(config, db, workdir=tmp)
    try:
        serve.start(timeout=120)
        serve.wait_workers(len(fleet))
        yield serve
    finally:
        serve.stop()


def make_history(db: Path, count: int) -> None:
    """``count`` finished tasks written straight into a new database (what a long history
    leaves), spread over the last few days."""
    TaskQueue(db).close()  # the schema
    result = ExecuteResult(
        task_id="t-0",
        worker_id="bench-0",
        benchmark="cython",
        engine="cython",
        params={"NUM_PARTICULAS": 100, "NUM_PASOS": 50, "SEMILLA": 1},
        particles=100,
        steps=50,
        seed=1,
        execution_time=0.0123,
        simulation_time=0.0101,
        particle_collisions=120,
        wall_collisions=80,
        checksum="0" * 64,
        kinetic_energy=1.5,
        particle_steps_per_s=495049.5,
        runner="process",
        timestamp="2026-12-01T00:00:00+00:00",
    ).model_dump_json()
    start = time.time() - 3 * 86400
    rows = []
    for k in range(count):
        t = start + k * (2 * 86400 / count)
        seed = k % 1000
        params = json.dumps({"NUM_PARTICULAS": 100 * (1 + k % 4), "NUM_PASOS": 50, "SEMILLA": seed}, sort_keys=True)
        rows.append(
            (
                f"t-{secrets.token_hex(8)}",
                f"hist-{k // 10000:02d}",
                "success",
                "cython",
                params,
                f"bench-{k % 2}",
                1,
                4,
                t,
                t + 0.001,
                t + 0.02,
                result.replace('"SEMILLA":1', f'"SEMILLA":{seed}').replace('"seed":1', f'"seed":{seed}'),
            )
        )
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO tasks (id, batch, status, benchmark, params, worker, attempts, max_attempts,"
            " created_at, started_at, finished_at, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def latency_ms(url: str, path: str, count: int) -> tuple[float, float]:
    times = []
    with httpx.Client(base_url=url, timeout=30, trust_env=False) as client:
        client.get(path).raise_for_status()
        for _ in range(count):
            start = time.perf_counter()
            client.get(path).raise_for_status()
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), percentile(times, 99)


def peak_mb(pid: int) -> float:
    """A process's peak resident memory so far (VmHWM)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class Run:
    seconds: float
    peak_mb: float  # the command's peak memory
    cpu_s: float  # CPU time of the command plus serve's over the run
    serve_growth_mb: float
    code: int


def run_measured(argv: list[str], serve_pid: int) -> Run:
    """Run a command, reading its peak memory (VmHWM) until it exits and serve's memory."""
    serve_before, serve_peak, cli_peak = rss_mb(serve_pid), 0.0, 0.0
    serve_cpu = cpu_seconds(serve_pid)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=clean_env(COLUMNS="120"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        cli_peak = max(cli_peak, peak_mb(proc.pid))
        serve_peak = max(serve_peak, rss_mb(serve_pid))
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    cpu = usage.ru_utime + usage.ru_stime + cpu_seconds(serve_pid) - serve_cpu
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(elapsed, cli_peak, cpu, max(0.0, serve_peak - serve_before), proc.returncode)


def export(url: str, serve_pid: int, out: Path, fmt: str) -> tuple[Run, float]:
    """``partisim results --format fmt -o out``, and the peak memory of the same command
    on an empty selection (MB)."""
    cli = [sys.executable, "-m", "partisim", "results", "--format", fmt, "--server", url]
    idle = run_measured([*cli, "--batch", "nada"], serve_pid)
    run = run_measured([*cli, "-o", str(out)], serve_pid)
    if run.code != 0:
        raise SystemExit(f"partisim results --format {fmt} falló (código {run.code})")
    return run, idle.peak_mb


def idle_cpu_percent(url: str, serve_pid: int, seconds: float) -> tuple[float, int]:
    """serve's CPU (% of a core) with one stream open and nothing happening; messages sent."""
    stream = Stream(url)
    try:
        time.sleep(1.0)
        messages = stream.messages
        cpu0, t0 = cpu_seconds(serve_pid), time.perf_counter()
        time.sleep(seconds)
        return 100 * (cpu_seconds(serve_pid) - cpu0) / (time.perf_counter() - t0), stream.messages - messages
    finally:
        stream.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="1000,5000,20000", help="tamaños de lote, separados por comas (vacío: solo la base grande)"
    )
    parser.add_argument("--runs", type=int, default=1, help="turnos sin/con flujo por tamaño (se toma el mejor)")
    parser.add_argument("--big", type=int, default=100_000, help="tareas de la base grande")
    parser.add_argument("--idle", type=float, default=10.0, help="segundos de reposo medidos con un flujo abierto")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    def out(text: str = "") -> None:
        print(text, flush=True)

    with tempfile.TemporaryDirectory(prefix="partisim-scale-") as tmpdir:
        tmp = Path(tmpdir)
        with workers(tmp) as fleet:
            # 1. growing history, unobserved and observed in turns
            best: dict[tuple[int, bool], Batch] = {}
            with serving(tmp, fleet, tmp / "grow.db") if sizes else nullcontext() as serve:
                for run in range(args.runs if sizes else 0):
                    run_batch(serve.url, serve.proc.pid, 200, False)  # warm up
                    for size in sizes:
                        # which goes first alternates from run to run
                        for observed in (False, True) if run % 2 == 0 else (True, False):
                            b = run_batch(serve.url, serve.proc.pid, size, observed)
                            key = (size, observed)
                            if key not in best or b.rate > best[key].rate:
                                best[key] = b
            # 2. a big history
            big_db = tmp / "big.db"
            t0 = time.perf_counter()
            make_history(big_db, args.big)
            made_in = time.perf_counter() - t0
            with serving(tmp, fleet, big_db) as serve:
                pid = serve.proc.pid
                summary = latency_ms(serve.url, "/api/summary", 300)
                workers_lat = latency_ms(serve.url, "/api/workers", 300)
                batch_lat = latency_ms(serve.url, "/api/summary?batch=hist-00", 300)
                idle_cpu, idle_msgs = idle_cpu_percent(serve.url, pid, args.idle)
                on_big = {obs: run_batch(serve.url, pid, 1000, obs) for obs in (False, True)}
                rows_total = args.big + 2000
                csv_out = tmp / "todo.csv"
                csv_run = export(serve.url, pid, csv_out, "csv")
                with csv_out.open(newline="", encoding="utf-8") as f:
                    csv_rows = sum(1 for _ in csv.reader(f)) - 1
                json_out = tmp / "todo.json"
                json_run = export(serve.url, pid, json_out, "json")
                with json_out.open(encoding="utf-8") as f:
                    json_rows = len(json.load(f))

    load = os.getloadavg()[0]
    out(f"partisim bench/serve_scale.py — {os.cpu_count()} CPU, carga media al terminar {load:.2f}")
    out("2 workers locales de capacidad 2, tareas diminutas (python, n = 10, 1 paso)")
    out()
    out(
        f"{'lote':>8}  {'flujo':>6}  {'tareas/s':>9}  {'CPU serve/tarea':>15}  {'mensajes':>8}  "
        f"{'bytes/mensaje':>13}  {'con/sin':>7}"
    )
    rows = [(str(size), best[(size, False)], best[(size, True)]) for size in sizes]
    rows.append(("1000*", on_big[False], on_big[True]))
    for size, off, on in rows:
        for b in (off, on):
            ratio = f"{on.rate / off.rate:.2f}" if b is on else ""
            msgs = f"{b.messages}" if b.observed else "—"
            per = f"{b.bytes_per_message:,.0f}".replace(",", " ") if b.observed else "—"
            out(
                f"{size:>8}  {'sí' if b.observed else 'no':>6}  {b.rate:>9.0f}  {b.cpu_ms_per_task:>12.3f} ms  "
                f"{msgs:>8}  {per:>13}  {ratio:>7}"
            )
    out(f"(* sobre una historia de {args.big} tareas; objetivo: con/sin >= 0,90 en cada tamaño)")
    out()
    out(f"base de {args.big} tareas generada en {made_in:.1f} s")
    out(f"{'medida':<52}  {'valor':>12}  nota")
    out(f"{'/api/summary p50 / p99':<52}  {summary[0]:>5.2f}/{summary[1]:<5.2f}ms  objetivo < 10 ms")
    out(f"{'/api/workers p50 / p99':<52}  {workers_lat[0]:>5.2f}/{workers_lat[1]:<5.2f}ms  objetivo < 10 ms")
    out(f"{'/api/summary?batch= (lote de 10 000) p50 / p99':<52}  {batch_lat[0]:>5.2f}/{batch_lat[1]:<5.2f}ms")
    out(
        f"{f'CPU de serve en reposo con un flujo abierto ({args.idle:.0f} s)':<52}  {idle_cpu:>10.1f} %  "
        f"{idle_msgs} mensajes (solo latidos)"
    )
    for name, (run, idle), rows_out in (("csv", csv_run, csv_rows), ("json", json_run, json_rows)):
        out(
            f"{f'results --format {name} -o: {rows_out} de {rows_total} filas':<52}  {run.seconds:>10.2f} s  "
            f"objetivo < 5 s, todas las filas"
        )
        out(f"{'  CPU del comando + CPU de serve':<52}  {run.cpu_s:>10.2f} s")
        out(
            f"{'  memoria pico del comando (extra sobre uno vacío)':<52}  {run.peak_mb:>9.0f} MB  "
            f"(+{run.peak_mb - idle:.0f} MB; objetivo < 200 MB extra)"
        )
        out(f"{'  crecimiento de la memoria de serve':<52}  {run.serve_growth_mb:>9.0f} MB")


if __name__ == "__main__":
    main()
