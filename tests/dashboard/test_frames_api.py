"""The viewer's frames over HTTP: ``GET /api/tasks/{id}/frames`` and ``POST /api/frames``
on a real `partisim serve` with a real worker: the recomputed run is the task's run,
and the bounds and errors answer in Spanish."""

from __future__ import annotations

import base64

import httpx
from dash_support import Fleet
from helpers.processes import wait_for

from partisim.serve.web.frames import VIEW_MAX_WORK
from partisim.sim.frames import DRAW_LIMIT
from partisim.sim.numbers import integer

TASK = {"NUM_PARTICULAS": 70, "NUM_PASOS": 90, "SEMILLA": 8, "ANCHO_MUNDO": 220.0, "ALTO_MUNDO": 160.0}


def _client(fleet: Fleet) -> httpx.Client:
    return httpx.Client(base_url=fleet.serve.url, timeout=30.0, trust_env=False)


def _finished_task(client: httpx.Client, benchmark: str, params: dict) -> dict:
    sent = client.post("/api/tasks", json={"benchmark": benchmark, "params": params})
    assert sent.status_code == 201, sent.text
    task_id = sent.json()["ids"][0]
    return wait_for(
        lambda: (t := client.get(f"/api/tasks/{task_id}").json())["status"] == "success" and t,
        60,
        f"task {task_id} to succeed",
    )


def test_task_frames_are_the_tasks_run(small_fleet: Fleet) -> None:
    with _client(small_fleet) as client:
        task = _finished_task(client, "benchmark.py", TASK)  # the python engine ran it; serve recomputes
        answer = client.get(f"/api/tasks/{task['id']}/frames", params={"frames": 10})
        assert answer.status_code == 200, answer.text
        view = answer.json()
        result = task["result"]
        assert view["source"] == "task" and view["task_id"] == task["id"]
        assert view["checksum"] == result["checksum"] == view["task_checksum"]
        assert view["matches"] is True
        assert view["particle_collisions"][-1] == result["particle_collisions"] > 0
        assert view["wall_collisions"][-1] == result["wall_collisions"] > 0
        assert view["frames"] == len(view["step"]) <= 10
        assert view["step"][0] == 0 and view["step"][-1] == 90 and view["interval"] == 10
        assert view["mode"] == "all" and view["drawn"] == 70 and view["stride"] == 1
        assert (view["width"], view["height"], view["radius"]) == (220.0, 160.0, 5.0)
        raw = base64.b64decode(view["positions"])
        assert len(raw) == view["frames"] * view["drawn"] * 2 * 2
        # the same answer again (kept), byte for byte
        again = client.get(f"/api/tasks/{task['id']}/frames", params={"frames": 10})
        assert again.content == answer.content


def test_frames_from_parameters_and_sampling(small_fleet: Fleet) -> None:
    with _client(small_fleet) as client:
        answer = client.post("/api/frames", json={"params": {"NUM_PARTICULAS": 30, "NUM_PASOS": 5}, "frames": 3})
        assert answer.status_code == 200, answer.text
        view = answer.json()
        assert view["source"] == "params" and view["task_id"] is None and view["matches"] is None
        assert view["step"] == [0, 3, 5]
        big = client.post(
            "/api/frames",
            json={
                "params": {"NUM_PARTICULAS": 20_000, "NUM_PASOS": 4, "ANCHO_MUNDO": 4000, "ALTO_MUNDO": 3000},
                "frames": 3,
            },
        )
        assert big.status_code == 200, big.text
        view = big.json()
        assert view["mode"] == "sample" and view["drawn"] <= DRAW_LIMIT and view["stride"] == 4
        assert "Muestra" in view["note"] and "20\u00a0000" in view["note"]
        assert len(base64.b64decode(view["positions"])) == 3 * view["drawn"] * 4


def test_frames_bounds_and_errors(small_fleet: Fleet) -> None:
    with _client(small_fleet) as client:
        unknown = client.get("/api/tasks/no-such-task/frames")
        assert unknown.status_code == 404 and unknown.json()["error"] == "tarea desconocida: no-such-task"

        task = _finished_task(client, "cython", {"NUM_PARTICULAS": 10, "NUM_PASOS": 4})
        for bad in ("1", "2001", "muchos"):
            answer = client.get(f"/api/tasks/{task['id']}/frames", params={"frames": bad})
            assert answer.status_code == 422, answer.text
            assert answer.json()["field"] == "frames" and "frames debe ser" in answer.json()["error"]

        steps = VIEW_MAX_WORK // 1000 + 1
        huge = client.post("/api/frames", json={"params": {"NUM_PARTICULAS": 1000, "NUM_PASOS": steps}})
        assert huge.status_code == 422
        body = huge.json()
        assert "demasiado grande para el visor" in body["error"] and "partisim animate" in body["error"]
        assert integer(VIEW_MAX_WORK) in body["error"]  # grouped, as every number a person reads

        for payload, text in (
            (b"{no es json", "el cuerpo debe ser JSON"),
            (b"[1, 2]", "el cuerpo debe ser un objeto JSON"),
        ):
            answer = client.post("/api/frames", content=payload, headers={"Content-Type": "application/json"})
            assert answer.status_code == 422 and text in answer.json()["error"]
        bad_param = client.post("/api/frames", json={"params": {"NUM_PARTICULAS": 0}})
        assert bad_param.status_code == 422 and bad_param.json()["field"] == "NUM_PARTICULAS"
        bad_engine = client.post("/api/frames", json={"params": {}, "benchmark": "Cython"})
        assert bad_engine.status_code == 422 and "benchmark desconocido" in bad_engine.json()["error"]
