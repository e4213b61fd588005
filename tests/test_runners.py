"""The lab's engines without TensorFlow: functional, numpy, scikit-learn and PyTorch agree.

Every engine starts from the same parameters dict; the loss curves are compared epoch by epoch
with the tolerances stated at each test.
"""

import importlib.util
import re

import numpy as np
import pytest
from numpy.testing import assert_allclose

from twinnet import Network
from twinnet.lab import ENGINES, RunConfig, compare, resolve_engines, run_engine
from twinnet.lab.run import initial_parameters, load_split


def _run(engine, **options):
    config = RunConfig(**{"data": "moons", "epochs": 15, **options})
    split = load_split(config)
    config = config.with_layers(split.X_train.shape[1], output=split.output, width=split.width)
    return run_engine(engine, config, split, initial_parameters(config)), config, split


def _curves(engines, **options):
    return {e: np.array(_run(e, **options)[0].loss_curve) for e in engines}


@pytest.mark.exact
@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-12), ("float32", 1e-4)])
def test_functional_and_numpy_agree(dtype, rtol):
    # The notebook's functions and Network's in-place engine compute the same sums in another
    # order: rounding only (float64: ~1e-16 per step; float32: ~1e-7).
    curves = _curves(["functional", "numpy"], dtype=dtype, learning_rate=0.5,
                     layers=(2, 8, 4, 1))
    assert_allclose(curves["numpy"], curves["functional"], rtol=rtol)


# Relative tolerances of scikit-learn against Network over 15 epochs, float64. SGD: the same
# arithmetic up to rounding (measured ~1e-16). Momentum and Adam: scikit-learn uses 0.9 and 0.999
# exactly where Network, Keras's twin, rounds them through float32 as Keras does (measured:
# momentum 6e-8; Adam ~4e-6).
RTOL = {"sgd": 1e-10, "momentum": 1e-6, "adam": 1e-4}


@pytest.mark.exact
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_sklearn_full_batch_agrees_with_numpy(optimizer):
    # MLPClassifier takes the log of clipped probabilities where Network uses the logits, and
    # updates with the same rules (SGD, heavy-ball momentum, Adam with epsilon on sqrt(v)).
    learning_rate = 0.01 if optimizer == "adam" else 0.3
    curves = _curves(["numpy", "sklearn"], optimizer=optimizer, learning_rate=learning_rate,
                     hidden_activation="tanh")
    assert_allclose(curves["sklearn"], curves["numpy"], rtol=RTOL[optimizer])


def test_sklearn_first_loss_is_ours():
    # MLPClassifier's loss_curve_[0] is computed before the first update, as Keras's and ours.
    result, config, split = _run("sklearn", epochs=1)
    net = Network.from_parameters(initial_parameters(config), dtype=config.dtype)
    assert result.loss_curve[0] == pytest.approx(net.evaluate(split.X_train, split.y_train)["loss"],
                                                  rel=1e-13)


def test_sklearn_mini_batch_draws_its_own_order():
    result, _, _ = _run("sklearn", batch_size=32)
    assert not result.same_trajectory and "own batch order" in result.note


@pytest.mark.exact
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "rmsprop"])
@pytest.mark.parametrize("batch_size", [None, 50])
def test_torch_agrees_with_numpy(optimizer, batch_size):
    # Same start, same batches, Keras's update rules: the torch twin (twinnet.torch_twin) hands
    # torch Keras's float32-rounded momentum and makes its Adam step Keras's, so that only the
    # order of rounding differs (measured ~1e-15; tests/test_torch_twin.py holds the twin itself).
    learning_rate = 0.01 if optimizer in ("adam", "rmsprop") else 0.3
    result_numpy = _run("numpy", optimizer=optimizer, batch_size=batch_size, learning_rate=learning_rate,
                        hidden_activation="leaky_relu")[0]
    result_torch = _run("torch", optimizer=optimizer, batch_size=batch_size, learning_rate=learning_rate,
                        hidden_activation="leaky_relu")[0]
    assert_allclose(result_torch.loss_curve, result_numpy.loss_curve, rtol=1e-12)
    assert result_torch.same_trajectory and result_torch.note is None


@pytest.mark.parametrize("variable, during", [(None, 1), ("OMP_NUM_THREADS", 2)])
def test_torch_trains_on_the_free_cpus_unless_the_user_set_the_threads(monkeypatch, variable, during):
    # torch's OpenMP threads wait for each other as the BLAS's do: on a busy machine, one thread
    # (twinnet.nn.threads); a user's OMP_NUM_THREADS is kept
    import torch

    from twinnet import torch_twin
    from twinnet.nn import threads

    for name in threads.USER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    if variable:
        monkeypatch.setenv(variable, "2")
    monkeypatch.setattr(threads, "free_cpus", lambda: 1)  # another process holds the other CPU
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seen = []
        twin = torch_twin.to_torch(Network([2, 3, 1], seed=0).parameters, learning_rate=0.1)
        torch_twin.train(twin, np.zeros((4, 2)), np.zeros(4), epochs=1,
                         on_epoch_end=lambda epoch, logs: seen.append(torch.get_num_threads()))
        assert (seen, torch.get_num_threads()) == ([during], 2)
    finally:
        torch.set_num_threads(before)


def test_rounding_note_names_the_hyperparameters():
    result, _, _ = _run("sklearn", optimizer="momentum")
    assert "uses momentum 0.9 exactly, where Keras (and Network, its twin) round them" in result.note
    assert "beta_1 0.9 and beta_2 0.999" in _run("sklearn", optimizer="adam")[0].note
    assert _run("sklearn", optimizer="momentum", dtype="float32")[0].note is None


def test_every_engine_reports_the_same_final_metrics_when_trajectories_agree():
    config = RunConfig(data="moons", epochs=10, learning_rate=0.5)
    result = compare(config, engines=["functional", "numpy", "sklearn", "torch"])
    rows = result.rows()
    assert result.reference == "functional"
    for row in rows:
        assert row["train_accuracy"] == rows[0]["train_accuracy"], row["engine"]
        assert row["test_loss"] == pytest.approx(rows[0]["test_loss"], rel=1e-12), row["engine"]
        assert row["max_loss_diff"] < 1e-13, row["engine"]
        assert row["seconds"] > 0 and row["ms_per_epoch"] == pytest.approx(100 * row["seconds"])


def test_divergence_is_a_result_not_an_exception():
    result = compare(RunConfig(data="moons", epochs=5, learning_rate=1e200),
                     engines=["functional", "numpy", "sklearn", "torch"])
    for r in result.results:
        assert r.status == "diverged" and r.error.startswith("diverged"), (r.engine, r.error)
        assert np.isnan(r.test_accuracy)
    assert result.to_dict()["summary"][0]["train_loss"] is None  # NaN is written as null


# Each way a run diverges, on every engine, the notebook's functional reference included: its cost
# is clipped (about 700 per wrong example at most), so its curve may stay finite and flat while the
# weights blow up. The expected phrase says which test caught it.
@pytest.mark.parametrize("learning_rate, how", [
    (50.0, "the loss climbed from 0.694"),  # the loss climbs to a finite plateau
    (1e200, "the loss became"),  # the loss overflows: NaN or inf
])
def test_every_engine_reports_a_diverging_run_as_diverged(learning_rate, how):
    engines = ["functional", "numpy", "sklearn", "torch"]
    result = compare(RunConfig(data="moons", epochs=30, learning_rate=learning_rate), engines=engines)
    assert [r.status for r in result.results] == ["diverged"] * 4
    for r in result.results:
        if r.engine != "sklearn":  # scikit-learn's own words come first
            assert how in r.error, (r.engine, r.error)
        assert r.error.endswith("try a smaller learning_rate"), (r.engine, r.error)
    rows = result.to_dict()["summary"]
    assert [row["status"] for row in rows] == ["diverged"] * 4
    assert all(row["max_loss_diff"] is None for row in rows)  # no distance to a diverged reference


def test_features_of_extreme_scale_are_named_as_the_cause(tmp_path):
    from twinnet import data

    X, y = data.load("synthetic")
    np.savez(tmp_path / "big.npz", features=X * 1e6, labels=y)
    result = compare(RunConfig(data=str(tmp_path / "big.npz"), standardize=False, epochs=20),
                     engines=["functional", "numpy", "torch"])
    assert [r.status for r in result.results] == ["diverged"] * 3
    # the functional network's clipped cost stays flat: its final weights' loss tells
    assert "the loss of the final weights is" in result.result("functional").error
    largest = f"{np.abs(result.split.X_train).max():.3g}"
    for r in result.results:
        assert f"X has values up to {largest} in magnitude; standardize the features" in r.error
        assert "learning_rate" not in r.error.split(";", 1)[1], r.error
    assert any(f"the training features have values up to {largest} in magnitude, not standardized"
               in note for note in result.notes)


@pytest.mark.parametrize("options", [
    {"optimizer": "sgd"}, {"optimizer": "sgd", "learning_rate": 1.0},
    {"optimizer": "momentum", "batch_size": 8, "learning_rate": 0.3},
    {"optimizer": "adam", "batch_size": 16, "learning_rate": 0.1},
], ids=str)
def test_runs_that_learn_are_ok(options):
    result = compare(RunConfig(data="moons", epochs=30, **options), engines=["numpy", "sklearn", "torch"])
    # training that learns, with the noise of mini-batches and momentum, is not called diverged
    assert [(r.status, r.error) for r in result.results] == [("ok", None)] * 3


# the loss climbs before it overflows, which warns first (tests/test_feedback.py)
@pytest.mark.filterwarnings("ignore::twinnet.nn.divergence.DivergenceWarning")
def test_network_divergence_message_points_at_the_data_when_its_scale_is_extreme():
    from twinnet import data

    X, y = data.load("moons")
    with pytest.raises(FloatingPointError, match=r"X has values up to 2\.4e\+100 in magnitude; "
                       r"standardize the features") as info:
        Network([2, 8, 1], seed=0).fit(X * 1e100, y, epochs=20, learning_rate=0.1)
    assert "learning_rate" not in str(info.value).split(";", 1)[1]
    with pytest.raises(FloatingPointError, match="try a smaller learning_rate"):
        Network([2, 8, 1], seed=0).fit(X, y, epochs=20, learning_rate=1e200)


def test_default_engines_skip_unsupported_configurations_with_a_note():
    config = RunConfig(data="moons", optimizer="adam", hidden_activation="leaky_relu").with_layers(2)
    names, notes = resolve_engines(None, config, 320)
    assert "functional" not in names and "sklearn" not in names and "numpy" in names
    assert any(n.startswith("functional skipped") for n in notes)
    assert any("no 'leaky_relu' activation" in n for n in notes)


def test_rmsprop_leaves_sklearn_out_with_the_reason():
    # scikit-learn's MLPs have no RMSprop (RMSprop.sklearn_options() is None): left out by default, an
    # error when asked for
    config = RunConfig(data="moons", optimizer="rmsprop").with_layers(2)
    names, notes = resolve_engines(None, config, 320)
    assert "sklearn" not in names and "numpy" in names and "torch" in names
    reason = ("scikit-learn's MLPClassifier has no solver for optimizer='rmsprop' (its solvers are 'sgd', with or "
              "without momentum, 'adam' and 'lbfgs')")
    assert f"sklearn skipped: {reason}" in notes
    with pytest.raises(ValueError, match=re.escape(f"engine 'sklearn' cannot run this configuration: {reason}")):
        resolve_engines(["numpy", "sklearn"], config, 320)


def test_one_engine_may_be_named_by_a_string():
    config = RunConfig(data="moons").with_layers(2)
    assert resolve_engines("numpy", config, 320) == resolve_engines(["numpy"], config, 320) == (["numpy"], [])


def test_missing_library_is_skipped_by_default_and_an_error_when_asked(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorflow" else real(name, *a))
    config = RunConfig(data="moons").with_layers(2)
    names, notes = resolve_engines(None, config, 320)
    assert "keras" not in names and "tf-loop" not in names
    assert "keras skipped: tensorflow is not installed (pip install 'twinnet[tf]')" in notes
    with pytest.raises(ValueError, match=r"engine 'tf-loop' needs tensorflow.*pip install 'twinnet\[tf\]'"):
        resolve_engines(["numpy", "tf-loop"], config, 320)


@pytest.mark.parametrize("engines, match", [
    (["numpy", "jax"], r"Unknown engine 'jax'. Expected one of: 'functional', 'numpy'"),
    ([], "at least one engine"),
])
def test_resolve_engines_rejects_bad_names(engines, match):
    with pytest.raises(ValueError, match=match):
        resolve_engines(engines, RunConfig(data="moons").with_layers(2), 320)


def test_functional_refuses_what_the_notebook_cannot_train():
    config = RunConfig(data="moons", batch_size=32).with_layers(2)
    with pytest.raises(ValueError, match=r"engine 'functional' cannot run.*full-batch SGD"):
        resolve_engines(["functional"], config, 320)


@pytest.mark.parametrize("options, match", [
    ({"optimizer": "adamw"}, r"Unknown optimizer 'adamw'. Expected one of: 'adam', 'momentum', 'rmsprop', 'sgd'"),
    ({"hidden_activation": "gelu"}, r"Unknown hidden_activation 'gelu'. Expected one of: 'leaky_relu'"),
    ({"init": "xavier"}, r"Unknown init 'xavier'. Expected one of: 'glorot', 'he', 'normal'"),
    ({"dtype": "float16"}, r"dtype must be 'float32' or 'float64'; got dtype='float16'"),
    ({"keras_init": "random"}, r"Unknown keras_init 'random'. Expected one of: 'notebook', 'same'"),
    ({"epochs": 0}, r"epochs must be an integer >= 1; got epochs=0"),
    ({"learning_rate": -0.1}, r"learning_rate must be a finite number > 0; got learning_rate=-0.1"),
    ({"learning_rate": float("nan")}, r"learning_rate must be a finite number > 0"),
    ({"batch_size": 0}, r"batch_size must be an integer >= 1 or None; got batch_size=0"),
    ({"seed": -1}, r"seed must be an integer between 0 and 4294967295; got seed=-1"),
    ({"seed": 2**70}, r"seed must be an integer between 0 and 4294967295; got seed=1180591620717411303424"),
    ({"layers": (2, 0, 1)}, r"layers must contain only positive widths; got layers=\[2, 0, 1\]"),
    ({"layers": (2, 4, 2), "output": "sigmoid"}, r"a sigmoid head has one output unit; got an output layer of width 2"),
    ({"layers": (2, 4, 1), "output": "softmax"}, r"a softmax head needs an output layer of width K >= 2"),
    ({"output": "logistic"}, r"Unknown output 'logistic'. Expected one of: 'linear', 'sigmoid', 'softmax'"),
    ({"seed": None}, r"seed must be an integer between 0 and 4294967295; got seed=None"),
])
def test_config_validation_names_the_field(options, match):
    with pytest.raises(ValueError, match=match):
        RunConfig(data="moons", **options).validate()


def test_layers_must_match_the_data():
    with pytest.raises(ValueError, match=r"layers=3,4,1 starts with 3 inputs, but data 'moons' has 2 features"):
        compare(RunConfig(data="moons", layers=(3, 4, 1)), engines=["numpy"])


def test_default_layers_follow_the_data_and_the_table_lists_every_engine():
    from twinnet.lab import DEFAULT_HIDDEN

    assert RunConfig().with_layers(100).layers == (100, 20, 5, 1) == (100, *DEFAULT_HIDDEN, 1)
    assert set(ENGINES) == {"functional", "numpy", "keras", "tf-loop", "sklearn", "torch"}


# --------------------------------------------------------------------------- every head
@pytest.fixture(scope="module")
def two_targets(tmp_path_factory):
    """A regression file with two targets per example (``(m, 2)`` labels)."""
    from problems import regression_problem

    X, Y = regression_problem(m=120, n=4, k=2, seed=0)
    path = tmp_path_factory.mktemp("data") / "two_targets.npz"
    np.savez(path, features=X, labels=Y)
    return str(path)


HEAD_DATA = {"softmax": ("iris", (4, 8, 3)), "linear": ("diabetes", (10, 8, 1)), "linear, 2 targets": (None, (4, 8, 2))}


@pytest.mark.exact
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("head", sorted(HEAD_DATA))
def test_sklearn_agrees_with_numpy_for_every_head(head, optimizer, two_targets):
    # MLPClassifier's softmax and cross-entropy; MLPRegressor, whose loss is half the mean squared
    # error and whose gradient is k/2 times ours for k targets: learning_rate_init is mapped (and
    # Adam's epsilon), its curve reported doubled. The tolerances are RTOL's, the classifiers': SGD
    # is the same arithmetic up to rounding (measured ~6e-16 for every head); momentum and Adam are
    # bounded by scikit-learn's exact 0.9 and 0.999 against Keras's float32-rounded ones (measured
    # ~1e-7 and ~4e-6). A mapping off by any factor would miss SGD's bound by orders of magnitude.
    data, layers = HEAD_DATA[head]
    learning_rate = 0.01 if optimizer == "adam" else 0.1
    curves = _curves(["numpy", "sklearn"], data=data or two_targets, layers=layers, optimizer=optimizer,
                     learning_rate=learning_rate, hidden_activation="tanh")
    assert_allclose(curves["sklearn"], curves["numpy"], rtol=RTOL[optimizer], err_msg=f"{head}, {optimizer}")


@pytest.mark.parametrize("data, layers, estimator", [("iris", (4, 8, 3), "MLPClassifier"),
                                                     ("diabetes", (10, 8, 1), "MLPRegressor")])
def test_sklearn_first_loss_is_ours_for_every_head(data, layers, estimator):
    # the regressor's loss_curve_[0] is half our mean squared error: shown doubled, it is ours
    result, config, split = _run("sklearn", data=data, layers=layers, epochs=1)
    net = Network.from_parameters(initial_parameters(config), output=config.output)
    assert result.loss_curve[0] == pytest.approx(net.evaluate(split.X_train, split.y_train)["loss"], rel=1e-13)
    if estimator == "MLPRegressor":
        assert result.note.startswith("MLPRegressor minimizes half the mean squared error: it runs with "
                                      "learning_rate_init=0.2 to take our steps, and its loss_curve_ is shown doubled")
    else:
        assert result.note is None


def test_sklearn_mapping_of_the_learning_rate_is_said_for_adam_and_several_targets(two_targets):
    from twinnet.lab.runners import sklearn

    config = RunConfig(data=two_targets, layers=(4, 8, 2), output="linear", optimizer="adam", learning_rate=0.01)
    assert sklearn.solver(config) == ({**sklearn.SOLVERS["adam"], "epsilon": 1e-7}, 0.01)  # c = k / 2 = 1
    assert "its gradient is that of the summed squared error over 2, 1x ours" in sklearn.half_loss_note(config)
    sgd = RunConfig(data="diabetes", layers=(10, 8, 1), output="linear", learning_rate=0.1)
    assert sklearn.solver(sgd)[1] == 0.2 and sklearn.solver(RunConfig(layers=(4, 8, 3), output="softmax"))[1] == 0.1


def test_regression_targets_are_standardized_on_the_training_part():
    from twinnet import data

    split = load_split(RunConfig(data="diabetes"))
    mean, sd = split.target_scale
    assert split.output == "linear" and split.width == 1 and split.classes is None
    assert_allclose([split.y_train.mean(), split.y_train.std()], [0.0, 1.0], atol=1e-12)
    raw = data.load_dataset("diabetes").y
    assert raw.min() <= mean - sd and sd > 10  # the target's own units: 25 to 346
    # the test part is scaled by the training part's statistics: its mean is not exactly 0
    assert split.y_test.mean() != pytest.approx(0.0, abs=1e-6)
    kept = load_split(RunConfig(data="diabetes", standardize=False))
    assert kept.target_scale is None and kept.y_train.std() > 10


def test_head_and_layers_are_resolved_from_the_data():
    split = load_split(RunConfig(data="digits10"))
    assert (split.output, split.width, split.classes) == ("softmax", 10, tuple(range(10)))
    config = RunConfig(data="digits10").with_layers(64, output=split.output, width=split.width)
    assert config.layers == (64, 20, 5, 10) and config.output == "softmax"
    # a binary data set trained as K = 2 softmax classes, or as a regression of its labels
    assert load_split(RunConfig(data="moons", output="softmax")).width == 2
    assert RunConfig(data="moons", output="linear").with_layers(2, output="linear", width=1).layers == (2, 20, 5, 1)
    with pytest.raises(ValueError, match="layers=64,8,5 ends with 5 units, but data 'digits10' has 10 classes"):
        RunConfig(data="digits10", layers=(64, 8, 5)).with_layers(64, output="softmax", width=10)


def test_functional_is_binary_only_and_sklearn_has_no_softmax_of_two():
    digits = RunConfig(data="digits10").with_layers(64, output="softmax", width=10)
    names, notes = resolve_engines(None, digits, 1437)
    assert "functional" not in names and "numpy" in names and "sklearn" in names
    assert ("functional skipped: the notebook's functional network is binary, one sigmoid unit with "
            "log-loss; got output='softmax'") in notes
    with pytest.raises(ValueError, match="engine 'functional' cannot run this configuration: the notebook's "
                       "functional network is binary"):
        resolve_engines(["functional"], digits, 1437)
    two = RunConfig(data="moons", output="softmax").with_layers(2, output="softmax", width=2)
    with pytest.raises(ValueError, match="MLPClassifier trains two classes with one logistic unit"):
        resolve_engines(["sklearn"], two, 320)


@pytest.mark.parametrize("data, layers, metrics", [
    ("iris", (4, 8, 3), ("accuracy",)),
    ("diabetes", (10, 8, 1), ("rmse", "r2")),
])
def test_every_engine_reports_the_heads_metrics_on_one_trajectory(data, layers, metrics):
    result = compare(RunConfig(data=data, layers=layers, epochs=10, learning_rate=0.1),
                     engines=["numpy", "sklearn", "torch"])
    rows = result.rows()
    expected = [f"{part}_{name}" for part in ("train", "test") for name in ("loss", *metrics)]
    assert list(rows[0])[1:1 + len(expected)] == expected
    assert not {"train_accuracy", "test_rmse"} <= set(rows[0])  # only the head's own metrics
    for row in rows:
        for key in expected:
            assert row[key] == pytest.approx(rows[0][key], rel=1e-12, abs=1e-15), (row["engine"], key)
        assert row["max_loss_diff"] < 1e-13, row["engine"]
    if "rmse" in metrics:
        numpy = result.result("numpy")
        assert numpy.test_rmse == pytest.approx(np.sqrt(numpy.test_loss), rel=1e-12) and np.isnan(numpy.test_accuracy)
        assert result.data["target_sd"][0] > 10  # the targets are in standard deviations of the data's
