"""TwinNetClassifier: every scikit-learn estimator check, model selection, and its link to Network."""

import os
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from twinnet import Network, TwinNetClassifier

# The defaults, and the notebook's own training (normal init, plain gradient descent) on
# mini-batches with another activation. (dtype="float32" is left out: its outputs depend on the
# order of the samples at float32 rounding, 1e-7 relative, which is what
# check_methods_sample_order_invariance's rtol=1e-7 allows and no more.)
ESTIMATORS = [
    TwinNetClassifier(),
    TwinNetClassifier(hidden_layer_sizes=(8,), hidden_activation="tanh", init="normal",
                      optimizer="sgd", learning_rate=0.5, batch_size=16),
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
    code = (
        "from sklearn.utils.estimator_checks import check_array_api_input\n"
        "from twinnet import TwinNetClassifier\n"
        f"check_array_api_input('TwinNetClassifier', {estimator!r}, **{check.keywords!r})\n"
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


def test_binary_only_is_a_tag_and_a_clear_error():
    clf = TwinNetClassifier()
    assert clf.__sklearn_tags__().classifier_tags.multi_class is False
    X = np.random.default_rng(0).standard_normal((30, 2))
    with pytest.raises(ValueError,
                       match="Only binary classification is supported. The type of the target is multiclass."):
        clf.fit(X, np.arange(30) % 3)
    with pytest.raises(ValueError, match="needs two classes in y; got 1 class"):
        clf.fit(X, np.ones(30))


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
def test_bad_hyperparameters(params, match):
    X = np.random.default_rng(0).standard_normal((20, 2))
    y = np.arange(20) % 2
    with pytest.raises(ValueError, match=match):
        TwinNetClassifier(**params).fit(X, y)


def test_predicting_before_fitting():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        TwinNetClassifier().predict(np.ones((2, 3)))


def test_wrong_feature_count_names_both():
    X = np.random.default_rng(0).standard_normal((20, 3))
    clf = TwinNetClassifier(max_iter=2).fit(X, np.arange(20) % 2)
    with pytest.raises(ValueError, match="X has 2 features, but TwinNetClassifier is expecting 3 features"):
        clf.predict(X[:, :2])
