"""The trainer contract (twinnet.nn.trainer): the pieces Network.fit and both twins share.

Network.fit's own tests (test_network, test_callbacks) and the twins' agreement tests run through
these pieces; here each is held to its rule on cases small enough to compute by hand.
"""

import numpy as np
import pytest

from twinnet import Network
from twinnet.nn import trainer
from twinnet.nn.callbacks import Callback
from twinnet.nn.heads import HEADS


def test_an_epochs_loss_is_the_batch_size_weighted_mean_and_a_full_batch_is_as_computed():
    losses = {0: (0.5, 3), 1: (2.0, 1)}  # batch -> (its loss, its metric's sum)
    loss, total = trainer.epoch_mean(lambda b: losses[b], [0, 1], m=5, rows=lambda b: 4 if b == 0 else 1)
    assert loss == (0.5 * 4 + 2.0 * 1) / 5 and total == 4
    assert trainer.epoch_mean(lambda b: (0.1, 7), [None], m=3) == (0.1, 7)  # not rescaled by m / m


def test_the_history_has_the_loss_the_heads_metric_and_their_validation():
    assert trainer.history_names(HEADS["softmax"], False) == ["loss", "accuracy"]
    assert trainer.history_names(HEADS["linear"], True) == ["loss", "rmse", "val_loss", "val_rmse"]


class _Recorder(Callback):
    def __init__(self):
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append(("begin", logs))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append((epoch, dict(logs)))
        if epoch == 1:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        self.calls.append(("end", logs))


def test_run_epochs_drives_callbacks_as_keras_and_stops_when_asked():
    class Model:
        stop_training = True  # reset by run_epochs

    recorder, seen = _Recorder(), []
    callbacks = trainer.CallbackList([recorder], Model(), {"epochs": 5}, lambda epoch, logs: seen.append(logs),
                                     loss_only=True)
    history = {"loss": [], "accuracy": []}
    trainer.run_epochs(recorder.model, callbacks, 5, lambda epoch: (1.0 / (epoch + 1), 2), HEADS["sigmoid"], 4,
                       ["loss", "accuracy"], history)
    assert history == {"loss": [1.0, 0.5], "accuracy": [0.5, 0.5]}  # stopped after epoch 1
    assert recorder.params == {"epochs": 5} and seen == [{"loss": 1.0}, {"loss": 0.5}]
    assert recorder.calls == [("begin", {}), (0, {"loss": 1.0, "accuracy": 0.5}), (1, {"loss": 0.5, "accuracy": 0.5}),
                              ("end", {"loss": 0.5, "accuracy": 0.5})]


def test_parameters_of_other_widths_are_refused_naming_both():
    parameters = Network([3, 4, 1], seed=0).parameters
    layers = trainer.parameter_layers(parameters, [3, 4, 1], np.float64, "twin")
    assert [W.shape for W, _ in layers] == [(4, 3), (1, 4)]
    with pytest.raises(ValueError, match=r"parameters have the widths \[3, 4, 1\]; this twin has \[3, 5, 1\]\."):
        trainer.parameter_layers(parameters, [3, 5, 1], np.float64, "twin")


def test_as_parameters_packs_weights_and_gradients_with_column_biases():
    packed = trainer.as_parameters([(np.ones((2, 3)), np.zeros(2))], "d")
    assert list(packed) == ["dW1", "db1"] and packed["db1"].shape == (2, 1)


@pytest.mark.parametrize("masks, rates, match", [
    ([np.ones((4, 2))], [0.0], r"masks are dropout's keep masks, but this Network has no dropout"),
    (np.ones((4, 2)), [0.5], r"masks must be a list of 1 keep masks"),
    ([np.ones((4, 2))], [0.0, 0.5], r"masks must be a list of 2 keep masks"),
    ([np.full((4, 2), 0.5)], [0.5], r"masks\[0\] must be 0/1 of shape \(4, 2\)"),
])
def test_masks_are_checked_in_one_wording(masks, rates, match):
    with pytest.raises(ValueError, match=match):
        trainer.check_masks(masks, [2] * len(rates), rates, 4)
