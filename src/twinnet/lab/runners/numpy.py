"""Runner of the ``numpy`` engine: ``twinnet.Network.fit``."""

from twinnet.lab.results import Trained
from twinnet.lab.runners._timing import timed


def run(config, split, initial, observe):
    from twinnet import Network

    net = Network.from_parameters(initial, output=config.output, hidden_activation=config.hidden_activation,
                                  dtype=config.dtype)
    history, seconds = timed(lambda: net.fit(
        split.X_train, split.y_train, epochs=config.epochs, learning_rate=config.learning_rate,
        batch_size=config.batch_size, optimizer=config.optimizer, seed=config.seed,
        on_epoch_end=lambda epoch, logs: observe(epoch + 1, lambda: net.parameters)))
    return Trained(list(history.history["loss"]), net.parameters, seconds)
