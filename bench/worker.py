#!/usr/bin/env python3
"""Worker service speed, measured in one run and printed as a table.

    .venv/bin/python bench/worker.py [--pings 2000] [--tiny 500] [--throughput 1000]

1. `GET /ping` latency, p50 / p99, over sequential keep-alive requests;
2. `POST /execute` round trip of a tiny task (n = 10, 1 step, cython engine), p50,
   against calling the same simulation in-process (`partisim.sim.simulate`);
3. tiny tasks per second through `/execute` with 2 concurrent clients.

The worker is a real `partisim worker` subprocess on 127.0.0.1 (runner process,
capacity 2, default logging). Targets from the issue are printed beside the
figures; nothing here fails on them.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers.workers import start_worker  # noqa: E402

from partisim.sim import parse_params, simulate  # noqa: E402

TINY = {"NUM_PARTICULAS": 10, "NUM_PASOS": 1, "SEMILLA": 1}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pings", type=int, default=2000)
    ap.add_argument("--tiny", type=int, default=500, help="sequential tiny /execute round trips")
    ap.add_argument("--throughput", type=int, default=1000, help="tiny tasks for the 2-client throughput")
    ap.add_argument("--engine", default="cython")
    args = ap.parse_args(argv)

    worker = start_worker("127.0.0.1", None, "--capacity", "2", "--runner", "process")
    rows: list[tuple[str, str, str]] = []
    try:
        body = {"benchmark": args.engine, "params": TINY}
        with httpx.Client(base_url=worker.url, trust_env=False, timeout=30) as c:
            for _ in range(50):  # warm up connections and the pool
                c.get("/ping")
                c.post("/execute", json=body).raise_for_status()

            pings = timed(lambda: c.get("/ping").raise_for_status(), args.pings)
            rows.append((f"/ping p50 ({args.pings} peticiones)", f"{percentile(pings, 50) * 1e3:.2f} ms", ""))
            rows.append(
                (
                    f"/ping p99 ({args.pings} peticiones)",
                    f"{percentile(pings, 99) * 1e3:.2f} ms",
                    "objetivo <= 10 ms (usuarios: < 5 s)",
                )
            )

            def one() -> None:
                r = c.post("/execute", json=body)
                if r.status_code != 200:
                    raise RuntimeError(r.text)

            execs = timed(one, args.tiny)
            params = parse_params(TINY)
            simulate(params, args.engine)
            local = timed(lambda: simulate(params, args.engine), args.tiny)
            e50, l50 = percentile(execs, 50), percentile(local, 50)
            rows.append(
                (f"/execute tarea mínima p50 (n=10, 1 paso, {args.engine})", f"{e50 * 1e3:.2f} ms", "objetivo <= 5 ms")
            )
            rows.append(("/execute tarea mínima p99", f"{percentile(execs, 99) * 1e3:.2f} ms", ""))
            rows.append(("simulate() en el mismo proceso p50", f"{l50 * 1e3:.3f} ms", ""))
            rows.append(
                (
                    "sobrecoste del worker (p50 /execute - p50 local)",
                    f"{(e50 - l50) * 1e3:.2f} ms",
                    f"{e50 / l50:.0f}x el cálculo local",
                )
            )

        done = [0, 0]
        errors: list[str] = []
        per_client = args.throughput // 2

        def client_loop(slot: int) -> None:
            with httpx.Client(base_url=worker.url, trust_env=False, timeout=30) as c:
                for _ in range(per_client):
                    r = c.post("/execute", json=body)
                    if r.status_code == 200:
                        done[slot] += 1
                    else:
                        errors.append(f"{r.status_code} {r.text[:100]}")

        threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(2)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        rows.append(
            (
                f"tareas mínimas por segundo, 2 clientes ({sum(done)} tareas)",
                f"{sum(done) / elapsed:.0f} /s",
                f"{len(errors)} errores",
            )
        )
    finally:
        worker.stop()

    width = max(len(r[0]) for r in rows)
    print(f"\nWorker partisim en {worker.url} (runner process, capacidad 2)\n")
    print(f"{'medida'.ljust(width)}  {'valor':>12}  nota")
    print(f"{'-' * width}  {'-' * 12}  {'-' * 30}")
    for name, value, note in rows:
        print(f"{name.ljust(width)}  {value:>12}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
