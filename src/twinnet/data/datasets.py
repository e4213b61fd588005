"""The built-in data sets, by name: each a function making ``(X, y)`` and the head it is for."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np


def _synthetic():
    # Shaped like the notebook's data.pickle: 2000 examples x 100 features, two balanced classes.
    # Chosen so that the notebook's run (layers 100-20-5-1, rate 0.1, 250 full-batch steps) behaves
    # as it printed: the cost sits near log 2 for some 40 steps, then falls to about 0.1, and the
    # test accuracy ends near 0.95.
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=2000, n_features=100, n_informative=10, n_redundant=10, n_clusters_per_class=2,
        class_sep=2.0, flip_y=0.01, random_state=0,
    )
    return X, y


def _breast_cancer():
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    return d.data, d.target


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data, (d.target >= 5).astype(np.int64)


def _moons():
    from sklearn.datasets import make_moons

    return make_moons(n_samples=400, noise=0.2, random_state=0)


def _circles():
    from sklearn.datasets import make_circles

    return make_circles(n_samples=400, noise=0.1, factor=0.5, random_state=0)


def _digits10():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data, d.target


def _iris():
    from sklearn.datasets import load_iris

    d = load_iris()
    return d.data, d.target


def _wine():
    from sklearn.datasets import load_wine

    d = load_wine()
    return d.data, d.target


def _diabetes():
    from sklearn.datasets import load_diabetes

    d = load_diabetes()
    return d.data, d.target


def _synthetic_multiclass():
    # Four well-separated classes in 20 features, 8 of them informative: a one-hidden-layer ReLU
    # net of 16 units gets some 0.9 test accuracy (chance: 0.25), a linear model noticeably less.
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=2000, n_features=20, n_informative=8, n_redundant=4, n_classes=4,
        n_clusters_per_class=1, class_sep=1.5, flip_y=0.01, random_state=0,
    )
    return X, y


def _synthetic_regression():
    # Friedman #1: y = 10 sin(pi x0 x1) + 20 (x2 - 0.5)^2 + 10 x3 + 5 x4 + noise, 5 of 10 features
    # unused; nonlinear, so a small ReLU net explains some 0.9 of the variance and a linear model 0.7.
    from sklearn.datasets import make_friedman1

    return make_friedman1(n_samples=2000, n_features=10, noise=1.0, random_state=0)


class Dataset(NamedTuple):
    make: Callable[[], tuple]
    description: str
    #: The head the data set is meant for, one of ``validation.OUTPUTS``; built-ins never infer it.
    output: str


DATASETS = {
    "synthetic": Dataset(_synthetic, "2000 x 100, deterministic, shaped like the notebook's data.pickle (default)",
                         "sigmoid"),
    "breast_cancer": Dataset(_breast_cancer, "569 x 30, scikit-learn's Wisconsin breast cancer", "sigmoid"),
    "digits": Dataset(_digits, "1797 x 64, scikit-learn's 8x8 digits, label = digit >= 5", "sigmoid"),
    "moons": Dataset(_moons, "400 x 2, two interleaving half-moons (for pictures)", "sigmoid"),
    "circles": Dataset(_circles, "400 x 2, a circle inside a circle (for pictures)", "sigmoid"),
    "digits10": Dataset(_digits10, "1797 x 64, scikit-learn's 8x8 digits, ten classes 0..9", "softmax"),
    "iris": Dataset(_iris, "150 x 4, scikit-learn's iris, three species", "softmax"),
    "wine": Dataset(_wine, "178 x 13, scikit-learn's wine, three cultivars", "softmax"),
    "synthetic_multiclass": Dataset(_synthetic_multiclass, "2000 x 20, deterministic, four classes", "softmax"),
    "diabetes": Dataset(_diabetes, "442 x 10, scikit-learn's diabetes, a regression target from 25 to 346",
                        "linear"),
    "synthetic_regression": Dataset(_synthetic_regression,
                                    "2000 x 10, deterministic, Friedman's nonlinear regression target", "linear"),
}
DEFAULT_DATASET = "synthetic"
