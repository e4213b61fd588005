"""Every user error the CLI can meet is one line on stderr, exit status 2, never a traceback.

One parametrized test per class of bad input (numbers out of range, seeds, names, data files,
output paths, memory, report folders); each case names what the line must mention: the option or
the file. Output paths are checked before anything is trained, so none of these cases trains.
"""

import shutil
from pathlib import Path

import pytest

from twinnet.lab.store import RESULTS, ResultStore

LONG = "x" * 300  # longer than any file name a Linux file system takes (255 bytes)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A folder with a plain file, a plain folder, an earlier run's results, a learner's file, an
    earlier check's figures and sweep folders."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "adir").mkdir()
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "results.json").write_text("{}")
    (tmp_path / "old.json").write_text("{}")
    shutil.copy(Path(__file__).parent / "learners" / "correct.py", tmp_path)
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "correct_loss_curves.png").write_bytes(b"png")
    ResultStore.create(tmp_path / "emptysweep", grid={}, grid_hash="h", n_runs=1)
    ResultStore.create(tmp_path / "junksweep", grid={}, grid_hash="h", n_runs=1)
    (tmp_path / "junksweep" / RESULTS).write_bytes(b'{"run_id": "a", "seed": "x"}\n\x00\xff\xfe\n[1]\n{"tru')
    return tmp_path


def check(cli, argv, mention):
    status, _, err = cli(*argv)
    lines = err.splitlines()
    assert status == 2 and len(lines) == 1 and "Traceback" not in err, (argv, err)
    assert lines[0].startswith(f"twinnet {argv[0]}: error: ") and mention in lines[0], (argv, err)


COMPARE = ["compare", "--engines", "numpy", "--epochs", "1", "--no-progress"]
BENCH = ["bench", "--workload", "seed", "--engines", "numpy", "--epochs", "2", "--no-memory"]
CHECK = ["check", "correct.py", "--no-keras"]

NUMBERS = [
    (["compare", "--learning-rate", "-1"], "argument --learning-rate"),
    (["compare", "--learning-rate", "0"], "argument --learning-rate"),
    (["compare", "--learning-rate", "nan"], "argument --learning-rate"),
    (["compare", "--learning-rate", "inf"], "argument --learning-rate"),
    (["compare", "--learning-rate", ""], "argument --learning-rate"),
    ([*COMPARE, "--learning-rate", "1e308", "--dtype", "float32"],
     "learning_rate=1e+308 is beyond the range of float32"),
    (["compare", "--epochs", "0"], "argument --epochs"),
    (["compare", "--epochs", "-5"], "argument --epochs"),
    (["compare", "--epochs", "1e3"], "argument --epochs"),
    (["compare", "--batch-size", "0"], "argument --batch-size"),
    (["compare", "--batch-size", "-1"], "argument --batch-size"),
    (["bench", "--epochs", "1"], "argument --epochs"),
    (["bench", "--repeats", "0"], "argument --repeats"),
    (["bench", "--budget", "-1"], "argument --budget"),
    (["bench", "--budget", "nan"], "argument --budget"),
    (["gradcheck", "--eps", "0"], "argument --eps"),
    (["gradcheck", "--batch-norm", "--examples", "1"], "--batch-norm needs --examples 2 or more"),
    (["gradcheck", "--eps", "nan"], "argument --eps"),
    (["gradcheck", "--eps", "1e308"], "argument --eps"),  # the differences overflowed
    (["gradcheck", "--eps", "1"], "argument --eps"),
    (["gradcheck", "--tolerance", "inf"], "argument --tolerance"),
    (["gradcheck", "--examples", "0"], "argument --examples"),
    # each past what the runner can wait for, limit or train in twinnet's own process
    (["check", "x.py", "--time-limit", "1e10"], "argument --time-limit: expected at most 86400, got 1e10"),
    (["check", "x.py", "--time-limit", "1e308"], "argument --time-limit: expected at most 86400, got 1e308"),
    (["check", "x.py", "--budget", "1e300"], "argument --budget: expected at most 518400, got 1e300"),
    (["check", "x.py", "--memory", "99999999999999"],
     "argument --memory: expected at most 1048576, got 99999999999999"),
    (["check", "x.py", "--iterations", "1000000"], "argument --iterations: expected at most 10000, got 1000000"),
]

SWEEP = ["sweep", "--data", "moons", "--epochs", "1", "--no-progress", "--out", "newsweep"]

#: Regularization and training control (issue 14): every command that takes them, each bad value.
CONTROLS = [
    *[([command, "--l2", value], "argument --l2: expected a finite number >= 0")
      for command in ("compare", "gradcheck") for value in ("-0.1", "nan", "inf", "x")],
    (["compare", "--l2=-inf"], "argument --l2: expected a finite number >= 0, got -inf"),
    *[([command, "--dropout", value], "argument --dropout: expected a number in [0, 1)")
      for command in ("compare", "gradcheck") for value in ("1", "-0.1", "1.5", "nan", "x")],
    (["compare", "--lr-schedule", "exponential"], "argument --lr-schedule: schedule 'exponential': exponential "
                                                  "needs decay_steps, decay_rate"),
    (["compare", "--lr-schedule", "expo:decay_steps=5"], "argument --lr-schedule: schedule 'expo:decay_steps=5': "
                                                         "unknown schedule 'expo'"),
    (["compare", "--lr-schedule", "exponential:decay_steps=0,decay_rate=0.5"], "argument --lr-schedule: decay_steps"),
    (["compare", "--lr-schedule", "exponential:decay_steps=10,rate=0.5"], "exponential has no argument 'rate'"),
    (["compare", "--lr-schedule", "piecewise:boundaries=[10],values=[0.1]"], "argument --lr-schedule"),
    (["compare", "--lr-schedule", "cosine:decay_steps=ten"], "decay_steps must be an integer; got decay_steps='ten'"),
    (["compare", "--early-stopping", "-1"], "argument --early-stopping: expected an integer >= 0, got -1"),
    (["compare", "--early-stopping", "2.5"], "argument --early-stopping"),
    (["compare", "--validation-fraction", "1"], "argument --validation-fraction: expected a number in (0, 1), got 1"),
    (["compare", "--validation-fraction", "0"], "argument --validation-fraction"),
    ([*COMPARE, "--data", "iris", "--early-stopping", "2", "--validation-fraction", "0.01"],
     "early_stopping cannot hold out validation_fraction=0.01 of the 120 training examples of data 'iris' for "
     "validation: too few examples to split"),
    ([*COMPARE, "--data", "iris", "--early-stopping", "2", "--validation-fraction", "0.999"],
     "need at least 2 per part, 2 per class and one of each class in each part. Lower validation_fraction, or turn "
     "early stopping off."),
    ([*COMPARE, "--engines", "sklearn", "--dropout", "0.2"], "engine 'sklearn' cannot run this configuration: "
                                                             "scikit-learn's MLPClassifier and MLPRegressor have no "
                                                             "dropout; got dropout=0.2"),
    ([*COMPARE, "--engines", "functional", "--early-stopping", "3"],
     "engine 'functional' cannot run this configuration: the notebook's functional network"),
    ([*SWEEP, "--l2", "0,-1"], "grid key 'l2': l2 must be a finite number >= 0; got l2=-1.0"),
    ([*SWEEP, "--l2", "0,nan"], "grid key 'l2': l2 must be a finite number >= 0; got l2=nan"),
    ([*SWEEP, "--l2", "a"], "argument --l2: expected numbers >= 0 such as 0,0.001,0.01, got 'a'"),
    ([*SWEEP, "--dropout", "0,1"], "grid key 'dropout': dropout must be a number in [0, 1); got dropout=1.0"),
    ([*SWEEP, "--early-stopping", "none,-2"], "grid key 'early_stopping': early_stopping must be None or a "
                                                    "patience, an integer >= 0"),
    ([*SWEEP, "--early-stopping", "never"], "argument --early-stopping: expected patiences such as none,5,20"),
    ([*SWEEP, "--lr-schedule", "none", "--lr-schedule", "inverse_time:decay_steps=10"],
     "argument --lr-schedule: schedule 'inverse_time:decay_steps=10': inverse_time needs decay_rate"),
    ([*SWEEP, "--validation-fraction", "1.5"], "grid key 'validation_fraction': validation_fraction must be a number "
                                               "in (0, 1); got validation_fraction=1.5"),
    ([*SWEEP, "--data", "iris", "--early-stopping", "3", "--validation-fraction", "0.01"],
     "early_stopping cannot hold out validation_fraction=0.01"),
]

SEEDS = [([command, "--seed", seed], "argument --seed")
         for command in ("compare", "gradcheck")
         for seed in ("-1", str(2**32), str(2**70), "abc", "")]

NAMES = [
    (["compare", "--engines", ""], "argument --engines"),
    (["compare", "--engines", "foo"], "unknown engine 'foo'"),
    (["compare", "--engines", ",,"], "argument --engines"),
    (["compare", "--optimizer", "adamw"], "argument --optimizer"),
    (["compare", "--layers", ""], "argument --layers"),
    (["compare", "--layers", "5"], "argument --layers"),
    (["compare", "--layers", "100,0,1"], "argument --layers"),
    ([*COMPARE, "--layers", "100,5,2"], "layers=100,5,2 ends with 2 units, but data 'synthetic' is binary"),
    ([*COMPARE, "--data", "digits10", "--output", "sigmoid"], "digits10: labels must be binary"),
    ([*COMPARE, "--data", "digits10", "--output", "softmax", "--layers", "64,8,1"],
     "a softmax head needs an output layer of width K >= 2"),
    ([*COMPARE, "--data", "digits10", "--layers", "64,8,5"], "layers=64,8,5 ends with 5 units, but data 'digits10' "
     "has 10 classes"),
    (["compare", "--output", "logistic"], "argument --output: invalid choice: 'logistic'"),
    (["compare", "--layers", "a,b"], "argument --layers"),
    (["bench", "--engines", "foo"], "unknown engine 'foo'"),
    (["bench", "--workload", "nosuch"], "argument --workload"),
    (["gradcheck", "--activation", "gelu"], "argument --activation"),
    (["compare", "--engines", "functional", "--optimizer", "adam"], "engine 'functional' cannot run"),
]

DATA = [
    ([*COMPARE, "--data", "nosuch.csv"], "nosuch.csv: no such file"),
    ([*COMPARE, "--data", "adir"], "adir: is a directory"),
    ([*COMPARE, "--data", "afile"], "afile: unknown file type"),
    ([*COMPARE, "--data", "no_such_set"], "Unknown data set 'no_such_set'"),
    ([*COMPARE, "--layers", "5,1"], "layers=5,1 starts with 5 inputs"),
    (["gradcheck", "--data", "nosuch.npz"], "nosuch.npz: no such file"),
    (["gradcheck", "--layers", "3,1"], "--layers starts with 3 inputs"),
]

OUTPUTS = [
    ([*COMPARE, "--out", "afile"], "--out 'afile' is a file; expected a folder"),
    ([*COMPARE, "--out", "afile/sub"], "--out 'afile/sub': a file stands where a folder is needed"),
    ([*COMPARE, "--out", LONG], "File name too long"),
    ([*COMPARE, "--out", ""], "--out must name a path; got ''"),
    ([*COMPARE, "--out", "old"], "--out 'old' already holds results.json from an earlier run"),
    # sysfs refuses new entries, to root too: EPERM, or EROFS where it is mounted read-only
    ([*COMPARE, "--out", "/sys/twinnet-test"], "--out '/sys/twinnet-test': cannot write there"),
    ([*BENCH, "--json", "adir"], "--json 'adir' is a folder; expected a file name"),
    ([*BENCH, "--json", "afile/x.json"], "--json 'afile/x.json': a file stands where a folder is needed"),
    ([*BENCH, "--json", ""], "--json must name a path; got ''"),
    ([*BENCH, "--json", "old.json"], "--json 'old.json' already exists"),
    ([*BENCH, "--json", LONG + ".json"], "File name too long"),
    ([*BENCH, "--json", "/sys/twinnet-test.json"], "--json '/sys/twinnet-test.json': cannot write there"),
    ([*CHECK, "--csv", "old.json"], "--csv 'old.json' already exists; choose another name, or add --force"),
    ([*CHECK, "--json", "old.json"], "--json 'old.json' already exists"),
    ([*CHECK, "--csv", "adir"], "--csv 'adir' is a folder; expected a file name"),
    ([*CHECK, "--json", ""], "--json must name a path; got ''"),
    ([*CHECK, "--csv", "new.csv", "--json", "old.json"], "--json 'old.json' already exists"),
    ([*CHECK, "--plot", "afile"], "--plot 'afile' is a file; expected a folder"),
    ([*CHECK, "--plot", "plots"], "--plot 'plots' already holds correct_loss_curves.png from an earlier run"),
    ([*CHECK, "--csv", "new.csv", "--plot", "plots"], "--plot 'plots' already holds correct_loss_curves.png"),
    ([*CHECK, "--report", "new", "--plot", "new/figures"], "--plot 'new/figures' is inside --report 'new'; draw "
                                                            "the loss curves into 'new/plots'"),
]

MEMORY = [  # a hidden layer of 1e11 units: 74 TiB of weights
    ([*COMPARE, "--layers", "100,100000000000,1"], "not enough memory for this compare: Unable to allocate"),
    (["gradcheck", "--layers", "100,100000000000,1"], "not enough memory for this gradcheck"),
]

REPORTS = [
    (["report", "nosuch"], "nosuch: no such directory"),
    (["report", "afile"], "afile: is a file; expected a sweep's folder"),
    (["report", "adir"], "adir: not a sweep directory"),
    (["report", ""], "not a sweep directory"),
    (["report", "emptysweep"], "emptysweep: the sweep has no finished run yet"),
]


def _ids(cases):
    return [" ".join(argv) if len(" ".join(argv)) < 80 else " ".join(argv)[:60] + "..." for argv, _ in cases]


@pytest.mark.parametrize("argv, mention", NUMBERS, ids=_ids(NUMBERS))
def test_numbers_out_of_range(argv, mention, workdir, cli):
    check(cli, argv, mention)


@pytest.mark.parametrize("argv, mention", CONTROLS, ids=_ids(CONTROLS))
def test_bad_regularization_and_training_control(argv, mention, workdir, cli):
    check(cli, argv, mention)
    assert not (workdir / "newsweep").exists()  # a sweep refused before its folder is made


@pytest.mark.parametrize("argv, mention", SEEDS, ids=_ids(SEEDS))
def test_seeds_out_of_range(argv, mention, workdir, cli):
    check(cli, argv, mention)


@pytest.mark.parametrize("argv, mention", NAMES, ids=_ids(NAMES))
def test_unknown_names_and_widths(argv, mention, workdir, cli):
    check(cli, argv, mention)


@pytest.mark.parametrize("argv, mention", DATA, ids=_ids(DATA))
def test_bad_data(argv, mention, workdir, cli):
    check(cli, argv, mention)


@pytest.mark.parametrize("argv, mention", OUTPUTS, ids=_ids(OUTPUTS))
def test_bad_output_paths_are_refused_before_training(argv, mention, workdir, cli, monkeypatch):
    import importlib

    def must_not_train(*args, **kwargs):
        raise AssertionError("trained before checking the output path")

    # twinnet.lab.compare is also the name of a function: import_module gives the module
    monkeypatch.setattr(importlib.import_module("twinnet.lab.compare"), "run_engine", must_not_train)
    monkeypatch.setattr(importlib.import_module("twinnet.bench"), "run_workload", must_not_train)
    monkeypatch.setattr(importlib.import_module("twinnet.check"), "check", must_not_train)
    before = sorted(p.name for p in workdir.iterdir())
    check(cli, argv, mention)
    assert sorted(p.name for p in workdir.iterdir()) == before  # nothing left behind
    assert (workdir / "old.json").read_text() == "{}"  # nothing replaced


@pytest.mark.parametrize("argv, mention", MEMORY, ids=_ids(MEMORY))
def test_networks_too_big_for_memory(argv, mention, workdir, cli):
    check(cli, argv, mention)


@pytest.mark.parametrize("argv, mention", REPORTS, ids=_ids(REPORTS))
def test_report_folders_that_hold_no_report(argv, mention, workdir, cli):
    check(cli, argv, mention)


def test_report_of_only_unreadable_lines_warns_per_line_then_fails(workdir, cli):
    status, _, err = cli("report", "junksweep")
    lines = err.splitlines()
    assert status == 2 and "Traceback" not in err
    assert [line.split(": skipped line ")[1].split(":")[0] for line in lines[:-1]] == ["1", "2", "3", "4"]
    assert lines[-1] == ("twinnet report: error: junksweep: the sweep has no finished run that can be "
                         "read; nothing to report.")
