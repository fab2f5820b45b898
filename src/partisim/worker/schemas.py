"""Response shapes of the worker API, for /docs and /openapi.json.

Documentation only: handlers build plain dicts (cheaper than validating every
answer), and the tests check the answers against these shapes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

__all__ = ["ErrorOut", "PingOut", "HealthOut", "StatusOut", "ExecuteOut", "TaskOut", "HistoryOut"]


class ErrorOut(BaseModel):
    status: str
    error: str
    task_id: str | None = None


class PingOut(BaseModel):
    status: Literal["active"]
    worker_id: str
    timestamp: str
    message: str


class HealthOut(BaseModel):
    status: Literal["healthy", "unhealthy"]
    worker_id: str
    checks: dict[str, Any]
    timestamp: str


class StatusOut(BaseModel):
    worker_id: str
    address: str
    addresses: list[str]
    version: str
    status: Literal["ready", "busy"]
    accepting: bool
    engines: list[str]
    runner: str | None
    runner_requested: str
    runner_note: str | None
    docker_available: bool
    image_available: bool
    docker_image: str
    docker_version: str | None
    docker_error: str | None
    capacity: int
    running: int
    queued: int
    queue_size: int
    completed: int
    failed: int
    timeouts: int
    cancelled: int
    uptime_s: float
    cpu_count: int | None
    load_avg: list[float] | None
    max_timeout: float
    limits: dict[str, int]
    auth_required: bool
    timestamp: str


class ExecuteOut(BaseModel):
    status: Literal["success"]
    task_id: str
    worker_id: str
    benchmark: str
    engine: str
    params: dict[str, Any]
    particles: int
    steps: int
    seed: int
    execution_time: float
    simulation_time: float
    particle_collisions: int
    wall_collisions: int
    checksum: str
    kinetic_energy: float
    particle_steps_per_s: float
    runner: str
    timestamp: str


class TaskOut(BaseModel):
    task_id: str
    status: Literal["queued", "running", "success", "failed", "timeout", "cancelled"]
    code: int | None
    worker_id: str
    benchmark: str
    engine: str
    params: dict[str, Any]
    timeout: float
    created_at: str
    started_at: str | None
    finished_at: str | None
    execution_time: float | None
    pid: int | None
    container: str | None
    result: ExecuteOut | None
    error: str | None


class HistoryOut(BaseModel):
    worker_id: str
    count: int
    tasks: list[TaskOut]
