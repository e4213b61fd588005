"""TwinNetClassifier and TwinNetRegressor: every scikit-learn estimator check, model selection, link to Network."""

import ast
import functools
import os
import subprocess
import sys
import warnings

import math

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from problems import binary_problem, multiclass_problem, regression_problem
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from twinnet import Network, TwinNetClassifier, TwinNetRegressor
from twinnet.estimator import _OTHER_NAMES, _StoppingRule
from twinnet.nn import Momentum
from twinnet.nn.schedules import ExponentialDecay

# Fits that run all max_iter epochs warn, as scikit-learn's MLPs do (test_convergence_warning
# checks that they do); the other tests train on purpose for a few epochs.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# Each estimator with its defaults, and with the notebook's own training (normal init, plain
# gradient descent) on mini-batches with another activation; the regressor's learning rate is
# smaller, as the checks' regression targets are not standardized (0.5 diverges on them).
# The classifier's checks cover two classes (sigmoid head) and three (softmax), the regressor's
# one target and five. (dtype="float32" is left out: its outputs depend on the order of the
# samples at float32 rounding, 1e-7 relative, which is what check_methods_sample_order_invariance's
# rtol=1e-7 allows and no more; and check_regressor_multioutput asks for float64 predictions.)
# Each also with early stopping and a penalty: the checks' small data sets then meet the least
# validation sets (see test_small_validation_sets).
ESTIMATORS = [
    TwinNetClassifier(),
    TwinNetClassifier(hidden_layer_sizes=(8,), hidden_activation="tanh", init="normal",
                      optimizer="sgd", learning_rate=0.5, batch_size=16),
    TwinNetClassifier(early_stopping=True, alpha=1e-3),
    TwinNetRegressor(),
    TwinNetRegressor(hidden_layer_sizes=(8,), hidden_activation="tanh", init="normal",
                     optimizer="sgd", learning_rate=0.01, batch_size=16),
    TwinNetRegressor(early_stopping=True, alpha=1e-3, batch_size=16),
]


# Every check, no expected failures. check_classifier_data_not_an_array needs pandas (a test
# dependency). check_array_api_input needs SCIPY_ARRAY_API=1 set before SciPy is first imported,
# which would change SciPy for the whole session, so that check runs in a fresh interpreter: one for
# every estimator (the interpreter's start and SciPy's import are most of the check's time), each
# estimator's outcome reported on its own.
@parametrize_with_checks(ESTIMATORS)
def test_sklearn_estimator_checks(estimator, check):
    if getattr(check, "func", None) is not None and check.func.__name__ == "check_array_api_input" \
            and os.environ.get("SCIPY_ARRAY_API") != "1":
        outcome = array_api_outcomes(tuple(sorted(check.keywords.items())))[repr(estimator)]
        assert outcome == "check passed", outcome
    else:
        check(estimator)


@functools.cache
def array_api_outcomes(keywords):
    """check_array_api_input(**keywords) on every estimator of ESTIMATORS, in one interpreter with
    SCIPY_ARRAY_API=1; returns repr(estimator) -> "check passed" or the check's traceback."""
    code = (
        "import traceback\n"
        "from sklearn.utils.estimator_checks import check_array_api_input\n"
        "from twinnet import TwinNetClassifier, TwinNetRegressor\n"
        f"for estimator in [{', '.join(map(repr, ESTIMATORS))}]:\n"
        "    try:\n"
        f"        check_array_api_input(type(estimator).__name__, estimator, **{dict(keywords)!r})\n"
        "        outcome = 'check passed'\n"
        "    except BaseException:\n"
        "        outcome = traceback.format_exc()\n"
        "    print('OUTCOME', repr((repr(estimator), outcome)))\n"
    )
    env = {**os.environ, "SCIPY_ARRAY_API": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "SkipTest" not in done.stderr
    outcomes = dict(ast.literal_eval(line.removeprefix("OUTCOME ")) for line in done.stdout.splitlines()
                    if line.startswith("OUTCOME "))
    assert list(outcomes) == [repr(estimator) for estimator in ESTIMATORS], done.stdout[-3000:]
    return outcomes


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
                            max_iter=30, n_iter_no_change=np.inf, batch_size=64, random_state=3).fit(X, y)
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
    # 60 epochs (every one runs: n_iter_no_change=inf) cross-validate to 0.93 for (32,), as the
    # default's stopping rule (about 150 epochs here) does, in under half the time
    net = TwinNetClassifier(max_iter=60, n_iter_no_change=np.inf, random_state=0)
    grid = GridSearchCV(Pipeline([("scale", StandardScaler()), ("net", net)]),
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
                            n_iter_no_change=np.inf, batch_size=64, random_state=3).fit(X, names[y])
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
                           n_iter_no_change=np.inf, batch_size=16, random_state=3).fit(X, y)
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
    ({"alpha": -1e-4}, r"alpha must be a finite number >= 0; got alpha=-0.0001"),
    ({"alpha": None}, r"alpha must be a finite number >= 0; got alpha=None"),
    ({"tol": -1.0}, r"tol must be a finite number >= 0; got tol=-1.0"),
    ({"n_iter_no_change": 0}, r"n_iter_no_change must be an integer >= 1 or numpy.inf; got n_iter_no_change=0"),
    ({"n_iter_no_change": 2.5}, r"n_iter_no_change must be an integer >= 1 or numpy.inf; got n_iter_no_change=2.5"),
    ({"early_stopping": "yes"}, r"early_stopping must be True or False; got early_stopping='yes'"),
    ({"validation_fraction": 0.0}, r"validation_fraction must be a number in \(0, 1\); got validation_fraction=0.0"),
    ({"validation_fraction": 1}, r"validation_fraction must be a number in \(0, 1\); got validation_fraction=1"),
    ({"validation_fraction": 1.5, "early_stopping": True}, r"validation_fraction must be a number in \(0, 1\)"),
    ({"learning_rate": "adaptive"}, r"got learning_rate='adaptive', which scikit-learn's MLPs take for a schedule\. "
                                    r"twinnet has no schedule that follows the loss .*schedules\.ExponentialDecay"),
    ({"learning_rate": "invscaling"}, r"take for a schedule\. Pass a schedule, e\.g\. learning_rate=twinnet\.nn\."
                                      r"schedules\.InverseTimeDecay\("),
    ({"learning_rate": "constant"}, r"Pass the rate itself \(scikit-learn's learning_rate_init\)"),
    ({"random_state": -1}, r"random_state must be None or an integer between 0 and 4294967295; got random_state=-1"),
    ({"shuffle": "no", "batch_size": 5}, r"shuffle must be True or False; got shuffle='no'"),
], ids=["zero-width", "not-sizes", "max-iter", "learning-rate", "batch-size", "optimizer",
        "activation", "init", "dtype", "alpha", "alpha-none", "tol", "n-iter-no-change", "n-iter-no-change-float",
        "early-stopping", "fraction-zero", "fraction-one", "fraction-above", "adaptive", "invscaling", "constant",
        "random-state", "shuffle"])
@pytest.mark.parametrize("estimator", [TwinNetClassifier, TwinNetRegressor])
def test_bad_hyperparameters(estimator, params, match):
    X = np.random.default_rng(0).standard_normal((20, 2))
    y = np.arange(20) % 2
    with pytest.raises(ValueError, match=match):
        estimator(**params).fit(X, y)


# An MLPClassifier habit, the twinnet keywords that say the same, and the error's words.
@pytest.mark.parametrize("habit, ours, match", [
    ({"learning_rate_init": 0.05}, {"learning_rate": 0.05}, r"'learning_rate_init'; twinnet calls it learning_rate\.$"),
    ({"activation": "tanh"}, {"hidden_activation": "tanh"},
     r"'activation'; twinnet calls it hidden_activation; scikit-learn's 'logistic' is 'sigmoid'"),
    ({"solver": "sgd"}, {"optimizer": Momentum(momentum=0.9, nesterov=True)},
     r"'solver'; twinnet calls it optimizer: .* optimizer=twinnet\.nn\.Momentum\(momentum=0\.9, nesterov=True\)"),
    ({"epochs": 5, "seed": 0}, {"max_iter": 5, "random_state": 0}, r"'epochs'; the estimators call it max_iter"),
    ({"seed": 0}, {"random_state": 0}, r"'seed'; the estimators call it random_state\.$"),
    ({"l2": 1e-3}, {"alpha": 1e-3}, r"'l2'; the estimators take scikit-learn's alpha, on another scale"),
], ids=["learning_rate_init", "activation", "solver", "epochs", "seed", "l2"])
@pytest.mark.parametrize("estimator", [TwinNetClassifier, TwinNetRegressor])
def test_mlp_keywords_name_the_class_and_twinnets_name(estimator, habit, ours, match):
    with pytest.raises(TypeError, match=rf"^{estimator.__name__}\(\) got an unexpected keyword argument {match}"):
        estimator(hidden_layer_sizes=(4,), **habit)
    X, y = binary_problem(m=20, n=3, seed=0)
    # what the error says works
    fitted = estimator(hidden_layer_sizes=(4,), **{"max_iter": 3, "random_state": 0, **ours}).fit(X, y)
    assert all(fitted.get_params()[key] == value for key, value in ours.items())
    assert clone(fitted).fit(X, y).loss_curve_ == fitted.loss_curve_


@pytest.mark.parametrize("estimator, mlp", [(TwinNetClassifier, MLPClassifier), (TwinNetRegressor, MLPRegressor)])
def test_every_mlp_keyword_is_taken_or_redirected(estimator, mlp):
    ours = estimator().get_params()
    assert not set(_OTHER_NAMES) & set(ours)  # a hint for a keyword the estimators take would never show
    for name, value in mlp().get_params().items():
        if name not in ours:
            with pytest.raises(TypeError) as raised:
                estimator(**{name: value})
            assert str(raised.value) == (f"{estimator.__name__}() got an unexpected keyword argument {name!r}; "
                                         f"{_OTHER_NAMES[name]}.")


@pytest.mark.parametrize("estimator", [TwinNetClassifier, TwinNetRegressor])
def test_unknown_keywords_and_positions_name_the_class(estimator):
    with pytest.raises(TypeError, match=rf"^{estimator.__name__}\(\) got an unexpected keyword argument 'units'; "
                                        r"it takes hidden_layer_sizes, hidden_activation, init, .*, verbose\.$"):
        estimator(units=3)
    with pytest.raises(TypeError, match=rf"^{estimator.__name__}\(\): too many positional arguments; it takes "
                                        r"hidden_layer_sizes by position, the rest by keyword\.$"):
        estimator((4,), "tanh")


@pytest.mark.exact  # a schedule reaches Network.fit as it is: the same operations
def test_learning_rate_schedule_is_network_fits():
    X, y = binary_problem(m=40, n=3, seed=1)
    schedule = ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    clf = TwinNetClassifier(hidden_layer_sizes=(4,), optimizer="sgd", learning_rate=schedule, max_iter=6,
                            n_iter_no_change=np.inf, random_state=2).fit(X, y)
    history = Network([3, 4, 1], init="glorot", seed=2).fit(X, y, epochs=6, learning_rate=schedule)
    assert clf.loss_curve_ == history.history["loss"]


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


# --------------------------------------------------------------------------- scikit-learn's alpha and stopping rules
# The same problems for every head; "linear-3" has three targets.
PROBLEMS = {
    "sigmoid": (TwinNetClassifier, lambda: binary_problem(m=120, n=4, seed=1, rule="square")),
    "softmax": (TwinNetClassifier, lambda: multiclass_problem(m=150, n=4, k=3, seed=2)),
    "linear": (TwinNetRegressor, lambda: regression_problem(m=120, n=4, k=1, seed=3)),
    "linear-3": (TwinNetRegressor, lambda: regression_problem(m=120, n=4, k=3, seed=3)),
}
# scikit-learn's loss, the one whose gradient its MLPs follow, as a multiple c of the network's: the
# same log-losses, and for k targets half the squared error summed over them, against the mean
# squared error over examples and targets. Plain gradient descent then matches at
# learning_rate_init = learning_rate / c.
SKLEARN_SCALE = {"sigmoid": 1.0, "softmax": 1.0, "linear": 0.5, "linear-3": 1.5}
# Full-batch plain gradient descent from the same weights: the same operations but for the order
# of some sums, so the weights and losses agree to rounding, ~1e-16 per operation over a few
# hundred epochs.
TRAJECTORY_ATOL = 1e-12


def mlp_from(estimator, initial, **settings):
    """scikit-learn's MLP of ``estimator``'s kind whose initial weights are ``initial`` (the notebook's dict)."""
    base = MLPRegressor if isinstance(estimator, TwinNetRegressor) else MLPClassifier

    class FromWeights(base):
        # _initialize draws every layer's weights with _init_coef, in order; here they are given,
        # so the RandomState is fresh when it draws the early-stopping split
        def _init_coef(self, fan_in, fan_out, dtype):
            W, b = self.initial_.pop(0)
            return W.astype(dtype), b.astype(dtype)

    mlp = FromWeights(**settings)
    mlp.initial_ = [(initial[f"W{l}"].T.copy(), initial[f"b{l}"][:, 0].copy()) for l in range(1, len(initial) // 2 + 1)]
    return mlp


def twins(head, **settings):
    """TwinNet's estimator and scikit-learn's MLP fitted with ``settings`` from the same weights, full-batch SGD."""
    Estimator, problem = PROBLEMS[head]
    X, y = problem()
    c = SKLEARN_SCALE[head]
    learning_rate, tol = settings.pop("learning_rate"), settings.pop("tol", 1e-4)
    est = Estimator(hidden_layer_sizes=(6, 4), optimizer="sgd", learning_rate=learning_rate, tol=tol,
                    random_state=4, **settings).fit(X, y)
    net = est.network_
    initial = Network(net.layer_dims, output=net.output, init="glorot", seed=4).parameters
    # tol is on the training loss, scikit-learn's c times ours, or on the validation score, the same;
    # batch_size="auto" is min(200, training examples): here every one, the full batch
    sk_tol = tol if settings.get("early_stopping") else c * tol
    mlp = mlp_from(est, initial, hidden_layer_sizes=(6, 4), solver="sgd", momentum=0.0, learning_rate="constant",
                   learning_rate_init=learning_rate / c, batch_size="auto", shuffle=False, tol=sk_tol,
                   random_state=4, **settings).fit(X, y)
    return est, mlp


def assert_same_weights(est, mlp, atol=TRAJECTORY_ATOL):
    ours = est.network_.parameters
    for l, (W, b) in enumerate(zip(mlp.coefs_, mlp.intercepts_), start=1):
        assert_allclose(ours[f"W{l}"], W.T, rtol=0, atol=atol, err_msg=f"W{l}: TwinNet vs scikit-learn")
        assert_allclose(ours[f"b{l}"][:, 0], b, rtol=0, atol=atol, err_msg=f"b{l}: TwinNet vs scikit-learn")


def exact_alpha(head, b, l2=2.0 ** -9):
    """The alpha whose l2 = alpha / (2 c b) float32 holds: Network, as Keras, weighs l2 rounded to float32."""
    return 2 * SKLEARN_SCALE[head] * b * l2


@pytest.mark.parametrize("head", sorted(PROBLEMS))
def test_alpha_is_sklearns(head):
    alpha = exact_alpha(head, PROBLEMS[head][1]()[0].shape[0])
    est, mlp = twins(head, learning_rate=0.1, alpha=alpha, max_iter=100, n_iter_no_change=np.inf)
    assert est.n_iter_ == mlp.n_iter_ == 100
    assert_same_weights(est, mlp)
    if head != "linear-3":  # with several targets, scikit-learn's loss_curve_ is not the loss it follows
        assert_allclose(est.loss_curve_, np.array(mlp.loss_curve_) / SKLEARN_SCALE[head], rtol=TRAJECTORY_ATOL)
    # and the penalty matters here: without it the weights end far apart
    _, plain = twins(head, learning_rate=0.1, alpha=0.0, max_iter=100, n_iter_no_change=np.inf)
    W = est.network_.parameters["W1"]
    assert np.max(np.abs(W - plain.coefs_[0].T)) > 1e-3


def test_alpha_on_mini_batches_is_sklearns():
    X, y = binary_problem(m=120, n=4, seed=1, rule="square")
    settings = {"hidden_layer_sizes": (6, 4), "alpha": exact_alpha("sigmoid", 20), "max_iter": 30,
                "n_iter_no_change": np.inf,
                "batch_size": 20, "shuffle": False, "random_state": 4}  # 6 batches of 20, in order
    est = TwinNetClassifier(optimizer="sgd", learning_rate=0.1, **settings).fit(X, y)
    initial = Network([4, 6, 4, 1], init="glorot", seed=4).parameters
    mlp = mlp_from(est, initial, solver="sgd", momentum=0.0, learning_rate="constant", learning_rate_init=0.1,
                   **settings).fit(X, y)
    assert_same_weights(est, mlp)
    assert_allclose(est.loss_curve_, mlp.loss_curve_, rtol=TRAJECTORY_ATOL)


@pytest.mark.parametrize("estimator, settings, b", [
    (TwinNetClassifier, {}, 120),  # full batch: every training example
    (TwinNetClassifier, {"batch_size": 50}, 50),  # batches 50, 50, 20: the last is the documented exception
    (TwinNetClassifier, {"batch_size": 500}, 120),  # as scikit-learn, a batch_size above m is m
    (TwinNetClassifier, {"early_stopping": True, "validation_fraction": 0.25}, 90),  # after the split
    (TwinNetRegressor, {}, 120),
    (TwinNetRegressor, {"early_stopping": True}, 108),  # 120 - ceil(0.1 * 120)
], ids=["full-batch", "mini-batches", "batch-above-m", "split", "regressor", "regressor-split"])
def test_alpha_becomes_l2(estimator, settings, b):
    X, y = binary_problem(m=120, n=4, seed=1)
    targets = [y] if estimator is TwinNetClassifier else [y, np.column_stack([y, -y, 2 * y])]
    for target in targets:
        c = 1.0 if estimator is TwinNetClassifier else (1 if target.ndim == 1 else target.shape[1]) / 2
        fitted = estimator(alpha=0.3, max_iter=2, random_state=0, **settings).fit(X, target)
        assert fitted.network_.l2 == 0.3 / (2 * c * b)


@pytest.mark.parametrize("head", ["sigmoid", "softmax", "linear"])
def test_no_improvement_rule_is_sklearns(head):
    # the training loss flattens out: more than 5 epochs in a row without gaining 1e-3 stop both
    m = PROBLEMS[head][1]()[0].shape[0]
    est, mlp = twins(head, learning_rate=0.5 if head != "linear" else 0.1, alpha=exact_alpha(head, m, 2.0 ** -14),
                     max_iter=400, tol=1e-3, n_iter_no_change=5)
    assert est.n_iter_ == mlp.n_iter_ < 400 and len(est.loss_curve_) == est.n_iter_
    c = SKLEARN_SCALE[head]
    assert_allclose(est.best_loss_, mlp.best_loss_ / c, rtol=TRAJECTORY_ATOL)
    assert est.best_loss_ == min(est.loss_curve_)
    assert est.validation_scores_ is None and est.best_validation_score_ is None
    assert_same_weights(est, mlp)


def labels_split(classifier):
    """scikit-learn's ``train_test_split`` for its MLPs, stratified as TwinNetClassifier stratifies: by the labels.

    scikit-learn 1.9 stratifies a binary classifier's split, but not a multi-class one's (its
    condition ``n_outputs_ == 1`` counts the columns of the one-hot labels): with this, both see
    the same validation set.
    """
    def split(X, y, *, random_state, test_size, stratify):
        if classifier:  # y: the one-hot labels, or one column of 0/1
            stratify = y.argmax(axis=1) if y.shape[1] > 1 else y[:, 0]
        return train_test_split(X, y, random_state=random_state, test_size=test_size, stratify=stratify)

    return split


@pytest.mark.parametrize("head", ["sigmoid", "softmax", "linear"])
def test_early_stopping_is_sklearns(head, monkeypatch):
    from sklearn.neural_network import _multilayer_perceptron

    monkeypatch.setattr(_multilayer_perceptron, "train_test_split", labels_split(head != "linear"))
    m = PROBLEMS[head][1]()[0].shape[0]
    b = m - math.ceil(0.2 * m)  # the batch: the training part left after the validation split
    est, mlp = twins(head, learning_rate=0.5 if head != "linear" else 0.1, alpha=exact_alpha(head, b, 2.0 ** -14),
                     max_iter=400, n_iter_no_change=5, early_stopping=True, validation_fraction=0.2)
    # the same validation scores (accuracy, or R^2) every epoch, and so the same stopping epoch
    assert est.n_iter_ == mlp.n_iter_ < 400
    assert_allclose(est.validation_scores_, mlp.validation_scores_, rtol=0, atol=TRAJECTORY_ATOL)
    assert_allclose(est.best_validation_score_, mlp.best_validation_score_, rtol=0, atol=TRAJECTORY_ATOL)
    assert est.best_validation_score_ == max(est.validation_scores_) and est.best_loss_ is None
    assert_allclose(est.loss_curve_, np.array(mlp.loss_curve_) / SKLEARN_SCALE[head], rtol=TRAJECTORY_ATOL)
    # the weights of the best epoch, restored: an epoch well before the last
    assert int(np.argmax(est.validation_scores_)) < est.n_iter_ - 5
    assert_same_weights(est, mlp)


class EpochNetwork:
    """What the stopping rule sees of a Network: weights (here the epoch they come from) and stop_training."""

    def __init__(self):
        self.epoch, self.stop_training, self.restored = None, False, None

    @property
    def parameters(self):
        return {"epoch": self.epoch}

    def set_parameters(self, parameters):
        self.restored = parameters["epoch"]


def run_rule(rule, values):
    """Drive ``rule`` as ``Network.fit`` calls a callback, epoch ``i`` logging ``values[i]``; return the network."""
    network = EpochNetwork()
    rule.set_model(network)
    rule.on_train_begin({})
    for epoch, value in enumerate(values):
        network.epoch = epoch
        rule.on_epoch_begin(epoch, {})
        rule.on_epoch_end(epoch, {"loss": value})
        if network.stop_training:
            break
    rule.on_train_end({})
    return network


def sklearn_epochs(values, early_stopping, tol, n_iter_no_change):
    """How many epochs scikit-learn's MLP runs when its epochs log ``values`` (its own bookkeeping, driven by hand)."""
    mlp = MLPClassifier(tol=tol, n_iter_no_change=n_iter_no_change)
    mlp.coefs_, mlp.intercepts_, mlp.loss_curve_, mlp._no_improvement_count = [], [], [], 0
    mlp.best_loss_, mlp.validation_scores_, mlp.best_validation_score_ = (
        (None, [], -np.inf) if early_stopping else (np.inf, None, None))
    scores = iter(values)
    mlp._score = lambda X, y, sample_weight: next(scores)
    for epoch, value in enumerate(values, start=1):
        mlp.loss_curve_.append(value)
        mlp._update_no_improvement_count(early_stopping, None, None, None)
        if mlp._no_improvement_count > n_iter_no_change:
            return epoch
    return len(values)


def test_stopping_rule_by_hand(capsys):
    # Training loss, tol=0.125, n_iter_no_change=2 (values exact in binary): an epoch improves when
    # its loss is at most best - tol.
    #   epoch  loss    best before  improves?        count  best after
    #   0      1.0     inf          yes              0      1.0
    #   1      0.75    1.0          yes (<= 0.875)   0      0.75
    #   2      0.6875  0.75         no  (> 0.625)    1      0.6875
    #   3      0.625   0.6875       no  (> 0.5625)   2      0.625
    #   4      0.375   0.625        yes              0      0.375
    #   5      0.3125  0.375        no               1      0.3125
    #   6      0.25    0.3125       no               2      0.25
    #   7      0.1875  0.25         no               3 > 2: stop after 8 epochs, though every loss fell
    losses = [1.0, 0.75, 0.6875, 0.625, 0.375, 0.3125, 0.25, 0.1875, 0.125]
    rule = _StoppingRule(0.125, 2)
    network = run_rule(rule, losses)
    assert network.epoch == 7 and network.stop_training and rule.stopped
    assert rule.best_loss == 0.1875 and rule.scores is None and network.restored is None
    assert sklearn_epochs(losses, False, 0.125, 2) == 8
    # Validation score, the same tol and n_iter_no_change: an epoch improves when its score is at
    # least best + tol; the weights are kept whenever the score beats the best, by any amount.
    #   epoch  score   best before  improves?        count  kept weights
    #   0      0.25    -inf         yes              0      epoch 0
    #   1      0.5     0.25         yes (>= 0.375)   0      epoch 1
    #   2      0.5     0.5          no               1      epoch 1
    #   3      0.5625  0.5          no  (< 0.625)    2      epoch 3 (better, by less than tol)
    #   4      0.5     0.5625       no               3 > 2: stop, restore epoch 3's weights
    scores = [0.25, 0.5, 0.5, 0.5625, 0.5, 0.75]
    rule = _StoppingRule(0.125, 2, score=lambda network: scores[network.epoch], verbose=1)
    network = run_rule(rule, [np.nan] * len(scores))
    assert network.epoch == 4 and network.restored == 3
    assert rule.scores == scores[:5] and rule.best_score == 0.5625 and rule.best_loss is None
    assert sklearn_epochs(scores, True, 0.125, 2) == 5
    printed = capsys.readouterr().out
    assert "Validation score: 0.562500" in printed
    assert "Validation score did not improve more than tol=0.125000 for 2 consecutive epochs. Stopping." in printed


def test_fixed_epochs_and_convergence_warning():
    X, y = binary_problem(m=60, n=3, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fixed = TwinNetClassifier(max_iter=15, n_iter_no_change=np.inf, random_state=0).fit(X, y)
        # stopped by the rule before max_iter: no warning either
        stopped = TwinNetClassifier(max_iter=500, tol=1.0, n_iter_no_change=2, random_state=0).fit(X, y)
    assert fixed.n_iter_ == 15 and len(fixed.loss_curve_) == 15
    assert stopped.n_iter_ == 4  # the first epoch improves on no loss; no other gains tol=1: the third stops
    with pytest.warns(ConvergenceWarning, match=r"TwinNetClassifier: all max_iter=15 epochs ran and the training "
                                                r"loss had not stopped improving by tol=0.0001"):
        TwinNetClassifier(max_iter=15, random_state=0).fit(X, y)
    with pytest.warns(ConvergenceWarning, match=r"TwinNetRegressor: all max_iter=4 epochs ran and the validation"):
        TwinNetRegressor(max_iter=4, early_stopping=True, random_state=0).fit(X, y.astype(float))


def test_small_validation_sets():
    # where validation_fraction of the examples are too few to score, scikit-learn raises; these
    # hold out 2, and for a classifier one of every class: seen in alpha's batch size, m - n_val
    X = np.random.default_rng(0).standard_normal((10, 2))
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    clf = TwinNetClassifier(early_stopping=True, alpha=1.0, max_iter=3, random_state=0).fit(X, labels)
    assert clf.network_.l2 == 1.0 / (2 * 7) and len(clf.validation_scores_) == 3  # 3 held out
    reg = TwinNetRegressor(early_stopping=True, alpha=1.0, max_iter=3, random_state=0).fit(X, X[:, 0])
    assert reg.network_.l2 == 1.0 / (2 * 0.5 * 8)  # 2 held out
    with pytest.raises(ValueError, match=r"each class needs at least 2 examples; class 2 has 1"):
        TwinNetClassifier(early_stopping=True).fit(X, np.where(labels == 2, 1, labels)[:-1].tolist() + [2])
    with pytest.raises(ValueError, match=r"early_stopping with validation_fraction=0.9 holds out 9 of the n_samples=10 "
                                         r"examples \(at least 2\), which leaves 1 to train on; at least 2 needed"):
        TwinNetClassifier(early_stopping=True, validation_fraction=0.9).fit(X, labels % 2)
    with pytest.raises(ValueError, match=r"holds out 2 of the n_samples=2 examples .* leaves 0 to train on"):
        TwinNetRegressor(early_stopping=True).fit(X[:2], X[:2, 0])
