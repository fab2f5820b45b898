#!/usr/bin/env python3
"""Benchmark de la simulación en Cython: python benchmark_cython.py [N PASOS SEMILLA]."""

import sys

from partisim.cli.legacy import main

if __name__ == "__main__":
    sys.exit(main("cython", prog="benchmark_cython.py"))
