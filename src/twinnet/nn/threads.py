"""How many BLAS threads a pass of ``Network`` gets: one per CPU that no other process is using.

A product split over two BLAS threads waits for both at every block; when another process holds
the core one of them needs, each product waits for the scheduler to give the core back, which
takes milliseconds, for a product of microseconds: on a busy machine, one thread trains
mini-batches several times faster, and full batches up to 15 times (docs/benchmarks.md). So
``fit``, ``predict`` (and the methods built on the forward pass) and ``gradients`` give the BLAS,
for their whole call, as many threads as there are CPUs this process may use less the tasks of
other processes running at that moment (Linux's count, less this process's own threads): all of
them on a quiet machine, as before, one on a busy one; never more than it had.

A call whose products are all small enough that OpenBLAS runs them on one thread anyway
(:data:`SINGLE_THREAD_WORK`) costs nothing: the count is not read. A user who chose the threads
with one of :data:`USER_VARIABLES` keeps exactly them; inside ``threadpoolctl.threadpool_limits``
they are never raised.

The thread count can change the last bits of OpenBLAS's products (float32 ones above all: its
threads split the blocks differently), so a fit started on a busy machine may end some ulps from
the same fit on a quiet one. Set ``OPENBLAS_NUM_THREADS`` for bit-for-bit repeatable large fits.

The PyTorch twin's ``train`` follows the same rule for torch's OpenMP threads (:func:`torch_threads`):
they wait for each other at every parallel region as the BLAS's do, even on a network of a few units
(measured on a busy 2-core machine: mini-batches of 8 took 8 to 16 times longer on two threads than on one).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os

#: ``M K N`` of a matrix product up to which OpenBLAS runs it on one thread, whatever it may use
#: (its ``SMP_THRESHOLD_MIN * GEMM_MULTITHREAD_THRESHOLD``).
SINGLE_THREAD_WORK = 65536 * 4

#: Environment variables by which a user sets the BLAS's threads: when one is set, they are kept.
USER_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def largest_product(rows, layer_dims):
    """``M K N`` of the largest product of a pass over ``rows`` examples: a layer's ``(n_{l-1} + 1) n_l rows``."""
    return rows * max((n_prev + 1) * n for n_prev, n in itertools.pairwise(layer_dims))


def others_running():
    """Tasks of other processes running or ready to run now (Linux), or None where it cannot be read.

    ``/proc/loadavg``'s count of running tasks, less this process's threads in that state (its
    BLAS threads spin for a while after each threaded product).
    """
    try:
        with open("/proc/loadavg", "rb") as f:
            running = int(f.read().split()[3].split(b"/")[0])
        if running <= 1:  # the thread reading it
            return 0
        own = 0
        for task in os.scandir("/proc/self/task"):
            with contextlib.suppress(OSError), open(os.path.join(task.path, "stat"), "rb") as f:
                own += f.read().rpartition(b")")[2].split()[:1] == [b"R"]
    except (OSError, ValueError, IndexError):
        return None
    return max(0, running - own)


def free_cpus():
    """The CPUs this process may use that no other process is running on now; at least 1."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, usable - (others_running() or 0))


@functools.cache
def _blas():
    # found once per process (threadpoolctl looks through every loaded library: milliseconds);
    # setting a controller's threads then takes microseconds
    from threadpoolctl import ThreadpoolController

    return [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]


@contextlib.contextmanager
def _at_most(threads, pools):
    """Within the block, each pool ``(get, set)`` of more than ``threads`` threads lowered to ``threads``."""
    lowered = [(set_, before) for get, set_ in pools if (before := get()) > threads]
    for set_, _ in lowered:
        set_(threads)
    try:
        yield
    finally:
        for set_, before in lowered:
            set_(before)


def _user_chose():
    return any(map(os.environ.get, USER_VARIABLES))


@contextlib.contextmanager
def blas_threads(rows, layer_dims):
    """Within the block, the BLAS threads of a pass over ``rows`` examples (see the module's docstring).

    Parameters
    ----------
    rows : int
        The examples of the pass's largest batch.
    layer_dims : sequence of int
        The network's widths, input first.
    """
    if largest_product(rows, layer_dims) <= SINGLE_THREAD_WORK or _user_chose():
        yield
        return
    with _at_most(free_cpus(), [(lambda lib=lib: lib.num_threads, lib.set_num_threads) for lib in _blas()]):
        yield


@contextlib.contextmanager
def torch_threads(torch):
    """Within the block, torch's threads lowered to :func:`free_cpus` (see the module's docstring).

    Kept as they are when the user set them with one of :data:`USER_VARIABLES`.
    """
    if _user_chose():
        yield
        return
    with _at_most(free_cpus(), [(torch.get_num_threads, torch.set_num_threads)]):
        yield
