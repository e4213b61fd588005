"""Runner of the ``numpy`` engine: ``twinnet.Network.fit``."""

from twinnet.lab.results import Trained
from twinnet.lab.runners._control import early_stopping, stopped
from twinnet.lab.runners._timing import timed


def run(config, split, initial, observe):
    from twinnet import Network

    net = Network.from_parameters(initial, output=config.output, hidden_activation=config.hidden_activation,
                                  l2=config.l2, dropout=config.dropout, batch_norm=config.batch_norm,
                                  dtype=config.dtype)
    callbacks, callback = early_stopping(config)
    history, seconds = timed(lambda: net.fit(
        split.X_train, split.y_train, epochs=config.epochs, learning_rate=config.schedule(),
        batch_size=config.batch_size, optimizer=config.optimizer, seed=config.seed,
        validation_data=split.validation_data, callbacks=callbacks,
        on_epoch_end=lambda epoch, logs: observe(epoch + 1, lambda: net.parameters)))
    return Trained(list(history.history["loss"]), net.parameters, seconds, **stopped(callback))
