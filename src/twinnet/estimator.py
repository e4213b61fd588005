"""``TwinNetClassifier`` and ``TwinNetRegressor``: scikit-learn estimators over :class:`twinnet.Network`.

They follow scikit-learn's conventions (``__init__`` stores arguments, learned state ends in ``_``,
``validate_data`` at the boundaries), so they work in ``Pipeline``, ``cross_val_score`` and
``GridSearchCV``, and they pass every check of ``sklearn.utils.estimator_checks``.

The classifier takes any labels (numbers or strings) and any number of classes; ``classes_`` holds
them in sorted order. Two classes train one sigmoid unit (log-loss), more train a softmax of one
unit per class (categorical cross-entropy), the heads of :data:`twinnet.nn.heads.HEADS`. The
regressor trains linear units on the mean squared error, one per target: ``y`` of shape ``(m,)``
or ``(m, k)``. Its targets are used as given: standardizing them is up to the user (wrap the
regressor in ``sklearn.compose.TransformedTargetRegressor`` with a ``StandardScaler``), as for
scikit-learn's ``MLPRegressor``.

Example
-------
>>> from sklearn.datasets import load_digits
>>> from sklearn.model_selection import cross_val_score
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.preprocessing import StandardScaler
>>> from twinnet import TwinNetClassifier
>>> X, y = load_digits(return_X_y=True)
>>> model = make_pipeline(StandardScaler(), TwinNetClassifier(hidden_layer_sizes=(32,), random_state=0))
>>> bool(cross_val_score(model, X, y, cv=3).mean() > 0.9)
True
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from twinnet import validation
from twinnet.nn import Network

__all__ = ["TwinNetClassifier", "TwinNetRegressor"]

# The hyperparameters both estimators share, filled into their docstrings by _with_hyperparameters.
_HYPERPARAMETERS = """\
    hidden_layer_sizes : int or tuple of int, default=(20, 5)
        Widths of the hidden layers (the notebook's network on 100 features is ``(20, 5)``);
        ``()`` gives a linear model (logistic, softmax or least-squares regression). The input
        width is the number of features; the output layer is the head described above.
    hidden_activation : {"leaky_relu", "relu", "sigmoid", "tanh"}, default="relu"
    init : {"glorot", "he", "normal"}, default="glorot"
        Weight initializer; ``"normal"`` is the notebook's ``randn * 0.1``, which trains slowly
        with plain gradient descent on few features.
    optimizer : {"sgd", "momentum", "adam"} or twinnet.nn.Optimizer, default="adam"
        Keras's update rules (see :data:`twinnet.nn.OPTIMIZERS`).
    learning_rate : float, default=0.01
    max_iter : int, default=200
        Epochs (passes over the training data); every one of them runs.
    batch_size : int, optional
        ``None`` (default): full-batch training. Otherwise mini-batches of this size.
    shuffle : bool, default=True
        Shuffle the examples every epoch (mini-batches only).
    dtype : {"float32", "float64"}, default="float64"
        The network's dtype. In float32, outputs carry float32 rounding (about 1e-7 relative),
        which can differ with the order of the samples.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights and the batch order (an int is passed to ``Network`` as its ``seed``).
    verbose : int, default=0
        ``>= 1``: print the loss every epoch.
"""


def _with_hyperparameters(cls):
    if cls.__doc__:  # None under python -OO
        cls.__doc__ = cls.__doc__.replace("    <hyperparameters>\n", _HYPERPARAMETERS)
    return cls


class _TwinNet(BaseEstimator):
    """What both estimators share: the hyperparameters, the network's construction and training."""

    def __init__(self, hidden_layer_sizes=(20, 5), *, hidden_activation="relu", init="glorot",
                 optimizer="adam", learning_rate=0.01, max_iter=200, batch_size=None, shuffle=True,
                 dtype="float64", random_state=None, verbose=0):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.hidden_activation = hidden_activation
        self.init = init
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    def _hidden(self):
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, numbers.Integral) else sizes
        try:
            sizes = list(sizes)
        except TypeError:
            sizes = None
        if sizes is None or not all(validation.is_int(s) and s >= 1 for s in sizes):
            raise ValueError(
                "hidden_layer_sizes must be a positive int or a tuple of positive ints, e.g. (20, 5); "
                f"got hidden_layer_sizes={self.hidden_layer_sizes!r}."
            )
        return [int(s) for s in sizes]

    def _seed(self):
        if self.random_state is None or (
            isinstance(self.random_state, numbers.Integral) and not isinstance(self.random_state, bool)
        ):
            return self.random_state
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _check_hyperparameters(self):
        return self._hidden(), validation.positive_int("max_iter", self.max_iter)

    def _train(self, X, y, hidden, max_iter, width, output):
        """Build a network ending in ``width`` units of the head ``output``, train it on ``(X, y)``."""
        network = Network([X.shape[1], *hidden, width], output=output, hidden_activation=self.hidden_activation,
                          init=self.init, seed=self._seed(), dtype=self.dtype)
        history = network.fit(X, y, epochs=max_iter, learning_rate=self.learning_rate, batch_size=self.batch_size,
                              optimizer=self.optimizer, shuffle=self.shuffle, verbose=self.verbose)
        self.network_ = network
        self.loss_curve_ = history.history["loss"]
        self.n_iter_ = len(history.epoch)

    def _validate(self, X):
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=(np.float64, np.float32))


@_with_hyperparameters
class TwinNetClassifier(ClassifierMixin, _TwinNet):
    """A fully connected network for classification, trained by :class:`twinnet.Network`.

    Two classes train one sigmoid output unit on the log-loss; ``K > 2`` classes train ``K``
    softmax units on the categorical cross-entropy.

    Parameters
    ----------
    <hyperparameters>

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels, sorted; the network's class ``i`` is ``classes_[i]`` (with two classes,
        ``classes_[1]`` is the positive one).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had feature names.
    network_ : twinnet.Network
        The trained network: output ``"sigmoid"`` for two classes, ``"softmax"`` for more.
    loss_curve_ : list of float
        Training loss of every epoch (``History.history["loss"]``).
    n_iter_ : int
        Epochs run.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from twinnet import TwinNetClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = TwinNetClassifier(hidden_layer_sizes=(8,), random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 3)
    """

    def fit(self, X, y):
        """Train a new network on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            At least two distinct labels, of any type that sorts (numbers or strings).

        Returns
        -------
        self
        """
        hidden, max_iter = self._check_hyperparameters()
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32))
        check_classification_targets(y)
        classes, labels = np.unique(y, return_inverse=True)
        if classes.size < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least two classes in y; got 1 class: {classes[0]!r}."
            )
        binary = classes.size == 2
        self._train(X, labels, hidden, max_iter, 1 if binary else classes.size, "sigmoid" if binary else "softmax")
        self.classes_ = classes
        return self

    def decision_function(self, X):
        """The network's logits.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            Two classes: the logit of ``classes_[1]``, positive where it is the more probable.
            More: one logit per class, column ``i`` for ``classes_[i]``.
        """
        X = self._validate(X)
        return self.network_.decision_function(X)

    def predict_proba(self, X):
        """The probability of each class, column ``i`` for ``classes_[i]``.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        X = self._validate(X)
        p = self.network_.predict_proba(X)
        return np.column_stack([1 - p, p]) if p.ndim == 1 else p

    def predict(self, X):
        """The predicted label of each example, one of ``classes_``.

        Two classes: ``classes_[1]`` where its probability is ``> 0.5`` (the notebook's rule).
        More: the most probable class, the first of equal ones (``Network.predict``).

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        X = self._validate(X)
        return self.classes_[self.network_.predict(X)]


@_with_hyperparameters
class TwinNetRegressor(RegressorMixin, _TwinNet):
    """A fully connected network for regression, trained by :class:`twinnet.Network`.

    The output layer has one linear unit per target, trained on the mean squared error over
    examples and targets. The targets are used as given, never rescaled: the default learning
    rate suits targets of about unit scale, so standardize others around the regressor
    (``TransformedTargetRegressor(regressor, transformer=StandardScaler())`` from
    ``sklearn.compose`` does it, and maps the predictions back).

    Parameters
    ----------
    <hyperparameters>

    Attributes
    ----------
    n_outputs_ : int
        The number of targets: 1 for ``y`` of shape ``(n_samples,)``, ``k`` for ``(n_samples, k)``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had feature names.
    network_ : twinnet.Network
        The trained network, output ``"linear"``.
    loss_curve_ : list of float
        Training loss (mean squared error) of every epoch (``History.history["loss"]``).
    n_iter_ : int
        Epochs run.

    Examples
    --------
    >>> import numpy as np
    >>> from twinnet import TwinNetRegressor
    >>> X = np.linspace(-1, 1, 50).reshape(-1, 1)
    >>> reg = TwinNetRegressor(hidden_layer_sizes=(16,), random_state=0).fit(X, X[:, 0] ** 2)
    >>> reg.predict(X[:3]).shape
    (3,)
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # y of shape (n_samples, k): k linear output units
        return tags

    def fit(self, X, y):
        """Train a new network on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Real targets; ``predict`` returns values of the same shape.

        Returns
        -------
        self
        """
        hidden, max_iter = self._check_hyperparameters()
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32), multi_output=True, y_numeric=True)
        if sp.issparse(y):
            raise ValueError(f"y must be a dense array of shape (n_samples,) or (n_samples, n_targets); "
                             f"got a sparse {y.format} matrix of shape {y.shape}. Use y.toarray().")
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        self._train(X, y, hidden, max_iter, n_outputs, "linear")
        self.n_outputs_, self._y_ndim = n_outputs, y.ndim
        return self

    def predict(self, X):
        """The network's outputs, in the network's dtype.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_targets)
            The shape of the ``y`` it was fitted on: ``(n_samples,)`` for a 1-D ``y``.
        """
        X = self._validate(X)
        values = self.network_.predict(X)
        return values.reshape(-1, self.n_outputs_) if self._y_ndim == 2 else values
