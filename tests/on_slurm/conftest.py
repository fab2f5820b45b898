"""The `slurm` suite runs `partisim serve --dask slurm` against a real single-node SLURM
(Debian's slurmctld, slurmd and munge, on 127.0.0.1): no fake sbatch, no mocks.

`.ci/run` brings SLURM up with `.ci/slurm.sh` and requires the suite
(`PARTISIM_REQUIRE=…,slurm`); then, if `sinfo` does not show the node, this conftest runs
that script itself (as root), and a SLURM that cannot start fails the suite. Without the
requirement (a plain `pytest` on a fresh machine) a missing SLURM skips the suite with
the reason.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from helpers.requirements import start_with_script, unavailable

REPO = Path(__file__).resolve().parents[2]
SLURM_SH = REPO / ".ci" / "slurm.sh"

_state: dict[str, str | None] = {"skip_reason": None, "node": None}


def node_state() -> str | None:
    """The node's state as `sinfo` says it (idle, mix, alloc, down…), None without SLURM."""
    if shutil.which("sinfo") is None:
        return None
    try:
        done = subprocess.run(["sinfo", "-h", "-o", "%t %c"], capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    line = done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else ""
    return line or None


def _usable(state: str | None) -> bool:
    return state is not None and state.split()[0].rstrip("*~#") in ("idle", "mix", "alloc")


def _start_slurm() -> str | None:
    """None when SLURM answers with a usable node (started here only when required), else why not."""
    return start_with_script(
        "slurm",
        SLURM_SH,
        ready=lambda: _usable(node_state()),
        missing=(
            "no responde un SLURM con un nodo disponible (sinfo); arránquelo con "
            "`sudo bash .ci/slurm.sh` (o use PARTISIM_REQUIRE=slurm)"
        ),
        not_root="SLURM no responde y no somos root para arrancarlo con .ci/slurm.sh",
    )


@pytest.fixture(scope="session")
def slurm_node() -> str:
    """`sinfo`'s line for the node; skips the suite (or fails it, when required) without SLURM."""
    if _state["node"] is None and _state["skip_reason"] is None:
        try:
            import dask_jobqueue  # noqa: F401
        except ImportError:
            _state["skip_reason"] = "dask-jobqueue no está instalado: pip install -e '.[test]'"
        else:
            _state["skip_reason"] = _start_slurm()
            if _state["skip_reason"] is None:
                _state["node"] = node_state()
    if _state["skip_reason"]:
        unavailable("slurm", f"no hay SLURM: {_state['skip_reason']}")
    return _state["node"] or "?"


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if _state["skip_reason"]:
        terminalreporter.write_sep("!", "SLURM SUITE SKIPPED: no SLURM could be started", red=True, bold=True)
        terminalreporter.write_line(_state["skip_reason"], red=True)
    elif _state["node"]:
        terminalreporter.write_line(f"slurm suite: real SLURM, node {_state['node']}")
