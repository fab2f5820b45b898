"""Fixtures for the dashboard tests: real workers and a real `partisim serve`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dash_support import Fleet, start_fleet, stop_fleet
from helpers.processes import HOST_A, HOST_B


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    """Two real workers (worker-01 on 127.0.0.93, worker-02 on 127.0.0.155) and serve."""
    f = start_fleet(tmp_path, {"worker-01": HOST_A, "worker-02": HOST_B})
    yield f
    stop_fleet(f)


@pytest.fixture(scope="module")
def small_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """One real worker and serve, shared by the API tests of a module."""
    f = start_fleet(tmp_path_factory.mktemp("small-fleet"), {"worker-01": HOST_A})
    yield f
    stop_fleet(f)
