"""Issue 19's reproductions against serve's real app (in this process, on a real SQLite
file): no request gets a 5xx, no sweep is built before it is counted, damaged rows and
foreign files never take the queue down, a full disk is a 507 that heals by itself."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from helpers.processes import free_port_on
from helpers.results import execute_result
from queue_support import Cluster, claim, run_cli, write_foreign_sqlite
from serve_inprocess import HOST, serve_client

from partisim.errors import ParamsError
from partisim.listen.guards import AUTH_BURST, FailedAuthLimiter, JsonRefused, loads_json
from partisim.protocol import BatchInfo, Summary, TaskList, TaskView
from partisim.serve.queue.specs import MAX_TASKS, parse_int_values, parse_tasks, sweep
from partisim.serve.queue.store import TaskQueue
from partisim.serve.queue.task import TaskSpec, new_batch_id
from partisim.serve.web.auth import ServeAuth
from partisim.serve.web.dashboard import parse_sweep_form

TINY = {"NUM_PARTICULAS": 4, "NUM_PASOS": 2}
DEEP = b"[" * 100_000 + b"]" * 100_000


def _error(response) -> str:
    body = response.json()
    assert body["status"] != "ok", body
    return str(body["error"])


# -- 1. requests that gave 500 -----------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/tasks", "/api/sweeps", "/api/verify", "/api/frames"])
def test_deeply_nested_json_is_a_422_naming_the_nesting(tmp_path: Path, path: str) -> None:
    with serve_client(tmp_path) as client:
        answer = client.post(path, content=DEEP, headers={"content-type": "application/json"})
        assert answer.status_code == 422
        assert "anidado" in _error(answer)
        # 33 levels: still over the limit, parsed fine by Python, refused by the walk
        answer = client.post(path, content=b"[" * 33 + b"]" * 33)
        assert answer.status_code == 422 and "anidado" in _error(answer)


@pytest.mark.parametrize(
    "query",
    [
        "after_seq=99999999999999999999",
        "before_seq=99999999999999999999",
        "after_seq=9223372036854775808",
        "before_seq=9223372036854775808",
        "after_seq=" + "9" * 5000,
        "limit=" + "9" * 5000,
    ],
)
def test_integers_beyond_sqlite_are_a_422_naming_the_parameter(tmp_path: Path, query: str) -> None:
    with serve_client(tmp_path) as client:
        answer = client.get(f"/api/tasks?{query}")
        assert answer.status_code == 422
        assert query.split("=", maxsplit=1)[0] in _error(answer)
        # the largest SQLite integer is a valid cursor
        assert client.get("/api/tasks?after_seq=9223372036854775807").status_code == 200


def test_a_body_over_the_limit_is_a_413_before_it_is_read(tmp_path: Path) -> None:
    with serve_client(tmp_path, max_body_bytes=1024 * 1024) as client:
        big = b"[" + b"0," * (600 * 1024) + b"0]"
        answer = client.post("/api/tasks", content=big)
        assert answer.status_code == 413 and "límite" in _error(answer)
        # a chunked body (no Content-Length) is cut as it arrives
        answer = client.post("/api/tasks", content=iter([big[:700_000], big[700_000:]]))
        assert answer.status_code == 413
        ok = client.post("/api/tasks", json={"benchmark": "python", "params": TINY})
        assert ok.status_code == 201


def test_loads_json_refuses_what_is_not_json_or_too_deep() -> None:
    assert loads_json(b'{"a": [[1]]}') == {"a": [[1]]}
    with pytest.raises(JsonRefused, match="UTF-8"):
        loads_json(b"\xff\xfe")
    with pytest.raises(JsonRefused, match="anidado"):
        loads_json(b"[" * 40 + b"]" * 40)
    with pytest.raises(JsonRefused, match="anidado"):
        loads_json(b'{"a":' * 50_000 + b"1" + b"}" * 50_000)


# -- 2. sweeps counted before anything is built -------------------------------------------


def test_a_sweep_of_ten_billion_tasks_is_refused_with_its_count(tmp_path: Path) -> None:
    with serve_client(tmp_path) as client:
        body = {"engines": "python", "particles": "1-99999", "steps": "1-99999"}
        answer = client.post("/api/sweeps", json=body)
        assert answer.status_code == 422
        assert "9999800001 tareas" in _error(answer) and str(MAX_TASKS) in _error(answer)
        answer = client.post("/api/sweeps", json={"engines": "python", "particles": "1-2000", "steps": "1-1000"})
        assert answer.status_code == 422 and "2000000 tareas" in _error(answer)


def test_a_long_explicit_list_is_refused_before_it_costs_memory() -> None:
    """1.5 million listed particle counts: refused by their count, without building a
    value per entry (it took 306 MB of serve's memory when the list was split first)."""
    listed = list(range(1, 1_500_001))
    as_text = ",".join(map(str, listed))
    tracemalloc.start()
    try:
        for value in (listed, as_text):
            with pytest.raises(ParamsError, match="1500000 valores"):
                parse_sweep_form({"engines": "python", "particles": value, "steps": [1, 2]})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, f"{peak / 2**20:.0f} MiB"


def test_sweep_counts_distinct_values_of_overlapping_ranges() -> None:
    values = parse_int_values("1-10,5-15,3", "--particles")
    assert len(values) == 15 and list(values) == list(range(1, 16))
    assert len(parse_int_values("7", "x")) == 1
    with pytest.raises(Exception, match="valores"):
        parse_int_values(",".join(f"{k * 50_000}-{k * 50_000 + 49_999}" for k in range(3)), "--steps")
    with pytest.raises(Exception, match="10000000000 tareas"):
        sweep(["python"], parse_int_values("1-100000", "p"), parse_int_values("1-100000", "s"), [42])


def test_task_files_count_repeat_before_expanding() -> None:
    many = [{"benchmark": "python", "params": TINY, "repeat": 10_000}] * 11
    with pytest.raises(Exception, match="máximo 100000"):
        parse_tasks(many)
    with pytest.raises(Exception, match="máximo 100000"):
        parse_tasks([{"benchmark": "python"}] * (MAX_TASKS + 1))


# -- 4. damaged rows, foreign files, a full disk ----------------------------------------


def _damage(db: Path) -> tuple[str, str, int]:
    """A queue of 5 tasks, one with an unknown status, one with a malformed result."""
    with TaskQueue(db) as queue:
        _, ids = queue.enqueue([TaskSpec("python", dict(TINY))] * 5)
    con = sqlite3.connect(db)
    with con:
        con.execute("UPDATE tasks SET status = 'zombie' WHERE id = ?", (ids[0],))
        con.execute(
            "UPDATE tasks SET status = 'success', result = '{\"checksum\": ', finished_at = 1 WHERE id = ?",
            (ids[1],),
        )
    con.close()
    return ids[0], ids[1], len(ids)


def test_damaged_rows_are_shown_as_damaged_and_never_take_the_others_down(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "q.db"
    zombie, broken, total = _damage(db)
    with serve_client(tmp_path, db) as client:
        assert "2 filas dañadas" in caplog.text and zombie in caplog.text
        page = client.get("/api/tasks")
        assert page.status_code == 200
        tasks = {t["id"]: t for t in page.json()["tasks"]}
        assert len(tasks) == total
        assert "estado desconocido 'zombie'" in tasks[zombie]["damaged"] and tasks[zombie]["status"] == "failed"
        assert "result" in tasks[broken]["damaged"] and tasks[broken]["result"] is None
        assert sum(1 for t in tasks.values() if t["damaged"]) == 2
        one = client.get(f"/api/tasks/{broken}")
        assert one.status_code == 200 and one.json()["damaged"]
        assert client.get("/api/summary").json()["damaged"] == 2
        assert client.get("/api/charts").status_code == 200
        assert client.get("/api/batches").status_code == 200
        export = client.get("/api/export?format=csv")
        assert export.status_code == 200 and export.headers["X-Total-Count"] == str(total)
        lines = export.text.strip().splitlines()
        assert len(lines) == total + 1 and sum("fila dañada" in line for line in lines) == 2
        ndjson = client.get("/api/export?format=ndjson")
        assert len(ndjson.text.strip().splitlines()) == total
        verify = client.post("/api/verify", json={"count": 5})
        assert verify.status_code == 409  # the only "success" is the damaged one: never re-run


#: the auditor's damages, each to one row of 30 finished tasks: SQL, the column named
#: in ``damaged``. Every row still passes ``PRAGMA quick_check``.
ROW_DAMAGES = {
    "finished_at": "UPDATE tasks SET finished_at = 'never' WHERE seq = 15",
    "created_at": "UPDATE tasks SET created_at = 'x' WHERE seq = 7",
    "priority": "UPDATE tasks SET priority = 'high' WHERE seq = 11",
    "params": "UPDATE tasks SET params = '[1,2]' WHERE seq = 13",
    "result": "UPDATE tasks SET result = '[]' WHERE seq = 4",
    "execution_time": "UPDATE tasks SET result = json_set(result, '$.execution_time', 'abc') WHERE seq = 5",
}


def _finished_queue(db: Path, count: int = 30) -> list[str]:
    """A queue of ``count`` tasks, each run once with success."""
    with TaskQueue(db) as queue:
        _, ids = queue.enqueue([TaskSpec("python", dict(TINY))] * count)
        for k, task_id in enumerate(ids):
            attempt = claim(queue, task_id, "w1", "http://127.0.0.61:9", time.time() + 60)
            assert attempt is not None
            result = execute_result(f"{k:064x}", task_id=task_id, simulation_time=0.01 * (k + 1))
            assert queue.complete(task_id, attempt, result, worker="w1")
    return ids


def _damage_row(db: Path, sql: str) -> str:
    """Apply ``sql`` (one row); the id of the row it damaged."""
    con = sqlite3.connect(db)
    with con:
        seq = int(sql.rsplit("=", 1)[1])
        con.execute(sql)
        (task_id,) = con.execute("SELECT id FROM tasks WHERE seq = ?", (seq,)).fetchone()
        assert con.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    con.close()
    return str(task_id)


@pytest.mark.parametrize("column", list(ROW_DAMAGES))
def test_a_row_damaged_in_any_column_never_takes_the_others_down(
    tmp_path: Path, column: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "q.db"
    ids = _finished_queue(db)
    damaged = _damage_row(db, ROW_DAMAGES[column])
    named = "result" if column == "execution_time" else column
    with serve_client(tmp_path, db) as client:
        assert "1 filas dañadas" in caplog.text and damaged in caplog.text
        page = client.get("/api/tasks")
        assert page.status_code == 200
        listed = {t.id: t for t in TaskList.model_validate_json(page.content).tasks}  # the schema holds
        assert len(listed) == len(ids)
        assert [i for i, t in listed.items() if t.damaged] == [damaged]
        assert named in str(listed[damaged].damaged) and listed[damaged].status == "failed"
        one = client.get(f"/api/tasks/{damaged}")
        assert one.status_code == 200
        single = TaskView.model_validate_json(one.content)
        assert single.damaged == listed[damaged].damaged and single.status == "failed"
        # the page SQLite writes and the task Python decodes agree
        assert single.model_dump() == listed[damaged].model_dump()
        assert client.get(f"/api/tasks/{ids[0]}").status_code == 200
        summary = client.get("/api/summary")
        assert summary.status_code == 200 and Summary.model_validate_json(summary.content).damaged == 1
        batches = client.get("/api/batches")
        assert batches.status_code == 200
        (batch,) = [BatchInfo.model_validate(b) for b in batches.json()["batches"]]
        assert batch.total == len(ids) - 1  # the damaged row counts in no batch
        charts = client.get("/api/charts")
        assert charts.status_code == 200, charts.text
        csv_export = client.get("/api/export?format=csv")
        assert csv_export.status_code == 200
        lines = csv_export.text.strip().splitlines()
        assert len(lines) == len(ids) + 1 and sum("fila dañada" in line for line in lines) == 1
        ndjson = client.get("/api/export?format=ndjson")
        assert ndjson.status_code == 200
        views = [TaskView.model_validate_json(line) for line in ndjson.text.strip().splitlines()]
        assert len(views) == len(ids) and sum(1 for v in views if v.damaged) == 1
        verify = client.post("/api/verify", json={"count": len(ids)})
        assert verify.status_code == 201
        assert damaged not in {p["original"] for p in verify.json()["pairs"]}  # never re-run


@pytest.mark.parametrize("column", list(ROW_DAMAGES))
def test_partisim_results_reads_a_server_with_a_damaged_row(tmp_path: Path, column: str, cluster: Cluster) -> None:
    db = tmp_path / "q.db"
    ids = _finished_queue(db, 10)
    sql = ROW_DAMAGES[column]
    damaged = _damage_row(db, sql.rsplit("=", 1)[0] + "= 4")
    config = cluster.config([("nadie", f"http://{HOST}:{free_port_on(HOST)}")])
    serve = cluster.serve(config, db)
    for fmt in ("table", "csv", "json"):
        out = run_cli("results", "--server", serve.url, "--format", fmt, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert "Traceback" not in out.stderr
    rows = json.loads(run_cli("results", "--server", serve.url, "--format", "json", cwd=tmp_path).stdout)
    assert len(rows) == len(ids)
    assert [r["id"] for r in rows if "fila dañada" in str(r.get("error"))] == [damaged]


def test_every_damaged_row_is_counted_at_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "q.db"
    _finished_queue(db)
    planted = [_damage_row(db, sql) for sql in ROW_DAMAGES.values()]
    con = sqlite3.connect(db)
    with con:
        for seq, sql in enumerate(
            [
                "UPDATE tasks SET status = 'zombie' WHERE seq = ?",
                "UPDATE tasks SET result = '{bad' WHERE seq = ?",
                "UPDATE tasks SET attempts = 1.5 WHERE seq = ?",
                "UPDATE tasks SET worker = x'00ff' WHERE seq = ?",
                "UPDATE tasks SET started_at = 1e999 WHERE seq = ?",
                "UPDATE tasks SET extra_runs = '{}' WHERE seq = ?",
                "UPDATE tasks SET foreign_result = '[]' WHERE seq = ?",
                "UPDATE tasks SET threads = 'dos' WHERE seq = ?",
                'UPDATE tasks SET params = \'{"NUM_PARTICULAS": "cuatro"}\' WHERE seq = ?',
            ],
            start=20,
        ):
            con.execute(sql, (seq,))
            planted.append(con.execute("SELECT id FROM tasks WHERE seq = ?", (seq,)).fetchone()[0])
    con.close()
    with serve_client(tmp_path, db) as client:
        assert f"{len(planted)} filas dañadas" in caplog.text and planted[0] in caplog.text
        assert client.get("/api/summary").json()["damaged"] == len(planted)
        page = TaskList.model_validate_json(client.get("/api/tasks").content)
        assert sorted(t.id for t in page.tasks if t.damaged) == sorted(planted)
        for task_id in planted:
            one = client.get(f"/api/tasks/{task_id}")
            assert one.status_code == 200 and TaskView.model_validate_json(one.content).damaged
        for path in ("/api/charts", "/api/batches", "/api/export?format=csv", "/api/export?format=ndjson"):
            assert client.get(path).status_code == 200, path


def test_a_foreign_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    db = tmp_path / "otra.db"
    write_foreign_sqlite(db)
    before = db.read_bytes()
    config = tmp_path / "config_workers.json"
    config.write_text(json.dumps({"workers": [{"id": "w", "ip": "127.0.0.61", "port": 9}]}), encoding="utf-8")
    out = run_cli("serve", "--config", str(config), "--db", str(db), "--port", "0", cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert "no es de partisim" in out.stderr and "tiene users" in out.stderr and "Traceback" not in out.stderr
    assert db.read_bytes() == before
    assert not (tmp_path / "otra.db-wal").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config_workers.json", "otra.db"]  # no otra.db.lock


def test_full_disk_is_a_507_and_heals_when_space_returns(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("montar un tmpfs pequeño requiere ser root")
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"no se pudo montar un tmpfs: {done.stderr.decode(errors='replace').strip()}")
    try:
        filler = mount / "relleno"
        with serve_client(tmp_path, mount / "q.db") as client:
            batch = [{"benchmark": "python", "params": TINY}] * 20
            accepted = 0
            assert client.post("/api/tasks", json=batch).status_code == 201
            accepted += 20
            # fill what is left, then submit until SQLite says the disk is full
            try:
                with open(filler, "wb") as f:
                    while True:
                        f.write(b"\0" * 4096)
                        f.flush()
            except OSError:
                pass  # the disk is full
            statuses = []
            for _ in range(50):
                answer = client.post("/api/tasks", json=batch)
                statuses.append(answer.status_code)
                if answer.status_code == 201:
                    accepted += 20
                if answer.status_code == 507:
                    assert "disco" in _error(answer) and "lleno" in _error(answer)
                    break
            assert statuses[-1] == 507 and all(s in (201, 507) for s in statuses), statuses
            assert client.get("/api/summary").json()["total"] == accepted  # nothing lost, nothing half-written
            filler.unlink()
            answer = client.post("/api/tasks", json=batch)
            assert answer.status_code == 201, answer.text
            assert client.get("/api/summary").json()["total"] == accepted + 20
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


# -- 5, 6. access, batch ids ---------------------------------------------------------------


def test_failed_auth_limiter_refills_at_its_rate() -> None:
    now = [0.0]
    limiter = FailedAuthLimiter(burst=3, window_s=30.0, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.retry_after("127.0.0.9") == 0
        limiter.failed("127.0.0.9")
    assert limiter.retry_after("127.0.0.9") == pytest.approx(10.0)
    assert limiter.retry_after("127.0.0.10") == 0  # per address
    now[0] = 10.0
    assert limiter.retry_after("127.0.0.9") == 0


def test_serve_limits_wrong_tokens_per_address(tmp_path: Path) -> None:
    token = "un-token-largo-de-prueba-1234"
    with serve_client(tmp_path, token=token) as client:
        bad = {"Authorization": "Bearer mal"}
        codes = [client.get("/api/summary", headers=bad).status_code for _ in range(AUTH_BURST + 5)]
        assert codes[:AUTH_BURST] == [401] * AUTH_BURST and set(codes[AUTH_BURST:]) == {429}
        refused = client.get("/api/summary", headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert "intentos" in _error(refused)
        login = client.post("/login", data={"token": "mal"})
        assert login.status_code == 429 and int(login.headers["retry-after"]) >= 1
        assert client.get("/api/health").status_code == 200  # liveness stays open


def test_a_burst_of_wrong_logins_sent_together_is_held_to_the_limit() -> None:
    """All the form posts pass the first check before any has failed (each awaits its
    body): only AUTH_BURST of them may be compared."""

    async def inner(scope, receive, send) -> None:  # never reached: every token is wrong
        raise AssertionError("the app behind the login was called")

    app = ServeAuth(inner, "un-token-largo-de-prueba-1234")

    async def slow_form(i: int) -> AsyncIterator[bytes]:  # the body arrives late, as over a network
        await asyncio.sleep(0.05)
        yield f"token=mal-{i}".encode()

    async def burst() -> list[int]:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.196", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://serve.test") as client:
            posts = (client.post("/login", content=slow_form(i)) for i in range(3 * AUTH_BURST))
            answers = await asyncio.gather(*posts)
        return [a.status_code for a in answers]

    codes = asyncio.run(burst())
    assert codes.count(401) == AUTH_BURST and codes.count(429) == 2 * AUTH_BURST, codes


def test_batch_ids_do_not_collide_within_a_second() -> None:
    ids = [new_batch_id() for _ in range(100_000)]  # most within one second: only the random tail differs
    assert len(set(ids)) == len(ids)
    assert all(len(i) <= 40 for i in ids) and ids[0].startswith("b-")
