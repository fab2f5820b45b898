"""Suites that need parts a fresh machine lacks (Chromium, a Docker engine) skip with a
clear reason there; `PARTISIM_REQUIRE=browser,docker,...` (what `.ci/run` exports) turns
those skips into failures, so CI still proves both suites."""

from __future__ import annotations

import os
import shutil

import pytest

__all__ = ["required", "unavailable", "chromium_path"]


def required(kind: str) -> bool:
    wanted = {k.strip() for k in os.environ.get("PARTISIM_REQUIRE", "").split(",") if k.strip()}
    return kind in wanted


def unavailable(kind: str, reason: str) -> None:
    """Skip the test because ``reason`` -- or fail it when ``kind`` is required."""
    if required(kind):
        pytest.fail(f"{reason} (PARTISIM_REQUIRE incluye {kind!r}: esta suite es obligatoria aquí)")
    pytest.skip(reason)


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
