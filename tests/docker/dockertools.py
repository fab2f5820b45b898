"""Small helpers of the docker suite around the real docker CLI and the partisim CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

__all__ = [
    "docker",
    "inspect",
    "labelled",
    "partisim_cli",
    "steps_from_cache",
    "BASE_IMAGE",
    "SIM_IMAGE",
    "WORKER_IMAGE",
    "REPO",
]

REPO = Path(__file__).resolve().parents[2]
BASE_IMAGE = "partisim-base:bookworm"
SIM_IMAGE = "particle-simulation:latest"
WORKER_IMAGE = "partisim-worker:latest"


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real docker CLI; on failure (with check) an AssertionError with its output."""
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def inspect(obj: str) -> dict:
    return json.loads(docker("inspect", obj).stdout)[0]


def labelled(label: str, *, all_states: bool = True) -> list[str]:
    """Names of the containers carrying `label` (key or key=value)."""
    args = ["ps", "--format", "{{.Names}}", "--filter", f"label={label}"]
    if all_states:
        args.insert(1, "-a")
    return docker(*args, timeout=30).stdout.split()


def partisim_cli(*args: str, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTISIM_")}
    return subprocess.run(
        [sys.executable, "-m", "partisim", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=env,
        check=False,
    )


def steps_from_cache(output: str) -> list[tuple[int, int]]:
    """(cached, total) per image from `partisim images build`'s summary lines."""
    return [(int(a), int(b)) for a, b in re.findall(r"\((\d+) de (\d+) pasos desde la caché\)", output)]
