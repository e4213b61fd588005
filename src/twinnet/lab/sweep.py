"""The sweep: every run of a grid, in parallel through joblib, on local processes or a Dask cluster.

:func:`plan` checks a grid against the data and the engines and lists its runs; :func:`run_sweep`
executes them and appends one row per finished run to a :class:`~twinnet.lab.store.ResultStore`
as it arrives, so that a sweep killed at any moment resumes where it stopped. One function,
:func:`execute_run`, trains one run in a worker; it never raises: a run that diverges or fails
comes back as a row saying so. A worker process that dies takes its runs with it; they are
retried, alone, and a run that kills its worker ``max_attempts`` times is recorded as failed.

Examples
--------
>>> import tempfile
>>> from twinnet.lab import grid, sweep
>>> from twinnet.lab.store import ResultStore
>>> runs, notes = sweep.plan(grid.check_grid({"data": "moons", "layers": [2, 4, 1],
...                                           "epochs": [5, 10], "engines": ["numpy"]}))
>>> store = ResultStore.create(tempfile.mkdtemp(), grid={}, grid_hash="x", n_runs=len(runs))
>>> with sweep.executor(jobs=1) as where:
...     outcome = sweep.run_sweep(runs, store, where, show_progress=False)
>>> outcome.counts
{'ok': 1}
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import os
import socket
import time
import warnings
from collections import Counter
from dataclasses import dataclass

from twinnet.lab.results import finite_or_none
from twinnet.lab.rows import result_row

__all__ = [
    "SCHEDULER_TIMEOUT",
    "Executor",
    "SweepOutcome",
    "check_scheduler",
    "data_fingerprints",
    "execute_run",
    "executor",
    "libraries",
    "limit_threads",
    "plan",
    "run_sweep",
]

#: Seconds to wait for a Dask scheduler (and its first worker) before saying it does not answer.
SCHEDULER_TIMEOUT = 8
# A Dask scheduler's handshake is a few dozen bytes; a longer first
# message is another protocol's bytes read as a length.
_HANDSHAKE_MAX = 1 << 16

# Thread-count variables read by BLAS, OpenMP (PyTorch) and TensorFlow when they start: set in a
# worker before its first run imports them. threadpoolctl covers BLAS libraries already loaded.
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")

#: Set while a sweep runs its runs one at a time in its own process (``jobs=1`` and no ``threads``:
#: joblib's sequential backend). They then leave the caller's thread pools and environment as they
#: are (``Network`` takes the free CPUs at each fit), where a worker's are pinned for its whole life.
_IN_PROCESS = contextvars.ContextVar("twinnet_sweep_in_process", default=False)


def plan(grid):
    """The runs of a checked grid, and notes on the runs left out.

    Each data set is loaded once per head of the grid, to resolve the head (the data set's, when
    ``output`` is not given: the data layer's inference note is one of the notes) and check the
    layers' widths against its features and its classes or targets. A run whose engine cannot
    train its configuration (the notebook's functional network with Adam, or with a softmax, say)
    is left out with a note; an engine whose library is missing is an error.

    Parameters
    ----------
    grid : dict
        From :func:`twinnet.lab.grid.check_grid`.

    Returns
    -------
    runs : list of RunSpec
    notes : list of str

    Raises
    ------
    ValueError
        Layers or a head that do not fit a data set, a missing engine library, or no run left at all.
    """
    from twinnet.lab.config import RunConfig
    from twinnet.lab.grid import expand
    from twinnet.lab.run import load_split
    from twinnet.lab.runners import ENGINES, NO_CHECKPOINTS, installed, unsupported_reason

    for engine in grid["engines"]:
        if not installed(engine):
            spec = ENGINES[engine]
            raise ValueError(f"engine {engine!r} needs {spec.module}, which is not installed"
                             + (f": pip install 'twinnet[{spec.extra}]'." if spec.extra else "."))
    shapes, heads, inferred = {}, {}, []
    stopping = [p for p in grid["early_stopping"] if p is not None][:1]
    for data in grid["data"]:
        for output in grid["output"]:
            split = load_split(RunConfig(data=data, output=output))
            shapes[data] = split.X_train.shape
            heads[data, output] = (split.output, split.width)
            if split.note and split.note not in inferred:
                inferred.append(split.note)
            for patience, fraction in itertools.product(stopping, grid["validation_fraction"]):
                # a validation part too small to carve is the grid's error, not each run's failure
                load_split(RunConfig(data=data, output=output, early_stopping=patience, validation_fraction=fraction))
    widths = {(data, output): width for (data, _), (output, width) in heads.items()}
    runs, skipped = [], Counter()
    for spec in expand(grid, n_features={data: shape[1] for data, shape in shapes.items()}, heads=heads):
        n_train, n_features = shapes[spec.config.data]
        # the values were checked by check_grid; the widths against the data and the head here
        spec.config.with_layers(n_features, output=spec.config.output,
                                width=widths[spec.config.data, spec.config.output])
        reason = unsupported_reason(spec.engine, spec.config, n_train)
        if reason is None and len(spec.checkpoints) > 1 and spec.engine in NO_CHECKPOINTS:
            reason = f"several epoch values are checkpoints, and {NO_CHECKPOINTS[spec.engine]}"
        if reason:
            skipped[f"{spec.engine}: {reason}"] += 1
            continue
        runs.append(spec)
    left_out = [f"left out {n} run(s) of {why}" for why, n in skipped.items()]
    if not runs:
        raise ValueError("the grid has no run that its engines can train: " + "; ".join(left_out))
    if stopping and len(grid["epochs"]) > 1:
        left_out.append(f"runs with early stopping record only their last epoch, {grid['epochs'][-1]}: each ends at "
                        "its own epoch with its best weights, so the other epoch values are no checkpoints of them")
    return runs, inferred + left_out


def data_fingerprints(names):
    """What each data set of a sweep was, to refuse resuming it on other data.

    A file's fingerprint is the SHA-256 and size of its bytes; a built-in data set's is that of the
    arrays its generator makes (``X`` then ``y``, as stored), which changes with the generator's
    parameters or a library that makes them differently.

    Returns
    -------
    dict
        Name -> ``{"source": "file" or "built-in", "sha256": hex digest, "bytes": int}``.
    """
    import hashlib

    from twinnet import data

    prints = {}
    for name in names:
        if name in data.DATASETS:
            loaded = data.load_dataset(name)
            X, y = loaded.X, loaded.y
            digest = hashlib.sha256(X.tobytes())
            digest.update(y.tobytes())
            prints[name] = {"source": "built-in", "sha256": digest.hexdigest(),
                            "bytes": X.nbytes + y.nbytes}
        else:
            with open(name, "rb") as f:
                prints[name] = {"source": "file", "sha256": hashlib.file_digest(f, "sha256").hexdigest(),
                                "bytes": os.fstat(f.fileno()).st_size}
    return prints


def _left(deadline):
    return max(deadline - time.monotonic(), 1e-3)


def _connect(host, port, deadline):
    # a refused connection is retried until the deadline, as Dask's client does: a scheduler
    # started a moment ago may not listen yet
    while True:
        try:
            return socket.create_connection((host, port), timeout=_left(deadline))
        except ConnectionRefusedError:
            if time.monotonic() + 0.1 >= deadline:
                raise
            time.sleep(0.1)


def _receive(sock, n, deadline):
    data = b""
    while len(data) < n:
        sock.settimeout(_left(deadline))
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        data += chunk
    return data


def check_scheduler(address, timeout=SCHEDULER_TIMEOUT):
    """Check that a Dask scheduler answers at ``address`` within ``timeout`` seconds.

    Dask's own client waits without end for a server that accepts and never answers, and may read
    another protocol's reply as a frame length of exabytes (a ``MemoryError``). A scheduler speaks
    first, though (``distributed.comm.core.Listener.on_connection`` writes its handshake before
    reading): this probe reads that handshake's 8-byte length and the handshake, with a deadline
    and a size bound, and closes.

    Returns
    -------
    str
        The address as ``tcp://HOST:PORT`` (``HOST:PORT`` is taken as TCP, as Dask does).

    Raises
    ------
    ValueError
        A malformed address, or no Dask scheduler answering there in time.
    """
    import struct
    from urllib.parse import urlsplit

    url = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        port = url.port
    except ValueError:  # not a number, or out of range
        port = None
    if url.scheme != "tcp" or not url.hostname or not port or url.path or url.query:
        raise ValueError(f"--scheduler {address!r}: expected tcp://HOST:PORT, such as "
                         "tcp://127.0.0.1:8786.")
    address = f"tcp://{url.netloc}"
    deadline = time.monotonic() + timeout
    try:
        with _connect(url.hostname, port, deadline) as sock:
            (length,) = struct.unpack("Q", _receive(sock, 8, deadline))  # distributed.comm.tcp's framing
            if not 0 < length <= _HANDSHAKE_MAX:
                raise ValueError(f"--scheduler {address}: the server there is not a Dask scheduler "
                                 f"(it answered {length} as a message length).")
            _receive(sock, length, deadline)
    except OSError as exc:  # refused, timed out, closed, no such host
        raise ValueError(f"--scheduler {address}: no Dask scheduler answered within {timeout:g} s "
                         f"({exc.strerror or exc}); check the address, or start one with 'dask "
                         "scheduler'.") from None
    return address


# --------------------------------------------------------------------------- one run, in a worker
def limit_threads(threads, libraries=()):
    """Limit this process's thread pools to ``threads`` (``"auto"``: leave them as the libraries set
    them), importing ``libraries`` now.

    Called once in each worker when it starts, with the libraries of every engine of the sweep: a
    worker then loads TensorFlow once, before its first run, instead of growing by hundreds of
    megabytes during one (which loky would take for a memory leak and restart the worker for).
    """
    from threadpoolctl import threadpool_limits

    limit = threads != "auto"
    if limit:
        for name in THREAD_ENV:  # read by the libraries that this process loads later
            os.environ[name] = str(threads)
        threadpool_limits(limits=threads)  # the BLAS libraries already loaded, for the worker's life
    if "tensorflow" in libraries:
        from twinnet.quiet import import_keras

        import_keras()  # TensorFlow's start-up messages kept off the terminal, as in the main process
        import tensorflow as tf

        try:
            if limit:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # TensorFlow already ran in this process, with these limits
            pass
    if "torch" in libraries:
        import torch

        if limit:
            torch.set_num_threads(threads)


def ignore_interrupts():
    """Ignore SIGINT in this worker process.

    Ctrl-C reaches every process of the terminal's process group. The sweep's own process handles
    it (one line, the finished runs kept) and stops its workers; a worker's own KeyboardInterrupt
    would only add its traceback. Only for workers the sweep starts, never a cluster's.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _ignore_interrupts_plugin():
    from distributed import WorkerPlugin

    class IgnoreInterrupts(WorkerPlugin):
        # a plugin, not a client.run: a worker that its nanny restarts runs it too
        def setup(self, worker):
            ignore_interrupts()

    return IgnoreInterrupts()


def _start_loky_worker(threads, libraries):
    ignore_interrupts()
    limit_threads(threads, libraries)


def libraries(runs):
    """The optional libraries (``tensorflow``, ``torch``) that the engines of ``runs`` load."""
    from twinnet.lab.runners import ENGINES

    return tuple(sorted({ENGINES[r.engine].module for r in runs} & {"tensorflow", "torch"}))


def execute_run(spec, threads=1, attempt=1):
    """Train one run and return its result row; never raises.

    Parameters
    ----------
    spec : RunSpec
    threads : int
        BLAS, OpenMP and TensorFlow threads this run may use: the worker's share of the machine.
    attempt : int
        1 for a first try, more when a worker died running it before.

    Returns
    -------
    dict
        ``status`` is ``"ok"``, ``"diverged"`` or ``"failed"`` (with ``error``); ``checkpoints``
        has one entry per epoch checkpoint with the train/test loss and the head's metrics
        (:func:`twinnet.lab.results.metric_keys`: accuracy; or RMSE and R^2).
    """
    from twinnet.lab.run import initial_parameters, load_split, run_engine

    try:
        if not _IN_PROCESS.get():
            limit_threads(threads, libraries([spec]))
        split = load_split(spec.config)
        config = spec.config.with_layers(split.X_train.shape[1], output=split.output, width=split.width)
        result = run_engine(spec.engine, config, split, initial_parameters(config),
                            checkpoints=spec.checkpoints)
    except Exception as exc:  # noqa: BLE001  (any failure of one run is data, not a crash)
        return result_row(spec, status="failed", error=f"{type(exc).__name__}: {exc}", attempts=attempt,
                    threads=threads)
    checkpoints = [{k: finite_or_none(float(v)) if k != "epoch" else int(v) for k, v in point.items()}
                   for point in result.checkpoints]
    return result_row(spec, status=result.status, error=result.error, result=result, checkpoints=checkpoints,
                attempts=attempt, threads=threads)


# --------------------------------------------------------------------------- the executor
@dataclass
class SweepOutcome:
    """What a call of :func:`run_sweep` did: counts by status, the runs it skipped, its wall time."""

    counts: dict
    skipped: int
    seconds: float
    slots: int
    threads: int


@dataclass
class Executor:
    """Where runs execute: ``slots`` parallel runs, ``threads`` each, the errors that mean a worker
    process died (its runs are then retried) and those that mean the cluster itself is gone."""

    slots: int
    threads: int
    worker_died: tuple
    description: str
    cluster_lost: tuple = ()


@contextlib.contextmanager
def executor(*, jobs=1, scheduler=None, dask_local=None, threads=None, libraries=(),
             timeout=SCHEDULER_TIMEOUT):
    """Set up joblib's backend for a sweep and yield the :class:`Executor`.

    Parameters
    ----------
    jobs : int
        Local worker processes (joblib's loky backend), when neither Dask option is given.
    scheduler : str, optional
        Address of a running Dask scheduler, ``tcp://HOST:PORT``.
    dask_local : int, optional
        Start a local Dask cluster of that many single-threaded worker processes, for this block.
    threads : int, optional
        Threads per run; default: the CPUs of a worker's host over the runs it executes at once.
    libraries : sequence of str
        Loaded by each worker when it starts (see :func:`limit_threads`).
    timeout : float
        Seconds to wait for the scheduler to answer (:func:`check_scheduler`), then as long for
        its first worker.

    Raises
    ------
    ValueError
        A malformed scheduler address, or a scheduler that does not answer, or has no worker,
        within ``timeout`` seconds.
    """
    from joblib import parallel_config
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    if scheduler is None and dask_local is None:
        in_process = _IN_PROCESS.set(jobs == 1 and threads is None)
        threads = threads or max(1, (os.cpu_count() or 1) // jobs)
        try:
            with parallel_config(backend="loky", n_jobs=jobs, initializer=_start_loky_worker,
                                 initargs=(threads, tuple(libraries))):
                yield Executor(jobs, threads, (TerminatedWorkerError,),
                               f"{jobs} local processes" if jobs > 1 else "1 process (this one)")
        finally:
            _IN_PROCESS.reset(in_process)
        return
    with _dask_executor(scheduler, dask_local, threads, libraries, timeout) as where:
        yield where


def _dask_client(stack, scheduler, dask_local, timeout):
    """A client of the scheduler at ``scheduler``, or of a new local cluster; and its description."""
    import logging

    from distributed import Client, LocalCluster

    if scheduler is None:
        # no dashboard; the scheduler's HTTP server (which it starts anyway) on a free port of this
        # machine's, not on 8787, where another cluster would make it warn "Port 8787 is already in use"
        cluster = stack.enter_context(LocalCluster(
            n_workers=dask_local, threads_per_worker=1, processes=True, dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}, silence_logs=logging.ERROR))
        client = stack.enter_context(Client(cluster))
        client.register_plugin(_ignore_interrupts_plugin())
        return client, f"local Dask cluster ({dask_local} workers)"
    scheduler = check_scheduler(scheduler, timeout)
    # a scheduler lost mid-sweep is reported by run_sweep in one line, not also logged with
    # the tracebacks of the client's reconnection, up to its close (so set before it opens)
    client_log = logging.getLogger("distributed.client")
    stack.callback(client_log.setLevel, client_log.level)
    client_log.setLevel(logging.CRITICAL)
    try:
        client = stack.enter_context(Client(scheduler, timeout=timeout))
    except (OSError, TimeoutError) as exc:  # it went away since the check
        raise ValueError(f"--scheduler {scheduler}: no Dask scheduler answered within "
                         f"{timeout:g} s ({type(exc).__name__}); start one with "
                         "'dask scheduler' or check the address.") from None
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        raise ValueError(f"--scheduler {scheduler}: the scheduler answers but has no worker "
                         f"after {timeout:g} s; start some with 'dask worker "
                         f"{scheduler}'.") from None
    return client, f"Dask scheduler {scheduler}"


@contextlib.contextmanager
def _dask_executor(scheduler, dask_local, threads, libraries, timeout):
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker
    from joblib import parallel_config

    with contextlib.ExitStack() as stack:
        client, description = _dask_client(stack, scheduler, dask_local, timeout)
        stack.enter_context(parallel_config(backend="dask", n_jobs=-1))
        # Each run's share of its host: the host's CPUs over the worker threads running there.
        cpus = client.run(os.cpu_count)
        hosts, host_cpus = Counter(), {}
        for address, info in client.scheduler_info()["workers"].items():
            hosts[info["host"]] += info["nthreads"]
            host_cpus[info["host"]] = cpus[address]
        threads = threads or max(1, min(host_cpus[host] // n for host, n in hosts.items()))
        client.run(limit_threads, threads, tuple(libraries))
        yield Executor(sum(hosts.values()), threads, (KilledWorker,), description,
                       cluster_lost=(FutureCancelledError,))


def run_sweep(runs, store, where, *, show_progress=True, max_attempts=3, run=execute_run):
    """Execute the runs not yet in ``store``, appending each row as soon as it arrives.

    Parameters
    ----------
    runs : list of RunSpec
    store : ResultStore
        Runs already there are skipped; each new row is on disk before it is counted.
    where : Executor
        From :func:`executor`, whose block this call must run in.
    show_progress : bool
        A progress bar with ETA on stderr.
    max_attempts : int
        A run whose worker dies is retried, alone, until it has been tried this many times.
    run : callable
        ``run(spec, threads, attempt) -> row``, by default :func:`execute_run`.

    Returns
    -------
    SweepOutcome

    Raises
    ------
    ValueError
        The Dask cluster went away, or a row could not be written (a full disk): the rows before
        are kept, and a resumed sweep does the rest.
    """
    start = time.perf_counter()
    todo = [spec for spec in runs if spec.run_id not in store.done]
    counts = Counter()
    with _progress_bar(show_progress) as bar:
        task = bar.add_task("sweep", total=len(runs), completed=len(runs) - len(todo))

        def finish(row):
            if row["run_id"] in store.done:  # a result that raced with a worker's death
                return
            store.append(row)
            counts[row["status"]] += 1
            bar.update(task, advance=1, description="sweep " + " ".join(
                f"{status} {n}" for status, n in sorted(counts.items())))

        try:
            _execute(todo, where, run, finish, max_attempts)
        except where.cluster_lost as exc:
            raise ValueError(f"the {where.description} went away mid-sweep ({exc.reason}); "
                             f"{len(store.done)}/{len(runs)} runs are saved in "
                             f"{store.directory}: resume with --resume once it is back.") from None
    return SweepOutcome(dict(counts), len(runs) - len(todo), time.perf_counter() - start,
                        where.slots, where.threads)


def _progress_bar(show):
    """A rich progress bar with ETA on stderr (disabled unless ``show``)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    return Progress(*columns, console=Console(stderr=True), disable=not show)


def _execute(todo, where, run, finish, max_attempts):
    """Run ``todo`` through joblib, handing each row to ``finish``; retry the runs of a dead worker.

    A run lost with a worker that died among several is a suspect: suspects are retried alone, so
    that a run that kills its worker ``max_attempts`` times is found and recorded as failed.
    """
    from joblib import Parallel, delayed

    pending = {spec.run_id: spec for spec in todo}
    tries = Counter()  # how often each run was lost with a dying worker
    suspects = []
    while pending:
        batch = [suspects.pop(0)] if suspects else list(pending.values())
        dispatched = []

        def tasks():
            for spec in batch:  # noqa: B023  (consumed by Parallel before the loop moves on)
                dispatched.append(spec)  # noqa: B023
                yield delayed(run)(spec, where.threads, tries[spec.run_id] + 1)

        try:
            # one task per batch, no more queued than there are workers: when a worker dies,
            # the runs dispatched but not finished are the ones that may have killed it
            rows = Parallel(return_as="generator_unordered", batch_size=1, pre_dispatch="n_jobs")(tasks())
            with warnings.catch_warnings():
                # Ctrl-C cancels the runs in flight, which --resume runs again: joblib's warning
                # that it cancelled them (with advice on task iterators) would be a second line
                warnings.filterwarnings("ignore", "[0-9]+ tasks which were still being processed",
                                        UserWarning)
                try:
                    for row in rows:
                        finish(row)
                        pending.pop(row["run_id"], None)
                finally:
                    rows.close()
        except where.worker_died as exc:
            lost = [spec for spec in dispatched if spec.run_id in pending]
            tries.update(spec.run_id for spec in lost)
            if len(batch) > 1:
                suspects.extend(lost)
            elif lost and tries[lost[0].run_id] >= max_attempts:
                spec = lost[0]  # it ran alone: its worker's death is its own doing
                finish(result_row(spec, status="failed", attempts=tries[spec.run_id], threads=where.threads,
                            error=f"the worker process died {tries[spec.run_id]} times running "
                                  f"this run ({type(exc).__name__})"))
                pending.pop(spec.run_id)
            else:
                suspects[:0] = lost
