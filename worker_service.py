#!/usr/bin/env python3
"""Servicio worker: python worker_service.py [--host H] [--port P] [...] (= partisim worker).

Mismas opciones y variables de entorno (WORKER_ID, PARTISIM_PORT, PARTISIM_TOKEN, ...)
que `partisim worker --help`.
"""

import sys
from pathlib import Path

try:
    from partisim.cli import main
except ModuleNotFoundError:  # run from an unpacked tree without `pip install`
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))
    from partisim.cli import main

if __name__ == "__main__":
    sys.exit(main(["worker", *sys.argv[1:]]))
