"""Fixtures of the Dask suite: a real `dask scheduler` with two single-threaded
`dask worker` processes on 127.0.0.1, shared by the tests of a module that do not kill
them (a test that kills or adds a worker starts its own)."""

from __future__ import annotations

import pytest
from dask_support import Cluster


@pytest.fixture(scope="module")
def dask_pair(tmp_path_factory):
    """(scheduler, [worker w1, worker w2])"""
    c = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        scheduler = c.scheduler()
        yield scheduler, [c.worker(scheduler, "w1"), c.worker(scheduler, "w2")]
    finally:
        c.stop_all()


@pytest.fixture
def procs(tmp_path):
    """Processes started by one test, all gone at its end."""
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.stop_all()
