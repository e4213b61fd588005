"""Runners of the ``keras`` and ``tf-loop`` engines: the Keras twin (``twinnet.keras_twin``)."""

from twinnet.lab.results import Trained
from twinnet.lab.runners._control import dropout_note, early_stopping, stopped
from twinnet.lab.runners._timing import timed


def regularization(config):
    """The twins' ``l2``, ``dropout`` and ``batch_norm`` keywords of ``config``, only those it sets (the defaults
    are the twins')."""
    return {key: getattr(config, key) for key in ("l2", "dropout", "batch_norm") if getattr(config, key)}


def _model(config, initial):
    from twinnet import keras_twin, quiet

    if config.keras_init == "same":
        return keras_twin.to_keras(initial, learning_rate=config.schedule(), optimizer=config.optimizer,
                                   hidden_activation=config.hidden_activation, dtype=config.dtype,
                                   output=config.output, **regularization(config)), None
    keras = quiet.import_keras()
    # Keras's global seed makes the notebook's unseeded initializers reproducible
    keras.utils.set_random_seed(config.seed)
    return keras_twin.keras_model(list(config.layers), config.learning_rate), \
        "notebook's keras_model: Keras's own initialization, float32"


def _run(config, split, initial, observe, how):
    from twinnet import keras_twin

    model, note = _model(config, initial)
    callbacks, callback = early_stopping(config)
    control = {} if callbacks is None else {"validation_data": split.validation_data, "callbacks": callbacks}
    history, seconds = timed(lambda: keras_twin.train(
        model, split.X_train, split.y_train, epochs=config.epochs, batch_size=config.batch_size,
        seed=config.seed, loop=how, **control,
        on_epoch_end=lambda epoch, logs: observe(epoch + 1, lambda: keras_twin.from_keras(model))))
    same = note is None and not config.dropout
    if config.dropout and note is None:
        note = dropout_note(config, "Keras")
    return Trained(list(history["loss"]), keras_twin.from_keras(model), seconds,
                   same_trajectory=same, note=note, **stopped(callback))


def run_fit(config, split, initial, observe):
    """Keras's ``model.fit``."""
    return _run(config, split, initial, observe, "fit")


def run_loop(config, split, initial, observe):
    """A compiled ``tf.function`` step called from a Python loop."""
    return _run(config, split, initial, observe, "tf-loop")
