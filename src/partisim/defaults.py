"""What partisim uses when told nothing: the workers' configuration file, the address
of ``partisim serve`` and the simulation image. Plain constants, so the command-line
parser can name them in its help without importing what uses them."""

from __future__ import annotations

import os

__all__ = ["DEFAULT_CONFIG_PATH", "DEFAULT_SERVER", "SIM_IMAGE", "default_server"]

DEFAULT_CONFIG_PATH = "config_workers.json"

#: where the clients of ``partisim serve`` look for it
DEFAULT_SERVER = "http://127.0.0.1:8000"

#: the image a worker's docker runner starts for each task
SIM_IMAGE = "particle-simulation:latest"


def default_server() -> str:
    """``PARTISIM_SERVER`` if set, else the local default."""
    return os.environ.get("PARTISIM_SERVER") or DEFAULT_SERVER
