#!/usr/bin/env python3
"""Suite de pruebas de comunicación: python test_communication.py [--config RUTA] [--quick]
(= partisim check). Código de salida 0 solo si todos los workers configurados pasan."""

import sys
from pathlib import Path

try:
    from partisim.cli import main
except ModuleNotFoundError:  # run from an unpacked tree without `pip install`
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))
    from partisim.cli import main

if __name__ == "__main__":
    sys.exit(main(["check", *sys.argv[1:]]))
