"""Reading many results through a real `partisim serve` with a tiny page size (7): the
API pages with a cursor and says when more remain, and every way out (the client's
iteration, ``partisim results`` as CSV, JSON, NDJSON and table) returns every row."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import httpx
import pytest
from helpers.processes import HOST_A, free_port_on
from helpers.results import execute_result
from helpers.serve import Serve
from queue_support import Cluster, run_cli

from partisim.protocol import TaskView
from partisim.serve.client import ServerClient
from partisim.serve.queue.store import TaskQueue
from partisim.serve.queue.task import TaskSpec
from partisim.serve.results.rows import to_csv

PAGE = 7


def spec(seed: int, verify_of: str | None = None) -> TaskSpec:
    return TaskSpec(
        benchmark="cython", params={"NUM_PARTICULAS": 10, "NUM_PASOS": 1, "SEMILLA": seed}, verify_of=verify_of
    )


@pytest.fixture(scope="module")
def stocked(tmp_path_factory: pytest.TempPathFactory):
    """A database of 52 tasks (successes, failures, queued, 2 verification re-runs) and a
    serve on it whose only worker never answers, so nothing moves while we read."""
    tmp = tmp_path_factory.mktemp("export")
    queue = TaskQueue(tmp / "q.db")
    _, ids = queue.enqueue([spec(k) for k in range(50)], batch="grande")
    queue.enqueue([spec(1, ids[0]), spec(2, ids[1])], batch="verify-x")
    queue.claim_many([(t, "worker-01", "http://127.0.0.93:1", time.time() + 60) for t in ids[:45]])
    for k, t in enumerate(ids[:45]):
        if k % 9 == 4:
            queue.fail(t, 1, 'HTTP 422: "NUM_PARTICULAS", con comas\ny dos líneas')
        else:
            queue.complete(t, 1, execute_result(f"{k:064x}", simulation_time=0.01 * (k + 1)))
    views = sorted((t.view() for t in queue.tasks(limit=100)), key=lambda v: v.seq)
    queue.close()
    c = Cluster(tmp)
    try:
        config = c.config([("worker-01", f"http://{HOST_A}:{free_port_on(HOST_A)}")])
        serve = Serve(config, tmp / "q.db", workdir=tmp, extra=("--page-size", str(PAGE)))
        c.procs.append(serve)
        serve.start()
        yield serve, views
    finally:
        c.stop_all()


def test_a_page_never_holds_more_than_the_page_size_and_says_more_remain(stocked) -> None:
    serve, views = stocked
    answer = httpx.get(serve.url + "/api/tasks", params={"limit": 100_000}, trust_env=False, timeout=10).json()
    assert answer["count"] == PAGE and len(answer["tasks"]) == PAGE
    assert answer["next"] == answer["tasks"][-1]["seq"]  # newest first: continue below it
    assert [t["id"] for t in answer["tasks"]] == [v.id for v in reversed(views)][:PAGE]
    with ServerClient(serve.url) as client:
        every = list(client.iter_tasks(page=1000))
        assert every == views
        originals = list(client.iter_tasks(status="success", originals=True))
        assert originals == [v for v in views if v.status == "success" and not v.verify_of]
        last = client.tasks_page(after_seq=views[-3].seq, limit=50)
        assert [t.id for t in last.tasks] == [v.id for v in views[-2:]] and last.next is None
    bad = httpx.get(serve.url + "/api/tasks", params={"after_seq": "x"}, trust_env=False, timeout=10)
    assert bad.status_code == 422 and "after_seq" in bad.json()["error"]


@pytest.mark.slow
def test_results_writes_every_row_in_each_format(stocked, tmp_path: Path) -> None:
    serve, views = stocked
    originals = [v for v in views if not v.verify_of]
    out = tmp_path / "r.csv"
    done = run_cli("results", "--format", "csv", "-o", str(out), "--server", serve.url)
    assert done.returncode == 0, done.stderr + done.stdout
    assert out.read_text(encoding="utf-8") == to_csv(originals)
    assert f"{len(originals)} tareas escritas" in done.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left

    out = tmp_path / "r.json"
    done = run_cli("results", "--format", "json", "-o", str(out), "--server", serve.url)
    assert done.returncode == 0, done.stderr + done.stdout
    assert [TaskView.model_validate(item) for item in json.loads(out.read_text(encoding="utf-8"))] == originals

    done = run_cli("results", "--format", "ndjson", "--status", "failed", "--server", serve.url)
    assert done.returncode == 0, done.stderr
    assert [TaskView.model_validate_json(line) for line in done.stdout.splitlines()] == [
        v for v in originals if v.status == "failed"
    ]

    # a batch of verification re-runs only: shown rather than filtered out
    done = run_cli("results", "--batch", "verify-x", "--format", "csv", "--server", serve.url)
    assert len(list(csv.DictReader(io.StringIO(done.stdout)))) == 2

    table = run_cli("results", "--server", serve.url)
    assert table.returncode == 0, table.stderr
    assert all(v.id in table.stdout for v in originals)
    assert f"Resultados ({len(originals)} tareas)" in table.stdout

    empty = run_cli("results", "--batch", "nada", "--format", "csv", "--server", serve.url)
    assert empty.returncode == 2 and "no existe el lote nada" in empty.stderr  # one error for an unknown batch
