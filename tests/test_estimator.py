"""TwinNetClassifier and TwinNetRegressor: every scikit-learn estimator check, model selection, link to Network."""

import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from problems import multiclass_problem, regression_problem
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.exceptions import NotFittedError
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from twinnet import Network, TwinNetClassifier, TwinNetRegressor

# Each estimator with its defaults, and with the notebook's own training (normal init, plain
# gradient descent) on mini-batches with another activation; the regressor's learning rate is
# smaller, as the checks' regression targets are not standardized (0.5 diverges on them).
# The classifier's checks cover two classes (sigmoid head) and three (softmax), the regressor's
# one target and five. (dtype="float32" is left out: its outputs depend on the order of the
# samples at float32 rounding, 1e-7 relative, which is what check_methods_sample_order_invariance's
# rtol=1e-7 allows and no more; and check_regressor_multioutput asks for float64 predictions.)
ESTIMATORS = [
    TwinNetClassifier(),
    TwinNetClassifier(hidden_layer_sizes=(8,), hidden_activation="tanh", init="normal",
                      optimizer="sgd", learning_rate=0.5, batch_size=16),
    TwinNetRegressor(),
    TwinNetRegressor(hidden_layer_sizes=(8,), hidden_activation="tanh", init="normal",
                     optimizer="sgd", learning_rate=0.01, batch_size=16),
]


# Every check, no expected failures. check_classifier_data_not_an_array needs pandas (a test
# dependency). check_array_api_input needs SCIPY_ARRAY_API=1 set before SciPy is first imported,
# which would change SciPy for the whole session, so that one check runs in a fresh interpreter.
@parametrize_with_checks(ESTIMATORS)
def test_sklearn_estimator_checks(estimator, check):
    if getattr(check, "func", None) is not None and check.func.__name__ == "check_array_api_input" \
            and os.environ.get("SCIPY_ARRAY_API") != "1":
        run_in_array_api_mode(estimator, check)
    else:
        check(estimator)


def run_in_array_api_mode(estimator, check):
    name = type(estimator).__name__
    code = (
        "from sklearn.utils.estimator_checks import check_array_api_input\n"
        f"from twinnet import {name}\n"
        f"check_array_api_input({name!r}, {estimator!r}, **{check.keywords!r})\n"
        "print('check passed')\n"
    )
    env = {**os.environ, "SCIPY_ARRAY_API": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0 and "check passed" in done.stdout, done.stderr[-3000:]
    assert "SkipTest" not in done.stderr


@pytest.fixture(scope="module")
def nn_breast_cancer():
    return load_breast_cancer(return_X_y=True)


def test_pipeline_cross_val_score_and_grid_search(nn_breast_cancer):
    X, y = nn_breast_cancer
    model = make_pipeline(StandardScaler(), TwinNetClassifier(random_state=0))
    scores = cross_val_score(model, X, y, cv=3)
    assert scores.mean() > 0.93, scores
    grid = GridSearchCV(
        model,
        {"twinnetclassifier__learning_rate": [0.001, 0.01],
         "twinnetclassifier__hidden_layer_sizes": [(4,), (20, 5)]},
        cv=3,
    )
    grid.fit(X, y)
    assert grid.best_score_ > 0.93
    assert len(grid.cv_results_["params"]) == 4
    assert grid.score(X, y) > 0.95


@pytest.mark.exact  # the estimator calls Network.fit: the same operations, bit for bit
def test_fit_is_a_network_fit(nn_breast_cancer):
    X, y = nn_breast_cancer
    X = StandardScaler().fit_transform(X)
    clf = TwinNetClassifier(hidden_layer_sizes=(6, 3), optimizer="momentum", learning_rate=0.05,
                            max_iter=30, batch_size=64, random_state=3).fit(X, y)
    net = Network([30, 6, 3, 1], init="glorot", seed=3)
    history = net.fit(X, y, epochs=30, learning_rate=0.05, batch_size=64, optimizer="momentum")
    assert clf.loss_curve_ == history.history["loss"] and clf.n_iter_ == 30
    assert_array_equal(clf.decision_function(X), net.decision_function(X))
    assert_array_equal(clf.predict_proba(X)[:, 1], net.predict_proba(X))
    assert_array_equal(clf.predict(X), net.predict(X))
    assert clf.n_features_in_ == 30 and isinstance(clf.network_, Network)


def test_float32(nn_breast_cancer):
    X, y = nn_breast_cancer
    X = StandardScaler().fit_transform(X)
    clf = TwinNetClassifier(dtype="float32", random_state=0).fit(X, y)
    assert clf.network_.dtype == np.float32 and clf.decision_function(X).dtype == np.float32
    assert clf.score(X, y) > 0.95


def test_any_two_labels():
    X = np.random.default_rng(0).standard_normal((60, 2))
    labels = np.where(X[:, 0] > 0, "spam", "ham")
    clf = TwinNetClassifier(random_state=0).fit(X, labels)
    assert_array_equal(clf.classes_, ["ham", "spam"])
    assert set(clf.predict(X)) <= {"ham", "spam"}
    assert clf.score(X, labels) > 0.9
    proba = clf.predict_proba(X)
    assert proba.shape == (60, 2)
    assert_allclose(proba.sum(axis=1), 1)
    # predict follows predict_proba's > 0.5 rule and decision_function's sign
    assert_array_equal(clf.predict(X) == "spam", proba[:, 1] > 0.5)
    assert_array_equal(clf.decision_function(X) > 0, proba[:, 1] > 0.5)


def test_random_state_reproduces_and_clone_resets():
    X = np.random.default_rng(1).standard_normal((50, 3))
    y = (X.sum(axis=1) > 0).astype(int)
    a = TwinNetClassifier(random_state=7, batch_size=8).fit(X, y)
    b = clone(a).fit(X, y)
    assert a.loss_curve_ == b.loss_curve_
    rs = np.random.RandomState(0)
    c = TwinNetClassifier(random_state=rs, max_iter=5).fit(X, y)
    assert len(c.loss_curve_) == 5


@pytest.fixture(scope="module")
def digits():
    return load_digits(return_X_y=True)


def test_multiclass_pipeline_and_grid_search(digits):
    X, y = digits
    grid = GridSearchCV(Pipeline([("scale", StandardScaler()), ("net", TwinNetClassifier(random_state=0))]),
                        {"net__hidden_layer_sizes": [(16,), (32,)]}, cv=3)
    grid.fit(X, y)
    # scaled logistic regression cross-validates to about 0.93 here: a network at least near it
    assert grid.best_score_ > 0.9, grid.cv_results_["mean_test_score"]
    assert len(grid.cv_results_["params"]) == 2
    net = grid.best_estimator_.named_steps["net"]
    assert_array_equal(net.classes_, np.arange(10))
    assert net.network_.output == "softmax" and net.network_.layer_dims[-1] == 10
    proba = grid.predict_proba(X)
    assert proba.shape == (len(X), 10)
    assert_allclose(proba.sum(axis=1), 1, rtol=1e-12)  # a softmax, up to float64 rounding
    assert_array_equal(grid.predict(X), net.classes_[np.argmax(proba, axis=1)])
    assert grid.best_estimator_.decision_function(X).shape == (len(X), 10)


@pytest.mark.exact  # the estimator calls Network.fit: the same operations, bit for bit
def test_softmax_fit_is_a_network_fit(digits):
    X, y = digits
    X = StandardScaler().fit_transform(X[:600])
    y = y[:600]
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    clf = TwinNetClassifier(hidden_layer_sizes=(12,), optimizer="momentum", learning_rate=0.05, max_iter=20,
                            batch_size=64, random_state=3).fit(X, names[y])
    assert_array_equal(clf.classes_, np.sort(names))
    # the network's class i is the i-th name in sorted order
    labels = np.searchsorted(np.sort(names), names[y])
    net = Network([64, 12, 10], output="softmax", init="glorot", seed=3)
    history = net.fit(X, labels, epochs=20, learning_rate=0.05, batch_size=64, optimizer="momentum")
    assert clf.loss_curve_ == history.history["loss"] and clf.n_iter_ == 20
    assert_array_equal(clf.decision_function(X), net.decision_function(X))
    assert_array_equal(clf.predict_proba(X), net.predict_proba(X))
    assert_array_equal(clf.predict(X), clf.classes_[net.predict(X)])
    assert clf.score(X, names[y]) == net.evaluate(X, labels)["accuracy"]


@pytest.mark.parametrize("labels", [
    np.array(["cat", "dog", "emu"]),
    np.array([-7, 0, 12]),
    np.array([2.0, -1.0, 0.0]),  # whole numbers: others are a regression target (see below)
    np.array([3, 1, 2, 0]),
], ids=["strings", "ints", "floats", "four-ints"])
def test_labels_of_any_type(labels):
    X, y = multiclass_problem(m=90, n=3, k=len(labels), seed=2)
    clf = TwinNetClassifier(hidden_layer_sizes=(8,), random_state=0).fit(X, labels[y])
    k = len(labels)
    assert_array_equal(clf.classes_, np.sort(labels))
    assert clf.classes_.dtype == labels.dtype
    proba, scores, predicted = clf.predict_proba(X), clf.decision_function(X), clf.predict(X)
    assert proba.shape == (90, k) and scores.shape == (90, k) and predicted.shape == (90,)
    assert_allclose(proba.sum(axis=1), 1, rtol=1e-12)  # a softmax, up to float64 rounding
    assert_array_equal(predicted, clf.classes_[np.argmax(proba, axis=1)])
    assert_array_equal(np.argmax(scores, axis=1), np.argmax(proba, axis=1))
    assert clf.score(X, labels[y]) > 0.8  # the classes are linearly separable


def test_multiclass_is_a_tag_and_binary_keeps_its_shapes():
    assert TwinNetClassifier().__sklearn_tags__().classifier_tags.multi_class is True
    X, y = multiclass_problem(m=40, n=3, k=2, seed=0)
    clf = TwinNetClassifier(max_iter=5, random_state=0).fit(X, y)
    assert clf.network_.output == "sigmoid" and clf.network_.layer_dims[-1] == 1
    assert clf.predict_proba(X).shape == (40, 2) and clf.decision_function(X).shape == (40,)


def test_classifier_target_errors():
    X = np.random.default_rng(0).standard_normal((30, 2))
    clf = TwinNetClassifier(max_iter=2)
    with pytest.raises(ValueError, match="needs at least two classes in y; got 1 class: np.float64.1.0."):
        clf.fit(X, np.ones(30))
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        clf.fit(X, np.linspace(0, 1, 30))
    with pytest.raises(ValueError, match="y should be a 1d array, got an array of shape \\(30, 2\\) instead"):
        clf.fit(X, np.zeros((30, 2), dtype=int))


# --------------------------------------------------------------------------- the regressor
def test_regression_pipeline_and_grid_search():
    X, y = load_diabetes(return_X_y=True)
    # the targets (25 .. 346) standardized around the pipeline, as the regressor's docstring advises
    model = TransformedTargetRegressor(
        Pipeline([("scale", StandardScaler()), ("net", TwinNetRegressor(hidden_layer_sizes=(8,), random_state=0))]),
        transformer=StandardScaler())
    grid = GridSearchCV(model, {"regressor__net__learning_rate": [0.001, 0.01]}, cv=3)
    grid.fit(X, y)
    # linear regression cross-validates to R^2 0.49 here: a network within 0.1 of it
    assert grid.best_score_ > 0.4, grid.cv_results_["mean_test_score"]
    assert len(grid.cv_results_["params"]) == 2
    predicted = grid.predict(X)
    assert predicted.shape == y.shape
    assert grid.score(X, y) == r2_score(y, predicted)


@pytest.mark.exact  # the estimator calls Network.fit: the same operations, bit for bit
@pytest.mark.parametrize("k", [1, 3])
def test_linear_fit_is_a_network_fit(k):
    X, y = regression_problem(m=80, n=4, k=k, seed=5)
    reg = TwinNetRegressor(hidden_layer_sizes=(6, 3), optimizer="momentum", learning_rate=0.05, max_iter=30,
                           batch_size=16, random_state=3).fit(X, y)
    net = Network([4, 6, 3, k], output="linear", init="glorot", seed=3)
    history = net.fit(X, y, epochs=30, learning_rate=0.05, batch_size=16, optimizer="momentum")
    assert reg.loss_curve_ == history.history["loss"] and reg.n_iter_ == 30 and reg.n_outputs_ == k
    assert_array_equal(reg.predict(X), net.predict(X))
    assert reg.score(X, y) == r2_score(y, net.predict(X))
    assert reg.network_.output == "linear" and not hasattr(reg, "predict_proba")


@pytest.mark.parametrize("shape", [(50,), (50, 1), (50, 3)], ids=["1-d", "one-column", "three-columns"])
def test_predictions_have_the_targets_shape(shape):
    X, y = regression_problem(m=50, n=3, k=shape[-1] if len(shape) == 2 else 1, seed=1)
    y = y.reshape(shape)
    reg = TwinNetRegressor(hidden_layer_sizes=(8,), random_state=0).fit(X, y)
    assert reg.predict(X).shape == shape and reg.predict(X).dtype == np.float64
    assert reg.n_outputs_ == (shape[1] if len(shape) == 2 else 1)
    assert reg.score(X, y) > 0.5  # a smooth function plus 10% noise, fitted on itself


def test_regressor_targets_are_not_rescaled():
    X, y = regression_problem(m=60, n=3, seed=4)
    a = TwinNetRegressor(max_iter=20, random_state=0).fit(X, y)
    b = TwinNetRegressor(max_iter=20, random_state=0).fit(X, 100 * y)
    assert a.__sklearn_tags__().target_tags.multi_output is True
    # the same network on targets 100 times larger starts with a loss about 10^4 times larger: the
    # targets reach it as given (standardized targets would give both the same loss curve)
    assert b.loss_curve_[0] > 1000 * a.loss_curve_[0]


def test_regressor_float32():
    X, y = regression_problem(m=60, n=3, k=2, seed=4)
    reg = TwinNetRegressor(dtype="float32", random_state=0).fit(X.astype(np.float32), y)
    assert reg.network_.dtype == np.float32 and reg.predict(X).dtype == np.float32
    assert reg.predict(X).shape == (60, 2) and reg.score(X, y) > 0.5


def test_regressor_target_errors():
    X = np.random.default_rng(0).standard_normal((20, 2))
    reg = TwinNetRegressor(max_iter=2)
    with pytest.raises(ValueError, match="y must be a dense array .* got a sparse csr matrix of shape \\(20, 2\\)"):
        reg.fit(X, sp.csr_matrix(np.ones((20, 2))))
    with pytest.raises(ValueError, match="y must hold real numbers .* got dtype <U1"):
        reg.fit(X, np.array(list("ab") * 10))
    with pytest.raises(ValueError, match="Input y contains NaN"):
        reg.fit(X, np.full(20, np.nan))


# --------------------------------------------------------------------------- both
@pytest.mark.parametrize("params, match", [
    ({"hidden_layer_sizes": (4, 0)}, r"hidden_layer_sizes must be a positive int or a tuple of positive ints"),
    ({"hidden_layer_sizes": "big"}, r"hidden_layer_sizes must be"),
    ({"max_iter": 0}, r"max_iter must be an integer >= 1; got max_iter=0"),
    ({"learning_rate": -1.0}, r"learning_rate must be a finite number > 0"),
    ({"batch_size": 0}, r"batch_size must be an integer >= 1 or None"),
    ({"optimizer": "lbfgs"}, r"Unknown optimizer 'lbfgs'"),
    ({"hidden_activation": "gelu"}, r"Unknown hidden_activation 'gelu'"),
    ({"init": "zeros"}, r"Unknown init 'zeros'"),
    ({"dtype": "int8"}, r"dtype must be 'float32' or 'float64'"),
], ids=["zero-width", "not-sizes", "max-iter", "learning-rate", "batch-size", "optimizer",
        "activation", "init", "dtype"])
@pytest.mark.parametrize("estimator", [TwinNetClassifier, TwinNetRegressor])
def test_bad_hyperparameters(estimator, params, match):
    X = np.random.default_rng(0).standard_normal((20, 2))
    y = np.arange(20) % 2
    with pytest.raises(ValueError, match=match):
        estimator(**params).fit(X, y)


@pytest.mark.parametrize("estimator", [TwinNetClassifier, TwinNetRegressor])
def test_predicting_before_fitting(estimator):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        estimator().predict(np.ones((2, 3)))


@pytest.mark.parametrize("estimator", [TwinNetClassifier, TwinNetRegressor])
def test_wrong_feature_count_names_both(estimator):
    X = np.random.default_rng(0).standard_normal((20, 3))
    fitted = estimator(max_iter=2).fit(X, np.arange(20) % 3)
    with pytest.raises(ValueError, match=f"X has 2 features, but {estimator.__name__} is expecting 3 features"):
        fitted.predict(X[:, :2])
