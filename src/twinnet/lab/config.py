"""The one description of a run: :class:`RunConfig` (data, network, training, seed).

``twinnet compare`` trains one; a sweep's run (:class:`twinnet.lab.grid.RunSpec`) is one plus its
engine and checkpoints; a bench workload (:class:`twinnet.bench.Workload`) is one plus the data
size and its targets. Every check goes through :mod:`twinnet.validation`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from twinnet import validation

__all__ = ["DEFAULT_HIDDEN", "KERAS_INITS", "MAX_SEED", "RunConfig", "default_layers"]

#: The notebook's hidden layers: ``layers=None`` means ``(n_features, *DEFAULT_HIDDEN, 1)``.
DEFAULT_HIDDEN = (20, 5)

#: ``same``: Keras starts from the shared initial weights; ``notebook``: from the notebook's
#: ``keras_model`` with Keras's own random initialization.
KERAS_INITS = ("same", "notebook")

MAX_SEED = validation.MAX_SEED


def default_layers(n_features):
    """The notebook's network for data of ``n_features`` features: ``(n_features, 20, 5, 1)``."""
    return (n_features, *DEFAULT_HIDDEN, 1)


@dataclass(frozen=True)
class RunConfig:
    """One experiment: data, network, training. Defaults reproduce the notebook's run.

    ``layers=None`` means :func:`default_layers` of the chosen data set.
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
        """Raise ``ValueError`` naming the first invalid field; return ``self``."""
        validation.choice("optimizer", self.optimizer, validation.OPTIMIZERS)
        validation.choice("hidden_activation", self.hidden_activation, validation.ACTIVATIONS)
        validation.choice("init", self.init, validation.INITIALIZERS)
        validation.dtype(self.dtype)
        validation.choice("keras_init", self.keras_init, KERAS_INITS)
        validation.positive_int("epochs", self.epochs)
        validation.positive_number("learning_rate", self.learning_rate)
        largest = float(np.finfo(self.dtype).max)
        if self.learning_rate > largest:  # the engines hold it in dtype: it would be inf
            raise ValueError(f"learning_rate={self.learning_rate:g} is beyond the range of {self.dtype} "
                             f"(largest {largest:.3g}); give a smaller learning_rate.")
        if self.seed is None:  # the split and the initial weights must be reproducible
            raise ValueError(f"seed must be an integer between 0 and {MAX_SEED}; got seed=None.")
        validation.seed(self.seed)
        validation.positive_int("batch_size", self.batch_size, allow_none=True)
        if self.layers is not None:
            validation.layer_widths("layers", self.layers, output_width=1)
        return self

    def with_layers(self, n_features):
        """This config with ``layers`` resolved and checked against the data's feature count."""
        layers = tuple(self.layers) if self.layers is not None else default_layers(n_features)
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
