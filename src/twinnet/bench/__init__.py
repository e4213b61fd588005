"""The benchmark behind ``twinnet bench``: every engine on one workload, against the roofline.

Each engine of :data:`twinnet.lab.ENGINES` trains the same network, from the same data and initial
weights, by full-batch gradient descent, in a fresh process of its own; beside them, the *roofline*:
the epoch's matrix products alone, each in the fastest layout each library offers, which no engine
can beat. Also the peak memory of ``Network.fit``, and where its epoch's time goes. How to read the
figures: the README's Benchmarks section.

Imports (``a <- b``: b imports a; ``memory``, ``host`` and ``processes`` import none of the others):
``workloads`` <- ``gemm``, ``profiling``; ``workloads, gemm, memory, host`` <- ``worker`` (a child's
entry point, started by name); ``workloads, gemm, processes, profiling`` <- ``turns`` (:func:`run_workload`).

Examples
--------
>>> from twinnet.bench import Workload, run_workload
>>> from twinnet.lab import RunConfig
>>> tiny = Workload("tiny", RunConfig(data="gaussian", layers=(8, 4, 1), epochs=3), n_train=64)
>>> result = run_workload(tiny, engines=["numpy", "functional"], rooflines=["numpy"], repeats=1)
>>> [row["engine"] for row in result["engines"]], result["roofline"]["library"]
(['numpy', 'functional'], 'numpy')
>>> result["flops_per_epoch"] == 2 * 64 * (2 * (8 * 4 + 4 * 1) + 4 * 1)
True
"""

from twinnet.bench.gemm import ROOFLINES, roofline
from twinnet.bench.host import cpu_record, machine
from twinnet.bench.memory import fit_memory
from twinnet.bench.profiling import STAGES, profile
from twinnet.bench.turns import run_workload
from twinnet.bench.workloads import (ENGINE_ORDER, WORKLOADS, Workload, flops_per_epoch, load_data, products,
                                     resolve_threads)

__all__ = [
    "ENGINE_ORDER",
    "ROOFLINES",
    "STAGES",
    "WORKLOADS",
    "Workload",
    "cpu_record",
    "fit_memory",
    "flops_per_epoch",
    "load_data",
    "machine",
    "products",
    "profile",
    "resolve_threads",
    "roofline",
    "run_workload",
]
