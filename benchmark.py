#!/usr/bin/env python3
"""Benchmark de la simulación en Python puro: python benchmark.py [N PASOS SEMILLA]."""

import sys

from partisim.cli.legacy import main

if __name__ == "__main__":
    sys.exit(main("python", prog="benchmark.py"))
