"""The replay window: a task_id seen before is answered from its record, marked as a
replay, only within ``--replay-window`` minutes of its run; past the window the same
work runs (and is measured) again; the same id with other work stays a 409."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from helpers.processes import wait_for
from helpers.workers import TINY, RunningWorker, start_worker

from partisim.worker.settings import WorkerSettings


def _body(task_id: str, seed: int = 1) -> dict[str, object]:
    return {"benchmark": "cython", "params": {**TINY, "SEMILLA": seed}, "task_id": task_id}


@pytest.fixture(scope="module")
def short_window() -> Iterator[RunningWorker]:
    """A window of 0.01 min (0.6 s): long enough for an immediate retry, short for a test."""
    w = start_worker("127.0.0.1", None, "--capacity", "2", "--replay-window", "0.01")
    yield w
    w.stop()


def _successes(client: httpx.Client) -> int:
    """Simulations this worker completed (its counter: a replay adds none)."""
    return int(client.get("/status").json()["completed"])


def test_default_window_is_minutes() -> None:
    assert 1.0 <= WorkerSettings().replay_window <= 60.0


def test_a_replay_inside_the_window_is_marked(short_window: RunningWorker) -> None:
    with short_window.client() as client:
        task_id = f"dentro-{uuid.uuid4().hex[:8]}"
        first = client.post("/execute", json=_body(task_id))
        assert first.status_code == 200 and first.json()["replayed"] is False
        again = client.post("/execute", json=_body(task_id))
        if not again.json()["replayed"]:
            pytest.skip("la máquina tardó más que la ventana de 0,6 s entre dos peticiones")
        answer = again.json()
        assert answer["execution_time"] == first.json()["execution_time"]  # the first run's measurement
        assert answer["first_run_at"] and again.headers["x-partisim-replayed"] == answer["first_run_at"]


def test_past_the_window_the_same_id_runs_again(short_window: RunningWorker) -> None:
    with short_window.client() as client:
        task_id = f"fuera-{uuid.uuid4().hex[:8]}"
        other_id = f"otro-{uuid.uuid4().hex[:8]}"
        assert client.post("/execute", json=_body(other_id)).status_code == 200  # finishes first
        first = client.post("/execute", json=_body(task_id))
        assert first.status_code == 200
        done = _successes(client)

        def ran_again() -> httpx.Response | None:
            r = client.post("/execute", json=_body(task_id))
            assert r.status_code == 200
            return r if not r.json()["replayed"] else None

        fresh = wait_for(ran_again, 30, "the window to pass")
        assert fresh.json()["timestamp"] != first.json()["timestamp"]  # a new run, a new measurement
        assert "x-partisim-replayed" not in fresh.headers
        assert _successes(client) == done + 1
        # the same id with another body is still a conflict, inside the window or past it
        inside = client.post("/execute", json=_body(task_id, seed=2))
        assert inside.status_code == 409 and task_id in inside.json()["error"]
        past = client.post("/execute", json=_body(other_id, seed=2))  # its run is older than task_id's first
        assert past.status_code == 409 and other_id in past.json()["error"]


def test_the_window_is_validated() -> None:
    from partisim.worker.settings import OPTIONS

    option = next(o for o in OPTIONS if o.flag == "--replay-window")
    with pytest.raises(ValueError, match="entre 0"):
        option.parse("-1")
    assert option.parse("0") == 0.0 and option.parse("15") == 15.0


def test_harmless_extras_of_their_scripts_are_accepted(short_window: RunningWorker) -> None:
    """Extra priority/description, numbers sent as text and integer ids change no result."""
    with short_window.client() as client:
        theirs = client.post(
            "/execute",
            json={
                "benchmark": "benchmark_cython.py",
                "params": {"NUM_PARTICULAS": "40", "NUM_PASOS": "20", "SEMILLA": 9, "DT": "0.1"},
                "task_id": 4242,
                "priority": "high",
                "description": "de su archivo",
            },
        )
        ours = client.post(
            "/execute", json={"benchmark": "cython", "params": {"NUM_PARTICULAS": 40, "NUM_PASOS": 20, "SEMILLA": 9}}
        )
        assert theirs.status_code == ours.status_code == 200, theirs.text
        assert theirs.json()["task_id"] == "4242" and theirs.json()["params"]["NUM_PARTICULAS"] == 40
        assert theirs.json()["checksum"] == ours.json()["checksum"]
        bad = client.post("/execute", json={"benchmark": "cython", "params": {"NUM_PARTICULAS": "cuarenta"}})
        assert bad.status_code == 422 and "NUM_PARTICULAS" in bad.json()["error"]
