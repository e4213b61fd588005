"""Runner of the ``sklearn`` engine: ``MLPClassifier`` started from the shared weights."""

import warnings

import numpy as np

from twinnet.lab.results import Trained
from twinnet.lab.runners._timing import timed

#: Our hidden activations -> MLPClassifier's names (it has no leaky ReLU).
ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic"}

#: Our optimizers as MLPClassifier's solver settings (Keras's Adam epsilon).
SOLVERS = {"sgd": {"solver": "sgd", "momentum": 0.0},
           "momentum": {"solver": "sgd", "momentum": 0.9, "nesterovs_momentum": False},
           "adam": {"solver": "adam", "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}}


def rounding_note(config):
    """Why scikit-learn departs from Keras (and Network) at rounding level with momentum or Adam."""
    if config.dtype != "float64" or config.optimizer == "sgd":
        return None
    what = "momentum 0.9" if config.optimizer == "momentum" else "beta_1 0.9 and beta_2 0.999"
    return (f"uses {what} exactly, where Keras (and Network, its twin) round them through float32: "
            "curves differ by about 1e-7 to 1e-5, growing with the number of updates")


def _classifier(config, m):
    from sklearn.neural_network import MLPClassifier

    full_batch = config.batch_size is None or config.batch_size >= m
    return MLPClassifier(
        hidden_layer_sizes=config.layers[1:-1], activation=ACTIVATIONS[config.hidden_activation],
        alpha=0.0, batch_size=m if full_batch else config.batch_size, learning_rate="constant",
        learning_rate_init=config.learning_rate, max_iter=1, shuffle=not full_batch,
        random_state=config.seed, tol=0.0, n_iter_no_change=config.epochs + 1, warm_start=True,
        **SOLVERS[config.optimizer])


def _fit_from(clf, config, X, y, initial):
    """Fit ``clf`` for ``config.epochs`` epochs from ``initial``; return the seconds it took."""
    from sklearn.exceptions import ConvergenceWarning

    L = len(config.layers) - 1
    with warnings.catch_warnings():
        # max_iter is reached on purpose: sklearn's stopping rules are switched off
        warnings.simplefilter("ignore", ConvergenceWarning)
        # One throwaway epoch creates the fitted state; then the weights are replaced by ours and,
        # thanks to warm_start, the real fit starts from them with a fresh optimizer.
        try:  # the throwaway epoch can diverge too
            clf.fit(X, y)
            clf.coefs_ = [np.array(initial[f"W{l}"].T, dtype=X.dtype) for l in range(1, L + 1)]
            clf.intercepts_ = [np.array(initial[f"b{l}"][:, 0], dtype=X.dtype) for l in range(1, L + 1)]
            clf.set_params(max_iter=config.epochs)
            return timed(lambda: clf.fit(X, y))[1]
        except ValueError as exc:
            # scikit-learn has no exception class of its own for this: its message is all it says
            if "non-finite" not in str(exc):
                raise
            raise FloatingPointError(f"scikit-learn stopped: {exc}") from None


def run(config, split, initial, observe):
    X, y = split.X_train, split.y_train
    clf = _classifier(config, X.shape[0])
    seconds = _fit_from(clf, config, X, y, initial)
    parameters = {}
    for l, (W, b) in enumerate(zip(clf.coefs_, clf.intercepts_), start=1):
        parameters[f"W{l}"], parameters[f"b{l}"] = np.ascontiguousarray(W.T), b.reshape(-1, 1)
    # warm_start keeps appending to loss_curve_: the last `epochs` entries are this run's
    curve = [float(v) for v in clf.loss_curve_[-config.epochs:]]
    full_batch = clf.batch_size == X.shape[0]
    note = rounding_note(config) if full_batch else "scikit-learn draws its own batch order"
    return Trained(curve, parameters, seconds, same_trajectory=full_batch, note=note)
