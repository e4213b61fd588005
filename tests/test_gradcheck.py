"""Finite-difference gradient checks: twinnet.gradcheck for every activation and dtype, and its CLI."""

import numpy as np
import pytest
from problems import binary_problem

from twinnet import gradcheck
from twinnet.cli import main
from twinnet.nn import ACTIVATIONS, Network, activations

# Backpropagation in float64 agrees with float64 central differences to ~1e-9 (eps = 1e-5);
# in float32 it rounds at ~1e-7 relative per operation.
TOLERANCE = {"float64": 1e-7, "float32": 1e-4}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_backpropagation_matches_finite_differences(name, dtype):
    X, y = binary_problem(30, 4, rule="square")
    # he init: gradients of every layer well away from zero, so relative errors are meaningful
    net = Network([4, 6, 5, 1], hidden_activation=name, init="he", seed=1, dtype=dtype)
    net.fit(X, y, epochs=5, learning_rate=0.1)  # away from the symmetric start
    errors = gradcheck(net, X, y, eps=1e-5)
    assert list(errors) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    worst = max(errors.values())
    assert worst < TOLERANCE[dtype], f"{name} {dtype}: relative errors {errors}"


def test_gradcheck_catches_a_wrong_derivative(monkeypatch):
    X, y = binary_problem(30, 4, rule="square")
    wrong = activations.Activation(activations.tanh, lambda A, out: np.multiply(A, 0.5, out=out))
    monkeypatch.setitem(activations.ACTIVATIONS, "tanh", wrong)
    errors = gradcheck(Network([4, 6, 1], hidden_activation="tanh", seed=0), X, y)
    assert errors["W1"] > 1e-2 and errors["b1"] > 1e-2
    assert errors["W2"] < 1e-7  # the output layer does not use the hidden derivative


def test_gradcheck_bad_eps():
    X, y = binary_problem(30, 4, rule="square")
    for eps in (0, -1e-5, float("nan"), "small"):
        with pytest.raises(ValueError, match="eps must be a finite number > 0"):
            gradcheck(Network([4, 1]), X, y, eps=eps)


def test_cli_prints_a_table_and_passes(capsys):
    assert main(["gradcheck", "--data", "moons", "--layers", "2,6,1", "--examples", "50",
                 "--activation", "all"]) == 0
    out = capsys.readouterr().out
    assert "moons, 50 examples (standardized), layers 2,6,1" in out and "note:" not in out
    for name in ACTIVATIONS:
        assert f"{name:<12}W1         (6, 2)" in out
    assert out.strip().splitlines()[-1].startswith("PASS: largest relative error")


def test_cli_names_a_relu_kink(capsys):
    # On these 30 examples one ReLU pre-activation is 2.5e-6 from 0: the difference straddles it.
    argv = ["gradcheck", "--data", "moons", "--layers", "2,6,1", "--examples", "30"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "note: 1 relu pre-activation(s) lie within eps of the kink" in out
    assert main([*argv, "--eps", "1e-7"]) == 0  # a smaller step: the kink is not straddled


def test_cli_float32_and_default_layers(capsys):
    assert main(["gradcheck", "--data", "breast_cancer", "--examples", "20", "--dtype", "float32"]) == 0
    out = capsys.readouterr().out
    assert "layers 30,20,5,1" in out and "float32" in out and "tolerance 0.0001" in out


def test_cli_fails_with_status_1_past_the_tolerance(capsys):
    assert main(["gradcheck", "--data", "moons", "--layers", "2,3,1", "--tolerance", "1e-30"]) == 1
    out = capsys.readouterr().out
    assert "<- too large" in out and out.strip().splitlines()[-1].startswith("FAIL")


@pytest.mark.parametrize("argv, match", [
    (["gradcheck", "--data", "moons", "--layers", "3,4,1"], "--layers starts with 3 inputs but moons has 2 features"),
    (["gradcheck", "--layers", "100,20,2"], "expected an output layer of width 1 (one sigmoid unit), got 100,20,2"),
    (["gradcheck", "--activation", "swish"], "invalid choice: 'swish'"),
    (["gradcheck", "--eps", "0"], "expected a finite number > 0"),
    (["gradcheck", "--data", "nope"], "Unknown data set 'nope'"),
], ids=["layers-vs-features", "output-width", "activation", "eps", "data"])
def test_cli_user_errors_are_one_line_and_status_2(cli, argv, match):
    status, _, err = cli(*argv)
    assert status == 2
    assert match in err and len(err.strip().splitlines()) == 1, err
