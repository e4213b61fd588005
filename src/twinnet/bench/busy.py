"""A busy machine on purpose: one process per CPU spinning in a pure Python loop, for ``twinnet bench --busy``.

Users train beside a notebook, a browser, a sweep; the figures of a quiet machine do not show
what a BLAS thread waiting for a core that another process holds costs. :func:`busy` starts the
competing processes and stops them for sure when its block ends, by an error or Ctrl-C too; each
also dies with the process that started it (Linux), however that ends.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys

# SIGINT ignored (Ctrl-C is for the bench, which stops them); killed with their parent (PR_SET_PDEATHSIG);
# "ready" once that holds, then a spin that touches no memory and makes no system call
SPIN = ("import ctypes, os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "ctypes.CDLL(None).prctl(1, signal.SIGKILL); "
        "os.getppid() == int(sys.argv[1]) or os._exit(1); "
        "print('ready', flush=True)\n"
        "while True: pass")


@contextlib.contextmanager
def busy(processes):
    """Run the block beside ``processes`` busy processes; yields their pids.

    Parameters
    ----------
    processes : int
        How many to start (0: none); ``twinnet bench --busy`` starts one per CPU it may use.

    Examples
    --------
    >>> from twinnet.bench.busy import busy
    >>> with busy(2) as pids:
    ...     len(pids)
    2
    """
    import os

    started = []
    try:
        for _ in range(processes):
            started.append(subprocess.Popen([sys.executable, "-c", SPIN, str(os.getpid())],
                                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                            stderr=subprocess.DEVNULL, text=True))
        for process in started:  # each spins from here on, and dies with this process
            if process.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a busy process failed to start (exit status {process.wait()})")
        yield [process.pid for process in started]
    finally:
        for process in started:
            process.kill()
        for process in started:
            process.wait()
            process.stdout.close()
