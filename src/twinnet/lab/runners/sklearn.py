"""Runner of the ``sklearn`` engine: ``MLPClassifier`` or ``MLPRegressor`` started from the shared weights.

The sigmoid and softmax heads are ``MLPClassifier``'s (one logistic unit for two classes, a softmax
for more, each with log-loss); the linear head is ``MLPRegressor``'s identity output. Its loss is
*half* the mean squared error, ``0.5 * mean((y - p)**2)``, and its gradient is that of
``sum((y - p)**2) / (2 m)``, ``k`` times its loss's for ``k`` targets (``(p - y) / m`` at the
output). Ours (Keras's ``mean_squared_error``) is ``mean((y - p)**2)``, gradient ``2 (p - y) / (m k)``:
scikit-learn's gradient is ours times ``c = k / 2``. The same steps are taken by mapping the
hyperparameters, never by hiding the difference:

=========  =====================================================================================
SGD        ``learning_rate_init = learning_rate / c`` (``2 * learning_rate`` for one target); the
momentum   velocity ``mu v - lr g`` then scales by ``c``, the step stays ours
Adam       ``learning_rate_init = learning_rate`` and ``epsilon = c * 1e-7``: Adam divides the scale
           ``c`` out of ``m / sqrt(v)``, all but its epsilon
=========  =====================================================================================

and ``loss_curve_`` is reported doubled, in our loss's units; the run's note says both.

L2: scikit-learn's ``alpha`` adds ``alpha * W / b`` to the gradient of a batch of ``b`` examples
(and ``alpha / (2 b) * sum(W**2)`` to its loss), ours ``2 * l2 * W``; scaled by ``c`` as the rest of
its gradient, ``alpha = 2 c b l2`` (``2 * l2 * batch_size`` for a classifier), the mapping of
:class:`twinnet.TwinNetClassifier` (``l2 = alpha / (2 c b)``). It is exact when every batch has ``b``
examples: full batch, or a batch size that divides the training set (the shorter last batch is
penalized more otherwise). Its ``loss_curve_`` then holds ``c * l2 * sum(W**2)``: our penalty for a
classifier (``c = 1``) and, doubled as the regressor's curve is, for one target (``c = 1/2``); ``k``
times ours, doubled, for ``k > 1`` targets, which are left to the other engines with L2. Dropout,
learning-rate schedules and Keras's early stopping have no counterpart in scikit-learn's MLPs (its
own ``early_stopping`` is another rule, on the validation score): runs with them are left to the
other engines.
"""

import warnings

import numpy as np

from twinnet.lab.results import Trained
from twinnet.lab.runners._timing import timed
from twinnet.nn.heads import head
from twinnet.nn.optimizers import OPTIMIZERS, defaults

#: Our hidden activations -> scikit-learn's names (it has no leaky ReLU).
SKLEARN_ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic"}

#: Keras's Adam epsilon, from the one table of defaults.
EPSILON = defaults("adam")["epsilon"]

#: Our optimizers, with their (Keras's) defaults, as scikit-learn's solver settings (None: it has none).
SOLVERS = {name: cls().sklearn_options() for name, cls in OPTIMIZERS.items()}


def _regression(config):
    return not head(config.output).classifier


def estimator_name(output):
    """``"MLPRegressor"`` for the linear head, ``"MLPClassifier"`` for the classifiers."""
    return "MLPClassifier" if head(output).classifier else "MLPRegressor"


def gradient_scale(config):
    """``c``: scikit-learn's gradient over ours, ``k / 2`` for ``k`` regression targets, 1 for classifiers."""
    return head(config.output).sklearn_scale(None if config.layers is None else config.layers[-1])


def loss_scale(config):
    """Our loss over scikit-learn's: 2 for the regressor (it minimizes half the squared error), else 1."""
    return 2.0 if _regression(config) else 1.0


def solver(config):
    """scikit-learn's solver settings and ``learning_rate_init`` that take our steps (module docstring)."""
    settings = dict(SOLVERS[config.optimizer])
    c = gradient_scale(config)
    if config.optimizer == "adam":
        settings["epsilon"] = c * EPSILON
        return settings, config.learning_rate
    return settings, config.learning_rate / c


#: What scikit-learn's MLPs cannot do, by RunConfig field: (is it set?, why not).
UNSUPPORTED = {
    "dropout": (lambda c: c.dropout > 0, "have no dropout"),
    "batch_norm": (lambda c: c.batch_norm, "have no batch normalization"),
    "lr_schedule": (lambda c: c.lr_schedule is not None,
                    "have no Keras learning-rate schedule (only 'constant', 'invscaling' and 'adaptive' rates)"),
    "early_stopping": (lambda c: c.early_stopping is not None,
                       "have no Keras EarlyStopping (their own early_stopping stops on the validation score after "
                       "n_iter_no_change epochs by tol, another rule, and restores no weights)"),
}


def unsupported(config):
    """Why scikit-learn cannot train ``config`` (a phrase), or None."""
    name = estimator_name(config.output)
    for field, (used, why) in UNSUPPORTED.items():
        if used(config):
            return f"scikit-learn's MLPClassifier and MLPRegressor {why}; got {field}={getattr(config, field)!r}"
    if config.l2 and _regression(config) and config.layers is not None and config.layers[-1] > 1:
        return (f"MLPRegressor's loss_curve_ holds the L2 penalty k/2 times where it halves the squared error, for "
                f"k={config.layers[-1]} targets: no one factor puts its curve in our units; got l2={config.l2:g}")
    if SOLVERS[config.optimizer] is None:
        return (f"scikit-learn's {name} has no solver for optimizer={config.optimizer!r} (its solvers are 'sgd', "
                "with or without momentum, 'adam' and 'lbfgs')")
    if config.hidden_activation not in SKLEARN_ACTIVATIONS:
        return f"scikit-learn's {name} has no {config.hidden_activation!r} activation"
    if head(config.output).classifier and config.layers is not None and config.layers[-1] == 2:
        return ("MLPClassifier trains two classes with one logistic unit, not a softmax of two; "
                "use output='sigmoid' for it")
    return None


def rounding_note(config):
    """Why scikit-learn departs from Keras (and Network) at rounding level with momentum or Adam."""
    if config.dtype != "float64" or config.optimizer == "sgd":
        return None
    what = "momentum 0.9" if config.optimizer == "momentum" else "beta_1 0.9 and beta_2 0.999"
    return (f"uses {what} exactly, where Keras (and Network, its twin) round them through float32: "
            "curves differ by about 1e-7 to 1e-5, growing with the number of updates")


def half_loss_note(config):
    """The linear head's mapping, said where its results are shown; None for classifiers."""
    if not _regression(config):
        return None
    c = gradient_scale(config)
    k = config.layers[-1]
    gradient = "" if k == 1 else f"; its gradient is that of the summed squared error over 2, {c:g}x ours"
    mapped = (f"learning_rate_init={config.learning_rate:g} and epsilon={c * EPSILON:g}" if config.optimizer == "adam"
              else f"learning_rate_init={config.learning_rate / c:g}")
    return (f"MLPRegressor minimizes half the mean squared error{gradient}: it runs with {mapped} "
            "to take our steps, and its loss_curve_ is shown doubled")


def alpha(config, batch_size):
    """scikit-learn's ``alpha`` for our ``l2`` with batches of ``batch_size``: ``2 c b l2`` (module docstring).

    ``l2`` rounded to float32 first, as Keras (and so Network) weighs its penalty.
    """
    return 2 * gradient_scale(config) * batch_size * float(np.float32(config.l2))


def l2_note(config, m):
    """How ``l2`` was mapped, and whether exactly; None without L2."""
    if not config.l2:
        return None
    b = m if config.batch_size is None or config.batch_size >= m else config.batch_size
    note = f"l2={config.l2:g} runs as alpha = 2 * {'c * ' if _regression(config) else ''}l2 * batch_size = " \
           f"{alpha(config, b):g}"
    if m % b:
        note += (f", exact only for full batches of {b}: the last batch of {m % b} examples (of {m}) gets "
                 f"a {b / (m % b):.3g}x stronger penalty")
    return note


def _estimator(config, m):
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    full_batch = config.batch_size is None or config.batch_size >= m
    settings, learning_rate = solver(config)
    estimator = MLPRegressor if _regression(config) else MLPClassifier
    batch_size = m if full_batch else config.batch_size
    return estimator(
        hidden_layer_sizes=config.layers[1:-1], activation=SKLEARN_ACTIVATIONS[config.hidden_activation],
        alpha=alpha(config, batch_size), batch_size=batch_size, learning_rate="constant",
        learning_rate_init=learning_rate, max_iter=1, shuffle=not full_batch,
        random_state=config.seed, tol=0.0, n_iter_no_change=config.epochs + 1, warm_start=True,
        **settings)


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


def _check_classes(config, y):
    # MLPClassifier sizes its output layer by the classes present in y
    present = np.unique(y)
    expected = 2 if head(config.output).widths[1] == 1 else config.layers[-1]  # one unit: two classes
    if present.size != expected:
        raise ValueError(f"MLPClassifier sizes its output by the classes in the training labels: they hold "
                         f"{present.size} classes, the network's head needs {expected}; use another seed "
                         "or test_size, or leave the sklearn engine out.")


def run(config, split, initial, observe):
    X, y = split.X_train, split.y_train
    if not _regression(config):
        _check_classes(config, y)
    clf = _estimator(config, X.shape[0])
    seconds = _fit_from(clf, config, X, y, initial)
    parameters = {}
    for l, (W, b) in enumerate(zip(clf.coefs_, clf.intercepts_), start=1):
        parameters[f"W{l}"], parameters[f"b{l}"] = np.ascontiguousarray(W.T), b.reshape(-1, 1)
    # warm_start keeps appending to loss_curve_: the last `epochs` entries are this run's; the
    # regressor's are half the mean squared error (module docstring)
    factor = loss_scale(config)
    curve = [factor * float(v) for v in clf.loss_curve_[-config.epochs:]]
    full_batch = clf.batch_size == X.shape[0]
    notes = [half_loss_note(config), l2_note(config, X.shape[0]),
             rounding_note(config) if full_batch else "scikit-learn draws its own batch order"]
    note = "; ".join(n for n in notes if n) or None
    return Trained(curve, parameters, seconds, same_trajectory=full_batch, note=note)
