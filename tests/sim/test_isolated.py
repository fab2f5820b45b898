"""partisim.sim.isolated: one simulation in a child process that really dies at its
deadline or on request (what a Dask worker relies on to be free again)."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from helpers.processes import pid_gone, wait_for

from partisim.sim import ENGINES, parse_params, simulate
from partisim.sim.isolated import run_isolated, running_pid, stop

#: minutes of work for the python engine: only a kill ends it early
ENDLESS = parse_params({"NUM_PARTICULAS": 3000, "NUM_PASOS": 1_000_000})


@pytest.mark.parametrize("engine", ENGINES)
def test_the_child_gives_the_same_result_as_the_engine_here(engine: str) -> None:
    params = parse_params({"NUM_PARTICULAS": 40, "NUM_PASOS": 60, "SEMILLA": 7})
    run = run_isolated(params, engine, timeout=60)
    assert run.status == "success", run.message
    here = simulate(params, engine)
    assert run.result is not None
    assert (run.result.checksum, run.result.particle_collisions, run.result.wall_collisions) == (
        here.checksum,
        here.particle_collisions,
        here.wall_collisions,
    )


def test_the_deadline_kills_the_child() -> None:
    run = run_isolated(ENDLESS, "python", timeout=0.5)
    assert run.status == "timeout"
    assert "tiempo límite de 0.5 s" in run.message
    assert run.pid is not None and pid_gone(run.pid)  # reaped: the computation is over
    # and the next run is served at once by a fresh child
    again = run_isolated(parse_params({"NUM_PARTICULAS": 10, "NUM_PASOS": 5}), "python", timeout=60)
    assert again.status == "success" and again.pid != run.pid


def test_stop_from_another_thread_kills_the_child() -> None:
    out: list = []
    worker = threading.Thread(target=lambda: out.append(run_isolated(ENDLESS, "python", 600, key="k-stop")))
    worker.start()
    pid = wait_for(lambda: running_pid("k-stop"), 60, "the run to start")
    assert stop("k-stop")
    worker.join(30)
    assert not worker.is_alive()
    assert out[0].status == "cancelled" and out[0].pid == pid
    assert pid_gone(pid)
    assert not stop("k-stop")  # nothing runs under that key any more


def test_should_stop_is_obeyed() -> None:
    asked = threading.Event()
    out: list = []
    worker = threading.Thread(
        target=lambda: out.append(run_isolated(ENDLESS, "python", 600, key="k-stop", should_stop=asked.is_set))
    )
    worker.start()
    # asked to stop once the computation is running (a stop before it starts keeps the child clean)
    wait_for(lambda: running_pid("k-stop"), 60, "the run to start")
    asked.set()
    worker.join(30)
    assert out and out[0].status == "cancelled"
    assert out[0].pid is not None and pid_gone(out[0].pid)


def test_a_crashed_child_is_a_failed_run_and_is_replaced() -> None:
    out: list = []
    worker = threading.Thread(target=lambda: out.append(run_isolated(ENDLESS, "python", 600, key="k-crash")))
    worker.start()
    pid = wait_for(lambda: running_pid("k-crash"), 60, "the run to start")
    subprocess.run(["kill", "-9", str(pid)], check=True)
    worker.join(30)
    assert out[0].status == "failed" and "SIGKILL" in out[0].message
    again = run_isolated(parse_params({"NUM_PARTICULAS": 10, "NUM_PASOS": 5}), "cython", timeout=60)
    assert again.status == "success"


def test_invalid_engine_is_refused_without_losing_the_child() -> None:
    run = run_isolated(parse_params({}), "fortran", timeout=60)
    assert run.status == "invalid" and "benchmark desconocido" in run.message
    assert run.pid is not None and not pid_gone(run.pid)  # kept warm for the next run


def test_the_child_dies_with_its_parent(tmp_path) -> None:
    """kill -9 of the process that asked for the run: its child exits too."""
    script = (
        "import threading, sys\n"
        "from partisim.sim import parse_params\n"
        "from partisim.sim.isolated import run_isolated, running_pid\n"
        "p = parse_params({'NUM_PARTICULAS': 3000, 'NUM_PASOS': 1000000})\n"
        "threading.Thread(target=run_isolated, args=(p, 'python', 600), kwargs={'key': 'x'}, daemon=True).start()\n"
        "import time\n"
        "while running_pid('x') is None: time.sleep(0.01)\n"
        "print(running_pid('x'), flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert not pid_gone(child)
    finally:
        parent.kill()
        parent.wait(10)
    wait_for(lambda: pid_gone(child), 10, "the orphaned child to exit")
