"""What every bench prints beside its figures: the machine, its load, and
nearest-rank percentiles. Imported by the benches (run as scripts from the
repository root, so bench/ is on sys.path)."""

from __future__ import annotations

import os
import platform

import numpy as np
from threadpoolctl import threadpool_info

from cnnviz.engine.parallel import usable_cores


def cpu_description() -> str:
    """CPU model and the vector extensions that decide BLAS's kernels."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model in ("", platform.machine()):
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    vec = ", ".join(f for f in ("avx512f", "avx2") if f in flags) or "neither avx2 nor avx512f"
    blas = "; ".join(f"{i['internal_api']} {i.get('version')} ({i.get('architecture')} kernels)"
                     for i in threadpool_info() if i["user_api"] == "blas")
    return (f"{model} [{vec}], {os.cpu_count()} cores ({usable_cores()} usable); "
            f"numpy {np.__version__}, {blas}")


def load_text() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"


def percentile(values, q):
    """The nearest-rank q-th percentile (a value that was measured)."""
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(q / 100 * (len(values) - 1))))
    return values[k]
