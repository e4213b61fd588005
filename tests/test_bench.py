"""``twinnet bench``: the work it counts, the roofline's products, its processes, consistent figures, the CLI.

Speed is measured, never asserted: these tests check what the figures mean (the FLOP count, the
products, the ratios computed from the times, the memory reference), where they come from (a
process per engine and per library, the same threads in each) and what a failing process gives,
on tiny workloads.
"""

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numpy.testing import assert_allclose

from twinnet import bench
from twinnet.bench import gemm, host, profiling, turns, worker
from twinnet.lab import RunConfig
from twinnet.lab.sweep import THREAD_ENV

pytestmark = pytest.mark.slow  # a minute or more: started first (tests/conftest.py)

TINY = bench.Workload("tiny", RunConfig(data="gaussian", layers=(6, 4, 3, 1), epochs=3, learning_rate=0.1),
                      n_train=50)
HAVE_TF_AND_TORCH = all(importlib.util.find_spec(m) is not None for m in ("tensorflow", "torch"))


# --------------------------------------------------------------------------- the work counted
def test_products_and_flops_of_the_notebook_network():
    # layers 100,20,5,1 on m = 1600: forward and weight gradient of each layer, input gradient of
    # layers 2 and 3 (nothing needs the gradient with respect to the data)
    assert bench.products([100, 20, 5, 1], 1600) == [
        ("Z1 = W1 A0", 20, 100, 1600), ("dW1 = dZ1 A0^T", 20, 1600, 100),
        ("Z2 = W2 A1", 5, 20, 1600), ("dW2 = dZ2 A1^T", 5, 1600, 20), ("dA1 = W2^T dZ2", 20, 5, 1600),
        ("Z3 = W3 A2", 1, 5, 1600), ("dW3 = dZ3 A2^T", 1, 1600, 5), ("dA2 = W3^T dZ3", 5, 1, 1600),
    ]
    # 2 m (2 (100*20 + 20*5 + 5*1) + 20*5 + 5*1) = 3200 * 4315
    assert bench.flops_per_epoch([100, 20, 5, 1], 1600) == 13_808_000


def _gemm(library):
    module = gemm.ROOFLINES[library].module
    if module is not None and importlib.util.find_spec(module) is None:
        pytest.skip(f"needs {module}")
    return gemm.GEMMS[library]()


@pytest.mark.parametrize("library", list(bench.ROOFLINES))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_gemm_layout_computes_the_same_product(library, dtype):
    rng = np.random.default_rng(0)
    variants = _gemm(library).variants(3, 5, 4, np.dtype(dtype), rng)
    assert len(variants) == 8 and len({label for label, _ in variants}) == 8
    # the operands are drawn first, A (3, 5) then B (5, 4), from the same seed
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3, 5)).astype(dtype)
    B = rng.standard_normal((5, 4)).astype(dtype)
    numpy_labels = [label for label, _ in gemm.gemm_variants(3, 5, 4, np.dtype(dtype), rng)]
    assert [label for label, _ in variants] == numpy_labels  # every library's layouts named alike
    for label, fn in variants:
        C = np.asarray(fn())
        assert C.dtype == dtype, label
        # float32: a sum of 5 products of standard normal values, to a few float32 roundings
        assert_allclose(C.T if "transposed" in label else C, A @ B, rtol=1e-5, atol=1e-6, err_msg=label)


def test_roofline_runs_each_product_in_its_fastest_layout():
    roof = bench.roofline([6, 4, 1], 32, "float64", epochs=3, repeats=2, samples=2, budget=0.01)
    assert [p["label"] for p in roof["products"]] == [p[0] for p in bench.products([6, 4, 1], 32)]
    assert roof["flops"] == bench.flops_per_epoch([6, 4, 1], 32)
    assert roof["products_ms"] == pytest.approx(1e3 * sum(p["seconds"] for p in roof["products"]))
    assert len(roof["ms_per_epoch_runs"]) == 2 and roof["ms_per_epoch"] == min(roof["ms_per_epoch_runs"]) > 0
    labels = {label for label, _ in gemm.gemm_variants(1, 1, 1, np.dtype("float64"), np.random.default_rng(0))}
    for p in roof["products"]:
        assert p["flops"] == 2 * np.prod(p["shape"]) and p["seconds"] > 0
        assert p["layout"] in labels and 1 <= p["threads"] <= roof["threads"]


class _Library:
    """A library of gemm.GEMMS whose calls record the layout and the threads they ran with; like
    NumPy's BLAS, it reports the threads last set."""

    def __init__(self):
        self.current, self.calls = 4, []

    def variants(self, M, K, N, dtype, rng):
        labels = [label for label, _ in gemm.gemm_variants(M, K, N, dtype, rng)]
        return [(label, lambda label=label: self.calls.append((M, K, N, label, self.current))) for label in labels]

    def threads(self):
        return self.current

    def thread_counts(self):
        return sorted({1, self.current})

    def set_threads(self, n):
        self.current = n

    plan = staticmethod(gemm.plan_by_threads)


def test_every_product_tries_every_layout_with_every_thread_count_and_networks_in_turn(monkeypatch):
    # a form's time is its thread count: the 1-thread forms rank first, and the second-best retimed
    # is a 1-thread form; the next product must still try all threads (it once tried only the last set)
    monkeypatch.setattr(gemm, "best_time", lambda fn, samples, budget: fn() or library.current)
    library, layers = _Library(), [6, 4, 3, 1]
    rows, _ = gemm.fastest_layouts(layers, 32, "float64", 3, 0.01, library, network=True)
    assert library.current == 4  # restored
    labels = [label for label, _ in gemm.gemm_variants(1, 1, 1, np.dtype("float64"), np.random.default_rng(0))]
    for row, mine in zip(rows, gemm.network_layouts(layers)):
        M, K, N = row["shape"]
        tried = [(label, t) for m_, k, n, label, t in library.calls if (m_, k, n) == (M, K, N)]
        assert sorted(set(tried)) == sorted((label, t) for label in labels for t in (1, 4)), row["label"]
        assert row["threads"] == 1 and row["layout"] == labels[0]  # the first 1-thread form of the ties
        if mine is None:  # one output unit's dA: Network does not form it
            assert row["network"] is None and len(tried) == 8 * 2 + 2
            continue
        # Network's layout, with the fastest form's threads, in 3 rounds, each timing the fastest too
        assert row["network"] == {"layout": mine, "seconds": 1, "fastest_seconds": 1}
        after_the_search = tried[8 * 2 + 2:]
        assert after_the_search == ([(labels[0], 1)] if mine == labels[0] else [(labels[0], 1), (mine, 1)]) * 3


@pytest.mark.parametrize("layers, output", [([6, 5, 4, 3], "softmax"), ([6, 5, 4, 1], "sigmoid")])
def test_network_layouts_are_those_of_the_engines_products(layers, output):
    from twinnet import Network
    from twinnet.nn import engine

    m = 40000  # the output unit's dA blocks (2^17 values) are then fewer rows than the layer's 4
    calls = []

    def dot(a, b, out):
        calls.append((a, b, out))
        return np.dot(a, b, out=out)

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((m, layers[0])), rng.integers(0, layers[-1] if layers[-1] > 1 else 2, m)
    net = Network(layers, output=output, seed=0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "np", profiling._NumpyTimingDot(dot))
        net.fit(X, y, epochs=1, learning_rate=0.1)
    def stored(x, as_is, transposed):  # a vector is stored both ways at once
        return {name for name, flag in ((as_is, "C_CONTIGUOUS"), (transposed, "F_CONTIGUOUS")) if x.flags[flag]}

    formed = {}  # each call as gemm_variants names it: a product's operands stored as is or transposed
    for a, b, out in calls:
        (r, k), c = a.shape, b.shape[1]
        for label, M, K, N in bench.products(layers, m):
            if (r, k - (k == K + 1), c) == (M, K, N):  # C = A B, the bias row riding along in K
                formed[label] = {f"C = {x} {y}" for x in stored(a, "A", "A^T") for y in stored(b, "B", "B^T")}
            elif (r - (r == N + 1), k, c) == (N, K, M):  # C^T = B^T A^T: a is B^T, b is A^T
                formed[label] = {f"C^T = {y} {x} (transposed)" for y in stored(a, "B^T", "B")
                                 for x in stored(b, "A^T", "A")}
    expected = {label: layout for (label, *_), layout in zip(bench.products(layers, m), gemm.network_layouts(layers))
                if layout is not None}
    assert formed.keys() == expected.keys()
    assert all(expected[label] in formed[label] for label in expected), (formed, expected)


def test_roofline_runs_restore_the_blas_threads():
    from threadpoolctl import threadpool_info, threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        _, plan = gemm.fastest_layouts([6, 4, 1], 32, "float64", samples=1, budget=0.01)
        plan = [(2, calls) for _, calls in plan]  # run with two threads, then restore one
        run = gemm.run_products(plan, 3)
        assert {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"} == {1}
    assert run.epochs == 2 and run.seconds > 0


def test_load_data_shapes_and_dtypes():
    X, y = bench.load_data(TINY)
    assert X.shape == (50, 6) and X.dtype == np.float64 and X.flags.c_contiguous
    assert set(np.unique(y)) == {0, 1}
    again, _ = bench.load_data(TINY)
    assert np.array_equal(X, again)  # fixed seed: every engine, every run, the same data
    X, y = bench.load_data(bench.WORKLOADS["seed"])  # the notebook's training part
    assert X.shape == (1600, 100) and X.dtype == np.float64 and y.shape == (1600,)


def test_fit_memory_reference_bytes():
    X, y = bench.load_data(TINY)
    from twinnet import Network

    initial = Network(list(TINY.config.layers), seed=0).parameters
    memory = bench.fit_memory(TINY, X, y, initial)
    # data: 50 x (6 + 1) values (X and the labels); activations: 50 x (4 + 3 + 1); gradients:
    # (6 + 1) 4 + (4 + 1) 3 + (3 + 1) 1 = 47 parameters; 8 bytes each
    assert memory["data_bytes"] == 50 * 7 * 8
    assert memory["activation_bytes"] == 50 * 8 * 8
    assert memory["gradient_bytes"] == 47 * 8
    assert memory["needed_bytes"] == memory["data_bytes"] + memory["activation_bytes"] + memory["gradient_bytes"]
    # fit allocates at least its own activations and gradients
    assert memory["peak_bytes"] >= memory["activation_bytes"] + memory["gradient_bytes"]
    assert memory["ratio"] == memory["peak_bytes"] / memory["needed_bytes"]


def test_profile_times_each_stage_of_the_engine():
    # TINY's engine per epoch: three forward products, the three dK, dA_1 and the output unit's
    # outer product (one block); two hidden activations and two derivatives (one block per layer);
    # the head's output, loss, hits and delta
    profile = bench.profile(TINY, threads=1, repeats=2)
    stages = {row["stage"]: row for row in profile["stages"]}
    assert list(stages) == list(bench.STAGES) and profile["threads"] == 1
    assert {stage: row["calls_per_epoch"] for stage, row in stages.items()} == {
        "matrix products": 8, "hidden activations": 2, "activation derivatives": 2, "output head": 4,
        "the rest": None}
    assert all(row["ms_per_epoch"] > 0 for stage, row in stages.items() if stage != "the rest")
    assert sum(row["ms_per_epoch"] for row in stages.values()) == pytest.approx(profile["ms_per_epoch"])
    assert sum(row["share"] for row in stages.values()) == pytest.approx(1.0)


def test_profile_repeats_its_fits_until_its_budget_is_spent(monkeypatch):
    fits = []
    timed_fit = profiling._timed_fit
    monkeypatch.setattr(profiling, "_timed_fit", lambda *args: fits.append(args) or timed_fit(*args))
    bench.profile(TINY, threads=1, repeats=3)
    assert len(fits) == 1 + 3  # a warm-up, then the fits of which the fastest counts
    fits.clear()
    bench.profile(TINY, threads=1, repeats=3, budget=0)
    assert len(fits) == 1 + 1  # the budget spent: one timed fit, as the bench's engines


def test_profile_leaves_the_engine_as_it_found_it(monkeypatch):
    from twinnet import Network
    from twinnet.nn import engine

    def fail(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Network, "fit", fail)
    with pytest.raises(RuntimeError, match="disk on fire"):
        bench.profile(TINY, threads=1, repeats=1)
    assert engine.np is np
    monkeypatch.undo()
    bench.profile(TINY, threads=1, repeats=1)
    assert engine.np is np
    # the timers change no number: the same fit, profiled or not
    X, y = bench.load_data(TINY)
    plain = Network(list(TINY.config.layers), seed=0)
    plain.fit(X, y, epochs=3, learning_rate=0.1)
    timed = Network(list(TINY.config.layers), seed=0)
    monkeypatch.setattr(engine, "np", profiling._NumpyTimingDot(np.dot))
    timed.fit(X, y, epochs=3, learning_rate=0.1)
    for key, value in plain.parameters.items():
        np.testing.assert_array_equal(timed.parameters[key], value, err_msg=key)


def test_runs_time_the_epochs_after_the_first():
    from twinnet import Network
    from twinnet.data import Split

    X, y = bench.load_data(TINY)
    split = Split(X, X[:0], y, y[:0])
    initial = Network(list(TINY.config.layers), seed=0).parameters
    for engine, timed in [("numpy", 2), ("functional", 2), ("sklearn", 3)]:  # sklearn: its whole fit
        run = worker.train(engine, TINY, split, initial)
        assert run.epochs == timed and run.seconds > 0, engine


# --------------------------------------------------------------------------- a whole workload
ROW_KEYS = {"status", "runs", "ms_per_epoch_runs", "ms_per_epoch", "gflops", "vs_numpy", "error", "skipped",
            "process"}
ENGINE_KEYS = ROW_KEYS | {"engine", "final_loss"}
ROOFLINE_KEYS = ROW_KEYS | {"library", "call", "flops", "threads", "products", "products_ms", "network_vs_fastest"}
RESULT_KEYS = {"workload", "flops_per_epoch", "threads", "engines", "rooflines", "roofline", "numpy_vs_roofline",
               "memory", "memory_error", "targets"}
PROCESS_KEYS = {"pid", "threads", "versions", "thread_pools"}


def check_consistent(result, engines, rooflines=("numpy",)):
    """The figures of a result agree with each other; every row comes from a process of its own."""
    assert set(result) == RESULT_KEYS
    rows = {row["engine"]: row for row in result["engines"]}
    assert list(rows) == list(engines)
    flops = result["flops_per_epoch"]
    numpy_ms = rows["numpy"]["ms_per_epoch"]
    roof_rows = {row["library"]: row for row in result["rooflines"]}
    assert list(roof_rows) == list(rooflines)
    for row in [*rows.values(), *roof_rows.values()]:
        assert set(row) == (ENGINE_KEYS if "engine" in row else ROOFLINE_KEYS), row
        assert row["status"] == "ok" and row["error"] is None and row["skipped"] is None, row
        assert row["runs"] == len(row["ms_per_epoch_runs"]) >= 1
        assert row["ms_per_epoch"] == min(row["ms_per_epoch_runs"]) > 0
        assert row["gflops"] == pytest.approx(flops / row["ms_per_epoch"] / 1e6)
        assert row["vs_numpy"] == pytest.approx(row["ms_per_epoch"] / numpy_ms)
        assert PROCESS_KEYS <= set(row["process"]) and row["process"]["threads"] == result["threads"]["threads"]
    pids = [row["process"]["pid"] for row in [*rows.values(), *roof_rows.values()]]
    assert len(set(pids)) == len(pids), pids  # a process each
    for row in roof_rows.values():
        assert row["call"] == bench.ROOFLINES[row["library"]].call and row["flops"] == flops
        assert [p["label"] for p in row["products"]] == [p[0] for p in bench.products(result["workload"]["layers"],
                                                                                      result["workload"]["n_train"])]
        assert row["products_ms"] == pytest.approx(1e3 * sum(p["seconds"] for p in row["products"]))
        # Network's own layouts are timed with NumPy's BLAS, which it uses, for every product it forms
        layouts = gemm.network_layouts(result["workload"]["layers"])
        assert [p["network"] and p["network"]["layout"] for p in row["products"]] == (
            layouts if row["library"] == "numpy" else [None] * len(layouts))
        own = [p["network"] for p in row["products"] if p["network"]]
        assert all(n["seconds"] > 0 and n["fastest_seconds"] > 0 for n in own)
        assert row["network_vs_fastest"] == (pytest.approx(sum(n["seconds"] for n in own)
                                                           / sum(n["fastest_seconds"] for n in own)) if own else None)
    roof = result["roofline"]  # the fastest library's row
    assert roof == min(roof_rows.values(), key=lambda row: row["ms_per_epoch"])
    assert result["numpy_vs_roofline"] == pytest.approx(numpy_ms / roof["ms_per_epoch"])
    targets = {t["name"]: t for t in result["targets"]}
    w = result["workload"]
    if len(rows) > 1:
        fastest_other = min(r["ms_per_epoch"] for e, r in rows.items() if e != "numpy")
        assert targets["speedup"]["value"] == pytest.approx(fastest_other / numpy_ms)
        assert targets["speedup"]["met"] == (fastest_other / numpy_ms >= w["speedup_target"])
    assert targets["roofline"]["value"] == result["numpy_vs_roofline"]
    assert targets["roofline"]["met"] == (result["numpy_vs_roofline"] <= w["roofline_target"])
    assert roof["call"] in targets["roofline"]["target"]
    if result["memory"]:
        assert targets["memory"]["value"] == result["memory"]["ratio"]
        assert targets["memory"]["met"] == (result["memory"]["ratio"] <= w["memory_target"])
    json.dumps(result)  # JSON-ready


def test_run_workload_numpy_functional_sklearn_agree():
    engines = ["numpy", "functional", "sklearn"]
    result = bench.run_workload(TINY, engines=["sklearn", "numpy", "functional"], rooflines=["numpy"], repeats=3,
                                budget=10.0, threads=1)
    check_consistent(result, engines)  # reported in ENGINE_ORDER, whatever the order asked
    rows = {row["engine"]: row for row in result["engines"]}
    assert all(row["runs"] == 3 for row in rows.values())
    assert result["rooflines"][0]["runs"] == 3  # the roofline takes its turns too
    # the same data, weights and steps, each drawn in its own process: the same last loss, to rounding
    for engine in engines:
        assert rows[engine]["final_loss"] == pytest.approx(rows["numpy"]["final_loss"], rel=1e-12), engine
    assert result["workload"]["layers"] == [6, 4, 3, 1] and result["workload"]["n_train"] == 50
    assert result["memory"]["ratio"] > 0 and result["memory_error"] is None
    # every process was given one thread, and every library it loaded says so
    assert result["threads"] == {"threads": 1, "environment": {
        name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                               "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")}}
    for row in [*rows.values(), *result["rooflines"]]:
        pools = row["process"]["thread_pools"]
        assert any(lib["package"] == "numpy" and lib["user_api"] == "blas" for lib in pools)
        assert {lib["num_threads"] for lib in pools} == {1}, pools
        assert row["process"]["pid"] != os.getpid()
    assert any(lib["package"] == "scikit_learn" for lib in rows["sklearn"]["process"]["thread_pools"])  # OpenMP
    assert "sklearn" in rows["sklearn"]["process"]["versions"]


def test_budget_stops_repeating_after_one_run():
    result = bench.run_workload(TINY, engines=["numpy"], rooflines=["numpy"], repeats=4, budget=0.0, memory=False)
    assert result["engines"][0]["runs"] == 1 and result["memory"] is None
    assert result["rooflines"][0]["runs"] == 1
    assert [t["name"] for t in result["targets"]] == ["roofline"]  # no other engine, no memory


@pytest.mark.parametrize("batch_size", [None, 10], ids=["full-batch", "mini-batch"])
def test_networks_layouts_are_held_to_numpys_fastest_and_a_profile_is_kept(batch_size):
    workload = dataclasses.replace(TINY, products_target=1.03,
                                   config=dataclasses.replace(TINY.config, batch_size=batch_size))
    result = bench.run_workload(workload, engines=["numpy"], rooflines=["numpy"], repeats=1, memory=False,
                                profile=True, threads=1)
    stages = {row["stage"]: row["ms_per_epoch"] for row in result["profile"]["stages"]}
    assert list(stages) == list(bench.STAGES) and result["profile"]["threads"] == 1
    targets = {t["name"]: t for t in result["targets"]}
    if batch_size:  # the full batch's products: nothing to hold mini-batch training to
        assert result["numpy_vs_roofline"] is None and targets == {}
        return
    ratio = result["rooflines"][0]["network_vs_fastest"]
    assert targets["products"] == {"name": "products", "value": ratio, "bound": 1.03, "met": ratio <= 1.03,
                                   "target": "Network's layouts within 1.03x of NumPy's fastest, its products "
                                             "timed one by one"}


# the bench from a Python process of its own: its modules are its own, not those of the tests before it
EVERY_ENGINE = textwrap.dedent("""
    import json, os, sys
    from twinnet import bench
    from twinnet.lab import RunConfig
    tiny = bench.Workload("tiny", RunConfig(data="gaussian", layers=(6, 4, 3, 1), epochs=3, learning_rate=0.1),
                          n_train=50)
    # the engines that load PyTorch and TensorFlow, beside numpy's (the rows' reference); functional's and
    # sklearn's processes: test_run_workload_numpy_functional_sklearn_agree
    engines = ["numpy", "torch", "tf-loop", "keras"]
    result = bench.run_workload(tiny, engines=engines, repeats=1, budget=0.0, memory=False, threads=1)
    loaded = [name for name in ("tensorflow", "torch", "keras", "sklearn") if name in sys.modules]
    print(json.dumps({"pid": os.getpid(), "loaded": loaded, "result": result}))
""")


@pytest.mark.skipif(not HAVE_TF_AND_TORCH, reason="needs torch and TensorFlow")
def test_every_engine_and_library_in_a_process_of_its_own():
    src = os.path.dirname(os.path.dirname(os.path.dirname(bench.__file__)))
    done = subprocess.run([sys.executable, "-c", EVERY_ENGINE], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": src})
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["loaded"] == []  # TensorFlow, PyTorch and scikit-learn were loaded by the children only
    result = report["result"]
    check_consistent(result, ["numpy", "torch", "tf-loop", "keras"], bench.ROOFLINES)
    rows = {row["engine"]: row for row in result["engines"]}
    for engine, row in rows.items():
        assert row["final_loss"] == pytest.approx(rows["numpy"]["final_loss"], rel=1e-9), engine
        assert row["process"]["pid"] != report["pid"]
    # one timed run each, of the epochs after the first
    assert all(len(row["ms_per_epoch_runs"]) == 1 for row in [*rows.values(), *result["rooflines"]])
    # the threads each library reports: the one it was given
    for row in [*result["engines"], *result["rooflines"]]:
        process = row["process"]
        assert {lib["num_threads"] for lib in process["thread_pools"]} == {1}, row
        if "tensorflow" in process["versions"]:
            assert process["tensorflow"] == {"intra_op_threads": 1, "inter_op_threads": 1}
        if "torch" in process["versions"]:
            assert process["torch"]["threads"] == 1 and process["torch"]["cpu_capability"]
    roof = {row["library"]: row for row in result["rooflines"]}
    assert "tensorflow" in roof["tensorflow"]["process"]["versions"] and "torch" in roof["torch"]["process"]["versions"]
    assert {p["threads"] for p in roof["tensorflow"]["products"]} == {1}
    machine = bench.machine([result])  # the versions the children loaded
    assert {"tensorflow", "torch"} <= set(machine["versions"])


def test_missing_library_is_skipped_with_the_extra_to_install(monkeypatch):
    monkeypatch.setattr(turns, "_installed", lambda module: module != "torch")
    result = bench.run_workload(TINY, engines=["numpy", "torch"], rooflines=["numpy", "torch"], repeats=1,
                                memory=False)
    torch_row, torch_roof = result["engines"][1], result["rooflines"][1]
    for row in (torch_row, torch_roof):
        assert row["skipped"] == "torch is not installed (pip install 'twinnet[torch]')"
        assert row["status"] is None and row["runs"] == 0 and row["ms_per_epoch"] is None
        assert row["vs_numpy"] is None and row["process"] is None
    assert torch_roof["products"] == [] and torch_roof["flops"] == result["flops_per_epoch"]
    assert result["roofline"]["library"] == "numpy"  # the fastest of those that ran


def test_a_diverging_engine_is_reported_not_raised():
    from dataclasses import replace

    result = bench.run_workload(replace(TINY, config=replace(TINY.config, learning_rate=1e300)), engines=["numpy"],
                                rooflines=["numpy"], repeats=1, memory=False)
    row = result["engines"][0]
    assert row["status"] == "diverged" and row["error"].startswith("diverged:") and row["ms_per_epoch"] is None
    assert result["numpy_vs_roofline"] is None and result["targets"] == []


def test_a_process_that_fails_crashes_or_hangs_gives_a_failed_row(monkeypatch):
    from twinnet.bench.worker import FAULT_ENV

    monkeypatch.setenv(FAULT_ENV, "functional=crash,sklearn=hang@warm_up,roofline:numpy=raise,memory=crash@start")
    result = bench.run_workload(TINY, engines=["numpy", "functional", "sklearn"], rooflines=["numpy"], repeats=2,
                                timeout=2.0)
    rows = {row["engine"]: row for row in result["engines"]}
    assert rows["numpy"]["status"] == "ok" and rows["numpy"]["runs"] == 2  # the others go on
    assert (rows["functional"]["status"], rows["functional"]["error"]) == (
        "failed", "the process ended in run 1 (exit status 3)")
    assert (rows["sklearn"]["status"], rows["sklearn"]["error"]) == (
        "failed", "no answer within 2 s in its warm-up; stopped")
    roof = result["rooflines"][0]
    assert (roof["status"], roof["error"]) == ("failed", "RuntimeError: fault injected by TWINNET_BENCH_FAULT")
    for row in [rows["functional"], rows["sklearn"], roof]:
        assert row["ms_per_epoch"] is None and row["vs_numpy"] is None
    assert result["roofline"] is None and result["numpy_vs_roofline"] is None
    assert result["memory"] is None and result["memory_error"] == "the process ended while starting (exit status 3)"
    assert result["targets"] == []  # numpy alone, no roofline, no memory: nothing to check


def test_a_child_that_dies_is_quoted(monkeypatch):
    from twinnet.bench.worker import FAULT_ENV

    monkeypatch.setenv(FAULT_ENV, "numpy=explode")  # not a fault: every child stops at its start, and says why
    result = bench.run_workload(TINY, engines=["numpy"], rooflines=[], repeats=1, memory=False)
    error = result["engines"][0]["error"]
    assert error.startswith("the process ended while starting (exit status 1): ValueError: TWINNET_BENCH_FAULT: "
                            "expected name=fault[@step]"), error
    assert error.endswith("got 'numpy=explode'.")


def test_interrupting_the_bench_stops_its_processes():
    import psutil

    children = []

    def announce(message):
        if "run 1" in message:
            children.extend(psutil.Process().children())
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bench.run_workload(TINY, engines=["numpy", "functional"], rooflines=["numpy"], repeats=2, announce=announce)
    assert len(children) == 3
    assert not [child.pid for child in children if child.is_running()]


@pytest.mark.parametrize("change, match", [
    ({"epochs": 1}, r"epochs must be an integer >= 2 .*got epochs=1"),
    ({"data": "mnist"}, r"Unknown data 'mnist'"),
])
def test_bad_workloads(change, match):
    from dataclasses import replace

    with pytest.raises(ValueError, match=match):
        bench.run_workload(replace(TINY, config=replace(TINY.config, **change)), engines=["numpy"])


def test_a_wrong_size_of_the_built_in_data_is_said_once():
    from dataclasses import replace

    with pytest.raises(ValueError, match=r"workload 'seed' expects 1000 x 100 training data; data set 'synthetic' "
                                         r"gives 1600 x 100"):
        bench.run_workload(replace(bench.WORKLOADS["seed"], n_train=1000), engines=["numpy"])


@pytest.mark.parametrize("kwargs, match", [
    ({"engines": ["numpy", "jax"]}, r"Unknown engine 'jax'. Expected one of: 'numpy', 'functional'"),
    ({"rooflines": ["blis"]}, r"Unknown roofline library 'blis'. Expected one of: 'numpy', 'tensorflow', 'torch'"),
    ({"repeats": 0}, r"repeats must be an integer >= 1; got repeats=0"),
    ({"budget": -1}, r"budget must be a finite number >= 0; got budget=-1"),
    ({"threads": 0}, r"threads must be an integer >= 1; got threads=0"),
    ({"timeout": 0}, r"timeout must be a finite number > 0; got timeout=0"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bench.run_workload(TINY, **{"engines": ["numpy"], **kwargs})


@pytest.mark.parametrize("kwargs, match", [
    ({"workload": "mnist"}, r"Unknown workload 'mnist'"),
    ({"repeats": 0}, r"repeats must be an integer >= 1; got repeats=0"),
    ({"budget": float("inf")}, r"budget must be a finite number >= 0; got budget=inf"),
    ({"threads": 0}, r"threads must be an integer >= 1; got threads=0"),
])
def test_profile_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bench.profile(**{"workload": TINY, **kwargs})


def test_unknown_workload_name():
    with pytest.raises(ValueError,
                       match=r"Unknown workload 'huge'. Expected one of: 'digits10', 'large', 'large10', 'seed'"):
        bench.run_workload("huge")


def test_workload_record_round_trip():
    for workload in [TINY, *bench.WORKLOADS.values()]:
        assert bench.Workload.from_record(json.loads(json.dumps(workload.record()))) == workload


# --------------------------------------------------------------------------- the machine
MACHINE_KEYS = {"host", "platform", "processor", "cpu", "cpus", "usable_cpus", "blas", "cpu_id", "vector_extensions",
                "vector_extensions_from", "numpy_blas", "thread_pools", "library_variables", "versions", "kernel_note"}


def test_machine_record(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    info = bench.machine()
    assert set(info) == MACHINE_KEYS
    assert set(info["vector_extensions"]) <= set(host.VECTOR_EXTENSIONS)
    assert info["library_variables"] == {"OPENBLAS_CORETYPE": "Haswell", **{
        k: os.environ[k] for k in host.LIBRARY_VARIABLES if k in os.environ and k != "OPENBLAS_CORETYPE"}}
    blas = info["numpy_blas"]
    assert blas["package"] == "numpy" and blas["user_api"] == "blas" and blas["num_threads"] >= 1
    assert {"internal_api", "version", "architecture"} <= set(blas)
    # the versions of the libraries this process has loaded (the bench's children add theirs)
    assert info["versions"]["numpy"] == np.__version__
    assert ("tensorflow" in info["versions"]) == ("tensorflow" in sys.modules)
    json.dumps(info)


ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC 9R14 96-Core Processor
stepping\t: 1
flags\t\t: fpu sse4_1 sse4_2 avx f16c avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16 avx512vnni \
avx512_vnni avx512_vbmi2

processor\t: 1
model name\t: some other line that is not read
"""


def test_cpu_record_from_cpuinfo_and_without_it(tmp_path, monkeypatch):
    path = tmp_path / "cpuinfo"
    path.write_text(ZEN4)
    monkeypatch.setattr(host, "_CPUINFO", str(path))
    assert bench.cpu_record() == {
        "cpu": "AMD EPYC 9R14 96-Core Processor", "cpu_id": "AuthenticAMD family 25 model 17 stepping 1",
        "vector_extensions": ["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512cd", "avx512bw",
                              "avx512vl", "avx512_vnni", "avx512_bf16"],
        "vector_extensions_from": str(path)}
    monkeypatch.setattr(host, "_CPUINFO", str(tmp_path / "missing"))  # not Linux: NumPy's dispatch says
    record = bench.cpu_record()
    assert record["vector_extensions_from"] == "numpy" and record["cpu_id"] is None and record["cpu"]
    from numpy._core._multiarray_umath import __cpu_features__

    assert ("avx2" in record["vector_extensions"]) == __cpu_features__.get("AVX2", False)


AVX512 = ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl"]
AVX2 = ["sse4_2", "avx", "avx2", "fma"]


@pytest.mark.parametrize(("extensions", "kernel", "variables", "note"), [
    (AVX512, "Haswell", {"OPENBLAS_CORETYPE": "Haswell"},
     "NumPy's OpenBLAS runs its Haswell kernels (AVX2) on a CPU with AVX-512: OPENBLAS_CORETYPE=Haswell forces "
     "them; unset it for the run (env -u OPENBLAS_CORETYPE twinnet ...) to let OpenBLAS pick this CPU's own"),
    (AVX512, "Haswell", {},
     "NumPy's OpenBLAS runs its Haswell kernels (AVX2) on a CPU with AVX-512: OpenBLAS 0.3.31 does not know this "
     "CPU; a newer NumPy may, or OPENBLAS_CORETYPE=SkylakeX forces its AVX-512 kernels"),
    (AVX2, "Sandybridge", {"OPENBLAS_CORETYPE": "SANDYBRIDGE"},
     "NumPy's OpenBLAS runs its Sandybridge kernels (AVX) on a CPU with AVX2: OPENBLAS_CORETYPE=SANDYBRIDGE forces "
     "them; unset it for the run (env -u OPENBLAS_CORETYPE twinnet ...) to let OpenBLAS pick this CPU's own"),
    (AVX2, "Haswell", {"OPENBLAS_CORETYPE": "Haswell"}, None),  # the best this CPU has
    (AVX2, "Zen", {}, None),
    (AVX512, "SkylakeX", {}, None),
    (AVX512, "Cooperlake", {}, None),
    (AVX512, "NeoverseN1", {}, None),  # a kernel not in the table is not judged
    (["asimd"], "Haswell", {}, None),  # nor a CPU without the table's extensions
], ids=["avx512-haswell-forced", "avx512-haswell-chosen", "avx2-sandybridge-forced", "avx2-haswell", "avx2-zen",
        "avx512-skylakex", "avx512-cooperlake", "unknown-kernel", "arm"])
def test_kernel_note_says_when_the_blas_runs_older_kernels_than_the_cpu(extensions, kernel, variables, note):
    blas = {"internal_api": "openblas", "version": "0.3.31", "architecture": kernel}
    assert host.kernel_note(extensions, blas, variables) == note
    assert host.kernel_note(extensions, {**blas, "internal_api": "mkl"}, variables) is None
    assert host.kernel_note(extensions, None, variables) is None


def _children():
    """Pids of this process's living children (Linux's /proc)."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rpartition(b")")[2].split()
        except (OSError, ValueError):
            continue
        if entry.isdigit() and int(fields[1]) == os.getpid() and fields[0] != b"Z":
            pids.append(int(entry))
    return pids


def test_cli_busy_runs_beside_one_spinning_process_per_cpu_and_stops_them(tmp_path, cli, monkeypatch):
    from twinnet.bench import busy

    started = []
    spin = busy.busy

    def spy(processes):
        started.append(processes)
        return spin(processes)

    monkeypatch.setattr(busy, "busy", spy)
    before = _children()
    status, out, err = cli("bench", "--workload", "seed", "--epochs", "2", "--engines", "numpy", "--rooflines",
                           "numpy", "--repeats", "1", "--no-memory", "--busy", "--json", tmp_path / "b.json")
    assert status == 0, err
    cpus = bench.resolve_threads(None)
    assert started == [cpus]
    assert f"beside {cpus} busy process" in out
    assert json.loads((tmp_path / "b.json").read_text())["busy_processes"] == cpus
    assert _children() == before, "a process of the bench outlived it"


def test_cli_threads_auto_and_batch_size(tmp_path, cli, monkeypatch):
    # auto: the children get no thread variables, and Network chooses (twinnet.nn.threads)
    for name in THREAD_ENV:
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "b.json"
    status, out, err = cli("bench", "--workload", "digits10", "--epochs", "2", "--batch-size", "256", "--engines",
                           "numpy", "--rooflines", "numpy", "--repeats", "1", "--no-memory", "--threads", "auto",
                           "--json", path)
    assert status == 0, err
    assert "each library's own threads (--threads auto)" in out
    assert "digits10: 1437 x 64, layers 64,64,32,10, float64, 2 epochs, batches of 256 adam lr 0.001" in out
    (result,) = json.loads(path.read_text())["workloads"]
    assert result["threads"] == {"threads": "auto", "environment": {}}
    assert result["workload"]["batch_size"] == 256 and result["engines"][0]["status"] == "ok"
    # the roofline is the full batch's products: no ratio, no target, for mini-batches
    assert result["numpy_vs_roofline"] is None and result["targets"] == []


# --------------------------------------------------------------------------- the command
def test_cli_prints_the_table_and_writes_the_same_figures(tmp_path, cli):
    path = tmp_path / "out" / "bench.json"
    status, out, err = cli("bench", "--workload", "seed", "--epochs", "2", "--engines", "numpy,sklearn",
                           "--rooflines", "numpy", "--repeats", "2", "--json", str(path))
    assert status == 0 and err == "", err  # no progress line when stderr is not a terminal
    saved = json.loads(path.read_text())
    assert set(saved) == {"machine", "busy_processes", "workloads"} and set(saved["machine"]) == MACHINE_KEYS
    assert saved["busy_processes"] == 0
    (result,) = saved["workloads"]
    check_consistent(result, ["numpy", "sklearn"])
    assert result["workload"]["name"] == "seed" and result["workload"]["epochs"] == 2
    lines = out.splitlines()
    machine = saved["machine"]
    threads = bench.resolve_threads(None)
    assert lines[0] == (f"machine: {machine['cpu']} ({machine['cpu_id']}), {machine['usable_cpus']} of "
                        f"{machine['cpus']} CPUs usable; {' '.join(machine['vector_extensions'])}")
    blas = machine["numpy_blas"]
    assert lines[1].startswith(f"  NumPy {np.__version__} on {blas['internal_api']} {blas['version']}")
    assert lines[1].endswith(f"each engine and roofline library in a process of its own, one at a time, "
                             f"{threads} thread{'s' if threads > 1 else ''} each")
    assert lines[3].startswith("seed: 1600 x 100, layers 100,20,5,1, float64, 2 epochs")
    assert "13.8 MFLOP per epoch" in lines[3]
    rows = {cells[0]: cells[1:] for cells in map(str.split, lines)
            if cells and cells[0] in ("numpy", "sklearn", "roofline", "np.dot") and cells[1] not in ("/", "the")}
    for row in result["engines"]:
        ms, _gflops, vs, loss, runs = rows[row["engine"]]
        assert float(ms) == pytest.approx(row["ms_per_epoch"], abs=6e-4)  # printed to 3 decimals
        assert float(vs) == pytest.approx(row["vs_numpy"], abs=6e-3)
        assert float(loss) == pytest.approx(row["final_loss"], abs=6e-7) and int(runs) == row["runs"]
    roof = result["roofline"]
    assert float(rows["roofline"][0]) == pytest.approx(roof["ms_per_epoch"], abs=6e-4)
    assert rows["roofline"][5:] == ["np.dot,", "the", "fastest"]
    assert rows["np.dot"][:5] == rows["roofline"][:5] and int(rows["np.dot"][4]) == 2
    assert "  roofline: the epoch's 8 matrix products alone" in out
    assert f"  products timed one by one: np.dot {roof['products_ms']:.3f} ms\n" in out
    own = [p["network"] for p in roof["products"] if p["network"]]  # 7 of 8: the output unit's dA is in blocks
    assert len(own) == 7
    assert (f"  Network's layouts: {1e3 * sum(n['seconds'] for n in own):.3f} ms against "
            f"{1e3 * sum(n['fastest_seconds'] for n in own):.3f} ms in np.dot's fastest "
            f"({roof['network_vs_fastest']:.3f}x), the 7 products it forms timed in turn\n") in out
    assert f"numpy / roofline: {result['numpy_vs_roofline']:.2f}x" in out
    assert "Network.fit peak extra memory" in out and out.count("target: ") == 3
    assert "threads the processes report: " in out and f"numpy's openblas {blas['architecture']} {threads}" in out
    assert f"numpy {np.__version__}" in out and "sklearn " in out and f"wrote {path}" in out


def test_cli_profile_prints_the_stages_it_saves(tmp_path, cli):
    path = tmp_path / "bench.json"
    status, out, err = cli("bench", "--workload", "seed", "--epochs", "3", "--engines", "numpy",
                           "--rooflines", "numpy", "--repeats", "1", "--no-memory", "--profile", "--json", str(path))
    assert status == 0 and err == "", err
    (result,) = json.loads(path.read_text())["workloads"]
    profile = result["profile"]
    assert f"  profile of Network.fit: {profile['ms_per_epoch']:.3f} ms per epoch" in out
    for row in profile["stages"]:
        calls = "" if row["calls_per_epoch"] is None else f"{row['calls_per_epoch']:g}"
        line = f"    {row['stage']:<24} {row['ms_per_epoch']:>10.3f} {row['share']:>6.1%} {calls:>6}".rstrip()
        assert line + "\n" in out
    status, out, err = cli("bench", "--workload", "seed", "--epochs", "2", "--engines", "numpy", "--rooflines",
                           "numpy", "--repeats", "1", "--no-memory", "--json", str(tmp_path / "plain.json"))
    assert status == 0 and "profile of Network.fit" not in out
    assert "profile" not in json.loads((tmp_path / "plain.json").read_text())["workloads"][0]


def test_cli_notes_what_failed(tmp_path, cli, monkeypatch):
    from twinnet.bench.worker import FAULT_ENV

    monkeypatch.setenv(FAULT_ENV, "functional=raise@warm_up")
    monkeypatch.setattr(turns, "_installed", lambda module: module != "torch")
    status, out, err = cli("bench", "--workload", "seed", "--epochs", "2", "--engines", "numpy,functional,torch",
                           "--rooflines", "numpy,torch", "--repeats", "1", "--no-memory", "--json",
                           str(tmp_path / "b.json"))
    assert status == 0, err
    rows = {cells[0]: cells[1:] for cells in map(str.split, out.splitlines()) if cells}
    assert rows["functional"] == ["-", "-", "-", "-", "0"] and rows["torch"] == ["-", "-", "-", "-", "0"]
    assert rows["torch.mm"] == ["-", "-", "-", "-", "0"]
    assert "  note: functional: RuntimeError: fault injected by TWINNET_BENCH_FAULT" in out
    assert "  note: torch: torch is not installed (pip install 'twinnet[torch]')" in out
    assert "  note: torch.mm (torch): torch is not installed (pip install 'twinnet[torch]')" in out


@pytest.mark.parametrize("argv, match", [
    (["--epochs", "1"], "expected an integer >= 2"),
    (["--epochs", "0"], "expected an integer >= 2 (the first epoch is not timed), got 0"),
    (["--engines", "numpy,jax"], "unknown engine 'jax'"),
    (["--rooflines", "numpy,blis"], "unknown library 'blis'; expected a comma-separated list of: numpy, tensorflow"),
    (["--workload", "huge"], "invalid choice: 'huge'"),
    (["--repeats", "0"], "expected an integer >= 1"),
    (["--budget", "-2"], "expected a finite number of seconds >= 0"),
    (["--threads", "0"], "argument --threads: expected an integer >= 1"),
    (["--timeout", "0"], "argument --timeout: expected a finite number of seconds > 0, got 0"),
])
def test_cli_usage_errors(cli, argv, match):
    status, _out, err = cli("bench", *argv)
    assert status == 2 and match in err and "Traceback" not in err


def test_cli_json_path_that_is_a_folder(tmp_path, cli):
    status, out, err = cli("bench", "--json", str(tmp_path))
    assert status == 2 and "is a folder; expected a file name" in err and out == ""


QUICK = ["--workload", "seed", "--epochs", "2", "--engines", "numpy", "--rooflines", "numpy", "--repeats", "1",
         "--no-memory"]


def test_cli_keeps_an_existing_json_unless_force(tmp_path, cli, monkeypatch):
    path = tmp_path / "bench.json"
    path.write_text("earlier figures")
    argv = [*QUICK, "--json", str(path)]
    status, out, err = cli("bench", *argv)
    assert status == 2 and "already exists" in err and "--force" in err and out == ""
    assert path.read_text() == "earlier figures"
    status, out, err = cli("bench", *argv, "--force")
    assert status == 0, err
    assert json.loads(path.read_text())["workloads"][0]["workload"]["epochs"] == 2


def test_cli_default_json_is_new_and_checked_before_timing(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli("bench", *QUICK)[0] == 0 and cli("bench", *QUICK)[0] == 0
    written = sorted((tmp_path / "twinnet-runs").iterdir())
    assert len(written) == 2 and all(json.loads(p.read_text())["workloads"] for p in written)


def test_large10_is_the_mnist_shape_with_ten_balanced_enough_classes():
    workload = bench.WORKLOADS["large10"]
    assert workload.config.layers == (784, 512, 256, 10) and workload.config.output == "softmax"
    X, y = bench.load_data(dataclasses.replace(workload, n_train=2000))
    assert X.dtype == np.float32 and X.shape == (2000, 784)
    counts = np.bincount(y, minlength=10)
    assert counts.size == 10 and counts.min() > 50  # every class present, none vanishingly rare
