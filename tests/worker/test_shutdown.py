"""SIGTERM: stop accepting, let running tasks finish within the grace period, then kill them; exit 0."""

from __future__ import annotations

import concurrent.futures as cf

import httpx
from helpers.processes import pid_gone, wait_for
from helpers.workers import ENDLESS

# ~1 s in pure Python here: long enough to be running when SIGTERM comes, short enough to finish
SHORT = {"NUM_PARTICULAS": 200, "NUM_PASOS": 1500, "SEMILLA": 5}


def test_running_task_finishes_within_grace(fresh_worker) -> None:
    w = fresh_worker("--capacity", "1", "--grace", "60")
    client = httpx.Client(base_url=w.url, trust_env=False, timeout=120)
    with cf.ThreadPoolExecutor(1) as pool:
        fut = pool.submit(client.post, "/execute", json={"benchmark": "python", "params": SHORT, "task_id": "last"})
        wait_for(lambda: client.get("/tasks/last").json()["status"] in ("running", "success"), 30, "task to start")
        w.proc.send_signal(15)
        r = fut.result(timeout=120)
        assert r.status_code == 200 and r.json()["status"] == "success"
        assert w.proc.wait(timeout=60) == 0
    client.close()
    # after the signal, the worker refused new work: its port is closed
    try:
        httpx.get(w.url + "/ping", trust_env=False, timeout=2)
        raise AssertionError("the worker still answers after SIGTERM")
    except httpx.ConnectError:
        pass
    log = w.log()
    assert "Señal de parada recibida" in log and "detenido" in log and "Traceback" not in log


def test_task_past_grace_is_killed_and_exit_is_zero(fresh_worker) -> None:
    w = fresh_worker("--capacity", "2", "--grace", "1")
    with httpx.Client(base_url=w.url, trust_env=False, timeout=30) as client:
        r = client.post("/tasks", json={"benchmark": "python", "params": ENDLESS, "task_id": "too-long"})
        assert r.status_code == 202
        queued = client.post("/tasks", json={"benchmark": "python", "params": ENDLESS, "task_id": "also-long"})
        assert queued.status_code == 202
        pid = wait_for(lambda: client.get("/tasks/too-long").json()["pid"], 30, "task to start")
        other = wait_for(lambda: client.get("/tasks/also-long").json()["pid"], 30, "task to start")
    w.proc.send_signal(15)
    # grace of 1 s, not the minutes the tasks would need: the deadline here is a bound, not a measurement
    assert w.proc.wait(timeout=30) == 0
    wait_for(lambda: pid_gone(pid) and pid_gone(other), 10, "task processes to be killed")
    log = w.log()
    assert "no terminaron a tiempo" in log and "Traceback" not in log


def test_queued_tasks_do_not_start_after_sigterm(fresh_worker) -> None:
    w = fresh_worker("--capacity", "1", "--grace", "1")
    with httpx.Client(base_url=w.url, trust_env=False, timeout=30) as client:
        client.post("/tasks", json={"benchmark": "python", "params": ENDLESS, "task_id": "runner"})
        wait_for(lambda: client.get("/tasks/runner").json()["status"] == "running", 30, "task to start")
        r = client.post("/tasks", json={"benchmark": "cython", "params": SHORT, "task_id": "waiting"})
        assert r.json()["status"] == "queued"
    w.proc.send_signal(15)
    assert w.proc.wait(timeout=30) == 0
    log = w.log()
    assert "tarea=waiting" in log  # it was accepted ...
    assert "tarea waiting: cancelled (el worker se detuvo antes de ejecutar la tarea)" in log  # ... never run
    assert "tarea runner: cancelled" in log


def test_sigkill_of_worker_leaves_no_process_behind(fresh_worker) -> None:
    """kill -9 of the worker (a machine dying): its task processes and helpers go too, not minutes later."""
    import subprocess

    w = fresh_worker("--capacity", "2")
    with httpx.Client(base_url=w.url, trust_env=False, timeout=30) as client:
        client.post("/tasks", json={"benchmark": "python", "params": ENDLESS, "task_id": "orphan"})
        pid = wait_for(lambda: client.get("/tasks/orphan").json()["pid"], 30, "task to start")
    helpers = subprocess.run(["pgrep", "-P", str(w.pid)], capture_output=True, text=True).stdout.split()
    assert helpers  # the fork server (and resource tracker) run beside the worker
    w.kill()
    wait_for(
        lambda: pid_gone(pid) and all(pid_gone(int(p)) for p in helpers),
        20,
        "the task process and the worker's helper processes to exit",
    )


def test_second_signal_stops_without_waiting_for_grace(fresh_worker) -> None:
    w = fresh_worker("--capacity", "1", "--grace", "600")
    with httpx.Client(base_url=w.url, trust_env=False, timeout=30) as client:
        client.post("/tasks", json={"benchmark": "python", "params": ENDLESS, "task_id": "stubborn"})
        pid = wait_for(lambda: client.get("/tasks/stubborn").json()["pid"], 30, "task to start")
    w.proc.send_signal(15)
    wait_for(lambda: "Señal de parada recibida" in w.log(), 30, "first signal to be seen")
    assert w.alive()  # waiting for the task, as the 600 s grace allows
    w.proc.send_signal(15)
    assert w.proc.wait(timeout=30) == 0
    wait_for(lambda: pid_gone(pid), 10, "task process to be killed")
    assert "Segunda señal de parada" in w.log()
