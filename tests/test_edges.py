"""Inputs at the edge of float32 and float64 (issue 21): each class refused in one named line or handled.

One section per class: a gradient check that meets NaN or inf, a finite-difference step outside
its range, an ``l2`` beyond float32, schedule step counts beyond Keras's int64 and a user's own
schedule, regression targets or features near 1e300. Each class is tried with several inputs.
"""

import numpy as np
import pytest
from problems import binary_problem, regression_problem

from twinnet import Network, TwinNetClassifier, TwinNetRegressor, data, gradcheck
from twinnet.cli import main
from twinnet.lab.config import RunConfig
from twinnet.nn import schedule_parse, schedules
from twinnet.validation import InvalidArgument

HUGE = int("9" * 400)  # the 400-digit step count


# --------------------------------------------------------------------------- gradcheck: NaN or inf
def _net(output="sigmoid", width=1, activation="tanh", **options):
    return Network([3, 4, width], output=output, hidden_activation=activation, seed=0, **options)


NON_FINITE = {
    # the linear head's squared error overflows on features near 1e300 (through ReLU: tanh would bound them)
    "features-1e300": lambda X, y: (_net("linear", activation="relu"), 1e300 * X, y),
    # targets near 1e200: (z - y)**2 is 1e400
    "targets-1e200": lambda X, y: (_net("linear"), X, 1e200 * y),
    # weights near 1e300 make the pre-activations of the second layer overflow
    "weights-1e300": lambda X, y: (Network.from_parameters(
        {key: np.full_like(value, 1e300) for key, value in _net("linear").parameters.items()}, output="linear"), X, y),
    # float32's l2 gradient 2 * l2 * W overflows for an l2 near float32's largest
    "l2-3e38-float32": lambda X, y: (_net("linear", l2=3e38, dtype="float32"), X, y),
}


@pytest.mark.parametrize("case", sorted(NON_FINITE))
def test_gradcheck_refuses_to_measure_non_finite_gradients(case):
    net, X, y = NON_FINITE[case](*regression_problem(20, 3, 1))
    with pytest.raises(FloatingPointError, match="NaN or inf.*no relative error can be measured"):
        gradcheck(net, X, y)


@pytest.mark.parametrize("argv", [
    ["--l2", "3e38", "--dtype", "float32"],
    ["--l2", "3.4e38", "--dtype", "float32", "--activation", "all"],
    ["--l2", "2e38", "--dtype", "float32", "--output", "softmax", "--layers", "2,3,3"],
], ids=["l2-3e38", "all-activations", "softmax"])
def test_cli_fails_with_a_named_reason_when_an_error_is_not_finite(capsys, argv):
    assert main(["gradcheck", "--data", "moons", "--examples", "5", "--layers", "2,3,1", *argv]) == 1
    out = capsys.readouterr().out
    last = out.strip().splitlines()[-1]
    assert last.startswith("FAIL: ") and "NaN or inf" in last and "l2=" in last, out
    assert "PASS" not in out


def test_cli_fails_when_backpropagation_returns_nan(capsys, monkeypatch):
    real = Network.gradients

    def nan_gradients(self, X, y, **kwargs):
        grads = real(self, X, y, **kwargs)
        grads["dW1"][0, 0] = np.nan
        return grads

    monkeypatch.setattr(Network, "gradients", nan_gradients)
    assert main(["gradcheck", "--data", "moons", "--examples", "5", "--layers", "2,3,1"]) == 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("FAIL: ") and "backpropagation's dW1" in last


def test_relative_error_of_huge_finite_gradients_is_finite():
    from twinnet.nn.gradcheck import _relative_error

    g = np.array([1e300, -3e300])
    assert _relative_error(g, g) == 0.0
    assert _relative_error(g, 2 * g) == pytest.approx(1 / 3)  # a factor 2 is |2 - 1| / (2 + 1)


# --------------------------------------------------------------------------- gradcheck: the step's range
@pytest.mark.parametrize("eps", [1e-15, 1e-12, 9e-9, 0.011, 0.5, 0.99])
def test_gradcheck_refuses_an_eps_outside_its_range(eps):
    X, y = binary_problem(20, 3)
    with pytest.raises(InvalidArgument, match=r"eps must be between 1e-08 and 0.01 .*rounding.*truncation.*got eps="):
        gradcheck(_net(), X, y, eps=eps)


@pytest.mark.parametrize("eps", [1e-8, 1e-2])
def test_gradcheck_takes_the_ends_of_the_range(eps):
    X, y = binary_problem(20, 3)
    assert max(gradcheck(_net(), X, y, eps=eps).values()) < 1e-3  # meaningful, if not at the default tolerance


@pytest.mark.parametrize("eps", ["1e-15", "1e-9", "0.05", "0.5"])
def test_cli_refuses_an_eps_outside_its_range(cli, eps):
    status, out, err = cli("gradcheck", "--data", "moons", "--eps", eps)
    assert status == 2 and not out and len(err.strip().splitlines()) == 1, err
    assert "argument --eps: expected a number between 1e-08 and 0.01" in err and f"got {eps}" in err


# --------------------------------------------------------------------------- l2 beyond float32
L2_TOO_LARGE = [1e39, 3.5e38, 1e300, 1.7976931348623157e308]


@pytest.mark.parametrize("l2", L2_TOO_LARGE)
def test_network_refuses_an_l2_beyond_float32(l2):
    with pytest.raises(InvalidArgument, match=r"l2 must be at most 3.4e\+38, float32's largest"):
        Network([3, 4, 1], l2=l2)
    with pytest.raises(InvalidArgument, match=r"l2 must be at most 3.4e\+38"):
        Network.from_parameters(Network([3, 4, 1]).parameters, l2=l2)
    with pytest.raises(InvalidArgument, match=r"l2 must be at most 3.4e\+38"):
        RunConfig(l2=l2).validate()


def test_network_takes_float32s_largest_l2():
    assert Network([3, 4, 1], l2=float(np.finfo(np.float32).max)).l2 == float(np.finfo(np.float32).max)


@pytest.mark.parametrize("alpha", [1e45, 1e300])
def test_estimator_names_alpha_when_its_l2_is_beyond_float32(alpha):
    X, y = binary_problem(20, 3)
    with pytest.raises(InvalidArgument, match=r"alpha=.* gives the network l2 = .*beyond float32's largest"):
        TwinNetClassifier(alpha=alpha, max_iter=1).fit(X, y)


@pytest.mark.parametrize("command", ["compare", "gradcheck"])
@pytest.mark.parametrize("l2", ["1e39", "3.5e38", "1e300"])
def test_cli_refuses_an_l2_beyond_float32(cli, command, l2):
    status, out, err = cli(command, "--data", "moons", "--l2", l2)
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert "argument --l2: expected a number between 0 and 3.4e+38" in err and f"got {l2}" in err


def test_sweep_refuses_an_l2_beyond_float32(cli, tmp_path):
    status, _, err = cli("sweep", "--data", "moons", "--epochs", "1", "--no-progress", "--out", tmp_path / "s",
                         "--l2", "0,1e39")
    assert status == 2 and len(err.strip().splitlines()) == 1 and "l2 must be at most 3.4e+38" in err, err


# --------------------------------------------------------------------------- schedules: step counts and subclasses
@pytest.mark.parametrize("spec, argument", [
    (f"exponential:decay_steps={HUGE},decay_rate=0.5", "decay_steps"),
    (f"inverse_time:decay_steps={HUGE},decay_rate=0.5", "decay_steps"),
    (f"cosine:decay_steps={HUGE}", "decay_steps"),
    (f"exponential:decay_steps={2**63},decay_rate=0.5", "decay_steps"),
    (f"cosine:decay_steps=10,warmup_steps={HUGE},warmup_target=0.1", "warmup_steps"),
    (f"piecewise:boundaries=[10,{HUGE}],values=[0.1,0.05,0.01]", r"boundaries\[1\]"),
], ids=["exponential", "inverse_time", "cosine", "2**63", "warmup_steps", "boundaries"])
def test_schedule_step_counts_beyond_int64_are_refused(spec, argument):
    with pytest.raises(InvalidArgument, match=rf"{argument} must be an integer between \d and 9223372036854775807 "
                                              r"\(Keras counts steps in int64\)"):
        schedule_parse.parse(spec, initial_learning_rate=0.1)


def test_schedule_step_counts_up_to_int64_work():
    largest = 2**63 - 1
    assert 0 < schedules.ExponentialDecay(0.1, largest, 0.5)(10) <= float(np.float32(0.1))
    assert schedules.CosineDecay(0.1, largest)(10) == pytest.approx(0.1)
    assert schedules.PiecewiseConstantDecay([0, largest], [0.1, 0.05, 0.01])(1) == pytest.approx(0.05)


def test_cli_refuses_a_400_digit_decay_steps(cli):
    status, _, err = cli("compare", "--data", "moons", "--lr-schedule",
                         f"exponential:decay_steps={HUGE},decay_rate=0.5")
    assert status == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "decay_steps must be an integer between 1 and 9223372036854775807" in err
    assert "(400 digits)" in err and len(err) < 600  # the value is not echoed in full


class Halving(schedules.LearningRateSchedule):
    """A user's schedule: its own arguments, no ``name``."""

    def __init__(self, rate):
        self.rate = rate

    def __call__(self, step):
        return self.rate / 2 ** step

    def get_config(self):
        return {"rate": self.rate}


class Constant(schedules.LearningRateSchedule):
    """A user's schedule with only ``__call__``, as the smallest subclass can be."""

    def __call__(self, step):
        return 1e3


class Named(schedules.LearningRateSchedule):
    """A user's schedule with a ``name`` of its own default."""

    def __init__(self, rate, name="Mine"):
        self.rate, self.name = rate, name

    def __call__(self, step):
        return self.rate

    def get_config(self):
        return {"rate": self.rate, "name": self.name}


@pytest.mark.parametrize("schedule, text", [
    (Halving(0.5), "Halving(rate=0.5)"),
    (Constant(), "Constant()"),
    (Named(0.1), "Named(rate=0.1)"),
    (Named(0.1, name="other"), "Named(rate=0.1, name='other')"),
])
def test_a_users_schedule_has_a_repr(schedule, text):
    assert repr(schedule) == text


@pytest.mark.parametrize("schedule", [Halving(1e3), Constant(), Named(1e3)], ids=["halving", "constant", "named"])
def test_a_diverging_fit_with_a_users_schedule_says_so(schedule):
    X, y = regression_problem(30, 3, 1)
    with pytest.raises(FloatingPointError, match=rf"learning_rate={type(schedule).__name__}\(.*smaller learning_rate"):
        Network([3, 8, 1], output="linear", seed=0).fit(X, y, epochs=50, learning_rate=schedule)


# --------------------------------------------------------------------------- regression targets far from 1
@pytest.mark.parametrize("scale", [1e4, 1e10, 1e300])
@pytest.mark.parametrize("k", [1, 2])
def test_divergence_on_large_targets_names_the_targets(scale, k):
    X, y = regression_problem(30, 3, k)
    match = r"y has values up to .* in magnitude; standardize the targets"
    with pytest.raises(FloatingPointError, match=match) as info:
        Network([3, 4, k], output="linear", seed=0).fit(X, scale * y, epochs=200, learning_rate=0.1)
    assert "smaller learning_rate" not in str(info.value)


@pytest.mark.parametrize("scale", [1e200, 1e300])  # its Adam's bounded steps ride out smaller scales
def test_regressor_divergence_on_large_targets_names_the_targets(scale):
    X, y = regression_problem(30, 3, 1)
    with pytest.raises(FloatingPointError, match="standardize the targets"):
        TwinNetRegressor(random_state=0, max_iter=50).fit(X, scale * y)


def test_divergence_of_l2_times_learning_rate_names_l2():
    X, y = binary_problem(30, 3)
    with pytest.raises(FloatingPointError, match=r"l2 \* learning_rate = 1e\+37 > 1.*take a smaller l2") as info:
        Network([3, 4, 1], l2=1e38, seed=0).fit(X, y, epochs=200, learning_rate=0.1)
    assert "smaller learning_rate" not in str(info.value)


def test_divergence_of_ordinary_data_still_blames_the_learning_rate():
    X, y = regression_problem(30, 3, 1)
    with pytest.raises(FloatingPointError, match="try a smaller learning_rate"):
        Network([3, 8, 1], output="linear", seed=0).fit(X, y, epochs=200, learning_rate=50.0)


def _csv(path, X, y):
    path.write_text("\n".join(",".join(repr(float(v)) for v in (*row, *np.atleast_1d(t))) for row, t in zip(X, y)))
    return path


@pytest.mark.parametrize("scale", [1e10, 1e300])
def test_compare_without_standardizing_names_the_targets(cli, tmp_path, monkeypatch, scale):
    monkeypatch.chdir(tmp_path)
    X, y = regression_problem(40, 3, 1)
    _csv(tmp_path / "big.csv", X, scale * y + 0.5)
    status, out, err = cli("compare", "--data", "big.csv", "--output", "linear", "--engines", "numpy", "--epochs", "20",
                           "--no-standardize", "--no-progress")
    assert status == 0 and "standardize the targets" in out and "smaller learning_rate" not in out, out + err


# --------------------------------------------------------------------------- features and targets near 1e300
@pytest.mark.parametrize("scale", [1e160, 1e300, 1e-300])
def test_split_standardizes_features_of_any_finite_scale(scale):
    X, y = binary_problem(40, 3)
    plain = data.split(X, y, seed=0, standardize=True)
    scaled = data.split(scale * X, y, seed=0, standardize=True)
    for name in ("X_train", "X_test"):  # standardizing undoes the scale, to rounding of the scaled values
        np.testing.assert_allclose(getattr(scaled, name), getattr(plain, name), rtol=1e-12, atol=1e-12, err_msg=name)


def test_split_standardization_is_unchanged_for_ordinary_features():
    from sklearn.preprocessing import StandardScaler

    X, y = binary_problem(40, 3)
    split = data.split(X, y, seed=0, standardize=True)
    raw = data.split(X, y, seed=0)
    scaler = StandardScaler().fit(raw.X_train)
    # a power-of-two scaling is exact: the same numbers as scikit-learn's, bit for bit
    assert np.array_equal(split.X_train, scaler.transform(raw.X_train))
    assert np.array_equal(split.X_test, scaler.transform(raw.X_test))


@pytest.mark.parametrize("scale", [1e200, 1e300, 1.5e308])
def test_compare_on_a_csv_of_huge_features_standardizes_them(cli, tmp_path, monkeypatch, scale):
    monkeypatch.chdir(tmp_path)
    X, y = binary_problem(40, 3)
    X[:, 0] *= scale / np.abs(X[:, 0]).max()  # the largest value is scale
    _csv(tmp_path / "big.csv", X, y)
    status, out, err = cli("compare", "--data", "big.csv", "--engines", "numpy", "--epochs", "5", "--no-progress")
    assert status == 0 and "RuntimeWarning" not in err and "diverged" not in out, out + err


@pytest.mark.parametrize("scale", [1e200, 1e300])
def test_compare_on_a_csv_of_huge_targets_standardizes_them(cli, tmp_path, monkeypatch, scale):
    monkeypatch.chdir(tmp_path)
    X, y = regression_problem(40, 3, 1)
    _csv(tmp_path / "big.csv", X, scale * y + 0.5)
    status, out, err = cli("compare", "--data", "big.csv", "--output", "linear", "--engines", "numpy",
                           "--epochs", "5", "--no-progress")
    assert status == 0 and "RuntimeWarning" not in err and "diverged" not in out, out + err


@pytest.mark.parametrize("scale", [1e160, 1e300])
def test_gradcheck_on_a_csv_of_huge_features_passes(capsys, tmp_path, scale):
    X, y = binary_problem(40, 3)
    X[:, 1] *= scale
    path = _csv(tmp_path / "big.csv", X, y)
    assert main(["gradcheck", "--data", str(path), "--layers", "3,4,1", "--activation", "tanh"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("PASS")
