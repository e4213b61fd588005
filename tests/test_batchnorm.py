"""Batch normalization in Network: a network by hand, finite differences through the batch statistics for
every head, training and inference modes, the moving statistics, files, and bad input.

The twins (Keras and PyTorch) are held to Network in test_twin_batchnorm.py.
"""

import io
import json
import pickle
import tracemalloc
import zipfile

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from problems import binary_problem, multiclass_problem, regression_problem

from twinnet import Network, gradcheck
from twinnet.nn import BatchNorm, NetworkFileError, engine
from twinnet.nn.network import check_X
from twinnet.validation import InvalidArgument

#: Head -> (output, widths, data): two hidden layers, so that one normalization feeds another.
PROBLEMS = {
    "sigmoid": ("sigmoid", [4, 6, 5, 1], binary_problem(30, 4, rule="square", seed=0)),
    "softmax": ("softmax", [4, 6, 5, 3], multiclass_problem(30, 4, 3, seed=0)),
    "linear": ("linear", [4, 6, 5, 2], regression_problem(30, 4, 2, seed=0)),
}
#: Central differences in float64 agree with backpropagation to ~1e-9 here (eps = 1e-5: truncation);
#: float32 backpropagation rounds at ~1e-7 per operation.
TOLERANCE = {"float64": 1e-7, "float32": 1e-4}
OPTIONS = {"defaults": True, "momentum-0.9": BatchNorm(momentum=0.9), "no-center": BatchNorm(center=False),
           "no-scale": BatchNorm(scale=False)}


def _hand_network(**options):
    # one feature, two hidden units (W1 = [1, -1]), one sigmoid output (W2 = [1, 1], b2 = 0); epsilon 0.36
    parameters = {"W1": np.array([[1.0], [-1.0]]), "gamma1": np.ones((2, 1)), "beta1": np.zeros((2, 1)),
                  "moving_mean1": np.zeros((2, 1)), "moving_variance1": np.ones((2, 1)),
                  "W2": np.array([[1.0, 1.0]]), "b2": np.zeros((1, 1))}
    return Network.from_parameters(parameters, batch_norm=BatchNorm(epsilon=0.36, **options))


X_HAND, Y_HAND = np.array([[0.0], [1.6]]), np.array([1, 0])


def test_a_batch_normalized_network_by_hand():
    net = _hand_network()
    # Z1 = W1 x: unit 1 (0, 1.6), mean 0.8, biased variance 0.64; unit 2 (0, -1.6), mean -0.8, 0.64.
    # 1 / sqrt(0.64 + 0.36) = 1: xhat = (-0.8, 0.8) and (0.8, -0.8); gamma 1, beta 0: Y = xhat.
    # relu: A1 = [[0, 0.8], [0.8, 0]]; z = W2 A1 = (0.8, 0.8); p = sigmoid(0.8) = 0.68997448 for both.
    # dz = (p - y) / 2 = (-0.15501276, 0.34498724); dA = W2^T dz, the same for both units.
    # relu': unit 1 passes example 2, unit 2 example 1: dY1 = (0, 0.34498724), dY2 = (-0.15501276, 0).
    # dbeta = sum(dY) = (0.34498724, -0.15501276); dgamma = sum(dY xhat) = (0.27598979, -0.12401021).
    # dZ = (dY - dbeta / 2 - xhat dgamma / 2) * 1: unit 1 (-0.06209770, 0.06209770), unit 2
    # (-0.02790230, 0.02790230); dW1 = dZ x = (0.06209770 * 1.6, 0.02790230 * 1.6) = (0.09935633, 0.04464367).
    # dW2 = dz A1^T = (0.34498724 * 0.8, -0.15501276 * 0.8) = (0.27598979, -0.12401021); db2 = sum(dz) = 0.18997448.
    grads = net.gradients(X_HAND, Y_HAND)
    expected = {"dW1": [0.09935633, 0.04464367], "dgamma1": [0.27598979, -0.12401021],
                "dbeta1": [0.34498724, -0.15501276], "dW2": [0.27598979, -0.12401021], "db2": [0.18997448]}
    assert list(grads) == list(expected)
    for key, values in expected.items():
        assert_allclose(grads[key].ravel(), values, rtol=0, atol=1e-8, err_msg=key)
    # inference before any training: moving mean 0, variance 1: Y = Z / sqrt(1.36) = Z * 0.85749293, so
    # A1 = [[0, 1.37198868], [0, 0]] and p = sigmoid((0, 1.37198868)) = (0.5, 0.79770126)
    assert_allclose(net.predict_proba(X_HAND), [0.5, 0.79770126], rtol=0, atol=1e-8)
    # one full-batch step at learning rate 1: the loss before it is log(1 + e^-0.8) / 2 + log(1 + e^0.8) / 2
    history = net.fit(X_HAND, Y_HAND, epochs=1, learning_rate=1.0)
    assert history.history["loss"] == [pytest.approx(0.77110067, abs=1e-8)]
    after = net.parameters
    # the moving statistics, Keras's way: 0.99 * 0 + 0.01 * (0.8, -0.8); 0.99 * 1 + 0.01 * 0.64 = 0.9964
    assert_allclose(after["moving_mean1"].ravel(), [0.008, -0.008], rtol=1e-14)
    assert_allclose(after["moving_variance1"].ravel(), [0.9964, 0.9964], rtol=1e-14)
    # gamma = 1 - dgamma, beta = 0 - dbeta
    assert_allclose(after["gamma1"].ravel(), [0.72401021, 1.12401021], rtol=0, atol=1e-8)
    assert_allclose(after["beta1"].ravel(), [-0.34498724, 0.15501276], rtol=0, atol=1e-8)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("options", sorted(OPTIONS))
@pytest.mark.parametrize("head", sorted(PROBLEMS))
def test_backpropagation_through_the_batch_statistics_matches_finite_differences(head, options, dtype):
    output, dims, (X, y) = PROBLEMS[head]
    net = Network(dims, output=output, batch_norm=OPTIONS[options], hidden_activation="tanh", init="he", seed=1,
                  dtype=dtype)
    net.fit(X, y, epochs=5, learning_rate=0.1, batch_size=10)  # gamma and beta away from 1 and 0
    errors = gradcheck(net, X, y)
    trainable = BatchNorm().trainable if OPTIONS[options] is True else OPTIONS[options].trainable
    assert sorted(errors) == sorted(["W1", "W2", "W3", "b3", *(f"{name}{l}" for name in trainable for l in (1, 2))])
    assert max(errors.values()) < TOLERANCE[dtype], errors


def test_a_wrong_gradient_through_the_statistics_is_caught(monkeypatch):
    # leaving out the gradient through the batch's mean and variance (dZ = inv * dY) is what gradcheck must see
    from twinnet.nn import batchnorm

    output, dims, (X, y) = PROBLEMS["sigmoid"]
    net = Network(dims, batch_norm=True, hidden_activation="tanh", init="he", seed=1)
    monkeypatch.setattr(batchnorm, "backward", lambda dY, xhat, stats, dgamma, dbeta, options: (
        np.sum(dY, axis=1, out=dbeta), np.einsum("ij,ij->i", dY, xhat, out=dgamma),
        np.multiply(dY, stats[3][:, None], out=dY)))
    assert max(gradcheck(net, X, y).values()) > 1e-3


def test_fit_trains_with_the_batch_statistics_and_predict_uses_the_moving_ones():
    output, dims, (X, y) = PROBLEMS["softmax"]
    net = Network(dims, output=output, batch_norm=True, seed=1)
    start = net.parameters
    # inference before training: mean 0 and variance 1 for every unit; the same network without
    # normalization but with W / sqrt(1 + epsilon) computes the same
    plain = {key: value for key, value in start.items() if key[0] == "W" or key == "b3"}
    for l in (1, 2):
        plain[f"W{l}"] = start[f"W{l}"] / np.sqrt(1 + 1e-3)
        plain[f"b{l}"] = np.zeros((dims[l], 1))
    assert_allclose(net.predict_proba(X), Network.from_parameters(plain, output=output).predict_proba(X), rtol=1e-12)
    # fit's first loss is the training-mode loss (batch statistics), not evaluate's
    history = net.fit(X, y, epochs=3, learning_rate=0.1)
    training_loss = Network.from_parameters(start, output=output, batch_norm=True).loss_function(X, y)[1]()
    assert history.history["loss"][0] == training_loss
    inference_loss = Network.from_parameters(start, output=output, batch_norm=True).evaluate(X, y)["loss"]
    assert abs(training_loss - inference_loss) > 1e-4
    # evaluate sees the moving statistics: set to the batch's, evaluate's loss is the training loss
    trained = net.parameters
    stats = net._forward(check_X(X, 4, net.dtype), training=True).stats
    assert abs(net.evaluate(X, y)["loss"] - net.loss_function(X, y)[1]()) > 1e-3
    for l, (mean, variance) in enumerate(s[:2] for s in stats):
        trained[f"moving_mean{l + 1}"], trained[f"moving_variance{l + 1}"] = mean[:, None], variance[:, None]
    net.set_parameters(trained)
    assert net.evaluate(X, y)["loss"] == pytest.approx(net.loss_function(X, y)[1](), rel=1e-14)


def test_the_moving_statistics_follow_keras_update_every_step():
    output, dims, (X, y) = PROBLEMS["linear"]
    net = Network(dims, output=output, batch_norm=BatchNorm(momentum=0.9), seed=1)
    expected_mean, expected_variance = np.zeros(6), np.ones(6)
    for _ in range(3):  # full batch, one step an epoch: the first layer's statistics before each step
        Z = X @ net.parameters["W1"].T
        expected_mean = expected_mean * 0.9 + Z.mean(axis=0) * (1.0 - 0.9)
        expected_variance = expected_variance * 0.9 + Z.var(axis=0) * (1.0 - 0.9)  # biased, ddof=0
        net.fit(X, y, epochs=1, learning_rate=0.1)
    assert_allclose(net.parameters["moving_mean1"][:, 0], expected_mean, rtol=1e-13)
    assert_allclose(net.parameters["moving_variance1"][:, 0], expected_variance, rtol=1e-13)


def test_gradients_leave_the_moving_statistics_alone():
    output, dims, (X, y) = PROBLEMS["sigmoid"]
    net = Network(dims, batch_norm=True, seed=1)
    before = net.parameters
    net.gradients(X, y)
    gradcheck(net, X[:5], y[:5])
    assert all(np.array_equal(before[key], value) for key, value in net.parameters.items())


def test_a_training_batch_of_one_normalizes_to_beta_as_keras():
    # variance 0: xhat = 0, Y = beta whatever the weights, whose gradients vanish (Keras does the same;
    # PyTorch refuses: see test_twin_batchnorm.py)
    output, dims, (X, y) = PROBLEMS["sigmoid"]
    net = Network(dims, batch_norm=True, hidden_activation="tanh", seed=1)
    grads = net.gradients(X[:1], y[:1])
    # only the last normalization's beta and the output layer learn: the second layer outputs beta2 whatever
    # reaches it
    assert not any(grads[key].any() for key in ("dW1", "dgamma1", "dbeta1", "dW2", "dgamma2"))
    assert grads["dbeta2"].all() and grads["db3"].all()  # (dW3 = dz tanh(beta2) = 0: beta2 starts at 0)
    # the output does not depend on the example: any one with the same label has the same loss
    loss_of = lambda i: net.loss_function(X[i:i + 1], y[:1])[1]()  # noqa: E731
    assert loss_of(0) == loss_of(5) == loss_of(9)
    net.fit(X[:31 - 1], y[:30], epochs=1, learning_rate=0.1, batch_size=29)  # a last batch of one: no error


@pytest.mark.parametrize("options", sorted(OPTIONS))
def test_parameters_dict_keys_and_shapes(options):
    net = Network([4, 6, 5, 3], output="softmax", batch_norm=OPTIONS[options], seed=0)
    trainable = BatchNorm().trainable if OPTIONS[options] is True else OPTIONS[options].trainable
    names = (*trainable, "moving_mean", "moving_variance")
    expected = {"W1": (6, 4), **{f"{name}1": (6, 1) for name in names}, "W2": (5, 6),
                **{f"{name}2": (5, 1) for name in names}, "W3": (3, 5), "b3": (3, 1)}
    params = net.parameters
    assert {key: value.shape for key, value in params.items()} == expected
    assert list(params) == list(expected)  # each layer's weights together, Keras's order
    assert net.n_params == 6 * 4 + 5 * 6 + 3 * 5 + 3 + len(trainable) * 11  # Keras's count of trainable weights
    grads = net.gradients(*multiclass_problem(10, 4, 3))
    assert set(grads) == {f"d{key}" for key in expected if not key.startswith("moving")}
    rebuilt = Network.from_parameters(params, output="softmax", batch_norm=OPTIONS[options])
    assert all(np.array_equal(rebuilt.parameters[key], value) for key, value in params.items())


def test_save_load_and_pickle_keep_every_weight_and_the_options(tmp_path):
    output, dims, (X, y) = PROBLEMS["sigmoid"]
    net = Network(dims, batch_norm=BatchNorm(momentum=0.9, epsilon=1e-2, center=False), seed=1, dtype="float32")
    net.fit(X, y, epochs=3, learning_rate=0.1, batch_size=10)
    net.save(tmp_path / "net.npz")
    for copy in (Network.load(tmp_path / "net.npz"), pickle.loads(pickle.dumps(net))):
        assert copy.batch_norm == net.batch_norm and copy.dtype == net.dtype
        assert copy.parameters.keys() == net.parameters.keys()
        for key, value in net.parameters.items():
            assert_array_equal(copy.parameters[key], value, err_msg=key)
        assert_array_equal(copy.predict_proba(X), net.predict_proba(X))
        # and trains on as the original: the moving statistics are in the copy's own storage
        copy.fit(X, y, epochs=1, learning_rate=0.1)
    assert repr(net) == ("Network([4, 6, 5, 1], hidden_activation='relu', batch_norm=BatchNorm(momentum=0.9, "
                         "epsilon=0.01, center=False), init='normal', seed=1, dtype='float32')")


def test_the_training_loop_allocates_no_array_per_example():
    # 20000 examples: any array per example (>= 160 kB in float64) in an epoch would show up
    X, y = binary_problem(m=20_000, n=4)
    net = Network([4, 16, 8, 1], batch_norm=True, seed=0)
    net.fit(X[:100], y[:100], epochs=1, learning_rate=0.1)  # the kernels' first calls
    for options in [{}, {"batch_size": 5000, "optimizer": "adam"}]:
        one = Network([4, 16, 8, 1], batch_norm=True, seed=0)
        tracemalloc.start()
        try:
            one.fit(X, y, epochs=1, learning_rate=0.1, **options)
            _, single = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            Network([4, 16, 8, 1], batch_norm=True, seed=0).fit(X, y, epochs=6, learning_rate=0.1, **options)
            _, many = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert many - single < 64_000, f"{options}: five more epochs took {many - single} more bytes"


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("options, match", [
    ({"momentum": 1.0}, r"momentum must be a number in \[0, 1\); got momentum=1.0"),
    ({"momentum": -0.1}, r"momentum must be a number in \[0, 1\); got momentum=-0.1"),
    ({"epsilon": 0}, r"epsilon must be a finite number > 0; got epsilon=0"),
    ({"epsilon": -1e-3}, r"epsilon must be a finite number > 0; got epsilon=-0.001"),
    ({"center": "yes"}, r"center must be"),
    ({"scale": None}, r"scale must be"),
], ids=["momentum-1", "momentum-negative", "epsilon-0", "epsilon-negative", "center", "scale"])
def test_bad_options_are_named(options, match):
    with pytest.raises(InvalidArgument, match=match):
        BatchNorm(**options)


@pytest.mark.parametrize("value", ["yes", 1, {"momentum": 0.9, "other": 1}, 0.99])
def test_bad_batch_norm_is_named(value):
    with pytest.raises(InvalidArgument, match="batch_norm must be True, False or twinnet.nn.BatchNorm"):
        Network([3, 4, 1], batch_norm=value)


def test_a_batch_normalized_dict_into_a_network_without_names_the_fix():
    params = Network([3, 4, 1], batch_norm=True, seed=0).parameters
    with pytest.raises(InvalidArgument, match=r"missing \['b1'\]; unexpected \['beta1', 'gamma1', 'moving_mean1', "
                                              r"'moving_variance1'\]; these are a batch-normalized network's weights: "
                                              r"pass batch_norm=True"):
        Network.from_parameters(params)
    with pytest.raises(InvalidArgument, match="pass batch_norm=True"):
        Network([3, 4, 1], seed=0).set_parameters(params)
    with pytest.raises(InvalidArgument, match=r"must hold exactly W1, gamma1, beta1, moving_mean1, moving_variance1, "
                                              r"\.\.\., WL, bL; missing \['gamma1', 'beta1', 'moving_mean1', "
                                              r"'moving_variance1'\]; unexpected \['b1'\]"):
        Network.from_parameters(Network([3, 4, 1], seed=0).parameters, batch_norm=True)
    with pytest.raises(InvalidArgument, match=r"missing \['beta1'\]"):  # center=False has no beta
        Network.from_parameters(Network([3, 4, 1], batch_norm=BatchNorm(center=False)).parameters, batch_norm=True)
    params["moving_variance1"][0] = -1
    with pytest.raises(InvalidArgument, match=r"parameters\['moving_variance1'\] must be >= 0 \(a variance\)"):
        Network.from_parameters(params, batch_norm=True)


def _rewrite_metadata(path, change):
    """Rewrite the model file at ``path`` with ``change(metadata)`` as its metadata, its arrays kept."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    meta = json.loads(str(np.load(path)["__metadata__"]))
    change(meta)
    buffer = io.BytesIO()
    np.save(buffer, np.array(json.dumps(meta)))
    members["__metadata__.npy"] = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_a_file_with_batch_norm_arrays_but_not_its_metadata_is_refused(tmp_path):
    path = tmp_path / "net.npz"
    Network([3, 4, 1], batch_norm=True, seed=0).save(path)
    _rewrite_metadata(path, lambda meta: meta.pop("batch_norm"))
    with pytest.raises(NetworkFileError, match=r"not a twinnet Network file \(layer_dims \[3, 4, 1\] needs the arrays "
                                               r"\['W1', 'W2', 'b1', 'b2'\]: missing \['b1'\]; unexpected \['beta1'"):
        Network.load(path)
    _rewrite_metadata(path, lambda meta: meta.update(batch_norm={"momentum": 2}))
    with pytest.raises(NetworkFileError, match=r"momentum must be a number in \[0, 1\)"):
        Network.load(path)


def test_engine_allocates_the_statistics_only_with_batch_norm():
    buf = engine.allocate([3, 4, 2, 1], 7, np.float64, batch_norm=True)
    assert [s.shape for s in buf.stats] == [(5, 4), (5, 2)] and [x.shape for x in buf.xhat] == [(4, 7), (2, 7)]
    assert engine.allocate([3, 4, 2, 1], 7, np.float64).stats is None


# --------------------------------------------------------------------------- estimators
@pytest.mark.parametrize("batch_norm", [True, BatchNorm(momentum=0.9, center=False)])
def test_the_estimators_take_batch_norm_and_clone_it(batch_norm):
    from sklearn.base import clone

    from twinnet import TwinNetClassifier, TwinNetRegressor

    X, y = binary_problem(40, 3, seed=1)
    clf = TwinNetClassifier(hidden_layer_sizes=(4,), batch_norm=batch_norm, optimizer="sgd", learning_rate=0.1,
                            max_iter=5, n_iter_no_change=np.inf, random_state=2).fit(X, y)
    assert clf.get_params()["batch_norm"] is batch_norm and clone(clf).get_params()["batch_norm"] == batch_norm
    history = Network([3, 4, 1], init="glorot", batch_norm=batch_norm, seed=2).fit(X, y, epochs=5, learning_rate=0.1)
    assert clf.loss_curve_ == history.history["loss"]
    assert clf.network_.batch_norm == (BatchNorm() if batch_norm is True else batch_norm)
    assert clone(clf).fit(X, y).loss_curve_ == clf.loss_curve_
    X, y = regression_problem(40, 3, seed=1)
    assert "moving_mean1" in TwinNetRegressor(hidden_layer_sizes=(4,), batch_norm=batch_norm, max_iter=2,
                                              n_iter_no_change=np.inf).fit(X, y).network_.parameters


def test_the_estimators_refuse_a_bad_batch_norm_at_fit():
    from twinnet import TwinNetClassifier

    X, y = binary_problem(20, 3, seed=1)
    with pytest.raises(InvalidArgument, match="batch_norm must be True, False or twinnet.nn.BatchNorm"):
        TwinNetClassifier(batch_norm="yes").fit(X, y)


# --------------------------------------------------------------------------- the lab
def _lab_twins():
    import importlib.util

    return [e for e, module in (("torch", "torch"), ("tf-loop", "tensorflow")) if importlib.util.find_spec(module)]


@pytest.mark.parametrize("engine", _lab_twins())
def test_the_lab_twins_follow_numpy_with_batch_norm(engine):
    # float64, mini-batches of 32 (the last of 24): the curves agree to rounding (1e-15 measured)
    from twinnet.lab import RunConfig, run_engine
    from twinnet.lab.run import initial_parameters, load_split

    config = RunConfig(data="iris", layers=(4, 8, 3), epochs=4, batch_size=32, batch_norm=True).validate()
    split = load_split(config)
    config = config.with_layers(4, output=split.output, width=split.width)
    initial = initial_parameters(config)
    assert "moving_mean1" in initial
    numpy, twin = (run_engine(e, config, split, initial) for e in ("numpy", engine))
    assert twin.same_trajectory, twin.note
    assert np.max(np.abs(np.subtract(twin.loss_curve, numpy.loss_curve))) < 1e-12
    assert twin.test_loss == pytest.approx(numpy.test_loss, abs=1e-12)  # the moving statistics: inference


@pytest.mark.parametrize("options, engine, says", [
    ({}, "sklearn", "have no batch normalization; got batch_norm=True"),
    ({}, "functional", "has no L2 penalty, dropout, batch normalization, learning-rate schedule or early stopping; "
                       "got batch_norm=True"),
    ({"keras_init": "notebook"}, "keras", "compiled without L2 penalty, dropout, batch normalization"),
    ({"batch_size": 17}, "torch", "torch's BatchNorm1d cannot train on a batch of one example, which "
                                  "batch_size=17 leaves of 120 training examples"),
])
def test_what_cannot_train_batch_norm_is_said(options, engine, says):
    from twinnet.lab import RunConfig
    from twinnet.lab.runners import unsupported_reason

    config = RunConfig(**{"data": "moons", "batch_norm": True, **options})
    assert says in unsupported_reason(engine, config, 120)
    assert unsupported_reason("torch", RunConfig(data="moons", batch_norm=True, batch_size=16), 120) is None


def test_batch_norm_is_a_grid_key_and_a_run_config_field():
    from twinnet.lab import RunConfig
    from twinnet.lab.grid import check_grid

    assert check_grid({"batch_norm": [False, True], "engines": ["numpy"]})["batch_norm"] == (False, True)
    with pytest.raises(ValueError, match="batch_norm must be True or False; got batch_norm='yes'"):
        check_grid({"batch_norm": ["yes"]})
    with pytest.raises(ValueError, match="batch_norm must be True or False; got batch_norm=1"):
        RunConfig(batch_norm=1).validate()


def test_compare_and_sweep_take_batch_norm(cli, tmp_path):
    status, out, err = cli("compare", "--data", "moons", "--layers", "2,4,1", "--epochs", "2", "--engines", "numpy",
                           "--batch-norm", "--no-progress", "--out", str(tmp_path / "compare"))
    assert status == 0, err
    assert json.loads((tmp_path / "compare" / "results.json").read_text())["config"]["batch_norm"] is True
    status, out, err = cli("sweep", "--data", "moons", "--layers", "2,4,1", "--epochs", "2", "--engines", "numpy",
                           "--batch-norm", "false,true", "--jobs", "1", "--no-progress", "--out", str(tmp_path / "s"))
    assert status == 0, err
    rows = [json.loads(line) for line in (tmp_path / "s" / "results.jsonl").read_text().splitlines()]
    assert sorted(row["config"]["batch_norm"] for row in rows) == [False, True]
    status, out, err = cli("sweep", "--batch-norm", "maybe", "--out", str(tmp_path / "bad"))
    assert status == 2 and len(err.splitlines()) == 1 and "expected true or false" in err, err


def test_the_figures_title_says_batch_norm_when_it_is_on():
    from twinnet.lab import RunConfig
    from twinnet.lab.plots import describe_config

    assert ", batch norm, " in describe_config(RunConfig(data="moons", layers=(2, 4, 1), batch_norm=True))
    assert "batch norm" not in describe_config(RunConfig(data="moons", layers=(2, 4, 1)))
