"""Fixtures of the queue tests (helpers live in queue_support.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.processes import HOST_A, HOST_B
from queue_support import Cluster


@pytest.fixture
def cluster(tmp_path: Path):
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.stop_all()


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Two honest workers (capacity 2) shared by the tests of a module that do not kill them."""
    c = Cluster(tmp_path_factory.mktemp("pair"))
    try:
        a = c.worker(HOST_A, "worker-a", capacity=2)
        b = c.worker(HOST_B, "worker-b", capacity=2)
        yield a, b
    finally:
        c.stop_all()
