#!/usr/bin/env python3
"""Orquestador interactivo: python orchestrator.py [--config RUTA] (= partisim orchestrator)."""

import sys
from pathlib import Path

try:
    from partisim.cli import main
except ModuleNotFoundError:  # run from an unpacked tree without `pip install`
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))
    from partisim.cli import main

if __name__ == "__main__":
    sys.exit(main(["orchestrator", *sys.argv[1:]]))
