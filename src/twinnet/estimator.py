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

Both take scikit-learn's ``alpha``, ``tol``, ``n_iter_no_change``, ``early_stopping`` and
``validation_fraction`` with ``MLPClassifier``'s meanings and defaults (see the Notes of each). Its
other keywords are refused with twinnet's name for them: ``learning_rate_init`` is
``learning_rate``, ``activation`` is ``hidden_activation``, ``solver`` is ``optimizer``.

Examples
--------
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

import inspect
import math
import textwrap
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from twinnet import validation
from twinnet.nn import HEADS, Callback, Network
from twinnet.nn.schedules import check_learning_rate

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
    optimizer : {"sgd", "momentum", "adam", "rmsprop"} or twinnet.nn.Optimizer, default="adam"
        Keras's update rules (see :data:`twinnet.nn.OPTIMIZERS`).
    learning_rate : float or twinnet.nn.schedules.LearningRateSchedule, default=0.01
        scikit-learn's ``learning_rate_init``; a schedule (``ExponentialDecay``, ...) where
        scikit-learn names one by a string.
    max_iter : int, default=200
        Most epochs (passes over the training data); fewer run when the stopping rule ends the
        fit (see ``tol``).
    batch_size : int, optional
        ``None`` (default): full-batch training. Otherwise mini-batches of this size.
    shuffle : bool, default=True
        Shuffle the examples every epoch (mini-batches only).
    alpha : float, default=0.0
        scikit-learn's L2 penalty: ``0.5 * alpha * sum(W**2) / n_batch`` added to each batch's
        loss as scikit-learn's MLPs add it, on the weights (not the biases); trained as
        ``Network(l2=...)``, see the Notes. ``0``: no penalty (scikit-learn's default is ``1e-4``).
    batch_norm : bool or twinnet.nn.BatchNorm, default=False
        Batch normalization of every hidden layer, as ``Network(batch_norm=...)``: ``True`` for
        Keras's ``BatchNormalization`` defaults, or ``BatchNorm(momentum=..., epsilon=..., center=...,
        scale=...)``. Scores and predictions use the moving statistics.
    tol : float, default=1e-4
        The stopping rule's least improvement: of the training loss (``loss_curve_``), or with
        ``early_stopping`` of the validation score.
    n_iter_no_change : int or numpy.inf, default=10
        Training stops once more than this many epochs in a row failed to improve by ``tol``
        (scikit-learn's rule: with the default 10, after the 11th). ``numpy.inf``: every one of
        the ``max_iter`` epochs runs, without a ``ConvergenceWarning``.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified for the classifier) and
        judge improvement by the score on it (accuracy, or R^2 for the regressor) instead of the
        training loss; at the end, restore the weights of the best validation score.
    validation_fraction : float, default=0.1
        The part held out when ``early_stopping``, in ``(0, 1)``: ``ceil(validation_fraction *
        n_samples)`` examples, or where scikit-learn raises because they would be too few to
        score, 2 (the classifier: 2, and one of every class).
    dtype : {"float32", "float64"}, default="float64"
        The network's dtype. In float32, outputs carry float32 rounding (about 1e-7 relative),
        which can differ with the order of the samples.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights and the batch order (an int is passed to ``Network`` as its ``seed``),
        and the validation split (``train_test_split``'s ``random_state``).
    verbose : {"auto", 0, 1, 2} or bool, default=0
        What ``Network.fit`` shows, on standard output: ``1`` (``"auto"``, ``True``) a progress
        bar with the time per epoch and the time left, ``2`` one line per epoch; with
        ``early_stopping``, also the validation score of every epoch.
"""

# The attributes both estimators share after fit.
_FITTED = """\
    loss_curve_ : list of float
        Training loss of every epoch (``History.history["loss"]``), with the ``alpha`` penalty, on
        the training part when ``early_stopping``.
    n_iter_ : int
        Epochs run.
    best_loss_ : float or None
        The least training loss; ``None`` when ``early_stopping`` (see
        ``best_validation_score_``).
    validation_scores_ : list of float or None
        With ``early_stopping``, the validation score after every epoch; else ``None``.
    best_validation_score_ : float or None
        With ``early_stopping``, the best of ``validation_scores_``, whose weights the estimator
        keeps; else ``None``.
"""

# How scikit-learn's arguments become Network's, shared by both Notes sections.
_NOTES = """\
    **alpha.** scikit-learn's MLPs step along the gradient of ``c * L + 0.5 * alpha *
    sum(W**2) / n_b`` on a batch of ``n_b`` examples, where ``L`` is the network's loss on the
    batch and <scale>. The estimator trains ``Network(l2=alpha / (2 * c * b))``, whose objective
    ``L + l2 * sum(W**2)`` is that one divided by ``c``: the same minimizer; with plain gradient
    descent, the same steps as scikit-learn's ``learning_rate_init = learning_rate / c``; with
    Adam, whose steps do not depend on the objective's scale (but for ``epsilon``), at the same
    learning rate. ``b`` is the
    batch size: the number of training examples (after the validation split) for full-batch
    training, else ``batch_size``, so the mapping is exact for every batch of ``batch_size``
    examples. When ``batch_size`` does not divide the number of training examples, the last
    batch of each epoch has ``r < b`` of them, and its penalty and weight decay are ``r / b``
    times scikit-learn's, which divides by ``r``. ``Network`` weighs ``l2`` rounded to float32, as
    Keras's ``L2`` regularizer does: where float32 does not hold ``alpha / (2 * c * b)`` exactly,
    the penalty differs from scikit-learn's by that rounding (a relative 3e-8 at most).

    **Stopping.** After every epoch, as ``MLPClassifier``'s ``_update_no_improvement_count``:
    without ``early_stopping``, an epoch whose training loss is above ``best_loss_ - tol`` does
    not improve; with it, an epoch whose validation score is below ``best_validation_score_ +
    tol`` does not, and the weights are kept whenever the score beats the best (and restored
    at the end). The fit stops when more than ``n_iter_no_change`` epochs in a row did not
    improve, and warns (``ConvergenceWarning``) when all ``max_iter`` epochs ran, unless
    ``n_iter_no_change`` is ``numpy.inf``. The validation split is ``train_test_split(X, y,
    test_size=validation_fraction, random_state=random_state<stratify>)``.
"""


#: Keywords of scikit-learn's MLPs (and of ``Network`` and Keras) that the estimators take under
#: another name, or as an argument of something else: the keyword -> what to write instead.
_OTHER_NAMES = {
    "learning_rate_init": "twinnet calls it learning_rate",
    "activation": ("twinnet calls it hidden_activation; scikit-learn's 'logistic' is 'sigmoid', and for its "
                   "'identity' pass hidden_layer_sizes=() (a linear model)"),
    "solver": ("twinnet calls it optimizer: 'sgd' (plain), 'momentum', 'adam' or 'rmsprop', no 'lbfgs'; scikit-learn's "
               "'sgd' is optimizer=twinnet.nn.Momentum(momentum=0.9, nesterov=True)"),
    "momentum": "pass optimizer=twinnet.nn.Momentum(momentum=...)",
    "nesterovs_momentum": "pass optimizer=twinnet.nn.Momentum(nesterov=True)",
    "beta_1": "pass optimizer=twinnet.nn.Adam(beta_1=...)",
    "beta_2": "pass optimizer=twinnet.nn.Adam(beta_2=...)",
    "epsilon": "pass optimizer=twinnet.nn.Adam(epsilon=...) (Keras's default 1e-7; scikit-learn's is 1e-8)",
    "power_t": ("twinnet's decaying rates are schedules: learning_rate=twinnet.nn.schedules.InverseTimeDecay(...) "
                "decays as 1 / (1 + step), not as scikit-learn's 1 / t**power_t"),
    "loss": "the loss is the head's: the log-loss for TwinNetClassifier, the squared error for TwinNetRegressor",
    "max_fun": "it belongs to solver='lbfgs', which twinnet does not have",
    "warm_start": "every fit trains a new network; for more epochs on one, use twinnet.Network's fit",
    "epochs": ("the estimators call it max_iter (the stopping rule may end the fit sooner; n_iter_no_change="
               "numpy.inf runs every epoch)"),
    "seed": "the estimators call it random_state",
    "l2": "the estimators take scikit-learn's alpha, on another scale (see the Notes: l2 = alpha / (2 * c * b))",
}

#: scikit-learn's MLPs name a learning-rate schedule by a string; what to pass to twinnet instead.
_MLP_LEARNING_RATES = {
    "constant": "Pass the rate itself (scikit-learn's learning_rate_init), e.g. learning_rate=0.001",
    "invscaling": ("Pass a schedule, e.g. learning_rate=twinnet.nn.schedules.InverseTimeDecay(0.01, "
                   "decay_steps=100, decay_rate=1.0)"),
    "adaptive": ("twinnet has no schedule that follows the loss (scikit-learn's divides the rate by 5 when it "
                 "stalls); pass a float or a schedule such as twinnet.nn.schedules.ExponentialDecay(0.01, "
                 "decay_steps=100, decay_rate=0.5)"),
}


def _learning_rate(value):
    """``learning_rate`` as ``Network.fit`` takes it, or an error that redirects scikit-learn's schedule names."""
    if isinstance(value, str) and value in _MLP_LEARNING_RATES:
        raise validation.InvalidArgument(
            "learning_rate", "a finite number > 0 or a schedule from twinnet.nn.schedules", value,
            f"learning_rate must be a finite number > 0 or a schedule from twinnet.nn.schedules; got "
            f"learning_rate={value!r}, which scikit-learn's MLPs take for a schedule. {_MLP_LEARNING_RATES[value]}.")
    return check_learning_rate(value)


def _with_hyperparameters(cls):
    if cls.__doc__:  # None under python -OO
        notes = _NOTES.replace("<scale>", cls._LOSS_SCALE_TEXT).replace("<stratify>", cls._STRATIFY_TEXT)
        notes = "\n\n".join(textwrap.fill(" ".join(paragraph.split()), 96, initial_indent="    ",
                                          subsequent_indent="    ", break_long_words=False, break_on_hyphens=False)
                              for paragraph in notes.split("\n\n")) + "\n"
        cls.__doc__ = (cls.__doc__.replace("    <hyperparameters>\n", _HYPERPARAMETERS)
                       .replace("    <fitted>\n", _FITTED).replace("    <notes>\n", notes))
    return cls


class _StoppingRule(Callback):
    """scikit-learn's MLP stopping rule as a callback of :meth:`Network.fit` (Keras's call order).

    After each epoch, as ``BaseMultilayerPerceptron._update_no_improvement_count``: with
    ``score`` (a function of the network, the validation score), an epoch improves when its score
    is at least ``best_score + tol``, and the weights of the best score so far are kept (from the
    initial ones, as scikit-learn starts from them) and put back at the end of the fit; without,
    an epoch improves when its training loss is at most ``best_loss - tol``. More than
    ``n_iter_no_change`` epochs in a row without improvement stop the fit.
    """

    def __init__(self, tol, n_iter_no_change, score=None, verbose=0):
        super().__init__()
        self.tol, self.n_iter_no_change, self.score, self.verbose = tol, n_iter_no_change, score, verbose

    @property
    def network(self):
        return self.model

    def on_train_begin(self, logs=None):
        self.count, self.stopped = 0, False
        if self.score is None:
            self.best_loss, self.scores, self.best_score = np.inf, None, None
        else:
            self.best_loss, self.scores, self.best_score = None, [], -np.inf
            self.best_parameters = self.network.parameters

    def on_epoch_end(self, epoch, logs=None):
        if self.score is None:
            loss = logs["loss"]
            self.count = self.count + 1 if loss > self.best_loss - self.tol else 0
            self.best_loss = min(self.best_loss, loss)
            what = "Training loss"
        else:
            score = self.score(self.network)
            self.scores.append(score)
            if self.verbose:
                print(f"Validation score: {score:.6f}", flush=True)
            self.count = self.count + 1 if score < self.best_score + self.tol else 0
            if score > self.best_score:
                self.best_score, self.best_parameters = score, self.network.parameters
            what = "Validation score"
        if self.count > self.n_iter_no_change:
            self.stopped = self.network.stop_training = True
            if self.verbose:
                print(f"{what} did not improve more than tol={self.tol:f} for {self.n_iter_no_change} "
                      "consecutive epochs. Stopping.", flush=True)

    def on_train_end(self, logs=None):
        if self.score is not None:
            self.network.set_parameters(self.best_parameters)


class _TwinNet(BaseEstimator):
    """What both estimators share: the hyperparameters, the network's construction and training."""

    def __new__(cls, *args, **kwargs):
        # Python's own error would name _TwinNet.__init__; this one names the class called and,
        # for a scikit-learn, Network or Keras habit, twinnet's name (see _OTHER_NAMES).
        signature = cls.__signature__
        try:
            signature.bind(*args, **kwargs)
        except TypeError as error:
            unknown = next((key for key in kwargs if key not in signature.parameters), None)
            if unknown is None:
                raise TypeError(f"{cls.__name__}(): {error}; it takes hidden_layer_sizes by position, the rest by "
                                "keyword.") from None
            hint = _OTHER_NAMES.get(unknown) or "it takes " + ", ".join(signature.parameters)
            raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {unknown!r}; {hint}.") from None
        return super().__new__(cls)

    def __init__(self, hidden_layer_sizes=(20, 5), *, hidden_activation="relu", init="glorot",
                 optimizer="adam", learning_rate=0.01, max_iter=200, batch_size=None, shuffle=True,
                 alpha=0.0, batch_norm=False, tol=1e-4, n_iter_no_change=10, early_stopping=False,
                 validation_fraction=0.1,
                 dtype="float64", random_state=None, verbose=0):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.hidden_activation = hidden_activation
        self.init = init
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.alpha = alpha
        self.batch_norm = batch_norm
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    # inspect.signature (help(), scikit-learn's checks) reads __new__ before __init__: give it __init__'s.
    __signature__ = inspect.signature(__init__)
    __signature__ = __signature__.replace(parameters=list(__signature__.parameters.values())[1:])

    def _seed(self):
        if self.random_state is None or validation.is_int(self.random_state):
            return validation.seed(self.random_state, "random_state")
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _check_hyperparameters(self):
        """The checked arguments that ``Network`` does not check itself."""
        checked = {"hidden": validation.hidden_sizes("hidden_layer_sizes", self.hidden_layer_sizes),
                   "max_iter": validation.positive_int("max_iter", self.max_iter),
                   "learning_rate": _learning_rate(self.learning_rate),
                   "alpha": validation.non_negative_number("alpha", self.alpha),
                   "tol": validation.non_negative_number("tol", self.tol),
                   "n_iter_no_change": validation.positive_int_or_inf("n_iter_no_change", self.n_iter_no_change),
                   "early_stopping": validation.flag("early_stopping", self.early_stopping),
                   "validation_fraction": validation.fraction("validation_fraction", self.validation_fraction)}
        return checked

    def _split(self, X, y, stratify, fraction, random_state):
        """scikit-learn's early-stopping split, ``(X_train, y_train, X_val, y_val)``, never too small to score.

        ``train_test_split`` holds out ``ceil(fraction * m)`` examples; where that is fewer than
        a score needs (2 examples, and for a stratified split one of every class, where
        scikit-learn raises), this holds out that least number instead.
        """
        from sklearn.model_selection import train_test_split

        m = X.shape[0]
        least_val, least_train = 2, 1
        if stratify is not None:
            classes, counts = np.unique(stratify, return_counts=True)
            if counts.min() < 2:
                raise ValueError(f"early_stopping splits off a validation set with examples of every class, so each "
                                 f"class needs at least 2 examples; class {self.classes_[classes[counts.argmin()]]} "
                                 "has 1. Set early_stopping=False or add examples.")
            least_val = least_train = max(2, classes.size)
        n_val = max(math.ceil(fraction * m), least_val)
        if m - n_val < least_train:  # "n_samples=": the words scikit-learn's check_fit2d_1sample looks for
            raise ValueError(f"early_stopping with validation_fraction={self.validation_fraction!r} holds out {n_val} "
                             f"of the n_samples={m} examples (at least {least_val}), which leaves {m - n_val} to train "
                             f"on; at least {least_train} needed. Lower validation_fraction, set "
                             "early_stopping=False or add examples.")
        X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=n_val, random_state=random_state,
                                                          stratify=stratify)
        return X_train, y_train, X_val, y_val

    def _train(self, X, y, checked, width, output, stratify=None):
        """Build a network ending in ``width`` units of the head ``output``, train it on ``(X, y)``.

        ``checked`` is :meth:`_check_hyperparameters`'s; ``stratify`` the labels the validation
        split keeps in proportion (classifiers).
        """
        seed = self._seed()  # before the split: a RandomState draws the network's seed first
        score = None
        if checked["early_stopping"]:
            X, y, X_val, y_val = self._split(X, y, stratify, checked["validation_fraction"], self.random_state)
            key = self._VALIDATION_SCORE

            def score(network):
                return network.evaluate(X_val, y_val)[key]

        m = X.shape[0]
        batch = validation.positive_int("batch_size", self.batch_size, allow_none=True)
        batch = m if batch is None else min(batch, m)
        c = HEADS[output].sklearn_scale(width)
        l2 = checked["alpha"] / (2 * c * batch)  # see the Notes: scikit-learn's alpha
        if l2 > validation.FLOAT32_MAX:
            raise validation.InvalidArgument(
                "alpha", "small enough", checked["alpha"],
                f"alpha={checked['alpha']!r} gives the network l2 = alpha / (2 * {c:g} * "
                f"{batch}) = {l2:.3g}, beyond float32's largest {validation.FLOAT32_MAX:.2g}, in which the penalty "
                "is weighed; give a smaller alpha.")
        network = Network([X.shape[1], *checked["hidden"], width], output=output, l2=l2, batch_norm=self.batch_norm,
                          hidden_activation=self.hidden_activation, init=self.init, seed=seed, dtype=self.dtype)
        rule = _StoppingRule(checked["tol"], checked["n_iter_no_change"], score, self.verbose)
        history = network.fit(X, y, epochs=checked["max_iter"], learning_rate=checked["learning_rate"],
                              batch_size=self.batch_size, optimizer=self.optimizer, shuffle=self.shuffle,
                              verbose=self.verbose, callbacks=[rule])
        self.network_ = network
        self.loss_curve_ = history.history["loss"]
        self.n_iter_ = len(history.epoch)
        self.best_loss_, self.validation_scores_, self.best_validation_score_ = (
            rule.best_loss, rule.scores, rule.best_score)
        if self.n_iter_ == checked["max_iter"] and not rule.stopped and checked["n_iter_no_change"] != np.inf:
            what = "training loss" if score is None else "validation score"
            warnings.warn(f"{type(self).__name__}: all max_iter={checked['max_iter']} epochs ran and the {what} had "
                          f"not stopped improving by tol={checked['tol']} (n_iter_no_change="
                          f"{checked['n_iter_no_change']}). Raise max_iter, or set n_iter_no_change=numpy.inf to "
                          "train exactly max_iter epochs.", ConvergenceWarning, stacklevel=3)

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
    <fitted>

    Notes
    -----
    <notes>

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from twinnet import TwinNetClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = TwinNetClassifier(hidden_layer_sizes=(8,), random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 3)
    """

    _LOSS_SCALE_TEXT = "``c = 1``: the same mean log-loss (cross-entropy for more than two classes)"
    _STRATIFY_TEXT = ", stratify=y"
    _VALIDATION_SCORE = "accuracy"  # scikit-learn's score for a classifier

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
        checked = self._check_hyperparameters()
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32))
        check_classification_targets(y)
        classes, labels = np.unique(y, return_inverse=True)
        if classes.size < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least two classes in y; got 1 class: {classes[0]!r}."
            )
        binary = classes.size == 2
        self.classes_ = classes
        self._train(X, labels, checked, 1 if binary else classes.size, "sigmoid" if binary else "softmax",
                    stratify=labels)
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
        The trained network, output ``"linear"``; its loss is the mean squared error.
    <fitted>

    Notes
    -----
    <notes>

    Examples
    --------
    >>> import numpy as np
    >>> from twinnet import TwinNetRegressor
    >>> X = np.linspace(-1, 1, 50).reshape(-1, 1)
    >>> reg = TwinNetRegressor(hidden_layer_sizes=(16,), random_state=0).fit(X, X[:, 0] ** 2)
    >>> reg.predict(X[:3]).shape
    (3,)
    """

    _LOSS_SCALE_TEXT = ("``c = k / 2`` for ``k`` targets: ``L`` is the mean squared error over examples and "
                        "targets, and ``MLPRegressor``'s gradient is that of half the squared error summed over "
                        "the targets (averaged over the examples). With one target, ``c = 1 / 2``: "
                        "``loss_curve_`` is twice ``MLPRegressor``'s and plain gradient descent matches "
                        "its ``learning_rate_init = 2 * learning_rate``")
    _STRATIFY_TEXT = ""
    _VALIDATION_SCORE = "r2"  # scikit-learn's score for a regressor

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
        checked = self._check_hyperparameters()
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32), multi_output=True, y_numeric=True)
        if sp.issparse(y):
            raise ValueError(f"y must be a dense array of shape (m,) or (m, n_targets); "
                             f"got a sparse {y.format} matrix of shape {y.shape}. Use y.toarray().")
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        self._train(X, y, checked, n_outputs, "linear")
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
