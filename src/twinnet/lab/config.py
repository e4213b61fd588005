"""The one description of a run: :class:`RunConfig` (data, network, training, seed).

``twinnet compare`` trains one; a sweep's run (:class:`twinnet.lab.grid.RunSpec`) is one plus its
engine and checkpoints; a bench workload (:class:`twinnet.bench.Workload`) is one plus the data
size and its targets. Every check goes through :mod:`twinnet.validation`.

Regularization and training control are plain values, so that a configuration stays JSON- and
CSV-friendly: ``l2`` and ``dropout`` are numbers, ``batch_norm`` a bool, ``lr_schedule`` a command-line spec of
:func:`twinnet.nn.schedule_parse.parse` (built by :meth:`RunConfig.schedule`) and ``early_stopping`` a
patience (built by :meth:`RunConfig.early_stopping_callback`).

Early stopping monitors ``val_loss`` on a validation part carved from the training part:
``validation_fraction`` of it (``ceil(validation_fraction * n_train)`` examples), drawn with the
run's seed, stratified by class for classifiers, after standardization (as scikit-learn's
``early_stopping`` carves it from the data it is given). Every engine gets the same validation
examples and trains on the rest; the test part is untouched, the same as without early stopping.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace


from twinnet import validation
from twinnet.nn.heads import HEADS

__all__ = ["CONTROLS", "DEFAULT_HIDDEN", "KERAS_INITS", "MONITOR", "RunConfig", "default_layers"]

#: The notebook's hidden layers: ``layers=None`` means ``(n_features, *DEFAULT_HIDDEN, width)``, the
#: width of the data's head (1 for a sigmoid, K for a K-class softmax, k for k regression targets).
DEFAULT_HIDDEN = (20, 5)

#: ``same``: Keras starts from the shared initial weights; ``notebook``: from the notebook's
#: ``keras_model`` with Keras's own random initialization.
KERAS_INITS = ("same", "notebook")

#: RunConfig fields of regularization and training control, and the value that turns each off.
CONTROLS = {"l2": 0.0, "dropout": 0.0, "batch_norm": False, "lr_schedule": None, "early_stopping": None}

#: What the lab's early stopping monitors: the loss on the validation part (module docstring).
MONITOR = "val_loss"


def default_layers(n_features, width=1):
    """The notebook's network for data of ``n_features`` features: ``(n_features, 20, 5, width)``.

    ``width`` is the output layer's: 1 for the notebook's sigmoid, K for K classes, k for k targets.
    """
    return (n_features, *DEFAULT_HIDDEN, width)




@dataclass(frozen=True)
class RunConfig:
    """One experiment: data, network, training. Defaults reproduce the notebook's run.

    ``layers=None`` means :func:`default_layers` of the chosen data set; ``output=None`` means the
    data set's head (:func:`twinnet.data.load_dataset` infers it), both resolved by
    :meth:`with_layers` once the data are loaded.
    """

    data: str = "synthetic"
    layers: tuple | None = None
    output: str | None = None
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
    #: weight of the L2 penalty ``l2 * sum(W**2)`` over every layer's weights (Keras's ``L2(l2)``)
    l2: float = 0.0
    #: dropout rate of every hidden layer, in [0, 1)
    dropout: float = 0.0
    #: batch normalization of every hidden layer with Keras's defaults (``Network(batch_norm=True)``)
    batch_norm: bool = False
    #: a learning-rate schedule's spec, such as ``"exponential:decay_steps=100,decay_rate=0.5"``; its
    #: initial learning rate, unless the spec gives one, is ``learning_rate``; None: constant
    lr_schedule: str | None = None
    #: patience of Keras's ``EarlyStopping(monitor="val_loss", restore_best_weights=True)``; None: off
    early_stopping: int | None = None
    #: the part of the training examples held out for early stopping's validation (only then)
    validation_fraction: float = 0.1

    def validate(self):
        """Raise ``ValueError`` naming the first invalid field; return ``self``."""
        validation.choice("optimizer", self.optimizer, validation.OPTIMIZERS)
        validation.choice("hidden_activation", self.hidden_activation, validation.ACTIVATIONS)
        validation.choice("init", self.init, validation.INITIALIZERS)
        validation.dtype(self.dtype)
        validation.choice("keras_init", self.keras_init, KERAS_INITS)
        validation.positive_int("epochs", self.epochs)
        # the engines hold it in dtype: beyond its range it would be inf
        validation.positive_number("learning_rate", self.learning_rate, dtype=self.dtype)
        validation.seed(self.seed, allow_none=False)  # the split and the initial weights must be reproducible
        validation.positive_int("batch_size", self.batch_size, allow_none=True)
        validation.penalty("l2", self.l2)
        validation.rate("dropout", self.dropout)
        validation.flag("batch_norm", self.batch_norm)
        if self.lr_schedule is not None:
            self.schedule()
        validation.patience("early_stopping", self.early_stopping)
        validation.fraction("validation_fraction", self.validation_fraction)
        validation.fraction("test_size", self.test_size)
        validation.flag("standardize", self.standardize)
        if self.output is not None:
            validation.choice("output", self.output, validation.OUTPUTS)
        if self.layers is not None:
            layers = validation.layer_widths("layers", self.layers)
            if self.output is not None:  # a head that cannot fit the last width, before the data load
                from twinnet.nn.heads import default_output

                default_output(self.output, layers[-1])
        return self

    def schedule(self):
        """The learning rate every engine trains with: ``learning_rate``, or the schedule of ``lr_schedule``.

        Raises
        ------
        ValueError
            ``lr_schedule`` is not a spec :func:`twinnet.nn.schedule_parse.parse` reads, naming it.
        """
        if self.lr_schedule is None:
            return self.learning_rate
        from twinnet.nn.schedule_parse import parse

        return parse(self.lr_schedule, initial_learning_rate=self.learning_rate, argument="lr_schedule")

    def early_stopping_callback(self):
        """A new ``EarlyStopping(monitor="val_loss", patience=early_stopping, restore_best_weights=True)``,
        or None without early stopping. One per run: it holds the run's state."""
        if self.early_stopping is None:
            return None
        from twinnet.nn.callbacks import EarlyStopping

        return EarlyStopping(monitor=MONITOR, patience=self.early_stopping, restore_best_weights=True)

    def with_layers(self, n_features, *, output=None, width=None):
        """This config with ``layers`` and ``output`` resolved and checked against the data.

        Parameters
        ----------
        n_features : int
            The data's number of features: the first width.
        output : {"sigmoid", "softmax", "linear"}, optional
            The data's head, when ``self.output`` is None (``twinnet.lab.run.load_split`` says it).
        width : int, optional
            The output width the data need with that head: 1 for a sigmoid, the number of classes for
            a softmax, of targets for a linear head. None: the last of ``layers`` (1 by default).

        Raises
        ------
        ValueError
            The first width is not ``n_features``, the last is not ``width``, or the head does not
            fit the last width (a sigmoid of 2 units, a softmax of 1).
        """
        from twinnet.nn.heads import default_output

        output = self.output or output
        if self.layers is not None:
            layers = tuple(self.layers)
        else:
            layers = default_layers(n_features, 1 if width is None else width)
        shown = ",".join(map(str, layers))
        if layers[0] != n_features:
            raise ValueError(f"layers={shown} starts with {layers[0]} inputs, but data {self.data!r} has "
                             f"{n_features} features; the first width must be {n_features}.")
        if width is not None and output is not None and layers[-1] != width:
            raise ValueError(f"layers={shown} ends with {layers[-1]} unit{'s' if layers[-1] > 1 else ''}, but data "
                             f"{self.data!r} {HEADS[output].describe_data(width)}; the last width must be {width}.")
        return replace(self, layers=layers, output=default_output(output, layers[-1]))

    def to_dict(self):
        d = asdict(self)
        d["layers"] = list(self.layers) if self.layers is not None else None
        return d
