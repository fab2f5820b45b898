"""Queue speed: ``partisim serve`` with 2 local workers against dask.distributed.

One run, printed as a table (no timed assertions anywhere):

1. throughput of tiny tasks (n = 10, 1 step) through serve vs a dask LocalCluster with
   2 single-threaded worker processes running the same simulation;
2. sequential submit -> result round trip, both;
3. a sweep of 16 tasks of ~1 s each on 1 worker vs 2 workers (capacity 1 each).

Run: ``.venv/bin/python bench/queue_throughput.py [--tiny 400] [--round-trips 50] [--runs 2]``.
Needs the ``dask`` extra (``pip install -e '.[dask]'``).
"""

# ruff: noqa: E402  (the imports must follow the sys.path line below)
from __future__ import annotations

import sys
from pathlib import Path

# The process starters are the test suite's (tests/helpers), as in bench/worker.py.
_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE.parent / "tests"))

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from helpers.config import write_config
from helpers.serve import Serve
from helpers.workers import start_worker

from partisim.orchestrator.batches import wait_batch
from partisim.serve.client import ServerClient

HOSTS = ("127.0.0.93", "127.0.0.155")
TINY = {"NUM_PARTICULAS": 10, "NUM_PASOS": 1}
#: ~1 s of the python engine on one core of the reference machine
SECOND = {"NUM_PARTICULAS": 300, "NUM_PASOS": 800}


@contextmanager
def fleet(tmp: Path, workers: int, capacity: int, max_concurrent: int) -> Iterator[str]:
    """``workers`` partisim workers plus a serve in front of them; yields serve's URL."""
    started: list[Any] = []
    try:
        for k in range(workers):
            started.append(
                start_worker(
                    HOSTS[k], None, "--capacity", str(capacity), "--worker-id", f"bench-{k}", cwd=tmp / f"worker-{k}"
                )
            )
        config = write_config(
            tmp / f"config-{workers}.json",
            [(f"bench-{k}", w.url) for k, w in enumerate(started)],
            timeout=10.0,
            max_concurrent_tasks=max_concurrent,
            ping_interval=1.0,
        )
        serve = Serve(config, tmp / f"bench-{workers}-{time.time_ns()}.db", workdir=tmp)
        started.append(serve)
        serve.start()
        serve.wait_workers(workers)
        yield serve.url
    finally:
        for proc in reversed(started):
            proc.stop()


def run_batch(client: ServerClient, tasks: list[dict[str, Any]]) -> float:
    """Submit all at once, long-poll until done; seconds from submit to the last result."""
    start = time.perf_counter()
    answer = client.submit(tasks)
    state = wait_batch(client, answer.batch)
    elapsed = time.perf_counter() - start
    if state.success != answer.count:
        raise SystemExit(f"lote incompleto: {state}")
    return elapsed


def serve_round_trips(client: ServerClient, count: int) -> list[float]:
    times = []
    for seed in range(count):
        start = time.perf_counter()
        task_id = client.submit({"benchmark": "python", "params": {**TINY, "SEMILLA": seed}}).ids[0]
        task = client.task(task_id, wait=30)
        times.append(time.perf_counter() - start)
        if task.status != "success":
            raise SystemExit(f"tarea {task_id}: {task['status']}")
    return times


def tiny_simulation(seed: int) -> dict[str, Any]:
    from partisim.sim import parse_params, simulate

    return simulate(parse_params({**TINY, "SEMILLA": seed}), "python").to_dict()


@contextmanager
def dask_client() -> Iterator[Any]:
    """A LocalCluster with 2 single-threaded worker processes, warmed up."""
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        client.gather(client.map(tiny_simulation, range(20), pure=False))  # warm up imports
        yield client


def dask_batch(client: Any, count: int) -> float:
    """Seconds to run ``count`` tiny simulations through dask."""
    start = time.perf_counter()
    results = client.gather(client.map(tiny_simulation, range(count), pure=False))
    elapsed = time.perf_counter() - start
    assert len(results) == count
    return elapsed


def dask_round_trips(client: Any, count: int) -> list[float]:
    times = []
    for seed in range(count):
        start = time.perf_counter()
        client.submit(tiny_simulation, seed, pure=False).result()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", type=int, default=400, help="tareas diminutas para el rendimiento")
    parser.add_argument("--round-trips", type=int, default=50)
    parser.add_argument("--sweep", type=int, default=16, help="tareas de ~1 s del barrido")
    parser.add_argument("--sweep-runs", type=int, default=2, help="ejecuciones del barrido (se toma la mejor)")
    parser.add_argument("--runs", type=int, default=2, help="turnos serve/dask por medida (se toma el mejor)")
    args = parser.parse_args()
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="partisim-bench-") as tmpdir:
        tmp = Path(tmpdir)
        tiny = [{"benchmark": "python", "params": TINY, "repeat": args.tiny}]
        # serve and dask take turns, each keeping its best run: load from other programs
        # on the machine then hurts both sides alike
        rates: dict[int, float] = {}
        dask_rate = 0.0
        serve_rt: list[float] = []
        dask_rt: list[float] = []
        with dask_client() as dask:
            for capacity in (1, 2):
                with fleet(tmp, workers=2, capacity=capacity, max_concurrent=4) as url, ServerClient(url) as client:
                    run_batch(client, [{"benchmark": "python", "params": TINY, "repeat": 20}])  # warm up
                    for _ in range(args.runs):
                        rates[capacity] = max(rates.get(capacity, 0.0), args.tiny / run_batch(client, tiny))
                        dask_rate = max(dask_rate, args.tiny / dask_batch(dask, args.tiny))
                    if capacity == 2:
                        for _ in range(5):
                            serve_rt += serve_round_trips(client, args.round_trips // 5)
                            dask_rt += dask_round_trips(dask, args.round_trips // 5)
        for capacity, rate in rates.items():
            rows.append(
                (
                    f"tareas diminutas por segundo, workers de capacidad {capacity}, mejor de {args.runs}",
                    f"{rate:.0f}",
                    f"{dask_rate:.0f}",
                    f"{rate / dask_rate:.2f}× de dask",
                )
            )
        s_med, d_med = statistics.median(serve_rt) * 1e3, statistics.median(dask_rt) * 1e3
        rows.append(
            (
                "ida y vuelta secuencial, mediana en ms (menos es mejor)",
                f"{s_med:.1f}",
                f"{d_med:.1f}",
                f"{s_med / d_med:.2f}× de dask",
            )
        )

        sweep = [{"benchmark": "python", "params": {**SECOND, "SEMILLA": seed}} for seed in range(args.sweep)]
        # alternate 1 and 2 workers and keep each one's best run: other load on the
        # machine then hurts both sides alike instead of whichever ran second
        times: dict[int, float] = {}
        for _ in range(args.sweep_runs):
            for workers in (1, 2):
                with fleet(tmp, workers=workers, capacity=1, max_concurrent=1) as url, ServerClient(url) as client:
                    elapsed = run_batch(client, sweep)
                times[workers] = min(elapsed, times.get(workers, elapsed))
        rows.append(
            (
                f"barrido de {args.sweep} tareas de ~1 s, mejor de {args.sweep_runs}: 1 worker / 2 workers (s)",
                f"{times[1]:.2f}",
                f"{times[2]:.2f}",
                f"2 workers = {times[2] / times[1]:.2f}× de 1",
            )
        )

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\npartisim bench/queue_throughput.py — {os.cpu_count()} CPU, carga media {load:.2f}")
    width = max(len(r[0]) for r in rows)
    print(f"{'medida':<{width}}  {'serve':>8}  {'dask':>8}  razón")
    for name, ours, theirs, ratio in rows:
        print(f"{name:<{width}}  {ours:>8}  {theirs:>8}  {ratio}")
    print("(en la fila del barrido, las columnas son 1 worker y 2 workers)")


if __name__ == "__main__":
    main()
