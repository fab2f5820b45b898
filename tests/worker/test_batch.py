"""``POST /execute/batch``: tiny tasks in one request, each answered as ``POST /execute``
would answer it alone (result, replay, conflict, refusal), in the order sent.

Through the worker app in this process (`app_client`, `limited_app`): the route runs the
same service, runner and warm simulation child as a worker process does; what needs a
real worker process (a task killed at its deadline) uses `worker`."""

from __future__ import annotations

import secrets

import httpx
import pytest
from helpers.inprocess import worker_app

from partisim.protocol import BATCH_MAX, ExecuteBatchReply, ExecuteResult
from partisim.sim import parse_params, simulate

TINY = {"NUM_PARTICULAS": 10, "NUM_PASOS": 3}


def _task(seed: int, **extra: object) -> dict[str, object]:
    return {"benchmark": "python", "params": {**TINY, "SEMILLA": seed}, **extra}


def _batch(client: httpx.Client, tasks: list[dict[str, object]]) -> ExecuteBatchReply:
    answer = client.post("/execute/batch", json={"tasks": tasks})
    assert answer.status_code == 200, answer.text
    return ExecuteBatchReply.model_validate(answer.json())


def test_each_task_gets_the_result_execute_would_give_in_the_order_sent(app_client: httpx.Client) -> None:
    run = secrets.token_hex(4)
    tasks = [_task(s, task_id=f"{run}-{s}") for s in range(5)]
    tasks.append({"benchmark": "benchmark_cython.py", "params": {**TINY, "SEMILLA": 9}, "task_id": f"{run}-c"})
    reply = _batch(app_client, tasks)
    assert [a.code for a in reply.answers] == [200] * 6
    results = [a.result for a in reply.answers]
    assert all(r is not None for r in results)
    assert [r.task_id for r in results if r] == [t["task_id"] for t in tasks]
    for task, result in zip(tasks, results, strict=True):
        assert result is not None
        engine = "cython" if task["benchmark"] == "benchmark_cython.py" else "python"
        ref = simulate(parse_params(task["params"]), engine)  # type: ignore[arg-type]
        assert (result.checksum, result.particle_collisions, result.wall_collisions) == (
            ref.checksum,
            ref.particle_collisions,
            ref.wall_collisions,
        )
        assert result.engine == engine and result.replayed is False and result.execution_time > 0
    # each one is a task of the worker like any other: its record answers by id
    state = app_client.get(f"/tasks/{run}-3").json()
    assert state["status"] == "success" and state["result"]["checksum"] == results[3].checksum  # type: ignore[union-attr]
    # the same task alone gives the same measurement fields
    alone = ExecuteResult.model_validate(app_client.post("/execute", json=_task(3)).json())
    assert alone.checksum == results[3].checksum  # type: ignore[union-attr]


def test_a_wrong_task_fails_alone_and_the_others_run(app_client: httpx.Client) -> None:
    run = secrets.token_hex(4)
    tasks = [
        _task(1, task_id=f"{run}-a"),
        {"benchmark": "../benchmark.py", "params": TINY},
        _task(2, task_id=f"{run}-b", extra="x"),
        {"benchmark": "python", "params": {"NUM_PARTICULAS": -5}},
        _task(3, task_id=f"{run}-c"),
    ]
    reply = _batch(app_client, tasks)
    codes = [a.code for a in reply.answers]
    assert codes == [200, 422, 422, 422, 200]
    errors = [a.error for a in reply.answers]
    assert errors[1] is not None and errors[1].error.startswith("tarea 2 del lote:") and errors[1].field == "benchmark"
    assert errors[2] is not None and "campo desconocido" in errors[2].error and "'extra'" in errors[2].error
    assert errors[3] is not None and "NUM_PARTICULAS" in errors[3].error and errors[3].status == "invalid"
    assert reply.answers[4].result is not None and reply.answers[4].result.task_id == f"{run}-c"


def test_a_known_id_is_replayed_and_the_same_id_with_other_work_is_a_conflict(app_client: httpx.Client) -> None:
    run = secrets.token_hex(4)
    first = _batch(app_client, [_task(5, task_id=f"{run}-x")]).answers[0].result
    assert first is not None
    reply = _batch(app_client, [_task(5, task_id=f"{run}-x"), _task(6, task_id=f"{run}-x")])
    again, other = reply.answers
    assert again.code == 200 and again.result is not None
    assert again.result.replayed is True and again.result.first_run_at is not None
    assert again.result.execution_time == first.execution_time  # the stored measurement, not a new one
    assert other.code == 409 and other.error is not None and "ya se usó" in other.error.error


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"tasks": []}, "lista de 1 a"),
        ({"tasks": [_task(1)] * (BATCH_MAX + 1)}, f"como máximo {BATCH_MAX}"),
        ({"tasks": _task(1)}, "debe ser una lista"),
        ({"task": [_task(1)]}, "campo desconocido"),
        ([_task(1)], "objeto JSON"),
    ],
    ids=["vacio", "demasiadas", "no-lista", "campo", "no-objeto"],
)
def test_a_batch_of_the_wrong_shape_is_refused_whole_with_a_reason(
    app_client: httpx.Client, body: object, words: str
) -> None:
    answer = app_client.post("/execute/batch", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["status"] == "invalid" and words in answer.json()["error"]


def test_not_json_is_a_400_and_the_body_limit_holds_as_for_execute(limited_app: httpx.Client) -> None:
    answer = limited_app.post("/execute/batch", content=b"{tasks", headers={"content-type": "application/json"})
    assert answer.status_code == 400 and "JSON" in answer.json()["error"]
    big = {"tasks": [_task(s, task_id="x" * 100) for s in range(20)]}  # beyond its 2048 bytes
    answer = limited_app.post("/execute/batch", json=big)
    assert answer.status_code == 422 and "max_body_bytes = 2048" in answer.json()["error"]


def test_a_task_over_the_workers_limits_fails_alone(limited_app: httpx.Client) -> None:
    reply = _batch(
        limited_app, [_task(1), {"benchmark": "python", "params": {"NUM_PARTICULAS": 10, "NUM_PASOS": 300000}}]
    )
    assert [a.code for a in reply.answers] == [200, 422]
    assert reply.answers[1].error is not None and "max_steps" in reply.answers[1].error.error


def test_the_token_guards_the_batch_and_status_and_metrics_say_it(app_client: httpx.Client) -> None:
    with worker_app(token="s3creto-de-prueba-largo-123456") as locked:
        assert locked.post("/execute/batch", json={"tasks": [_task(1)]}).status_code == 401
    status = app_client.get("/status").json()
    assert status["batch_max"] == BATCH_MAX
    before = _counter(app_client, "partisim_worker_batched_tasks_total")
    batches = _counter(app_client, "partisim_worker_batches_total")
    _batch(app_client, [_task(s) for s in range(3)])
    assert _counter(app_client, "partisim_worker_batched_tasks_total") == before + 3
    assert _counter(app_client, "partisim_worker_batches_total") == batches + 1
    schema = app_client.get("/openapi.json").json()["paths"]["/execute/batch"]["post"]["requestBody"]
    tasks = schema["content"]["application/json"]["schema"]["properties"]["tasks"]
    assert tasks["maxItems"] == BATCH_MAX and "benchmark" in tasks["items"]["properties"]


def _counter(client: httpx.Client, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_a_task_killed_at_its_deadline_is_a_504_and_the_next_one_still_runs(worker) -> None:  # type: ignore[no-untyped-def]
    slow = {"benchmark": "python", "params": {"NUM_PARTICULAS": 400, "NUM_PASOS": 200000}, "timeout": 0.5}
    with worker.client(timeout=60) as client:
        reply = _batch(client, [slow, _task(4)])
    assert [a.code for a in reply.answers] == [504, 200]
    assert reply.answers[0].error is not None and reply.answers[0].error.status == "timeout"
