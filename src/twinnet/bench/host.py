"""The record of the machine the figures come from: CPU, vector extensions, BLAS kernels, threads, versions."""

from __future__ import annotations

import os

#: Vector extensions looked for, as Linux's ``/proc/cpuinfo`` names them (x86 ``flags``, Arm
#: ``Features``): those present are recorded, so that figures from an AVX2 machine and an AVX-512
#: one are told apart.
VECTOR_EXTENSIONS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512dq", "avx512cd",
                     "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16",
                     "amx_int8", "asimd", "sve", "sve2")
# NumPy's names of the same extensions (its run-time dispatch), read where /proc/cpuinfo is not
_NUMPY_FEATURES = {"sse4_2": "SSE42", "avx": "AVX", "avx2": "AVX2", "fma": "FMA3", "f16c": "F16C",
                   "avx512f": "AVX512F", "avx512dq": "AVX512DQ", "avx512cd": "AVX512CD", "avx512bw": "AVX512BW",
                   "avx512vl": "AVX512VL", "avx512_vnni": "AVX512VNNI", "avx512_fp16": "AVX512FP16",
                   "asimd": "ASIMD", "sve": "SVE"}
_CPUINFO = "/proc/cpuinfo"
#: Environment variables that change the threads or the kernels of a library, recorded when set.
LIBRARY_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                     "TF_NUM_INTEROP_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_VERBOSE",
                     "MKL_ENABLE_INSTRUCTIONS", "MKL_DEBUG_CPU_TYPE", "TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA",
                     "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "NPY_DISABLE_CPU_FEATURES", "OMP_WAIT_POLICY",
                     "GOMP_SPINCOUNT", "KMP_BLOCKTIME")

#: OpenBLAS's x86 kernels (its core names, threadpoolctl's ``architecture``) and the widest vector
#: extension each uses, as :data:`VECTOR_EXTENSIONS` names it; those not here are not judged.
OPENBLAS_KERNELS = {"SapphireRapids": "avx512f", "Cooperlake": "avx512f", "SkylakeX": "avx512f",
                    "Haswell": "avx2", "Zen": "avx2", "Excavator": "avx2", "Sandybridge": "avx",
                    "Bulldozer": "avx", "Piledriver": "avx", "Steamroller": "avx", "Nehalem": "sse4_2"}
#: The extensions above, widest first, each with the kernel of OpenBLAS that uses it.
KERNEL_FOR = {"avx512f": "SkylakeX", "avx2": "Haswell", "avx": "Sandybridge", "sse4_2": "Nehalem"}
_EXTENSION_NAMES = {"avx512f": "AVX-512", "avx2": "AVX2", "avx": "AVX", "sse4_2": "SSE4.2"}


def kernel_note(vector_extensions, blas, variables):
    """One line when NumPy's OpenBLAS runs older kernels than the CPU supports, saying why and what to do; else None.

    Parameters
    ----------
    vector_extensions : list of str
        The CPU's (:func:`cpu_record`).
    blas : dict or None
        NumPy's BLAS as :func:`machine` records it (``internal_api``, ``version``, ``architecture``).
    variables : dict
        The :data:`LIBRARY_VARIABLES` set in the environment.
    """
    if not blas or blas.get("internal_api") != "openblas" or blas.get("architecture") not in OPENBLAS_KERNELS:
        return None
    kernel = blas["architecture"]
    ladder = list(KERNEL_FOR)
    best = next((e for e in ladder if e in vector_extensions), None)
    used = OPENBLAS_KERNELS[kernel]
    if best is None or ladder.index(best) >= ladder.index(used):
        return None
    older = (f"NumPy's OpenBLAS runs its {kernel} kernels ({_EXTENSION_NAMES[used]}) on a CPU with "
             f"{_EXTENSION_NAMES[best]}")
    forced = variables.get("OPENBLAS_CORETYPE")
    if forced:
        return (f"{older}: OPENBLAS_CORETYPE={forced} forces them; unset it for the run "
                f"(env -u OPENBLAS_CORETYPE twinnet ...) to let OpenBLAS pick this CPU's own")
    return (f"{older}: OpenBLAS {blas.get('version')} does not know this CPU; a newer NumPy may, "
            f"or OPENBLAS_CORETYPE={KERNEL_FOR[best]} forces its {_EXTENSION_NAMES[best]} kernels")


def cpu_record():
    """The CPU: ``cpu`` (its model name), ``cpu_id`` (vendor, family, model, stepping, where Linux
    says them: the model name of a virtual machine may be only ``AMD EPYC``) and
    ``vector_extensions``, those of :data:`VECTOR_EXTENSIONS` it has, with ``vector_extensions_from``:
    ``/proc/cpuinfo``, or ``numpy`` (its run-time CPU dispatch, which knows fewer of them) elsewhere.
    """
    from twinnet.lab.environment import machine as host

    fields_ = {}
    try:
        with open(_CPUINFO, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():  # the first CPU's block is enough
                    break
                key, _, value = line.partition(":")
                fields_.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    flags = set((fields_.get("flags") or fields_.get("Features") or "").split())
    if flags:
        present, source = [e for e in VECTOR_EXTENSIONS if e in flags], _CPUINFO
    else:
        present, source = _numpy_features(), "numpy"
    cpu_id = " ".join(f"{name} {fields_[key]}" for name, key in
                      [("", "vendor_id"), ("family", "cpu family"), ("model", "model"), ("stepping", "stepping"),
                       ("implementer", "CPU implementer"), ("part", "CPU part")] if key in fields_).strip()
    return {"cpu": fields_.get("model name") or host()["cpu"], "cpu_id": cpu_id or None,
            "vector_extensions": present, "vector_extensions_from": source}


def _numpy_features():
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # NumPy 1
        try:
            from numpy.core._multiarray_umath import __cpu_features__ as features
        except ImportError:
            return []
    return [e for e in VECTOR_EXTENSIONS if features.get(_NUMPY_FEATURES.get(e))]


def thread_pools():
    """The BLAS and OpenMP libraries this process has loaded (threadpoolctl's view): each with the
    package that brought it, ``user_api``, ``internal_api``, ``version``, ``architecture`` (the
    CPU kernels), ``num_threads`` and ``threading_layer``."""
    from threadpoolctl import threadpool_info

    return [{"package": _package(lib.get("filepath", "")),
             **{key: lib.get(key) for key in ("user_api", "internal_api", "version", "architecture",
                                              "num_threads", "threading_layer")}}
            for lib in threadpool_info()]


def machine(results=()):
    """The machine and libraries the figures come from, as a JSON-ready dict.

    :func:`twinnet.lab.environment.machine`'s record (``cpus``, ``usable_cpus``, ``platform``, ...)
    with :func:`cpu_record`'s; ``numpy_blas``, the BLAS behind ``np.dot`` (``internal_api``,
    ``version``, ``architecture``: its kernels, ``num_threads`` by default); ``thread_pools`` of
    this process (:func:`thread_pools`); ``library_variables``, those of :data:`LIBRARY_VARIABLES`
    set in this process's environment (the bench's children get their thread variables from
    ``threads``); ``kernel_note`` (:func:`kernel_note`); and ``versions``, this process's, with those
    the children of ``results`` (:func:`run_workload`'s) report: TensorFlow's and PyTorch's are loaded only there.
    """
    from twinnet.lab.environment import environment

    record = environment()
    pools = thread_pools()
    numpy_blas = next((lib for lib in pools if lib["user_api"] == "blas" and lib["package"] == "numpy"),
                      next((lib for lib in pools if lib["user_api"] == "blas"), None))
    versions = dict(record["versions"])
    for result in results:
        for row in [*result["engines"], *result["rooflines"]]:
            versions.update((row.get("process") or {}).get("versions", {}))
    cpu = cpu_record()
    variables = {key: os.environ[key] for key in LIBRARY_VARIABLES if key in os.environ}
    return {**record["machine"], **cpu, "numpy_blas": numpy_blas, "thread_pools": pools,
            "library_variables": variables, "versions": versions,
            "kernel_note": kernel_note(cpu["vector_extensions"], numpy_blas, variables)}


def _package(filepath):
    # .../site-packages/numpy.libs/libscipy_openblas64_-....so -> "numpy"
    parts = filepath.replace("\\", "/").split("/")
    if "site-packages" in parts and parts.index("site-packages") + 1 < len(parts):
        return parts[parts.index("site-packages") + 1].removesuffix(".libs")
    return parts[-1]
