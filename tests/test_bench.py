"""``twinnet bench``: the work it counts, the roofline's products, consistent figures, the CLI.

Speed is measured, never asserted: these tests check what the figures mean (the FLOP count, the
products, the ratios computed from the times, the memory reference) on tiny workloads.
"""

import importlib.util
import json

import numpy as np
import pytest
from numpy.testing import assert_allclose

from twinnet import bench
from twinnet.lab import RunConfig

TINY = bench.Workload("tiny", RunConfig(data="gaussian", layers=(6, 4, 3, 1), epochs=3, learning_rate=0.1),
                      n_train=50)


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


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_gemm_layout_computes_the_same_product(dtype):
    rng = np.random.default_rng(0)
    variants = bench._gemm_variants(3, 5, 4, np.dtype(dtype), rng)
    assert len(variants) == 8 and len({label for label, _ in variants}) == 8
    # the operands are drawn first, A (3, 5) then B (5, 4), from the same seed
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3, 5)).astype(dtype)
    B = rng.standard_normal((5, 4)).astype(dtype)
    for label, fn in variants:
        C = fn()
        assert C.dtype == dtype
        assert_allclose(C.T if "transposed" in label else C, A @ B, rtol=1e-5, err_msg=label)


def test_roofline_runs_each_product_in_its_fastest_layout():
    roof = bench.roofline([6, 4, 1], 32, "float64", epochs=3, repeats=2, samples=2, budget=0.01)
    assert [p["label"] for p in roof["products"]] == [p[0] for p in bench.products([6, 4, 1], 32)]
    assert roof["flops"] == bench.flops_per_epoch([6, 4, 1], 32)
    assert roof["products_ms"] == pytest.approx(1e3 * sum(p["seconds"] for p in roof["products"]))
    assert len(roof["ms_per_epoch_runs"]) == 2 and roof["ms_per_epoch"] == min(roof["ms_per_epoch_runs"]) > 0
    labels = {label for label, _ in bench._gemm_variants(1, 1, 1, np.dtype("float64"), np.random.default_rng(0))}
    for p in roof["products"]:
        assert p["flops"] == 2 * np.prod(p["shape"]) and p["seconds"] > 0
        assert p["layout"] in labels and 1 <= p["threads"] <= roof["threads"]


def test_roofline_runs_restore_the_blas_threads():
    from threadpoolctl import threadpool_info, threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        _, plan = bench._fastest_layouts([6, 4, 1], 32, "float64", samples=1, budget=0.01)
        plan = [(2, calls) for _, calls in plan]  # run with two threads, then restore one
        run = bench._run_products(plan, 3)
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


def test_runs_time_the_epochs_after_the_first():
    from twinnet import Network
    from twinnet.data import Split

    X, y = bench.load_data(TINY)
    split = Split(X, X[:0], y, y[:0])
    initial = Network(list(TINY.config.layers), seed=0).parameters
    for engine, timed in [("numpy", 2), ("functional", 2), ("sklearn", 3)]:  # sklearn: its whole fit
        run = bench._train(engine, TINY, split, initial)
        assert run.epochs == timed and run.seconds > 0, engine


# --------------------------------------------------------------------------- a whole workload
def check_consistent(result, engines):
    """The figures of a result agree with each other."""
    rows = {row["engine"]: row for row in result["engines"]}
    assert list(rows) == engines
    flops = result["flops_per_epoch"]
    numpy_ms = rows["numpy"]["ms_per_epoch"]
    for row in rows.values():
        assert row["error"] is None and row["skipped"] is None, row
        assert row["runs"] == len(row["ms_per_epoch_runs"]) >= 1
        assert row["ms_per_epoch"] == min(row["ms_per_epoch_runs"]) > 0
        assert row["gflops"] == pytest.approx(flops / row["ms_per_epoch"] / 1e6)
        assert row["vs_numpy"] == pytest.approx(row["ms_per_epoch"] / numpy_ms)
    roof = result["roofline"]
    assert roof["flops"] == flops
    assert roof["ms_per_epoch"] == min(roof["ms_per_epoch_runs"]) > 0
    assert roof["gflops"] == pytest.approx(flops / roof["ms_per_epoch"] / 1e6)
    assert result["numpy_vs_roofline"] == pytest.approx(numpy_ms / roof["ms_per_epoch"])
    targets = {t["name"]: t for t in result["targets"]}
    w = result["workload"]
    fastest_other = min(r["ms_per_epoch"] for e, r in rows.items() if e != "numpy")
    assert targets["speedup"]["value"] == pytest.approx(fastest_other / numpy_ms)
    assert targets["speedup"]["met"] == (fastest_other / numpy_ms >= w["speedup_target"])
    assert targets["roofline"]["value"] == result["numpy_vs_roofline"]
    assert targets["roofline"]["met"] == (result["numpy_vs_roofline"] <= w["roofline_target"])
    if result["memory"]:
        assert targets["memory"]["value"] == result["memory"]["ratio"]
        assert targets["memory"]["met"] == (result["memory"]["ratio"] <= w["memory_target"])


def test_run_workload_numpy_functional_sklearn_agree():
    engines = ["numpy", "functional", "sklearn"]
    result = bench.run_workload(TINY, engines=["sklearn", "numpy", "functional"], repeats=3, budget=10.0)
    check_consistent(result, engines)  # reported in ENGINE_ORDER, whatever the order asked
    rows = {row["engine"]: row for row in result["engines"]}
    assert all(row["runs"] == 3 for row in rows.values())
    assert len(result["roofline"]["ms_per_epoch_runs"]) == 3  # the roofline takes its turns too
    # the same data, weights and steps: the same last loss, to rounding
    for engine in engines:
        assert rows[engine]["final_loss"] == pytest.approx(rows["numpy"]["final_loss"], rel=1e-12), engine
    assert result["workload"]["layers"] == [6, 4, 3, 1] and result["workload"]["n_train"] == 50
    assert result["memory"]["ratio"] > 0
    json.dumps(result)  # JSON-ready


def test_budget_stops_repeating_after_one_run():
    result = bench.run_workload(TINY, engines=["numpy"], repeats=4, budget=0.0, memory=False)
    assert result["engines"][0]["runs"] == 1 and result["memory"] is None
    assert len(result["roofline"]["ms_per_epoch_runs"]) == 1
    assert [t["name"] for t in result["targets"]] == ["roofline"]  # no other engine, no memory


@pytest.mark.skipif(importlib.util.find_spec("torch") is None or importlib.util.find_spec("tensorflow") is None,
                    reason="needs torch and TensorFlow")
def test_every_engine_trains_the_same_workload():
    result = bench.run_workload(TINY, repeats=1, budget=0.0, memory=False)
    check_consistent(result, list(bench.ENGINE_ORDER))
    rows = {row["engine"]: row for row in result["engines"]}
    for engine, row in rows.items():
        assert row["final_loss"] == pytest.approx(rows["numpy"]["final_loss"], rel=1e-9), engine
    # one timed run each, of the epochs after the first
    assert all(len(row["ms_per_epoch_runs"]) == 1 for row in rows.values())


def test_missing_library_is_skipped_with_the_extra_to_install(monkeypatch):
    from twinnet.lab import runners

    monkeypatch.setattr(runners, "installed", lambda engine: engine != "torch")
    result = bench.run_workload(TINY, engines=["numpy", "torch"], repeats=1, memory=False)
    torch_row = result["engines"][1]
    assert torch_row["skipped"] == "torch is not installed (pip install 'twinnet[torch]')"
    assert torch_row["runs"] == 0 and torch_row["ms_per_epoch"] is None and torch_row["vs_numpy"] is None


def test_a_diverging_engine_is_reported_not_raised():
    from dataclasses import replace

    result = bench.run_workload(replace(TINY, config=replace(TINY.config, learning_rate=1e300)), engines=["numpy"],
                                repeats=1, memory=False)
    row = result["engines"][0]
    assert row["status"] == "diverged" and row["error"].startswith("diverged:") and row["ms_per_epoch"] is None
    assert result["numpy_vs_roofline"] is None and result["targets"] == []


@pytest.mark.parametrize("change, match", [
    ({"epochs": 1}, r"epochs must be an integer >= 2 .*got epochs=1"),
    ({"data": "mnist"}, r"Unknown data 'mnist'"),
])
def test_bad_workloads(change, match):
    from dataclasses import replace

    with pytest.raises(ValueError, match=match):
        bench.run_workload(replace(TINY, config=replace(TINY.config, **change)), engines=["numpy"])


@pytest.mark.parametrize("kwargs, match", [
    ({"engines": ["numpy", "jax"]}, r"Unknown engine 'jax'. Expected one of: 'numpy', 'functional'"),
    ({"repeats": 0}, r"repeats must be an integer >= 1; got repeats=0"),
    ({"budget": -1}, r"budget must be a number of seconds >= 0; got budget=-1"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bench.run_workload(TINY, **{"engines": ["numpy"], **kwargs})


def test_unknown_workload_name():
    with pytest.raises(ValueError, match=r"Unknown workload 'huge'. Expected one of: 'large', 'seed'"):
        bench.run_workload("huge")


# --------------------------------------------------------------------------- the command
def test_cli_prints_the_table_and_writes_the_same_figures(tmp_path, cli):
    path = tmp_path / "out" / "bench.json"
    status, out, err = cli("bench", "--workload", "seed", "--epochs", "2", "--engines",
                           "numpy,sklearn", "--repeats", "2", "--json", str(path))
    assert status == 0 and err == "", err  # no progress line when stderr is not a terminal
    saved = json.loads(path.read_text())
    (result,) = saved["workloads"]
    check_consistent(result, ["numpy", "sklearn"])
    assert result["workload"]["name"] == "seed" and result["workload"]["epochs"] == 2
    lines = out.splitlines()
    assert lines[0].startswith("seed: 1600 x 100, layers 100,20,5,1, float64, 2 epochs")
    assert "13.8 MFLOP per epoch" in lines[0]
    rows = {cells[0]: cells[1:] for cells in map(str.split, lines)
            if cells and cells[0] in ("numpy", "sklearn", "roofline") and cells[1] != "/"}
    for row in result["engines"]:
        ms, _gflops, vs, loss, runs = rows[row["engine"]]
        assert float(ms) == pytest.approx(row["ms_per_epoch"], abs=6e-4)
        assert float(vs) == pytest.approx(row["vs_numpy"], abs=6e-3)
        assert float(loss) == pytest.approx(row["final_loss"], abs=6e-7) and int(runs) == row["runs"]
    roof = result["roofline"]
    assert float(rows["roofline"][0]) == pytest.approx(roof["ms_per_epoch"], abs=6e-4)
    assert int(rows["roofline"][-1]) == len(roof["ms_per_epoch_runs"]) == 2
    assert f"({roof['products_ms']:.3f} ms timed one by one; BLAS threads {roof['threads']})" in out
    assert f"numpy / roofline: {result['numpy_vs_roofline']:.2f}x" in out
    assert "Network.fit peak extra memory" in out and out.count("target: ") == 3
    machine = saved["machine"]
    assert machine["cpus"] >= 1 and machine["versions"]["numpy"] == np.__version__
    numpy_blas = [lib for lib in machine["thread_pools"] if lib["package"] == "numpy"]
    assert numpy_blas and numpy_blas[0]["user_api"] == "blas"  # the BLAS behind np.dot
    assert "thread pools: " in out and "numpy's openblas" in out
    assert f"machine: {machine['cpu']}" in out and f"wrote {path}" in out


@pytest.mark.parametrize("argv, match", [
    (["--epochs", "1"], "expected an integer >= 2"),
    (["--engines", "numpy,jax"], "unknown engine 'jax'"),
    (["--workload", "huge"], "invalid choice: 'huge'"),
    (["--repeats", "0"], "expected an integer >= 1"),
    (["--budget", "-2"], "expected a finite number of seconds >= 0"),
])
def test_cli_usage_errors(cli, argv, match):
    status, _out, err = cli("bench", *argv)
    assert status == 2 and match in err and "Traceback" not in err


def test_cli_json_path_that_is_a_folder(tmp_path, cli):
    status, out, err = cli("bench", "--json", str(tmp_path))
    assert status == 2 and "is a folder; expected a file name" in err and out == ""


def test_cli_keeps_an_existing_json_unless_force(tmp_path, cli, monkeypatch):
    path = tmp_path / "bench.json"
    path.write_text("earlier figures")
    argv = ["--workload", "seed", "--epochs", "2", "--engines", "numpy", "--repeats", "1", "--no-memory",
            "--json", str(path)]
    status, out, err = cli("bench", *argv)
    assert status == 2 and "already exists" in err and "--force" in err and out == ""
    assert path.read_text() == "earlier figures"
    status, out, err = cli("bench", *argv, "--force")
    assert status == 0, err
    assert json.loads(path.read_text())["workloads"][0]["workload"]["epochs"] == 2


def test_cli_default_json_is_new_and_checked_before_timing(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["--workload", "seed", "--epochs", "2", "--engines", "numpy", "--repeats", "1", "--no-memory"]
    assert cli("bench", *argv)[0] == 0 and cli("bench", *argv)[0] == 0
    written = sorted((tmp_path / "twinnet-runs").iterdir())
    assert len(written) == 2 and all(json.loads(p.read_text())["workloads"] for p in written)
