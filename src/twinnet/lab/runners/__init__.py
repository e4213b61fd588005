"""One runner per library, and the table of engines that use them.

Vocabulary: an *engine* is a name a user chooses (a key of :data:`ENGINES`: ``numpy``, ``keras``,
``tf-loop``, ...); a *runner* is the function that trains one configuration with one library
(a module of this package each). Two engines may share a runner's module: ``keras`` and ``tf-loop``
are the Keras twin trained by ``model.fit`` or by a compiled ``tf.function`` step.

============  ==========================================================================
engine        what trains
============  ==========================================================================
functional    the notebook's ``L_layer_model`` (``twinnet.functional``): ReLU, SGD, full batch,
              the sigmoid head only (the notebook's exercise is binary)
numpy         ``twinnet.Network.fit``
keras         the Keras twin trained by ``model.fit`` (``twinnet.keras_twin``)
tf-loop       the Keras twin trained by a compiled ``tf.function`` step
sklearn       ``sklearn.neural_network.MLPClassifier`` (sigmoid, softmax) or ``MLPRegressor``
              (linear) started from the same weights
torch         the PyTorch twin (``twinnet.torch_twin``)
============  ==========================================================================

Every engine trains every head (sigmoid, softmax, linear) except where :func:`unsupported_reason`
says why not. Regularization and training control (:data:`CONTROLS`: ``l2``, ``dropout``,
``batch_norm``, ``lr_schedule``, ``early_stopping``): numpy, keras, tf-loop and torch train them all
(with dropout, each library draws its own masks, so those runs are not on one trajectory; torch
refuses batch normalization on a batch of one example); sklearn trains ``l2`` (as its ``alpha``)
only; functional none.

A runner is ``runner(config, split, initial, observe) -> Trained``: ``observe(epochs_done, current)``
is called after each epoch, when the library lets us observe them, and ``current()`` returns the
parameters dict after that epoch.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import NamedTuple

from twinnet.lab.config import CONTROLS
from twinnet.lab.runners import functional, keras, numpy, sklearn, torch
from twinnet.nn.heads import head

__all__ = ["CONTROLS", "DEFAULT_ENGINES", "ENGINES", "NO_CHECKPOINTS", "Engine", "controls", "installed",
           "unsupported_reason"]


class Engine(NamedTuple):
    """An entry of :data:`ENGINES`: the runner that trains it and the library it needs."""

    runner: Callable
    module: str | None  # the optional library it needs, or None
    extra: str | None  # pip extra that installs it
    description: str


ENGINES = {
    "functional": Engine(functional.run, None, None, "the notebook's L_layer_model, twinnet.functional"),
    "numpy": Engine(numpy.run, None, None, "twinnet.Network.fit"),
    "keras": Engine(keras.run_fit, "tensorflow", "tf", "the Keras twin trained by model.fit"),
    "tf-loop": Engine(keras.run_loop, "tensorflow", "tf", "the Keras twin trained by a compiled tf.function loop"),
    "sklearn": Engine(sklearn.run, "sklearn", None, "scikit-learn's MLPClassifier or MLPRegressor, same weights"),
    "torch": Engine(torch.run, "torch", "torch", "the PyTorch twin, twinnet.torch_twin"),
}
DEFAULT_ENGINES = tuple(ENGINES)

#: Engines whose library trains all epochs in one call that cannot be observed between epochs.
NO_CHECKPOINTS = {"sklearn": "scikit-learn's fit (MLPClassifier, MLPRegressor) cannot be observed between epochs"}


def controls(config):
    """The fields of :data:`CONTROLS` that ``config`` sets, as ``"name=value"`` texts."""
    return [f"{name}={getattr(config, name)!r}" for name, off in CONTROLS.items() if getattr(config, name) != off]


def installed(engine):
    """Whether the library an engine needs can be imported (without importing it)."""
    module = ENGINES[engine].module
    return module is None or importlib.util.find_spec(module) is not None


def unsupported_reason(engine, config, n_train):
    """Why ``engine`` cannot run ``config`` (a sentence), or ``None`` if it can.

    ``config.output`` None is the notebook's sigmoid head.
    """
    full_batch = config.batch_size is None or config.batch_size >= n_train
    binary = head(config.output).binary
    used = controls(config)
    if engine == "functional" and used:
        return ("the notebook's functional network has no L2 penalty, dropout, batch normalization, learning-rate "
                f"schedule or early stopping; got {', '.join(used)}")
    if engine == "functional" and not binary:
        return (f"the notebook's functional network is binary, one sigmoid unit with log-loss; "
                f"got output={config.output!r}")
    if engine == "functional" and (config.hidden_activation != "relu" or config.optimizer != "sgd"
                                   or not full_batch):
        return ("the notebook's functional network trains ReLU hidden layers by full-batch "
                f"SGD only (got hidden_activation={config.hidden_activation!r}, "
                f"optimizer={config.optimizer!r}, batch_size={config.batch_size})")
    if engine == "sklearn":
        return sklearn.unsupported(config)
    if engine in ("keras", "tf-loop") and config.keras_init == "notebook" and \
            (config.optimizer != "sgd" or config.hidden_activation != "relu" or not binary):
        return ("keras_init='notebook' uses the notebook's model (ReLU, SGD, one sigmoid unit); got "
                f"optimizer={config.optimizer!r}, hidden_activation={config.hidden_activation!r}, "
                f"output={config.output or 'sigmoid'!r}")
    if engine in ("keras", "tf-loop") and config.keras_init == "notebook" and (
            config.l2 or config.dropout or config.batch_norm or config.lr_schedule is not None):
        return ("keras_init='notebook' uses the notebook's model, compiled without L2 penalty, dropout, batch "
                "normalization or learning-rate schedule; got "
                f"{', '.join(c for c in used if not c.startswith('early_stopping'))}")
    if engine == "torch" and config.batch_norm and (n_train if full_batch else n_train % config.batch_size
                                                    or config.batch_size) == 1:
        return (f"torch's BatchNorm1d cannot train on a batch of one example, which batch_size={config.batch_size} "
                f"leaves of {n_train} training examples (Keras and Network normalize it to beta)")
    return None
