"""Callbacks: EarlyStopping against Keras's on the same logs, LambdaCallback, bad input."""

import math

import numpy as np
import pytest

from twinnet.nn.callbacks import Callback, EarlyStopping, LambdaCallback, check_callbacks
from twinnet.validation import InvalidArgument


# --------------------------------------------------------------------------- a fit loop and its models
class Model:
    """What ``Network.fit`` gives its callbacks; the "weights" are the number of epochs trained."""

    def __init__(self):
        self.stop_training = False
        self.weight = 0

    @property
    def parameters(self):
        return {"W1": np.array([[float(self.weight)]]), "b1": np.zeros((1, 1))}

    def set_parameters(self, parameters):
        self.weight = int(parameters["W1"][0, 0])


class KerasModel(Model):
    """The same for Keras's callback: ``get_weights`` / ``set_weights``, and the metrics whose
    direction Keras's ``mode="auto"`` reads (``_direction``: up for accuracy, down for rmse)."""

    def __init__(self, keras):
        super().__init__()
        from keras.src.trainers.compile_utils import MetricsList

        self.metrics = [MetricsList([keras.metrics.BinaryAccuracy(name="accuracy"),
                                     keras.metrics.RootMeanSquaredError(name="rmse")])]

    def get_weights(self):
        return [np.array([[float(self.weight)]]), np.zeros((1, 1))]

    def set_weights(self, weights):
        self.weight = int(weights[0][0, 0])


def fit(callback, model, logs, fits=1):
    """Keras's fit loop over precomputed logs, called as its CallbackList calls; epoch ``e`` ends at weights e + 1."""
    outcomes = []
    for _ in range(fits):
        model.stop_training, model.weight = False, 0
        callback.set_model(model)
        callback.on_train_begin({})
        epochs, epoch_logs = 0, {}
        for epoch, epoch_logs in enumerate(logs):
            callback.on_epoch_begin(epoch, {})
            model.weight = epoch + 1
            callback.on_epoch_end(epoch, dict(epoch_logs))
            epochs += 1
            if model.stop_training:
                break
        callback.on_train_end(dict(epoch_logs))
        attributes = {key: getattr(callback, key, None) for key in ("stopped_epoch", "best_epoch", "best", "wait")}
        outcomes.append({"epochs": epochs, "weights": model.weight, **attributes})
    return outcomes


def logs_of(monitor, values):
    """Each epoch's logs: the monitored values, among others that must not matter."""
    others = {"loss": 0.5, "accuracy": 0.5} if monitor.startswith("val_") else {"loss": 0.5, "accuracy": 0.5,
                                                                                  "val_loss": 0.4}
    return [{**others, monitor: value} for value in values]


NOISY = [1.0, 0.8, 0.85, 0.79, 0.9, 0.95, 0.78, 0.99, 1.0, 1.1]
#: (name, EarlyStopping's arguments but restore_best_weights, the monitored values, fits).
CASES = [
    ("improving", dict(monitor="loss"), [1.0, 0.9, 0.8, 0.7, 0.6, 0.5], 1),
    ("plateau", dict(patience=2), [1.0, 0.8, 0.8, 0.8, 0.8, 0.8], 1),
    ("noisy", dict(patience=2), NOISY, 1),
    ("noisy, patience 3", dict(patience=3), NOISY, 1),
    ("noisy, patience 0", dict(), NOISY, 1),
    ("worse at once", dict(patience=0), [1.0, 1.1, 0.5], 1),
    ("baseline never reached", dict(patience=2, baseline=0.5), [1.0, 0.9, 0.8, 0.7, 0.75, 0.8, 0.9], 1),
    ("baseline never reached, still improving", dict(patience=1, baseline=0.1), [1.0, 0.9, 0.8, 0.7, 0.6], 1),
    ("baseline reached", dict(patience=2, baseline=0.75), [1.0, 0.9, 0.8, 0.7, 0.72, 0.71, 0.73, 0.74], 1),
    ("start_from_epoch", dict(patience=1, start_from_epoch=3), [1.0, 2.0, 3.0, 0.9, 0.95, 0.97, 0.5], 1),
    ("start_from_epoch past the end", dict(start_from_epoch=10), [1.0, 2.0, 3.0], 1),
    ("min_delta", dict(patience=1, min_delta=0.05), [1.0, 0.97, 0.94, 0.90, 0.89, 0.88, 0.87], 1),
    ("min_delta negative", dict(patience=1, min_delta=-0.05), [1.0, 0.97, 0.94, 0.90, 0.89, 0.88, 0.87], 1),
    ("mode max", dict(monitor="accuracy", mode="max", patience=2), [0.5, 0.6, 0.6, 0.55, 0.7, 0.69, 0.68, 0.67], 1),
    ("mode auto, accuracy", dict(monitor="val_accuracy", patience=2), [0.5, 0.6, 0.6, 0.55, 0.7, 0.69, 0.68, 0.67], 1),
    ("mode auto, rmse", dict(monitor="val_rmse", patience=1), [3.0, 2.0, 2.5, 1.5, 1.6, 1.7], 1),
    ("mode min on accuracy", dict(monitor="accuracy", mode="min", patience=1), [0.5, 0.6, 0.4, 0.45, 0.5], 1),
    ("baseline, mode max", dict(monitor="accuracy", mode="max", patience=1, baseline=0.9), [0.5, 0.6, 0.95, 0.9], 1),
    ("min_delta, mode max", dict(monitor="accuracy", mode="max", patience=1, min_delta=0.02),
     [0.5, 0.51, 0.52, 0.55, 0.56, 0.565], 1),
    # Keras compares in float32: 1e-12 less is no improvement
    ("float32 ties", dict(monitor="loss", patience=1), [0.3, 0.3 - 1e-12, 0.3 - 2e-12, 0.3 - 3e-12], 1),
    ("nan", dict(patience=2), [1.0, math.nan, 0.9, math.nan, math.nan, math.nan], 1),
    ("reused for a second fit", dict(patience=1), [1.0, 0.9, 0.95, 0.97, 0.5], 2),
]


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")  # TensorFlow is installed wherever these tests run (CI)


@pytest.mark.tf
@pytest.mark.exact
@pytest.mark.parametrize("restore_best_weights", [False, True], ids=["last-weights", "restore"])
@pytest.mark.parametrize("name, kwargs, values, fits", CASES, ids=[case[0] for case in CASES])
def test_early_stopping_as_keras(name, kwargs, values, fits, restore_best_weights, keras, capsys):
    """Same logs, same weights: the same epochs run, stop, best epoch and value, wait, restored weights, messages."""
    kwargs = {**kwargs, "restore_best_weights": restore_best_weights, "verbose": 1}
    logs = logs_of(kwargs.get("monitor", "val_loss"), values)
    mine = fit(EarlyStopping(**kwargs), Model(), logs, fits)
    printed = capsys.readouterr().out
    theirs = fit(keras.callbacks.EarlyStopping(**kwargs), KerasModel(keras), logs, fits)
    assert mine == theirs
    assert printed == capsys.readouterr().out
    if restore_best_weights and mine[-1]["best"] is not None:
        assert mine[-1]["weights"] == mine[-1]["best_epoch"] + 1


@pytest.mark.tf
def test_keras_only_warns_about_a_missing_metric_we_refuse_it(keras):
    logs = [{"loss": 0.5, "accuracy": 0.5}] * 3
    with pytest.warns(UserWarning, match="Early stopping conditioned on metric `val_loss` which is not available"):
        assert fit(keras.callbacks.EarlyStopping(), KerasModel(keras), logs)[0]["epochs"] == 3
    with pytest.raises(InvalidArgument, match="no 'val_loss' in this fit's logs"):
        fit(EarlyStopping(), Model(), logs)


def test_early_stopping_by_hand():
    stop = EarlyStopping(monitor="loss", patience=2, restore_best_weights=True)
    model = Model()
    # epoch 0: best 0.9; 1: best 0.7 (wait 0); 2: wait 1; 3: wait 2 >= patience: stop, restore epoch 1's weights
    [outcome] = fit(stop, model, logs_of("loss", [0.9, 0.7, 0.71, 0.72, 0.5]))
    assert outcome == {"epochs": 4, "stopped_epoch": 3, "best_epoch": 1, "best": 0.7, "wait": 2, "weights": 2}
    assert stop.best_weights["W1"][0, 0] == 2


@pytest.mark.parametrize("monitor, logs, match", [
    ("val_accuracy", {"loss": 0.5, "accuracy": 0.5},
     r"EarlyStopping\(monitor='val_accuracy'\): no 'val_accuracy' in this fit's logs; available: loss, accuracy. "
     r"Pass validation_data to fit for val_\* metrics."),
    ("accuracy", {"loss": 0.5, "rmse": 0.5, "val_loss": 0.4, "val_rmse": 0.4},
     r"no 'accuracy' in this fit's logs; available: loss, rmse, val_loss, val_rmse.$"),
])
def test_a_metric_never_logged_is_an_error(monitor, logs, match):
    with pytest.raises(InvalidArgument, match=match) as error:
        fit(EarlyStopping(monitor=monitor), Model(), [logs])
    assert error.value.argument == "monitor"


@pytest.mark.parametrize("kwargs, match", [
    (dict(monitor=""), "monitor must be the name of a logged metric such as 'val_loss'"),
    (dict(monitor=None), "monitor must be the name of a logged metric"),
    (dict(mode="maximum"), r"Unknown mode 'maximum'. Expected one of: 'auto', 'min', 'max'"),
    (dict(monitor="val_f1"), r"EarlyStopping\(monitor='val_f1', mode='auto'\): cannot tell whether 'val_f1' should "
                             r"decrease or increase; .* Pass mode='min' or mode='max'."),
    (dict(patience=-1), "patience must be an integer >= 0; got patience=-1"),
    (dict(patience=1.5), "patience must be an integer >= 0"),
    (dict(patience=True), "patience must be an integer >= 0"),
    (dict(start_from_epoch=-2), "start_from_epoch must be an integer >= 0"),
    (dict(verbose="yes"), "verbose must be an integer >= 0"),
    (dict(min_delta=math.nan), "min_delta must be a finite number; got min_delta=nan"),
    (dict(min_delta="0.1"), "min_delta must be a finite number"),
    (dict(baseline=math.inf), "baseline must be None or a finite number; got baseline=inf"),
    (dict(restore_best_weights="yes"), "restore_best_weights must be True or False"),
])
def test_early_stopping_refuses_bad_arguments(kwargs, match):
    with pytest.raises(InvalidArgument, match=match):
        EarlyStopping(**kwargs)


# --------------------------------------------------------------------------- Callback, LambdaCallback
def test_lambda_callback_calls_its_functions():
    calls = []
    callback = LambdaCallback(on_train_begin=lambda logs: calls.append("begin"),
                              on_epoch_begin=lambda epoch, logs: calls.append(("epoch", epoch)),
                              on_epoch_end=lambda epoch, logs: calls.append((epoch, logs["loss"])),
                              on_train_end=lambda logs: calls.append("end"))
    fit(callback, Model(), logs_of("loss", [0.3, 0.2]))
    assert calls == ["begin", ("epoch", 0), (0, 0.3), ("epoch", 1), (1, 0.2), "end"]
    callback.on_train_end()  # without logs, the function still gets a dict, as from Keras's fit
    assert calls[-1] == "end"
    empty = LambdaCallback()
    empty.on_epoch_end(0, {})  # the base class's hooks do nothing
    assert isinstance(empty, Callback) and empty.model is None and empty.params is None


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(on_epoch_end=3), InvalidArgument, "on_epoch_end must be a callable or None; got on_epoch_end=3"),
    (dict(on_train_batch_end=print), InvalidArgument,
     r"LambdaCallback\(on_train_batch_end=...\): twinnet's fit calls no batch hooks"),
    (dict(on_epoch_ends=print), TypeError, "unexpected keyword argument 'on_epoch_ends'"),
])
def test_lambda_callback_refuses_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        LambdaCallback(**kwargs)


def test_a_subclass_without_super_init_still_works():
    class Counter(Callback):
        def __init__(self):
            self.epochs = 0

        def on_epoch_end(self, epoch, logs=None):
            self.epochs += 1

    counter = Counter()
    counter.set_model("model")
    counter.set_params({"epochs": 2})
    assert counter.model == "model" and counter.params == {"epochs": 2}


def test_check_callbacks():
    stop = EarlyStopping()
    assert check_callbacks(None) == [] and check_callbacks(stop) == [stop] and check_callbacks((stop,)) == [stop]
    with pytest.raises(InvalidArgument, match=r"callbacks\[1\] must be a twinnet.nn.callbacks.Callback .*got builtins"):
        check_callbacks([stop, print])
    with pytest.raises(InvalidArgument, match="callbacks must be a list of twinnet.nn.callbacks.Callback objects"):
        check_callbacks("early")


@pytest.mark.tf
def test_check_callbacks_points_from_keras_to_twinnet(keras):
    with pytest.raises(InvalidArgument, match=r"got keras\.src\.callbacks\.early_stopping\.EarlyStopping\. "
                                              r"Use twinnet\.nn\.callbacks\.EarlyStopping instead\."):
        check_callbacks([keras.callbacks.EarlyStopping()])
