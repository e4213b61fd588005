"""``TwinNetClassifier``: a scikit-learn binary classifier over :class:`twinnet.Network`.

It follows scikit-learn's conventions (``__init__`` stores arguments, learned state ends in ``_``,
``validate_data`` at the boundaries), so it works in ``Pipeline``, ``cross_val_score`` and
``GridSearchCV``, and it passes every check of ``sklearn.utils.estimator_checks``. Any two labels
are accepted (numbers or strings); they are mapped to 0 and 1 in sorted order, as ``classes_``
shows. Binary only: more than two classes is a ``ValueError``, and the estimator declares it with
the scikit-learn tag ``classifier_tags.multi_class = False``.

Example
-------
>>> from sklearn.datasets import load_breast_cancer
>>> from sklearn.model_selection import cross_val_score
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.preprocessing import StandardScaler
>>> from twinnet import TwinNetClassifier
>>> X, y = load_breast_cancer(return_X_y=True)
>>> model = make_pipeline(StandardScaler(), TwinNetClassifier(random_state=0))
>>> bool(cross_val_score(model, X, y, cv=3).mean() > 0.9)
True
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from twinnet import validation
from twinnet.nn import Network

__all__ = ["TwinNetClassifier"]


class TwinNetClassifier(ClassifierMixin, BaseEstimator):
    """A fully connected network for binary classification, trained by :class:`twinnet.Network`.

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default=(20, 5)
        Widths of the hidden layers (the notebook's network on 100 features is ``(20, 5)``);
        ``()`` gives logistic regression. The input width is the number of features and the
        output is one sigmoid unit.
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

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The two labels; ``classes_[1]`` is the positive class.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had feature names.
    network_ : twinnet.Network
        The trained network.
    loss_curve_ : list of float
        Training loss of every epoch (``History.history["loss"]``).
    n_iter_ : int
        Epochs run.
    """

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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # binary only: fit raises for more classes
        return tags

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

    def fit(self, X, y):
        """Train a new network on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Two distinct labels.

        Returns
        -------
        self
        """
        hidden = self._hidden()
        max_iter = validation.positive_int("max_iter", self.max_iter)
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32))
        check_classification_targets(y)
        y_type = type_of_target(y, input_name="y", raise_unknown=True)
        if y_type != "binary":
            raise ValueError(
                f"Only binary classification is supported. The type of the target is {y_type}."
            )
        classes = np.unique(y)
        if classes.size != 2:
            raise ValueError(
                f"{type(self).__name__} needs two classes in y; got 1 class: {classes[0]!r}."
            )
        network = Network([X.shape[1], *hidden, 1], hidden_activation=self.hidden_activation,
                          init=self.init, seed=self._seed(), dtype=self.dtype)
        history = network.fit(X, (y == classes[1]).astype(np.int8), epochs=max_iter,
                              learning_rate=self.learning_rate, batch_size=self.batch_size,
                              optimizer=self.optimizer, shuffle=self.shuffle, verbose=self.verbose)
        self.classes_ = classes
        self.network_ = network
        self.loss_curve_ = history.history["loss"]
        self.n_iter_ = len(history.epoch)
        return self

    def _validate(self, X):
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=(np.float64, np.float32))

    def decision_function(self, X):
        """Logit of the positive class ``classes_[1]``; positive means ``classes_[1]``.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        """
        X = self._validate(X)
        return self.network_.decision_function(X)

    def predict_proba(self, X):
        """Probabilities of ``classes_[0]`` and ``classes_[1]``.

        Returns
        -------
        proba : ndarray of shape (n_samples, 2)
        """
        X = self._validate(X)
        p = self.network_.predict_proba(X)
        return np.column_stack([1 - p, p])

    def predict(self, X):
        """The label of each example: ``classes_[1]`` where its probability is ``> 0.5``.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        X = self._validate(X)
        return self.classes_[(self.network_.predict_proba(X) > 0.5).astype(np.intp)]
