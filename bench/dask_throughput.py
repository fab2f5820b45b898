"""partisim on Dask: ``serve --dask`` against plain Dask and the HTTP fleet, in one run.

Printed as a table (no timed assertions anywhere):

1. tiny tasks per second (n = 10, 1 step, python engine), best of ``--runs``:
   plain Dask (``client.map`` of the simulation on a LocalCluster of 2 single-threaded
   worker processes), ``serve --dask`` on that same LocalCluster, ``serve --dask local:2``
   (serve's own LocalCluster) and ``serve`` with the HTTP fleet of 2 workers (which sends
   tiny tasks in batches, ``POST /execute/batch``);
2. a CPU-bound sweep (``--sweep`` tasks of ~1 s): ``serve --dask local:1`` and
   ``local:2`` (the speed-up of the second worker), plain Dask on the 2-worker
   LocalCluster, and the HTTP fleet with 2 workers of capacity 1.

Targets (issue 23): ``serve --dask`` >= 0.9x plain Dask's tiny-task rate (the durable
queue costs something: this measures how much), the sweep on ``local:2`` >= 0.95x plain
Dask's speed (its time / ours), and serve with HTTP workers >= 1.5x plain Dask on tiny
tasks. Rates are the best of ``--runs`` turns; the range over the turns is printed too.

Run: ``.venv/bin/python bench/dask_throughput.py [--tiny 400] [--runs 3] [--sweep 16]``
(needs ``pip install -e '.[dask]'``).
"""

from __future__ import annotations

import sys
from pathlib import Path

# The process starters are the test suite's (tests/helpers), as in bench/worker.py;
# appended after the standard library, so tests/queue cannot shadow it.
sys.path.append(str(Path(__file__).resolve().parent.parent / "tests"))

import argparse
import json
import os
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


def simulation(params: dict[str, Any]) -> str:
    """What plain Dask runs: the same engine code, in the worker's thread."""
    from partisim.sim import parse_params, simulate

    return simulate(parse_params(params), "python").checksum


@contextmanager
def serve_on(tmp: Path, args: tuple[str, ...], config: Path | None = None) -> Iterator[ServerClient]:
    if config is None:
        config = tmp / "dask-config.json"
        config.write_text(json.dumps({"dask": {}}), encoding="utf-8")
    serve = Serve(config, tmp / f"bench-{time.time_ns()}.db", workdir=tmp, extra=args)
    try:
        serve.start(timeout=120)
        with ServerClient(serve.url) as client:
            yield client
    finally:
        serve.stop()


@contextmanager
def http_fleet(tmp: Path, capacity: int) -> Iterator[ServerClient]:
    """2 partisim workers plus a serve in front of them."""
    workers: list[Any] = []
    try:
        for k in range(2):
            workers.append(
                start_worker(
                    HOSTS[k],
                    None,
                    "--capacity",
                    str(capacity),
                    "--worker-id",
                    f"bench-{k}",
                    cwd=tmp / f"worker-{k}-{time.time_ns()}",
                )
            )
        config = write_config(
            tmp / f"config-http-{time.time_ns()}.json",
            [(f"bench-{k}", w.url) for k, w in enumerate(workers)],
            timeout=10.0,
            max_concurrent_tasks=4,
            ping_interval=1.0,
        )
        with serve_on(tmp, (), config) as client:
            deadline = time.monotonic() + 30
            while client.summary().workers_active < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            yield client
    finally:
        for w in workers:
            w.stop()


def run_batch(client: ServerClient, tasks: list[dict[str, Any]]) -> float:
    """Submit all at once, long-poll until done; seconds from submit to the last result."""
    start = time.perf_counter()
    answer = client.submit(tasks)
    state = wait_batch(client, answer.batch)
    elapsed = time.perf_counter() - start
    if state.success != answer.count:
        raise SystemExit(f"lote incompleto: {state}")
    return elapsed


def wait_dask_members(client: ServerClient, count: int) -> None:
    deadline = time.monotonic() + 60
    while client.summary().workers_active < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"serve no ve {count} workers Dask")
        time.sleep(0.1)


def tiny_tasks(count: int) -> list[dict[str, Any]]:
    return [{"benchmark": "python", "params": {**TINY, "SEMILLA": s}} for s in range(count)]


def sweep_tasks(count: int) -> list[dict[str, Any]]:
    return [{"benchmark": "python", "params": {**SECOND, "SEMILLA": s}} for s in range(count)]


def plain_dask_batch(client: Any, tasks: list[dict[str, Any]]) -> float:
    start = time.perf_counter()
    done = client.gather(client.map(simulation, [t["params"] for t in tasks], pure=False))
    elapsed = time.perf_counter() - start
    assert len(done) == len(tasks)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", type=int, default=400, help="tareas diminutas por medida")
    parser.add_argument("--runs", type=int, default=3, help="turnos por medida (se toma el mejor)")
    parser.add_argument("--sweep", type=int, default=16, help="tareas de ~1 s del barrido")
    args = parser.parse_args()

    from dask.distributed import Client, LocalCluster

    tiny, sweep = tiny_tasks(args.tiny), sweep_tasks(args.sweep)
    rate: dict[str, float] = {}
    took: dict[str, float] = {}
    rates: dict[str, list[float]] = {}

    def keep_rate(name: str, seconds: float) -> None:
        rate[name] = max(rate.get(name, 0.0), args.tiny / seconds)
        rates.setdefault(name, []).append(args.tiny / seconds)

    def spread(name: str) -> str:
        seen = rates[name]
        return f"turnos {min(seen):.0f}–{max(seen):.0f}/s"

    times: dict[str, list[float]] = {}

    def keep_time(name: str, seconds: float) -> None:
        took[name] = min(took.get(name, seconds), seconds)
        times.setdefault(name, []).append(seconds)

    def time_spread(name: str) -> str:
        seen = times[name]
        return f"turnos {min(seen):.2f}–{max(seen):.2f} s"

    with tempfile.TemporaryDirectory(prefix="partisim-bench-dask-") as tmpdir:
        tmp = Path(tmpdir)
        with (
            LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
            ) as cluster,
            Client(cluster) as dask,
        ):
            plain_dask_batch(dask, tiny_tasks(20))  # warm up imports
            # Turns: plain Dask, then partisim, each time (other load on the machine hurts
            # both alike); plain Dask's cluster stays up, idle, while serve's own run.
            with serve_on(tmp, ("--dask", cluster.scheduler_address)) as client:
                wait_dask_members(client, 2)
                run_batch(client, tiny_tasks(20))  # warm up
                for _ in range(args.runs):
                    keep_rate("dask", plain_dask_batch(dask, tiny))
                    keep_rate("serve-dask-same", run_batch(client, tiny))
            with serve_on(tmp, ("--dask", "local:2")) as client:
                wait_dask_members(client, 2)
                run_batch(client, tiny_tasks(20))
                for _ in range(args.runs):
                    keep_rate("dask", plain_dask_batch(dask, tiny))
                    keep_rate("serve-dask-local2", run_batch(client, tiny))
                for _ in range(args.runs):
                    keep_time("dask-sweep", plain_dask_batch(dask, sweep))
                    keep_time("serve-dask-local2-sweep", run_batch(client, sweep))
            with serve_on(tmp, ("--dask", "local:1")) as client:
                wait_dask_members(client, 1)
                run_batch(client, tiny_tasks(4))
                for _ in range(args.runs):
                    keep_time("serve-dask-local1-sweep", run_batch(client, sweep))
            with http_fleet(tmp, capacity=1) as client:
                run_batch(client, tiny_tasks(20))
                for _ in range(args.runs):
                    keep_rate("dask", plain_dask_batch(dask, tiny))
                    keep_rate("serve-http", run_batch(client, tiny))
                for _ in range(args.runs):
                    keep_time("serve-http-sweep", run_batch(client, sweep))

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    base = rate["dask"]
    rows = [
        (
            f"tareas diminutas/s, Dask puro (LocalCluster 2×1), mejor de {args.runs}",
            f"{base:.0f}",
            f"1.00× de Dask ({spread('dask')})",
        ),
        (
            "tareas diminutas/s, serve --dask en ese mismo LocalCluster",
            f"{rate['serve-dask-same']:.0f}",
            f"{rate['serve-dask-same'] / base:.2f}× de Dask (objetivo ≥ 0.90; {spread('serve-dask-same')})",
        ),
        (
            "tareas diminutas/s, serve --dask local:2",
            f"{rate['serve-dask-local2']:.0f}",
            f"{rate['serve-dask-local2'] / base:.2f}× de Dask (objetivo ≥ 0.90; {spread('serve-dask-local2')})",
        ),
        (
            "tareas diminutas/s, serve con 2 workers HTTP (capacidad 1)",
            f"{rate['serve-http']:.0f}",
            f"{rate['serve-http'] / base:.2f}× de Dask (objetivo ≥ 1.50; {spread('serve-http')})",
        ),
        (
            f"barrido de {args.sweep} tareas de ~1 s, serve --dask local:1 (s)",
            f"{took['serve-dask-local1-sweep']:.2f}",
            time_spread("serve-dask-local1-sweep"),
        ),
        (
            f"barrido de {args.sweep} tareas de ~1 s, serve --dask local:2 (s)",
            f"{took['serve-dask-local2-sweep']:.2f}",
            f"{took['serve-dask-local1-sweep'] / took['serve-dask-local2-sweep']:.2f}× más rápido que 1 worker; "
            f"{took['dask-sweep'] / took['serve-dask-local2-sweep']:.2f}× Dask puro (objetivo ≥ 0.95; "
            f"{time_spread('serve-dask-local2-sweep')})",
        ),
        (
            f"barrido de {args.sweep} tareas de ~1 s, Dask puro 2×1 (s)",
            f"{took['dask-sweep']:.2f}",
            time_spread("dask-sweep"),
        ),
        (
            f"barrido de {args.sweep} tareas de ~1 s, serve con 2 workers HTTP (s)",
            f"{took['serve-http-sweep']:.2f}",
            time_spread("serve-http-sweep"),
        ),
    ]
    print(f"\npartisim bench/dask_throughput.py — {os.cpu_count()} CPU, carga media {load:.2f}")
    width = max(len(r[0]) for r in rows)
    print(f"{'medida':<{width}}  {'valor':>8}  razón")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>8}  {note}")


if __name__ == "__main__":
    main()
