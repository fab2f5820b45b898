"""Helpers of the Dask suite: processes (Dask scheduler and workers, `partisim serve
--dask`) owned by a `Cluster` that guarantees they are gone at the end, and a config
file without workers (the cluster's are used)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from helpers.dask_cluster import DaskScheduler, DaskWorker
from helpers.processes import Spawned
from helpers.serve import Serve

from partisim.protocol import Summary, TaskView
from partisim.serve.client import ServerClient

#: python engine, ~0.5 s on one core of a quiet machine
HALF_SECOND = {"NUM_PARTICULAS": 150, "NUM_PASOS": 600}
#: minutes of work: only a kill ends it early
ENDLESS = {"NUM_PARTICULAS": 3000, "NUM_PASOS": 1_000_000}


def dask_config(path: Path, *, retry_attempts: int = 3, **dask: Any) -> Path:
    """A config file with no workers, a ``dask`` section and the retry budget."""
    data = {"dask": dask, "orchestrator": {"retry_attempts": retry_attempts}}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


class Cluster:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[Spawned] = []
        self._configs = 0

    def scheduler(self) -> DaskScheduler:
        scheduler = DaskScheduler(self.tmp)
        self.procs.append(scheduler)
        return scheduler.start()

    def worker(self, scheduler: DaskScheduler, name: str, *, with_partisim: bool = True) -> DaskWorker:
        worker = DaskWorker(scheduler.address, self.tmp, name, with_partisim=with_partisim)
        self.procs.append(worker)
        return worker.start()

    def serve(self, dask: str | None, *, retry_attempts: int = 3, timeout: float = 90.0, **section: Any) -> Serve:
        """`partisim serve` with ``--dask dask`` (None: the config's ``dask.address``)."""
        self._configs += 1
        config = dask_config(self.tmp / f"config-{self._configs}.json", retry_attempts=retry_attempts, **section)
        serve = Serve(
            config, self.tmp / f"queue-{self._configs}.db", workdir=self.tmp, extra=("--dask", dask) if dask else ()
        )
        self.procs.append(serve)
        return serve.start(timeout=timeout)

    def stop_all(self) -> None:
        for proc in reversed(self.procs):  # serve first, then the cluster
            proc.terminate()
        for proc in reversed(self.procs):
            proc.stop(timeout=20)


def wait_done(client: ServerClient, batch: str | None, timeout: float) -> Summary:
    """Long-poll the summary until nothing of the batch is queued or running."""
    deadline = time.monotonic() + timeout
    state = client.summary(batch=batch)
    while not state.done:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"batch {batch} not done in {timeout} s: {state}")
        state = client.summary(batch=batch, wait=min(2.0, left))
    return state


def by_id(client: ServerClient, batch: str) -> dict[str, TaskView]:
    return {t.id: t for t in client.tasks(batch=batch, limit=10_000)}
