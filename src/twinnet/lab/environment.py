"""The one record of where figures come from: the machine and the libraries' versions.

Used by ``compare``'s ``results.json``, each sweep row and the bench's JSON. Nothing is imported
for it: the versions are those of the libraries this process has loaded by the time it is called
(a Keras run loads TensorFlow, a NumPy run does not).
"""

from __future__ import annotations

import functools
import os
import platform
import socket
import sys

__all__ = ["LIBRARIES", "environment", "machine", "versions"]

#: Libraries whose versions are recorded when loaded.
LIBRARIES = ("numpy", "scipy", "sklearn", "tensorflow", "keras", "torch")


def versions():
    """Python's, twinnet's and every loaded library of :data:`LIBRARIES`'s version."""
    import twinnet

    found = {"python": platform.python_version(), "twinnet": twinnet.__version__}
    for module in LIBRARIES:
        if module in sys.modules:
            found[module] = getattr(sys.modules[module], "__version__", "?")
    return found


@functools.cache  # the machine does not change during a process
def _machine():
    from threadpoolctl import threadpool_info

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    blas = sorted({f"{lib.get('internal_api')} {lib.get('version')}" for lib in threadpool_info()
                   if lib.get("user_api") == "blas"})
    return {"host": socket.gethostname(), "platform": platform.platform(), "processor": platform.machine(),
            "cpu": cpu, "cpus": os.cpu_count(), "usable_cpus": usable, "blas": blas}


def machine():
    """The host, platform, CPU model, CPU counts (all, and usable by this process) and BLAS."""
    return dict(_machine())


def environment():
    """``{"machine": machine(), "versions": versions()}``."""
    return {"machine": machine(), "versions": versions()}
