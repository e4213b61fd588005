"""The sweep's grid: validation, TOML files, run ids."""

import json
import os
import subprocess
import sys

import pytest

from twinnet.lab import grid as G

#: The fields rows gained with issue 14 (regularization and training control).
REGULARIZATION = ("l2", "dropout", "batch_norm", "lr_schedule", "early_stopping", "validation_fraction")

SMALL = {"data": "moons", "layers": [[2, 8, 1], [2, 4, 4, 1]], "learning_rate": [0.1, 1.0],
         "epochs": [20, 5, 10], "seeds": [0, 1, 2], "engines": ["numpy", "functional"]}


# --------------------------------------------------------------------------- grid
def test_expansion_counts_runs_and_treats_epochs_as_checkpoints():
    grid = G.check_grid(SMALL)
    runs = G.expand(grid)
    # 2 layers x 2 learning rates x 3 seeds x 2 engines; the 3 epoch values are one run each
    assert len(runs) == 2 * 2 * 3 * 2
    assert {run.checkpoints for run in runs} == {(5, 10, 20)} and {run.config.epochs for run in runs} == {20}
    assert len({run.run_id for run in runs}) == len(runs)
    assert {(run.config.layers, run.config.learning_rate, run.config.seed, run.engine) for run in runs} == {
        (layers, lr, seed, engine) for layers in [(2, 8, 1), (2, 4, 4, 1)] for lr in (0.1, 1.0)
        for seed in (0, 1, 2) for engine in ("numpy", "functional")}


def test_run_ids_depend_on_the_run_not_on_how_the_grid_was_written():
    a = G.expand(G.check_grid(SMALL))
    reordered = dict(reversed(list(SMALL.items())), learning_rate=[1, 0.1], seeds=[2, 1, 0, 0])
    b = G.expand(G.check_grid(reordered))
    assert {r.run_id for r in a} == {r.run_id for r in b}
    assert G.grid_hash(a) == G.grid_hash(b)
    changed = G.expand(G.check_grid(dict(SMALL, epochs=[5, 10, 30])))
    assert not {r.run_id for r in a} & {r.run_id for r in changed}
    assert G.grid_hash(changed) != G.grid_hash(a)


def test_sigmoid_runs_keep_the_ids_they_had_before_heads_and_heads_are_resolved_per_data_set():
    import hashlib

    def before_heads(run):  # the id as sweeps stored it before rows had a head (or regularization): resumable now
        record = {k: v for k, v in run.record().items() if k != "output" and k not in REGULARIZATION}
        text = json.dumps({**record, "seed": run.config.seed, "engine": run.engine}, sort_keys=True,
                          separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    grid = G.check_grid({"data": ["moons", "iris"], "epochs": 5, "output": [None, "linear"]})
    heads = {("moons", None): ("sigmoid", 1), ("iris", None): ("softmax", 3),
             ("moons", "linear"): ("linear", 1), ("iris", "linear"): ("linear", 1)}
    runs = G.expand(grid, n_features={"moons": 2, "iris": 4}, heads=heads)
    assert [(r.config.data, r.config.output, r.config.layers) for r in runs] == [
        ("moons", "sigmoid", (2, 20, 5, 1)), ("moons", "linear", (2, 20, 5, 1)),
        ("iris", "softmax", (4, 20, 5, 3)), ("iris", "linear", (4, 20, 5, 1))]
    assert runs[0].run_id == before_heads(runs[0]) and runs[0].record()["output"] == "sigmoid"
    # the other heads' ids hash their head: a linear and a sigmoid run of moons differ
    assert runs[1].run_id != before_heads(runs[1]) and len({r.run_id for r in runs}) == 4


def test_runs_without_regularization_keep_the_ids_they_had_before_it():
    import hashlib

    def before_regularization(run):  # the id as sweeps stored it before issue 14: resumable now
        record = {k: v for k, v in run.record().items() if k not in REGULARIZATION and k != "output"}
        text = json.dumps({**record, "seed": run.config.seed, "engine": run.engine}, sort_keys=True,
                          separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    runs = G.expand(G.check_grid({**SMALL, "l2": [0, 0.01], "dropout": [0.0, 0.5]}))
    plain = [r for r in runs if r.config.l2 == 0 and r.config.dropout == 0]
    assert len(plain) == len(runs) // 4 and all(r.run_id == before_regularization(r) for r in plain)
    assert {r.run_id for r in plain} == {r.run_id for r in G.expand(G.check_grid(SMALL))}
    assert not {r.run_id for r in runs if r not in plain} & {before_regularization(r) for r in runs}
    assert plain[0].record()["l2"] == 0.0 and plain[0].record()["early_stopping"] is None  # stored, all the same


def test_control_keys_spell_off_as_none_and_early_stopping_runs_have_one_checkpoint():
    spec = "exponential:decay_steps=10,decay_rate=0.5"
    grid = G.check_grid({**SMALL, "engines": ["numpy"], "seeds": [0], "lr_schedule": ["none", spec],
                         "early_stopping": ["none", 3], "validation_fraction": [0.1, 0.2]})
    assert grid["lr_schedule"] == (None, spec) and grid["early_stopping"] == (None, 3)
    runs = G.expand(grid)
    # 2 layers x 2 learning rates x 2 schedules x (no early stopping, once; early stopping x 2 fractions)
    assert len(runs) == 2 * 2 * 2 * 3 and len({r.run_id for r in runs}) == len(runs)
    for run in runs:
        assert run.checkpoints == ((5, 10, 20) if run.config.early_stopping is None else (20,))
        assert run.config.epochs == 20 and run.config.validation_fraction in (0.1, 0.2)
    assert {r.config.validation_fraction for r in runs if r.config.early_stopping is None} == {0.1}


def test_run_ids_are_the_same_in_another_process():
    # str hashing is salted per process; the ids must not be
    code = ("from twinnet.lab import grid as G; import json, sys; "
            "print(json.dumps([r.run_id for r in G.expand(G.check_grid(json.loads(sys.argv[1])))]))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(SMALL)], capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "123"})
    assert json.loads(out.stdout) == [r.run_id for r in G.expand(G.check_grid(SMALL))]


def test_defaults_are_the_notebook_experiment_and_scalars_are_one_value_lists():
    grid = G.check_grid({"learning_rate": 0.5, "layers": [100, 20, 1]})
    assert grid["learning_rate"] == (0.5,) and grid["layers"] == ((100, 20, 1),)
    assert grid["data"] == ("synthetic",) and grid["epochs"] == (250,) and grid["batch_size"] == (None,)
    [run] = G.expand(G.check_grid({"seeds": 3}), n_features={"synthetic": 100})
    assert run.config.layers == (100, 20, 5, 1) and run.config.seed == 3 and run.engine == "numpy"
    assert G.check_grid({"batch_size": ["full", 32]})["batch_size"] == (None, 32)


@pytest.mark.parametrize("grid, match", [
    ({}, "the grid is empty"),
    ({"learnig_rate": [0.1]}, "Unknown grid key 'learnig_rate'. Expected one of: 'data', 'output', 'layers'"),
    ({"learning_rate": []}, "grid key 'learning_rate' has no values"),
    ({"learning_rate": ["fast"]},
     r"grid key 'learning_rate': learning_rate must be a finite number > 0; got learning_rate='fast'"),
    ({"learning_rate": [-1]},
     "grid key 'learning_rate': learning_rate must be a finite number > 0; got learning_rate=-1"),
    ({"learning_rate": [1e300], "dtype": ["float32"]},
     "grid key 'learning_rate': learning_rate=1e[+]300 is beyond the range of float32"),
    ({"epochs": [10.5]}, r"grid key 'epochs': epochs must be an integer >= 1; got epochs=10.5"),
    ({"epochs": [True]}, "grid key 'epochs': epochs must be an integer >= 1; got epochs=True"),
    ({"seeds": [-1]}, "grid key 'seeds': seed must be an integer between 0 and 4294967295; got seed=-1"),
    ({"seeds": [None]}, "grid key 'seeds': seed must be an integer between 0 and 4294967295; got seed=None"),
    ({"layers": [[100, 20, 2]], "output": "sigmoid"},
     "grid keys 'output' and 'layers': a sigmoid head has one output unit; got an output layer of width 2"),
    ({"layers": [[100, 20, 1]], "output": ["softmax"]},
     "grid keys 'output' and 'layers': a softmax head needs an output layer of width K >= 2"),
    ({"output": ["logistic"]}, "grid key 'output': Unknown output 'logistic'. Expected one of: 'linear', 'sigmoid'"),
    ({"layers": [[100]]}, "grid key 'layers': layers must be a list of at least two integers"),
    ({"batch_size": ["half"]},
     "grid key 'batch_size': batch_size must be an integer >= 1 or None; got batch_size='half'"),
    ({"dtype": ["float16"]},
     "grid key 'dtype': dtype must be 'float32' or 'float64'; got dtype='float16'"),
    ({"data": [""]}, "grid key 'data': data must be a data set's name or a file's path; got data=''"),
    ({"engines": ["jax"]}, "grid key 'engines': Unknown engines 'jax'. Expected one of: "),
    ({"optimizer": ["adamw"]}, "grid key 'optimizer': Unknown optimizer 'adamw'. Expected one of: 'adam'"),
    ({"hidden_activation": ["gelu"]}, "grid key 'hidden_activation': Unknown hidden_activation 'gelu'"),
    ({"init": ["zeros"]}, "grid key 'init': Unknown init 'zeros'"),
    ({"l2": [-0.1]}, r"grid key 'l2': l2 must be a finite number >= 0; got l2=-0.1"),
    ({"l2": [float("inf")]}, r"grid key 'l2': l2 must be a finite number >= 0; got l2=inf"),
    ({"l2": ["0.1"]}, r"grid key 'l2': l2 must be a finite number >= 0; got l2='0.1'"),
    ({"dropout": [1]}, r"grid key 'dropout': dropout must be a number in \[0, 1\); got dropout=1.0"),
    ({"lr_schedule": ["step:every=10"]}, "grid key 'lr_schedule': lr_schedule 'step:every=10': unknown schedule"),
    ({"lr_schedule": [5]}, "grid key 'lr_schedule': lr_schedule must be a string"),
    ({"early_stopping": [True]}, "grid key 'early_stopping': early_stopping must be None or a patience"),
    ({"early_stopping": ["five"]}, "grid key 'early_stopping': early_stopping must be None or a patience, an integer"),
    ({"validation_fraction": [0]}, r"grid key 'validation_fraction': validation_fraction must be a number in \(0, 1\)"),
    ({"learning_rate": [0.1], "lr_schedule": ["cosine:decay_steps=10,warmup_steps=5,warmup_target=-1"]},
     "grid key 'lr_schedule': "),
])
def test_bad_grids_are_refused_naming_the_key(grid, match):
    with pytest.raises(ValueError, match=match):
        G.check_grid(grid)


def test_toml_grid_file(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text('data = "moons"\nlayers = [[2, 8, 1], [2, 4, 1]]\nlearning_rate = [0.1, 1]\n'
                    'epochs = [5, 10]\nbatch_size = ["full", 32]\nseeds = [0, 1]\n'
                    'engines = ["numpy"]\nl2 = [0, 0.001]\ndropout = 0.2\nearly_stopping = ["none", 4]\n'
                    'lr_schedule = ["none", "inverse_time:decay_steps=10,decay_rate=1"]\n')
    grid = G.load_toml(path)
    assert grid["layers"] == ((2, 8, 1), (2, 4, 1)) and grid["learning_rate"] == (0.1, 1.0)
    assert grid["l2"] == (0.0, 0.001) and grid["dropout"] == (0.2,) and grid["early_stopping"] == (None, 4)
    assert len(G.expand(grid)) == 2 * 2 * 2 * 2 * 2 * 2 * 2


@pytest.mark.parametrize("text, match", [
    ("", "the grid is empty"),
    ("learning_rat = [0.1]\n", "Unknown grid key 'learning_rat'"),
    ('epochs = ["ten"]\n', r"grid key 'epochs': epochs must be an integer >= 1; got epochs='ten'"),
    ("layers = [[2, 8, 1]\n", "not valid TOML"),
])
def test_bad_toml_files_name_the_file_and_the_key(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=match) as info:
        G.load_toml(path)
    assert str(path) in str(info.value)


def test_missing_toml_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        G.load_toml(tmp_path / "absent.toml")


@pytest.mark.parametrize("make, match", [
    (lambda path: path.write_text("learning_rate = " + "[" * 200_000 + "]" * 200_000),  # past any recursion limit
     r"not valid TOML \(nested too deeply\)"),
    (lambda path: path.write_bytes(b"#" * (G.GRID_BYTES + 1)), r"1,048,577 bytes, more than a grid file takes"),
    (lambda path: path.mkdir(), "is a directory, expected a TOML grid file"),
    (lambda path: os.mkfifo(path), r"is not a regular file \(a FIFO"),
], ids=["nested", "huge", "folder", "fifo"])
def test_a_grid_file_is_read_within_bounds(tmp_path, make, match):
    path = tmp_path / "grid.toml"
    make(path)
    with pytest.raises(ValueError, match=match) as info:
        G.load_toml(path)
    assert str(info.value).startswith(f"--grid {path}: ")
