"""Engines: one configuration, one library, one training run, one plain result.

Each engine trains the same network from the same initial parameters dict on the same split and
reports its loss curve and final weights; :func:`run_engine` then times nothing more, evaluates
the final weights of every engine with one function (``Network.evaluate``), so accuracies differ
only by the weights, and turns a divergence into an ``error`` instead of an exception.

============  ==========================================================================
engine        what trains
============  ==========================================================================
functional    the notebook's ``L_layer_model`` (``twinnet.functional``): ReLU, SGD, full batch
numpy         ``twinnet.Network.fit``
keras         the Keras twin trained by ``model.fit`` (``twinnet.keras_twin``)
tf-loop       the Keras twin trained by a compiled ``tf.function`` step
sklearn       ``sklearn.neural_network.MLPClassifier`` started from the same weights
torch         an ``nn.Sequential`` twin with ``BCEWithLogitsLoss`` and ``torch.optim``
============  ==========================================================================

A runner is ``runner(config, split, initial_parameters, progress) -> Trained``; ``progress(k, current)``
is called with the number of epochs done, when the library lets us observe them, and ``current()``
returns the parameters dict after epoch ``k``: :func:`run_engine` evaluates it at the requested
``checkpoints``, so one training run reports its metrics at several epochs.
"""

from __future__ import annotations

import importlib.util
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Callable, NamedTuple

import numpy as np

from twinnet.keras_twin import DTYPES, HIDDEN_ACTIVATIONS, OPTIMIZERS
from twinnet.nn import INITIALIZERS

__all__ = ["RunConfig", "EngineResult", "Trained", "Engine", "ENGINES", "DEFAULT_ENGINES",
           "KERAS_INITS", "run_engine", "installed", "unsupported_reason"]

#: ``same``: Keras starts from the shared initial weights; ``notebook``: from the notebook's
#: ``keras_model`` with Keras's own random initialization.
KERAS_INITS = ("same", "notebook")


@dataclass(frozen=True)
class RunConfig:
    """One experiment: data, network, training. Defaults reproduce the notebook's run.

    ``layers=None`` means ``[n_features, 20, 5, 1]`` for the chosen data set.
    """

    data: str = "synthetic"
    layers: tuple | None = None
    epochs: int = 250
    learning_rate: float = 0.1
    batch_size: int | None = None
    optimizer: str = "sgd"
    hidden_activation: str = "relu"
    init: str = "normal"
    dtype: str = "float64"
    seed: int = 0
    standardize: bool = True
    test_size: float = 0.2
    keras_init: str = "same"

    def validate(self):
        """Raise ``ValueError`` naming the first invalid field."""
        def choice(name, options):
            value = getattr(self, name)
            if value not in options:
                raise ValueError(f"Unknown {name} {value!r}. Expected one of: "
                                 + ", ".join(repr(o) for o in sorted(options)) + ".")

        choice("optimizer", OPTIMIZERS)
        choice("hidden_activation", HIDDEN_ACTIVATIONS)
        choice("init", INITIALIZERS)
        choice("dtype", DTYPES)
        choice("keras_init", KERAS_INITS)
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1; got epochs={self.epochs!r}.")
        if not (isinstance(self.learning_rate, (int, float)) and math.isfinite(self.learning_rate)
                and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be a finite number > 0; got learning_rate={self.learning_rate!r}.")
        if self.batch_size is not None and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            raise ValueError(f"batch_size must be an integer >= 1 or None; got batch_size={self.batch_size!r}.")
        if self.layers is not None:
            dims = list(self.layers)
            if len(dims) < 2 or min(dims) < 1 or dims[-1] != 1:
                raise ValueError(f"layers must be >= 2 positive widths ending in 1 (one sigmoid unit); "
                                 f"got layers={','.join(map(str, dims))}.")

    def with_layers(self, n_features):
        """This config with ``layers`` resolved and checked against the data's feature count."""
        from dataclasses import replace

        layers = tuple(self.layers) if self.layers is not None else (n_features, 20, 5, 1)
        if layers[0] != n_features:
            raise ValueError(
                f"layers={','.join(map(str, layers))} starts with {layers[0]} inputs, but data "
                f"{self.data!r} has {n_features} features; the first width must be {n_features}."
            )
        return replace(self, layers=layers)

    def to_dict(self):
        d = asdict(self)
        d["layers"] = list(self.layers) if self.layers is not None else None
        return d


class Trained(NamedTuple):
    """What a runner hands back: the loss per epoch, the final weights, the training time."""

    loss_curve: list
    parameters: dict
    seconds: float
    same_trajectory: bool = True  # same start and same batch order as the other engines
    note: str | None = None


@dataclass
class EngineResult:
    """The outcome of one engine on one configuration (NaN metrics when ``error`` is set)."""

    engine: str
    loss_curve: list
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    seconds: float
    ms_per_epoch: float
    same_trajectory: bool = True
    note: str | None = None
    error: str | None = None
    status: str = "ok"
    #: metrics after each checkpoint epoch: dicts of epoch, train/test loss and accuracy
    checkpoints: list = field(default_factory=list)
    parameters: dict | None = field(default=None, repr=False)

    def to_dict(self):
        """JSON-ready: NaN becomes ``None``; the final parameters are left out."""
        def clean(v):
            return None if isinstance(v, float) and not math.isfinite(v) else v

        d = {k: clean(v) for k, v in asdict(self).items() if k not in ("parameters", "loss_curve")}
        d["loss_curve"] = [clean(float(v)) for v in self.loss_curve]
        return d


# --------------------------------------------------------------------------- runners
def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _run_functional(config, split, initial, progress):
    from twinnet import functional as F

    X = np.ascontiguousarray(split.X_train.T)
    # labels in the features' dtype, so that float32 runs stay float32
    Y = split.y_train.reshape(1, -1).astype(X.dtype)
    parameters, curve = initial, []

    def train():
        nonlocal parameters
        # the notebook's L_layer_model, one iteration per call so that progress can be shown
        for epoch in range(config.epochs):
            parameters, costs = F.L_layer_model(X, Y, list(config.layers), config.learning_rate, 1,
                                                 initial_parameters=parameters, return_costs=True)
            curve.append(costs[0])
            progress(epoch + 1, lambda: parameters)

    _, seconds = _timed(train)
    return Trained(curve, parameters, seconds)


def _run_numpy(config, split, initial, progress):
    from twinnet import Network

    net = Network.from_parameters(initial, hidden_activation=config.hidden_activation, dtype=config.dtype)
    history, seconds = _timed(lambda: net.fit(
        split.X_train, split.y_train, epochs=config.epochs, learning_rate=config.learning_rate,
        batch_size=config.batch_size, optimizer=config.optimizer, seed=config.seed,
        on_epoch_end=lambda epoch, logs: progress(epoch + 1, lambda: net.parameters)))
    return Trained(list(history.history["loss"]), net.parameters, seconds)


def _keras_model(config, initial):
    from twinnet import keras_twin

    if config.keras_init == "same":
        return keras_twin.to_keras(initial, learning_rate=config.learning_rate, optimizer=config.optimizer,
                                   hidden_activation=config.hidden_activation, dtype=config.dtype), None
    import keras

    # Keras's global seed makes the notebook's unseeded initializers reproducible
    keras.utils.set_random_seed(config.seed)
    return keras_twin.keras_model(list(config.layers), config.learning_rate), \
        "notebook's keras_model: Keras's own initialization, float32"


def _keras_runner(engine):
    def run(config, split, initial, progress):
        from twinnet import keras_twin

        model, note = _keras_model(config, initial)
        history, seconds = _timed(lambda: keras_twin.train(
            model, split.X_train, split.y_train, epochs=config.epochs, batch_size=config.batch_size,
            seed=config.seed, engine=engine,
            on_epoch_end=lambda epoch, loss: progress(epoch + 1, lambda: keras_twin.from_keras(model))))
        return Trained(list(history["loss"]), keras_twin.from_keras(model), seconds,
                       same_trajectory=note is None, note=note)

    return run


def _rounding_note(config):
    """Why scikit-learn and torch depart from Keras (and Network) at rounding level with momentum or Adam."""
    if config.dtype != "float64" or config.optimizer == "sgd":
        return None
    what = "momentum 0.9" if config.optimizer == "momentum" else "beta_1 0.9 and beta_2 0.999"
    return (f"uses {what} exactly, where Keras (and Network, its twin) round them through float32: "
            "curves differ by about 1e-7 to 1e-5, growing with the number of updates")


SKLEARN_ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic"}


def _run_sklearn(config, split, initial, progress):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    X, y = split.X_train, split.y_train
    m, L = X.shape[0], len(config.layers) - 1
    full_batch = config.batch_size is None or config.batch_size >= m
    solver = {"sgd": {"solver": "sgd", "momentum": 0.0},
              "momentum": {"solver": "sgd", "momentum": 0.9, "nesterovs_momentum": False},
              "adam": {"solver": "adam", "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}}[config.optimizer]
    clf = MLPClassifier(
        hidden_layer_sizes=config.layers[1:-1], activation=SKLEARN_ACTIVATIONS[config.hidden_activation],
        alpha=0.0, batch_size=m if full_batch else config.batch_size, learning_rate="constant",
        learning_rate_init=config.learning_rate, max_iter=1, shuffle=not full_batch,
        random_state=config.seed, tol=0.0, n_iter_no_change=config.epochs + 1, warm_start=True, **solver)
    with warnings.catch_warnings():
        # max_iter is reached on purpose: sklearn's stopping rules are switched off
        warnings.simplefilter("ignore", ConvergenceWarning)
        # One throwaway epoch creates the fitted state; then the weights are replaced by ours and,
        # thanks to warm_start, the real fit starts from them with a fresh optimizer.
        clf.fit(X, y)
        clf.coefs_ = [np.array(initial[f"W{l}"].T, dtype=X.dtype) for l in range(1, L + 1)]
        clf.intercepts_ = [np.array(initial[f"b{l}"][:, 0], dtype=X.dtype) for l in range(1, L + 1)]
        clf.set_params(max_iter=config.epochs)
        try:
            _, seconds = _timed(lambda: clf.fit(X, y))
        except ValueError as exc:
            if "non-finite" not in str(exc):
                raise
            raise FloatingPointError(f"scikit-learn stopped: {exc}") from None
    parameters = {}
    for l in range(1, L + 1):
        parameters[f"W{l}"] = np.ascontiguousarray(clf.coefs_[l - 1].T)
        parameters[f"b{l}"] = clf.intercepts_[l - 1].reshape(-1, 1)
    # warm_start keeps appending to loss_curve_: the last `epochs` entries are this run's
    curve = [float(v) for v in clf.loss_curve_[-config.epochs:]]
    note = "scikit-learn draws its own batch order" if not full_batch else _rounding_note(config)
    return Trained(curve, parameters, seconds, same_trajectory=full_batch, note=note)


def _run_torch(config, split, initial, progress):
    import torch

    from twinnet.nn import epoch_batches

    dtype = getattr(torch, config.dtype)
    activation = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid,
                  "leaky_relu": lambda: torch.nn.LeakyReLU(0.2)}[config.hidden_activation]
    L = len(config.layers) - 1
    modules = []
    for l in range(1, L + 1):
        linear = torch.nn.Linear(config.layers[l - 1], config.layers[l], dtype=dtype)
        with torch.no_grad():  # torch's Linear stores W as (out, in), the notebook's layout
            linear.weight.copy_(torch.as_tensor(initial[f"W{l}"]))
            linear.bias.copy_(torch.as_tensor(initial[f"b{l}"][:, 0]))
        modules += [linear, activation()] if l < L else [linear]
    model = torch.nn.Sequential(*modules)  # outputs logits; the sigmoid lives in the loss
    loss_fn = torch.nn.BCEWithLogitsLoss()
    params = list(model.parameters())
    optimizer = {"sgd": lambda: torch.optim.SGD(params, lr=config.learning_rate),
                 "momentum": lambda: torch.optim.SGD(params, lr=config.learning_rate, momentum=0.9),
                 "adam": lambda: torch.optim.Adam(params, lr=config.learning_rate, betas=(0.9, 0.999),
                                                  eps=1e-7)}[config.optimizer]()
    X = torch.as_tensor(split.X_train, dtype=dtype)
    y = torch.as_tensor(split.y_train, dtype=dtype).reshape(-1, 1)
    m = X.shape[0]
    full_batch = config.batch_size is None or config.batch_size >= m
    rng = np.random.default_rng(config.seed)
    curve = []
    # One untimed forward and backward pass: torch initializes its kernels and autograd on first
    # use in a process (about a second), a cost that is not this run's. No step is taken.
    loss_fn(model(X[:2]), y[:2]).backward()
    optimizer.zero_grad()

    def train():
        step = 0
        for epoch in range(config.epochs):
            batches = [slice(None)] if full_batch else \
                [torch.as_tensor(i) for i in epoch_batches(rng, m, config.batch_size, True)]
            total = 0.0
            for idx in batches:
                xb, yb = X[idx], y[idx]
                optimizer.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                step += 1
                if config.optimizer == "adam":
                    # torch adds epsilon to sqrt(v) / sqrt(1 - beta_2**t), Keras to sqrt(v): this
                    # epsilon makes torch's step Keras's, (sqrt(v) + 1e-7) / sqrt(1 - beta_2**t)
                    optimizer.param_groups[0]["eps"] = 1e-7 / math.sqrt(1 - 0.999 ** step)
                optimizer.step()
                total += loss.item() * xb.shape[0]
            curve.append(total / m)
            progress(epoch + 1, current)

    def current():
        parameters = {}
        for l, linear in enumerate(model[::2], start=1):
            parameters[f"W{l}"] = linear.weight.detach().numpy().copy()
            parameters[f"b{l}"] = linear.bias.detach().numpy().reshape(-1, 1).copy()
        return parameters

    _, seconds = _timed(train)
    parameters = current()
    return Trained(curve, parameters, seconds, note=_rounding_note(config))


# --------------------------------------------------------------------------- the table
class Engine(NamedTuple):
    runner: Callable
    module: str | None  # the optional library it needs, or None
    extra: str | None  # pip extra that installs it
    description: str


ENGINES = {
    "functional": Engine(_run_functional, None, None, "the notebook's L_layer_model (twinnet.functional)"),
    "numpy": Engine(_run_numpy, None, None, "twinnet.Network.fit"),
    "keras": Engine(_keras_runner("fit"), "tensorflow", "tf", "the Keras twin, model.fit"),
    "tf-loop": Engine(_keras_runner("tf-loop"), "tensorflow", "tf", "the Keras twin, a tf.function step"),
    "sklearn": Engine(_run_sklearn, "sklearn", None, "scikit-learn's MLPClassifier, same weights"),
    "torch": Engine(_run_torch, "torch", "torch", "a PyTorch nn.Sequential twin"),
}
DEFAULT_ENGINES = tuple(ENGINES)


def installed(engine):
    """Whether the library an engine needs can be imported (without importing it)."""
    module = ENGINES[engine].module
    return module is None or importlib.util.find_spec(module) is not None


def unsupported_reason(engine, config, n_train):
    """Why ``engine`` cannot run ``config`` (a sentence), or ``None`` if it can."""
    full_batch = config.batch_size is None or config.batch_size >= n_train
    if engine == "functional":
        if config.hidden_activation != "relu" or config.optimizer != "sgd" or not full_batch:
            return ("the notebook's functional network trains ReLU hidden layers by full-batch "
                    f"SGD only (got hidden_activation={config.hidden_activation!r}, "
                    f"optimizer={config.optimizer!r}, batch_size={config.batch_size})")
    if engine == "sklearn" and config.hidden_activation not in SKLEARN_ACTIVATIONS:
        return f"scikit-learn's MLPClassifier has no {config.hidden_activation!r} activation"
    if engine in ("keras", "tf-loop") and config.keras_init == "notebook" and \
            (config.optimizer != "sgd" or config.hidden_activation != "relu"):
        return ("keras_init='notebook' uses the notebook's model (ReLU, SGD); got "
                f"optimizer={config.optimizer!r}, hidden_activation={config.hidden_activation!r}")
    return None


def _first_nonfinite(curve):
    bad = np.flatnonzero(~np.isfinite(np.asarray(curve, dtype=float)))
    return int(bad[0]) if bad.size else None


#: Engines whose library trains all epochs in one call that cannot be observed between epochs.
NO_CHECKPOINTS = {"sklearn": "scikit-learn's MLPClassifier.fit cannot be observed between epochs"}


def _evaluate(parameters, config, split):
    # one evaluation function for every engine: the accuracies differ only by the weights
    from twinnet import Network

    net = Network.from_parameters(parameters, hidden_activation=config.hidden_activation,
                                  dtype=config.dtype)
    train = net.evaluate(split.X_train, split.y_train)
    test = net.evaluate(split.X_test, split.y_test)
    return {"train_loss": float(train["loss"]), "train_accuracy": float(train["accuracy"]),
            "test_loss": float(test["loss"]), "test_accuracy": float(test["accuracy"])}


def run_engine(name, config, split, initial, progress=lambda done: None, checkpoints=()):
    """Train ``config`` with engine ``name`` from ``initial`` and evaluate the result.

    Parameters
    ----------
    name : str
        A key of :data:`ENGINES`.
    config : RunConfig
        With ``layers`` resolved (:meth:`RunConfig.with_layers`).
    split : twinnet.data.Split
    initial : dict
        The initial parameters dict, shared by all engines (left unchanged).
    progress : callable
        ``progress(epochs_done)``.
    checkpoints : sequence of int
        Epochs (between 1 and ``config.epochs``) after which the weights are also evaluated, in
        the same run; the time spent evaluating is not counted in ``seconds``.

    Returns
    -------
    EngineResult
        ``status`` is ``"diverged"``, and ``error`` says how, when the loss or the weights stopped
        being finite.
        ``checkpoints`` holds the metrics at each requested epoch reached, and at the last epoch.
    """
    wanted = sorted({int(e) for e in checkpoints} - {config.epochs})
    if wanted and not 1 <= wanted[0] <= wanted[-1] <= config.epochs:
        raise ValueError(f"checkpoints must be epochs between 1 and epochs={config.epochs}; "
                         f"got checkpoints={list(checkpoints)}.")
    if wanted and name in NO_CHECKPOINTS:
        raise ValueError(f"engine {name!r} cannot report intermediate checkpoints: {NO_CHECKPOINTS[name]}.")
    initial = {k: np.array(v, dtype=config.dtype) for k, v in initial.items()}
    points, evaluating = [], []
    start = time.perf_counter()

    def observe(done, current=None):
        progress(done)
        if done in wanted and current is not None:
            start = time.perf_counter()
            points.append({"epoch": done, **_evaluate(current(), config, split)})
            evaluating.append(time.perf_counter() - start)

    progress(0)
    # A diverging run overflows on purpose: it is reported in the result, not as warnings.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        try:
            trained = ENGINES[name].runner(config, split, initial, observe)
        except FloatingPointError as exc:  # an engine that stops when its loss stops being finite
            nan, seconds = float("nan"), time.perf_counter() - start - sum(evaluating)
            return EngineResult(name, [], nan, nan, nan, nan, seconds, 1000.0 * seconds / config.epochs,
                                error=f"diverged: {exc}", status="diverged", checkpoints=points)
    progress(config.epochs)
    seconds = trained.seconds - sum(evaluating)
    result = EngineResult(
        engine=name, loss_curve=[float(v) for v in trained.loss_curve], train_loss=float("nan"),
        train_accuracy=float("nan"), test_loss=float("nan"), test_accuracy=float("nan"),
        seconds=seconds, ms_per_epoch=1000.0 * seconds / config.epochs,
        same_trajectory=trained.same_trajectory, note=trained.note, parameters=trained.parameters,
        checkpoints=points)
    bad_epoch = _first_nonfinite(result.loss_curve)
    weights_finite = all(np.isfinite(w).all() for w in trained.parameters.values())
    if bad_epoch is not None or not weights_finite:
        where = f"at epoch {bad_epoch + 1}" if bad_epoch is not None else "in the final weights"
        result.error = f"diverged: the loss became non-finite {where} (learning_rate={config.learning_rate})"
        result.status = "diverged"
        return result
    final = _evaluate(trained.parameters, config, split)
    result.train_loss, result.train_accuracy = final["train_loss"], final["train_accuracy"]
    result.test_loss, result.test_accuracy = final["test_loss"], final["test_accuracy"]
    points.append({"epoch": config.epochs, **final})
    return result
