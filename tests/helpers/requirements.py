"""Suites that need parts a fresh machine lacks (Chromium, a Docker engine) skip with a
clear reason there; `PARTISIM_REQUIRE=browser,docker,...` (what `.ci/run` exports) turns
those skips into failures, so CI still proves both suites."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

__all__ = ["required", "unavailable", "chromium_path", "start_with_script"]


def required(kind: str) -> bool:
    wanted = {k.strip() for k in os.environ.get("PARTISIM_REQUIRE", "").split(",") if k.strip()}
    return kind in wanted


def unavailable(kind: str, reason: str) -> None:
    """Skip the test because ``reason`` -- or fail it when ``kind`` is required."""
    if required(kind):
        pytest.fail(f"{reason} (PARTISIM_REQUIRE incluye {kind!r}: esta suite es obligatoria aquí)")
    pytest.skip(reason)


def start_with_script(
    kind: str,
    script: Path,
    *,
    ready: Callable[[], bool],
    started: Callable[[], bool] | None = None,
    missing: str,
    not_root: str,
) -> str | None:
    """None when ``ready()``; else, when the suite ``kind`` is required and we are root, runs
    ``script`` (a `.ci/*.sh`) and gives None when ``started()`` (default ``ready()``) holds
    after it. Otherwise why not: ``missing`` (not required), ``not_root``, or the script's end."""
    if ready():
        return None
    if not required(kind):
        # a plain `pytest` on a fresh machine: say what is missing, do not install anything
        return missing
    if os.geteuid() != 0:
        return not_root
    name = f".ci/{script.name}"
    try:
        done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=900, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{name} no terminó: {exc}"
    if done.returncode != 0 or not (started or ready)():
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-8:])
        return f"{name} falló (código {done.returncode}):\n{tail}"
    return None


def chromium_path() -> str:
    """The Chromium to drive: ``PARTISIM_CHROMIUM`` (a path or a command), default `chromium` on PATH."""
    wanted = os.environ.get("PARTISIM_CHROMIUM") or "chromium"
    found = shutil.which(wanted)
    if found is None:
        unavailable(
            "browser",
            f"no hay Chromium ({wanted!r} no está en el PATH): instálelo con "
            "`apt-get install chromium` o indique su ruta en PARTISIM_CHROMIUM",
        )
    return str(found)
