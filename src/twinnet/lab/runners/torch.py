"""Runner of the ``torch`` engine: the PyTorch twin (``twinnet.torch_twin``)."""

from twinnet.lab.results import Trained
from twinnet.lab.runners._control import dropout_note, early_stopping, stopped
from twinnet.lab.runners._timing import timed
from twinnet.lab.runners.keras import regularization


def run(config, split, initial, observe):
    from twinnet import torch_twin

    twin = torch_twin.to_torch(initial, learning_rate=config.schedule(), optimizer=config.optimizer,
                               hidden_activation=config.hidden_activation, dtype=config.dtype, output=config.output,
                               **regularization(config))
    # One untimed epoch of a throwaway copy: torch initializes its kernels and autograd on first
    # use in a process, a cost that is not this run's.
    torch_twin.train(torch_twin.to_torch(initial, learning_rate=config.learning_rate, dtype=config.dtype,
                                         output=config.output, batch_norm=config.batch_norm),
                     split.X_train[:2], split.y_train[:2], epochs=1)
    callbacks, callback = early_stopping(config)
    control = {} if callbacks is None else {"validation_data": split.validation_data, "callbacks": callbacks}
    history, seconds = timed(lambda: torch_twin.train(
        twin, split.X_train, split.y_train, epochs=config.epochs, batch_size=config.batch_size,
        seed=config.seed, **control,
        on_epoch_end=lambda epoch, logs: observe(epoch + 1, lambda: torch_twin.from_torch(twin))))
    notes = [dropout_note(config, "PyTorch")] if config.dropout else []
    return Trained(history["loss"], torch_twin.from_torch(twin), seconds, same_trajectory=not config.dropout,
                   note="; ".join(notes) or None, **stopped(callback))
