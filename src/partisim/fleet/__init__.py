"""The fleet of workers as the orchestrator and the workers see it.

`config` reads config_workers.json, `identity` names a worker by its address, `client`
talks to one worker, `health` keeps the fleet's health, `advice` says what to check when
nobody answers. This face re-exports the config and identity names that every side uses.
"""

from partisim.fleet.config import (
    DEFAULT_CONFIG_PATH,
    DEFAULT_SERVER,
    Config,
    DaskKind,
    DaskSettings,
    DaskTarget,
    JobqueueSettings,
    OrchestratorSettings,
    WorkerEntry,
    client_token,
    default_server,
    env_ca_file,
    load_config,
    parse_config,
    parse_dask_target,
    read_token_file,
)
from partisim.fleet.identity import Identity, bound_addresses, fallback_id, local_addresses, resolve_identity

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_SERVER",
    "default_server",
    "read_token_file",
    "client_token",
    "env_ca_file",
    "Config",
    "WorkerEntry",
    "OrchestratorSettings",
    "load_config",
    "parse_config",
    "DaskSettings",
    "JobqueueSettings",
    "DaskTarget",
    "DaskKind",
    "parse_dask_target",
    "Identity",
    "resolve_identity",
    "local_addresses",
    "bound_addresses",
    "fallback_id",
]
