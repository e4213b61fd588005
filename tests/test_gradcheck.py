"""Finite-difference gradient checks: twinnet.gradcheck for every activation and dtype, and its CLI for every head.

The softmax and linear heads' gradients through the API, for every activation and dtype, are checked
in test_heads.py; here, that a wrong gradient of each head is caught, and the command for each head.
"""

import re

import numpy as np
import pytest
from problems import binary_problem, multiclass_problem, regression_problem

from twinnet import gradcheck
from twinnet.cli import main
from twinnet.nn import ACTIVATIONS, Network, activations
from twinnet.nn.heads import HEADS
from twinnet.validation import OUTPUTS

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


#: A small problem and network for each head: (layers, X, targets).
PROBLEMS = {
    "sigmoid": lambda: ([4, 6, 1], *binary_problem(30, 4, rule="square")),
    "softmax": lambda: ([4, 6, 3], *multiclass_problem(30, 4, 3)),
    "linear": lambda: ([4, 6, 2], *regression_problem(30, 4, 2)),
}


def _scaled_delta(monkeypatch, output, factor):
    """Make the head ``output`` backpropagate ``factor`` times its loss's gradient (a wrong ``dL/dz``)."""
    head = HEADS[output]

    def delta(y, buf, m):
        head.delta(y, buf, m)
        np.multiply(buf.dz, factor, out=buf.dz)

    monkeypatch.setitem(HEADS, output, head._replace(delta=delta))


@pytest.mark.parametrize("output", OUTPUTS)
def test_gradcheck_catches_a_wrong_gradient_of_each_head(monkeypatch, output):
    layers, X, y = PROBLEMS[output]()
    _scaled_delta(monkeypatch, output, 2.0)  # e.g. a forgotten 1/2 or mean over outputs
    net = Network(layers, output=output, hidden_activation="tanh", seed=0)
    errors = gradcheck(net, X, y)
    # every gradient is twice the true one: ||2n - n|| / (||2n|| + ||n||) = 1/3, up to the differences' ~1e-9
    assert errors == pytest.approx(dict.fromkeys(errors, 1 / 3), abs=1e-6)


def _keep(net, m, seed=0):
    """Fixed dropout keep masks for ``net`` on ``m`` examples, as fit draws them."""
    rng = np.random.default_rng(seed)
    return [rng.random((m, n)) >= rate for n, rate in zip(net.layer_dims[1:-1], net._rates)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("output", OUTPUTS)
def test_gradcheck_covers_l2_and_dropout_under_fixed_masks(output, dtype):
    layers, X, y = PROBLEMS[output]()
    layers = [layers[0], 6, 5, layers[-1]]
    net = Network(layers, output=output, hidden_activation="tanh", init="he", l2=0.05, dropout=[0.3, 0.5], seed=0,
                  dtype=dtype)
    net.fit(X, y, epochs=5, learning_rate=0.1)  # away from the symmetric start, as the test above
    masks = _keep(net, X.shape[0])
    errors = gradcheck(net, X, y, masks=masks)
    assert max(errors.values()) < TOLERANCE[dtype], errors
    # the masks matter: the same network without them has other gradients
    assert net.gradients(X, y, masks=masks)["dW1"].tolist() != net.gradients(X, y)["dW1"].tolist()


def test_gradcheck_catches_a_wrong_l2_gradient(monkeypatch):
    layers, X, y = PROBLEMS["softmax"]()
    net = Network(layers, output="softmax", hidden_activation="tanh", l2=0.5, seed=0)

    def half_penalty_gradient(self, dlayers, scratch):  # l2 * W: the factor 2 of d(l2 W^2)/dW forgotten
        for K, dKb in zip(self._kernels, dlayers):
            dKb[:-1] += self.l2 * K

    monkeypatch.setattr(Network, "_add_l2_gradient", half_penalty_gradient)
    errors = gradcheck(net, X, y)
    assert errors["W1"] > 1e-2 and errors["W2"] > 1e-2
    assert errors["b1"] < 1e-7 and errors["b2"] < 1e-7  # biases are not penalized


def test_gradcheck_catches_backpropagation_that_forgets_the_dropout_masks(monkeypatch):
    from twinnet.nn import engine

    layers, X, y = PROBLEMS["sigmoid"]()
    net = Network([layers[0], 6, 5, 1], hidden_activation="tanh", dropout=0.5, seed=0)
    original = engine._times_derivative
    monkeypatch.setattr(engine, "_times_derivative",
                        lambda activation, dA, A, M, *rest: original(activation, dA, A, None, *rest))
    errors = gradcheck(net, X, y, masks=_keep(net, X.shape[0]))
    assert errors["W1"] > 1e-2 and errors["W2"] > 1e-2
    assert errors["W3"] < 1e-7  # the output layer's gradient does not go through a mask


def test_gradcheck_takes_a_float32_networks_targets_as_it_sees_them():
    # float64 targets round to float32 in the network's gradients; the differences must use the same targets
    X, y = regression_problem(30, 4, 2)
    net = Network([4, 6, 2], output="linear", hidden_activation="tanh", seed=0, dtype="float32")
    assert not np.array_equal(y, y.astype(np.float32))
    assert gradcheck(net, X, y) == gradcheck(net, X, y.astype(np.float32))


def test_gradcheck_bad_eps():
    X, y = binary_problem(30, 4, rule="square")
    for eps in (0, -1e-5, float("nan"), "small"):
        with pytest.raises(ValueError, match="eps must be a finite number > 0"):
            gradcheck(Network([4, 1]), X, y, eps=eps)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("output, width, targets", [
    ("sigmoid", 1, "the data's labels"),
    ("softmax", 3, "random labels 0..2"),
    ("linear", 1, "random normal targets"),
    ("linear", 2, "random normal targets"),
])
def test_cli_prints_a_table_and_passes_for_every_head(cli, output, width, targets, dtype):
    status, out, err = cli("gradcheck", "--data", "moons", "--layers", f"2,6,{width}", "--examples", 50,
                           "--activation", "all", "--output", output, "--dtype", dtype)
    assert status == 0, out + err
    assert (f"moons, 50 examples (standardized), layers 2,6,{width}, {output} head ({targets}), "
            f"init normal, {dtype}, eps 1e-05") in out
    assert "note:" not in out
    for name in ACTIVATIONS:
        assert f"{name:<12}W1         (6, 2)" in out and f"{name:<12}b2         ({width}, 1)" in out
    assert out.strip().splitlines()[-1].startswith("PASS: largest relative error")


@pytest.mark.parametrize("output", OUTPUTS)
def test_cli_catches_a_wrong_gradient_of_each_head(cli, monkeypatch, output):
    _scaled_delta(monkeypatch, output, 2.0)
    width = 3 if output == "softmax" else 1
    status, out, _ = cli("gradcheck", "--data", "moons", "--layers", f"2,6,{width}", "--output", output,
                         "--activation", "tanh")
    assert status == 1
    assert out.count("<- too large") == 4 and out.strip().splitlines()[-1].startswith("FAIL")


@pytest.mark.parametrize("output, layers", [("sigmoid", "2,20,5,1"), ("softmax", "2,20,5,3"), ("linear", "2,20,5,1")])
def test_cli_default_layers_fit_the_head(cli, output, layers):
    status, out, _ = cli("gradcheck", "--data", "moons", "--examples", 20, "--output", output, "--activation", "tanh")
    assert status == 0 and f"layers {layers}, {output} head" in out


@pytest.mark.parametrize("data, told", [("diabetes", "layers 10,20,5,1, linear head (random normal targets)"),
                                        ("iris", "layers 4,20,5,3, softmax head (random labels 0..2)")])
def test_cli_checks_the_data_sets_own_head_by_default(cli, data, told):
    status, out, err = cli("gradcheck", "--data", data, "--examples", 20, "--activation", "tanh")
    assert status == 0 and told in out.splitlines()[0], out + err


@pytest.mark.parametrize("output, width", [("sigmoid", 1), ("softmax", 3), ("linear", 2)])
def test_cli_checks_l2_and_dropout(cli, output, width):
    status, out, err = cli("gradcheck", "--data", "moons", "--layers", f"2,6,5,{width}", "--output", output,
                           "--activation", "tanh", "--l2", "0.01", "--dropout", "0.4", "--seed", "3")
    assert status == 0, out + err
    header = out.splitlines()[0]
    kept = re.search(r"dropout 0.4 under fixed masks \((\d+) of 550 units kept\)", header)
    assert ", l2 0.01, " in header and kept and 0.4 * 550 < int(kept.group(1)) < 0.8 * 550, header
    assert out.strip().splitlines()[-1].startswith("PASS")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cli_checks_batch_normalization_through_the_batch_statistics(cli, dtype):
    # --seed 3: float64's largest error is 1e-8 there (seed 0's tanh W1 is 4e-7, a gradient that batch
    # normalization makes nearly 0, so that the central differences' rounding weighs more)
    status, out, err = cli("gradcheck", "--data", "moons", "--layers", "2,6,5,1", "--activation", "all",
                           "--batch-norm", "--dtype", dtype, "--seed", "3")
    assert status == 0, out + err
    assert out.splitlines()[0].endswith(", batch norm (the batch's statistics)"), out
    for name in ACTIVATIONS:  # gamma and beta in place of the hidden biases, the output's bias kept
        for row in ["W1         (6, 2)", "gamma1     (6, 1)", "beta2      (5, 1)", "b3         (1, 1)"]:
            assert f"{name:<12}{row}" in out
    assert " b1 " not in out and "moving" not in out
    assert out.strip().splitlines()[-1].startswith("PASS")


def test_cli_catches_batch_normalization_that_treats_the_statistics_as_constants(cli, monkeypatch):
    from twinnet.nn import batchnorm

    def constant_statistics(dY, xhat, stats, dgamma, dbeta, options):
        # dgamma and dbeta right, but dZ = dY * gamma / sqrt(variance + epsilon): no path through the mean
        # and variance, which move with every weight of the layer and below
        np.sum(dY, axis=1, out=dbeta)
        np.einsum("ij,ij->i", dY, xhat, out=dgamma)
        np.multiply(dY, stats[3][:, None], out=dY)

    monkeypatch.setattr(batchnorm, "backward", constant_statistics)
    status, out, _ = cli("gradcheck", "--data", "moons", "--layers", "2,6,5,1", "--activation", "tanh",
                         "--batch-norm", "--seed", "3")
    assert status == 1 and out.strip().splitlines()[-1].startswith("FAIL"), out
    assert re.search(r"^tanh +W1 .*<- too large$", out, re.MULTILINE), out


def test_cli_counts_the_kinks_under_the_dropout_masks(capsys):
    # A fresh ReLU network (zero biases) whose hidden units are all dropped or negative for an example
    # has a pre-activation of exactly 0 in the next layer: the masks make kinks the plain network lacks.
    from twinnet import data
    from twinnet.cli.gradcheck_cmd import _keep_masks
    from twinnet.nn.gradcheck import count_kinks

    X = data.load("moons")[0][:50]
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    net = Network([2, 6, 5, 1], dropout=0.4, seed=0)
    with_masks = count_kinks(net, X, 1e-5, _keep_masks([2, 6, 5, 1], 50, 0.4, 0))
    assert with_masks > count_kinks(net, X, 1e-5)
    assert main(["gradcheck", "--data", "moons", "--layers", "2,6,5,1", "--dropout", "0.4"]) == 1
    assert f"note: {with_masks} relu pre-activation(s) lie within eps of the kink" in capsys.readouterr().out


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
    (["gradcheck", "--layers", "100,20,2"], "a sigmoid head has one output unit; got an output layer of width 2"),
    (["gradcheck", "--output", "sigmoid", "--layers", "2,6,3"], "a sigmoid head has one output unit; got an output "
     "layer of width 3. Use output='softmax' for 3 classes or output='linear' for 3 regression targets."),
    (["gradcheck", "--output", "softmax", "--layers", "2,6,1"], "a softmax head needs an output layer of width "
     "K >= 2 (one unit per class); got width 1"),
    (["gradcheck", "--output", "tanh"], "invalid choice: 'tanh'"),
    (["gradcheck", "--layers", "2,0,1"], "expected positive widths, got 2,0,1"),
    (["gradcheck", "--layers", "2"], "expected a list of at least two integers"),
    (["gradcheck", "--activation", "swish"], "invalid choice: 'swish'"),
    (["gradcheck", "--eps", "0"], "expected a finite number > 0"),
    (["gradcheck", "--data", "nope"], "Unknown data set 'nope'"),
    (["gradcheck", "--data", "diabetes", "--output", "sigmoid"], "--output sigmoid checks on the data's 0/1 labels, "
     "but the targets of diabetes are for a linear head: leave --output out"),
], ids=["layers-vs-features", "output-width", "sigmoid-width", "softmax-width", "output", "widths",
        "one-width", "activation", "eps", "data", "sigmoid-on-regression"])
def test_cli_user_errors_are_one_line_and_status_2(cli, argv, match):
    status, out, err = cli(*argv)
    assert status == 2 and out == ""
    assert match in err and len(err.strip().splitlines()) == 1, err
