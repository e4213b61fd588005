"""BLAS threads by load (twinnet.nn.threads) and the busy processes of the bench (twinnet.bench.busy)."""

import os

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from twinnet import Network
from twinnet.bench.busy import busy
from twinnet.nn import engine, threads
from twinnet.nn.divergence import DivergenceWarning

CEILING = 4  # BLAS threads allowed in these tests: more than one, on any machine


@pytest.fixture
def seen(monkeypatch):
    """The BLAS threads each forward pass of the engine ran with."""
    counts = []
    forward = engine.forward

    def spy(*args, **kwargs):
        counts.append(max(lib.num_threads for lib in threads._blas()))
        return forward(*args, **kwargs)

    monkeypatch.setattr(engine, "forward", spy)
    for name in threads.USER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return counts


def _calls(seed=0):
    """A fit's loss curve and final weights, predict_proba and gradients, on products big enough to be threaded."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((600, 200)).astype(np.float32)
    y = np.argmax(X[:, :10], axis=1)
    net = Network((200, 128, 10), output="softmax", seed=0, dtype="float32")
    loss = net.fit(X, y, epochs=3, learning_rate=0.01, batch_size=300, optimizer="adam").history["loss"]
    return {"loss": np.array(loss), **net.parameters, "proba": net.predict_proba(X),
            **net.gradients(X, y)}


def _pinned(monkeypatch, n):
    """The calls under an explicit limit of ``n`` threads that the rule leaves alone (the variable is set)."""
    with monkeypatch.context() as m:
        m.setenv("OPENBLAS_NUM_THREADS", str(n))
        with threadpool_limits(limits=n, user_api="blas"):
            return _calls()


@pytest.mark.parametrize(("free", "expected"), [(CEILING, CEILING), (1, 1)], ids=["quiet", "busy"])
def test_fit_predict_gradients_run_with_the_free_cpus_bit_for_bit(monkeypatch, seen, free, expected):
    # The same calls under an explicit threadpool_limits of the chosen count give the same bits;
    # OpenBLAS's float32 products differ in their last bits between 1 and 4 threads on the CPUs
    # we measured, so a rule that ran another count than it chose would fail here.
    reference = _pinned(monkeypatch, expected)
    seen.clear()
    monkeypatch.setattr(threads, "free_cpus", lambda: free)
    with threadpool_limits(limits=CEILING, user_api="blas"):
        got = _calls()
        assert max(lib.num_threads for lib in threads._blas()) == CEILING, "threads not restored"
    assert set(seen) == {expected}, f"free CPUs {free}: the forward passes ran with {seen} BLAS threads"
    for key in reference:
        np.testing.assert_array_equal(got[key], reference[key], err_msg=f"{key}, {expected} threads")


def test_never_more_threads_than_the_user_allows(monkeypatch, seen):
    monkeypatch.setattr(threads, "free_cpus", lambda: CEILING)
    with threadpool_limits(limits=1, user_api="blas"):
        _calls()
    assert set(seen) == {1}


def test_a_users_thread_variable_is_kept_on_a_busy_machine(monkeypatch, seen):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", str(CEILING))
    monkeypatch.setattr(threads, "free_cpus", lambda: 1)
    with threadpool_limits(limits=CEILING, user_api="blas"):
        _calls()
    assert set(seen) == {CEILING}


def test_small_passes_do_not_read_the_load(monkeypatch, seen):
    def fail():
        raise AssertionError("the load was read for products OpenBLAS runs on one thread anyway")

    monkeypatch.setattr(threads, "free_cpus", fail)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 20)), rng.integers(0, 2, 64)
    net = Network((20, 16, 1), seed=0)  # largest product 21 * 16 * 64 = 21504 <= SINGLE_THREAD_WORK
    net.fit(X, y, epochs=2, learning_rate=0.1)
    net.predict(X)
    net.gradients(X, y)
    assert threads.largest_product(64, (20, 16, 1)) == 21 * 16 * 64 <= threads.SINGLE_THREAD_WORK


def test_threads_restored_when_fit_fails(monkeypatch, seen):
    monkeypatch.setattr(threads, "free_cpus", lambda: 1)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 200)) * 1e6
    y = rng.standard_normal(600) * 1e6
    net = Network((200, 128, 1), output="linear", seed=0)
    with threadpool_limits(limits=CEILING, user_api="blas"):
        with pytest.raises(FloatingPointError), pytest.warns(DivergenceWarning):
            net.fit(X, y, epochs=50, learning_rate=10.0)
        assert max(lib.num_threads for lib in threads._blas()) == CEILING
    assert set(seen) == {1}


@pytest.mark.parametrize(("usable", "others", "free"), [(2, 0, 2), (2, 1, 1), (2, 5, 1), (16, 3, 13), (4, None, 4)])
def test_free_cpus(monkeypatch, usable, others, free):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(usable)))
    monkeypatch.setattr(threads, "others_running", lambda: others)
    assert threads.free_cpus() == free


def test_busy_processes_are_counted_and_all_stopped():
    with busy(2) as pids:
        assert len(pids) == 2
        for pid in pids:
            os.kill(pid, 0)  # alive
        assert threads.others_running() >= 2  # they spin: always running
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_busy_processes_stopped_on_an_error_and_on_ctrl_c():
    for exc in (RuntimeError, KeyboardInterrupt):
        with pytest.raises(exc), busy(2) as pids:
            raise exc
        for pid in pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
