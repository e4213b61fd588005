"""The TensorFlow/Keras twin of the NumPy network: same architecture, same weights, same training.

``keras_model`` is the notebook's function with its bug fixed; ``to_keras`` / ``from_keras`` convert
the parameters dict (the project's common currency) to and from a compiled Keras model; ``train``
trains such a model the way ``twinnet.Network.fit`` trains the NumPy network, either with Keras's
``model.fit`` (engine ``"fit"``) or with a compiled ``tf.function`` step (engine ``"tf-loop"``), so
that the two loss curves can be compared number by number. TensorFlow is imported only when one of
these functions is called.

Layouts: the parameters dict holds ``W_l`` of shape ``(n_l, n_{l-1})`` and ``b_l`` of shape
``(n_l, 1)``; a Keras ``Dense`` layer holds the transpose, a kernel of shape ``(n_{l-1}, n_l)`` and a
bias of shape ``(n_l,)``.

Why the twin agrees with the NumPy network to rounding error
-----------------------------------------------------------
- The heads. The last ``Dense`` layer has the head's activation, as a Keras user writes it, and the
  model is compiled with the head's loss and metric (:data:`KERAS_HEADS`): ``"sigmoid"`` with
  ``binary_crossentropy`` and ``accuracy``; ``"softmax"`` with ``sparse_categorical_crossentropy``
  on the integer labels and ``accuracy`` (Keras picks its sparse categorical accuracy); ``"linear"``
  with ``mean_squared_error`` and ``RootMeanSquaredError(name="rmse")``, Network's metric.
  ``predict`` therefore returns probabilities (or values), as a Keras user expects.
- The loss. Keras 3's ``binary_crossentropy`` and ``sparse_categorical_crossentropy`` in the
  TensorFlow backend do not clip the probabilities when they come from a sigmoid or a softmax:
  they recognise the activation's output (the ``Sigmoid`` or ``Softmax`` op in a compiled graph,
  or the ``_keras_logits`` attribute Keras attaches to both activations' outputs) and compute
  ``tf.nn.sigmoid_cross_entropy_with_logits`` or ``tf.nn.sparse_softmax_cross_entropy_with_logits``
  on the logits. Those are the functions ``Network`` computes, in the same order of operations
  (see :mod:`twinnet.nn.heads`). The clipping to ``[1e-7, 1 - 1e-7]`` applies only to a
  probability tensor with no logits behind it. The tests check this on saturated outputs, where
  the two differ. (A linear last layer with ``from_logits=True`` would agree too, but its
  ``predict`` would return logits, and :func:`train` reads the head from the last activation.)
  ``mean_squared_error`` is the mean over the outputs, then over the batch: ``Network``'s loss.
- The dtype. Keras casts float inputs to ``keras.config.floatx()`` (float32 by default) in
  ``fit``, ``evaluate`` and ``predict`` (its array data adapter does, before the model sees them),
  and creates the loss tracker, the compiled loss and an optimizer's learning-rate variable in
  ``floatx``, whatever the layers' dtype: a float64 model fed float64 data this way trains on
  float32-rounded inputs (about 1e-6 away from ``Network``'s curve). ``to_keras`` therefore
  returns a ``TwinSequential``, a ``keras.Sequential`` whose ``compile``, ``fit``, ``evaluate``
  and ``predict`` run with ``floatx`` set to the model's own dtype and restored on return: a
  float64 twin is float64 throughout under a plain ``model.fit(X, y)``, and the caller's
  ``floatx`` is never left changed.
- The hyperparameters. Keras rounds a Python-float momentum or beta through float32 even for
  float64 variables (see :func:`make_optimizer`); ``Network`` rounds them the same way.
- One exception: TensorFlow's ``LeakyRelu`` op stores its slope as a float32 attribute, so the
  ``leaky_relu`` of a float64 Keras model has slope ``float32(0.2) = 0.20000000298...`` where
  ``Network`` uses 0.2; float64 curves with that activation agree to about 1e-8, not 1e-15.
- The batches. ``train`` draws each epoch's batches with ``twinnet.nn.epoch_batches`` from
  ``np.random.default_rng(seed)``, exactly as ``Network.fit`` does, and feeds them in that order.

Example
-------
>>> import numpy as np
>>> from twinnet import Network, keras_twin
>>> X = np.random.default_rng(0).standard_normal((64, 3)); y = (X[:, 0] > 0).astype(int)
>>> net = Network([3, 4, 1], seed=0)
>>> model = keras_twin.to_keras(net.parameters, learning_rate=0.1)
>>> history = keras_twin.train(model, X, y, epochs=5)
>>> ours = net.fit(X, y, epochs=5, learning_rate=0.1)
>>> bool(np.allclose(history["loss"], ours.history["loss"], rtol=1e-9))
True
"""

from __future__ import annotations

import contextlib
import functools
import math
from typing import NamedTuple

import numpy as np

from twinnet import validation
from twinnet.nn import Network, epoch_batches

# Network's checks of X and y, so that the twin rejects what Network rejects, in the same words
from twinnet.nn.network import check_X, check_y
from twinnet.validation import DTYPES

__all__ = [
    "DTYPES",
    "HIDDEN_ACTIVATIONS",
    "KERAS_HEADS",
    "KERAS_OPTIMIZERS",
    "OPTIMIZERS",
    "TRAIN_ENGINES",
    "TRAIN_LOOPS",
    "floatx",
    "from_keras",
    "keras_model",
    "make_optimizer",
    "to_keras",
    "train",
]

#: Optimizer name (:data:`twinnet.validation.OPTIMIZERS`) -> the Keras optimizer class and keyword
#: arguments that ``Network``'s optimizer of that name reproduces exactly.
KERAS_OPTIMIZERS = {
    "sgd": ("SGD", {}),
    "momentum": ("SGD", {"momentum": 0.9, "nesterov": False}),
    "adam": ("Adam", {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}),
}


class KerasHead(NamedTuple):
    """How a twin's head is written in Keras: the last layer's activation, the loss and the metric."""

    activation: str
    loss: str
    metric: str  # "accuracy", or "rmse": Keras's RootMeanSquaredError under Network's name


#: Output head (:data:`twinnet.validation.OUTPUTS`) -> its Keras form (see the module's notes).
KERAS_HEADS = {
    "sigmoid": KerasHead("sigmoid", "binary_crossentropy", "accuracy"),
    "softmax": KerasHead("softmax", "sparse_categorical_crossentropy", "accuracy"),
    "linear": KerasHead("linear", "mean_squared_error", "rmse"),
}
#: How :func:`train` runs the training: Keras's ``model.fit`` or a compiled ``tf.function`` step.
TRAIN_LOOPS = ("fit", "tf-loop")
TRAIN_ENGINES = TRAIN_LOOPS  # the earlier name
# Earlier names, kept for code that used them: the vocabularies live in twinnet.validation.
OPTIMIZERS = KERAS_OPTIMIZERS
HIDDEN_ACTIVATIONS = validation.ACTIVATIONS


#: Set to a non-empty value (``twinnet ... --verbose`` does) to let TensorFlow's start-up messages through.
VERBOSE_ENV = "TWINNET_VERBOSE"


def _import_keras():
    """Import Keras 3 and TensorFlow, keeping TensorFlow's start-up messages off standard error.

    Every import of TensorFlow in twinnet goes through here, sweep workers' included. Since
    TensorFlow 2.19, ``TF_CPP_MIN_LOG_LEVEL`` no longer silences the lines its C++ libraries write
    to file descriptor 2 while they load (absl's ``WARNING: All log messages before
    absl::InitializeLog() ...``, ``I0000 ... port.cc] oneDNN custom operations are on ...``;
    tensorflow/tensorflow#100442), so the import runs with that descriptor sent to a temporary file;
    the variable is still set, for TensorFlow's later messages. With :data:`VERBOSE_ENV` set
    nothing is hidden; when the import fails, what it wrote is shown before the error.
    """
    import os
    import sys

    if "tensorflow" in sys.modules or os.environ.get(VERBOSE_ENV):
        return _import_keras_now()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _descriptor_2_captured():
        return _import_keras_now()


def _import_keras_now():
    try:
        import keras
        import tensorflow  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name not in ("keras", "tensorflow"):  # a broken installation: its own message
            raise
        raise ModuleNotFoundError(
            "TensorFlow is not installed; the Keras twin needs it: pip install 'twinnet[tf]'"
        ) from None
    return keras


@contextlib.contextmanager
def _descriptor_2_captured():
    """Send file descriptor 2 to a temporary file inside the block; if the block raises, show the file.

    Python's ``sys.stderr``, when it writes to descriptor 2, is pointed at a copy of the original
    for the block, so that other threads (a progress bar) still reach the terminal.
    """
    import os
    import sys
    import tempfile

    try:
        python_on_2 = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # a notebook's or a test's stream object
        python_on_2 = False
    with tempfile.TemporaryFile() as file:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(file.fileno(), 2)
        failed = True
        try:
            # entered just below, as the nullcontext is
            terminal = open(saved, "w", closefd=False) if python_on_2 else contextlib.nullcontext(sys.stderr)  # noqa: SIM115
            with terminal as stream, contextlib.redirect_stderr(stream):
                yield
            failed = False
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if failed:  # what the libraries wrote while failing is part of the error
                file.seek(0)
                sys.stderr.write(file.read().decode(errors="replace"))
                sys.stderr.flush()


@contextlib.contextmanager
def floatx(dtype):
    """Set ``keras.config.floatx()`` to ``dtype`` inside the block, restoring it afterwards.

    A twin from :func:`to_keras` does not need it: its own methods set ``floatx`` to its dtype.
    It remains for plain Keras models: a float64 ``keras.Sequential`` built, compiled and fitted
    inside ``with floatx("float64"):`` is float64 throughout. ``floatx`` is one setting for the
    whole process, so a model of another dtype must not be trained in another thread meanwhile.
    """
    dtype = validation.dtype(dtype).name
    keras = _import_keras()
    previous = keras.config.floatx()
    keras.config.set_floatx(dtype)
    try:
        yield
    finally:
        keras.config.set_floatx(previous)


@functools.cache
def _twin_sequential():
    """The class ``TwinSequential``, defined on first use so that importing twinnet needs no Keras."""
    keras = _import_keras()

    # Registered so that keras.models.load_model finds the class of a saved twin.
    @keras.saving.register_keras_serializable(package="twinnet")
    class TwinSequential(keras.Sequential):
        """A ``keras.Sequential`` whose data and training stay in its weights' dtype.

        Keras offers no per-model setting for this: its array data adapter casts float inputs to
        the global ``floatx()`` before the model sees them, and ``compile`` creates the loss and
        the loss tracker in ``floatx()``. These methods therefore run in ``floatx`` set to the
        model's dtype and restore the caller's on return, exceptions included. ``floatx`` is one
        setting for the whole process: other threads, and callbacks, see the model's dtype
        meanwhile. An optimizer given to ``compile`` keeps the learning-rate dtype it was made
        with (see :func:`make_optimizer`).
        """

        def _own_floatx(self):
            return floatx(_model_dtype(self))

        def compile(self, *args, **kwargs):
            with self._own_floatx():
                return super().compile(*args, **kwargs)

        def compile_from_config(self, config):
            # Keras's own method, which declines to compile a model whose compile is overridden
            # (it warns instead), so that keras.models.load_model returns a compiled twin
            with self._own_floatx():
                self.compile(**keras.saving.deserialize_keras_object(config))
                self.optimizer.build(self.trainable_variables)

        def fit(self, *args, **kwargs):
            with self._own_floatx():
                return super().fit(*args, **kwargs)

        def evaluate(self, *args, **kwargs):
            with self._own_floatx():
                return super().evaluate(*args, **kwargs)

        def predict(self, *args, **kwargs):
            with self._own_floatx():
                return super().predict(*args, **kwargs)

    return TwinSequential


def make_optimizer(name, learning_rate, *, dtype=None):
    """A Keras optimizer by twinnet name: ``"sgd"``, ``"momentum"`` (SGD, 0.9) or ``"adam"``.

    Parameters
    ----------
    name : {"sgd", "momentum", "adam"}
    learning_rate : float
    dtype : {"float32", "float64"}, optional
        Dtype of the optimizer's learning-rate variable, which should be the model's (0.03 rounded
        to float32 moves a float64 loss curve by about 1e-8); default: ``keras.config.floatx()``.

    Notes
    -----
    The hyperparameters are Keras's own Python floats. Keras 3's TensorFlow backend casts
    ``momentum``, ``beta_1`` and ``beta_2`` to the variables' dtype through float32 (``tf.cast`` of
    a Python float makes a float32 constant first), so a float64 ``SGD(momentum=0.9)`` uses
    0.8999999761581421; ``Network``'s optimizers round them the same way, so that the twin is
    Keras exactly as users write it.
    """
    validation.choice("optimizer", name, KERAS_OPTIMIZERS)
    learning_rate = validation.positive_number("learning_rate", learning_rate)
    keras = _import_keras()
    cls, options = KERAS_OPTIMIZERS[name]
    # Keras optimizers take no dtype: the learning-rate variable is created in floatx()
    with contextlib.nullcontext() if dtype is None else floatx(dtype):
        return getattr(keras.optimizers, cls)(learning_rate=learning_rate, **options)


def keras_model(layers_dims, learning_rate):
    """The notebook's Keras network: ReLU hidden layers and one sigmoid unit, compiled with SGD.

    Architecture and initializers are the notebook's: the first ``Dense`` layer keeps Keras's
    default initializers (Glorot uniform kernel, zero bias), the others draw their kernel from
    ``random_normal`` (standard deviation 0.05) with zero biases; the model is compiled with
    ``binary_crossentropy`` and the ``accuracy`` metric, in Keras's default float32.

    Parameters
    ----------
    layers_dims : list of int
        ``[n_features, n_1, ..., 1]``.
    learning_rate : float
        Learning rate of plain SGD.

    Returns
    -------
    model : keras.Sequential

    Notes
    -----
    Two corrections to the notebook. It passed ``SGD(learning_rate==learning_rate)``: the
    comparison ``True`` as the first positional argument, so Keras 2 silently trained at a
    learning rate of 1.0 and Keras 3 rejects it; here ``SGD(learning_rate=learning_rate)``. It also
    gave the input size with ``input_shape=`` on the first layer, deprecated in Keras 3; an
    ``Input`` layer does the same. (For ``layers_dims`` without a hidden layer the notebook would
    add a spurious ReLU layer; here the model is then the single sigmoid unit.)
    """
    dims = validation.layer_widths("layers_dims", layers_dims, output_width=1)
    learning_rate = validation.positive_number("learning_rate", learning_rate)
    keras = _import_keras()
    model = keras.Sequential([keras.Input(shape=(dims[0],))])
    for l in range(1, len(dims)):
        activation = "sigmoid" if l == len(dims) - 1 else "relu"
        # the notebook's first Dense layer has no initializer arguments, hence Keras's defaults
        initializers = {} if l == 1 else {"kernel_initializer": "random_normal", "bias_initializer": "zeros"}
        model.add(keras.layers.Dense(dims[l], activation=activation, **initializers))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=learning_rate),
                  loss="binary_crossentropy", metrics=["accuracy"])
    return model


def to_keras(parameters, *, learning_rate, optimizer="sgd", hidden_activation="relu", dtype="float64",
             output=None):
    """A compiled Keras model holding exactly ``parameters``.

    Parameters
    ----------
    parameters : dict
        ``W_l`` of shape ``(n_l, n_{l-1})`` and ``b_l`` of shape ``(n_l, 1)``, as
        ``Network.parameters`` returns them; checked as ``Network.from_parameters`` checks them
        (finite real values, consistent shapes, an output layer that fits the head).
    learning_rate : float
    optimizer : {"sgd", "momentum", "adam"}
        Keras ``SGD()``, ``SGD(momentum=0.9)`` or ``Adam(epsilon=1e-7)``, Network's optimizers.
    hidden_activation : {"relu", "tanh", "sigmoid", "leaky_relu"}
    dtype : {"float64", "float32"}
        Dtype of the layers, the data the model is fed, the optimizer's learning rate and the
        loss: a plain ``model.fit(X, y)`` trains in this dtype, with no ``floatx`` to set.
    output : {"sigmoid", "softmax", "linear"}, optional
        The head, as ``Network``'s ``output``: by default ``"sigmoid"`` for one output unit; an
        output layer wider than 1 needs it named.

    Returns
    -------
    model : TwinSequential
        A ``keras.Sequential`` (see the module's notes on the dtype): ``Dense`` layers with
        kernels ``W_l.T`` and biases ``b_l[:, 0]``, the last with the head's activation, compiled
        with the head's loss (computed from the logits, see the module's notes) and metric
        (:data:`KERAS_HEADS`).

    Example
    -------
    >>> from twinnet import Network, keras_twin
    >>> net = Network([4, 8, 3], output="softmax", seed=0)
    >>> model = keras_twin.to_keras(net.parameters, learning_rate=0.1, output="softmax")
    >>> model.layers[-1].activation.__name__, model.loss
    ('softmax', 'sparse_categorical_crossentropy')
    """
    validation.positive_number("learning_rate", learning_rate)
    validation.choice("optimizer", optimizer, KERAS_OPTIMIZERS)
    validation.choice("hidden_activation", hidden_activation, validation.ACTIVATIONS)
    dtype = validation.dtype(dtype).name
    # the one check of the dict (keys, shapes, widths, real and finite values in dtype) and of the
    # head against the output width, via Network, in its words
    net = Network.from_parameters(parameters, output=output, hidden_activation=hidden_activation, dtype=dtype)
    head = KERAS_HEADS[net.output]
    keras = _import_keras()
    model = _twin_sequential()([keras.Input(shape=(net.n_features,), dtype=dtype)])
    parameters, L = net.parameters, len(net.layer_dims) - 1  # copies in dtype, biases (n_l, 1)
    for l in range(1, L + 1):
        W, b = parameters[f"W{l}"], parameters[f"b{l}"]
        # zeros: the weights are overwritten below, so no random draw is wasted
        layer = keras.layers.Dense(W.shape[0], activation=head.activation if l == L else hidden_activation,
                                   dtype=dtype, kernel_initializer="zeros", bias_initializer="zeros")
        model.add(layer)
        layer.set_weights([W.T, b[:, 0]])
    model.compile(optimizer=make_optimizer(optimizer, learning_rate, dtype=dtype),
                  loss=head.loss, metrics=[_keras_metric(keras, head.metric, dtype)])
    return model


def _keras_metric(keras, name, dtype):
    # "accuracy": Keras picks binary or sparse categorical accuracy from the shapes of y and the
    # output, in compile's floatx (the model's dtype); a metric object keeps the dtype it is made with
    return keras.metrics.RootMeanSquaredError(name="rmse", dtype=dtype) if name == "rmse" else name


def _model_output(model):
    """The head of a Keras model, read from its last ``Dense`` layer's activation (:data:`KERAS_HEADS`).

    Raises
    ------
    ValueError
        When the last layer's activation is none of the heads' (``sigmoid``, ``softmax``, ``linear``).
    """
    dense = [layer for layer in model.layers if layer.weights]
    activation = getattr(dense[-1], "activation", None) if dense else None
    name = getattr(activation, "__name__", repr(activation))
    for output, head in KERAS_HEADS.items():
        if head.activation == name:
            return output
    raise ValueError(
        f"the model's last layer must have a head's activation: one of "
        f"{', '.join(repr(h.activation) for h in KERAS_HEADS.values())} (see keras_twin.KERAS_HEADS); "
        f"got {name!r}.")


def from_keras(model):
    """The parameters dict of a Keras model made of ``Dense`` layers (the inverse of ``to_keras``).

    Returns
    -------
    parameters : dict
        ``W_l = kernel.T`` of shape ``(n_l, n_{l-1})`` and ``b_l`` of shape ``(n_l, 1)``, in the
        layers' dtype.
    """
    keras = _import_keras()
    parameters = {}
    dense = [layer for layer in model.layers if layer.weights]
    for l, layer in enumerate(dense, start=1):
        if not isinstance(layer, keras.layers.Dense) or not layer.use_bias:
            raise ValueError(
                f"from_keras expects Dense layers with biases only; layer {layer.name!r} is a "
                f"{type(layer).__name__}."
            )
        kernel, bias = layer.get_weights()
        parameters[f"W{l}"] = np.ascontiguousarray(kernel.T)
        parameters[f"b{l}"] = bias.reshape(-1, 1)
    if not parameters:
        raise ValueError("from_keras: the model has no Dense layers.")
    return parameters


def _model_dtype(model):
    return str(model.trainable_variables[0].dtype)


def train(model, X, y, *, epochs, batch_size=None, shuffle=True, seed=None, loop="fit",
          on_epoch_end=None, engine=None):
    """Train a compiled twin exactly as ``Network.fit`` trains the NumPy network.

    Parameters
    ----------
    model : keras.Model
        A compiled model, e.g. from :func:`to_keras`; it is trained in place. Its head is read
        from its last layer's activation (``sigmoid``, ``softmax`` or ``linear``).
    X : ndarray of shape (m, n_features)
    y : ndarray of shape (m,) or (m, k)
        Labels 0 and 1 (sigmoid), class labels ``0 .. K-1`` (softmax), or real targets (linear,
        ``(m,)`` for one output). ``X`` and ``y`` are checked as ``Network.fit`` checks them.
    epochs : int
    batch_size : int, optional
        ``None`` or ``>= m`` trains full-batch (no shuffle), as the notebook does.
    shuffle : bool
        Shuffle the examples at each epoch (mini-batches only).
    seed : int, optional
        Seed of the batch order: the same seed as ``Network.fit`` gives the same batches.
    loop : {"fit", "tf-loop"}
        ``"fit"``: Keras's ``model.fit``. ``"tf-loop"``: a ``tf.function`` step (forward pass, the
        compiled loss, gradient tape, the model's optimizer) called from a Python loop, which
        measures TensorFlow's arithmetic without ``model.fit``'s per-epoch machinery.
    on_epoch_end : callable, optional
        Called as ``on_epoch_end(epoch, logs)`` after each epoch, as a Keras callback's method of
        that name (and as ``Network.fit`` calls it): ``epoch`` counts from 0 and ``logs`` is
        ``{"loss": float}``, the epoch's loss as ``history["loss"]`` records it.
    engine : {"fit", "tf-loop"}, optional
        The earlier name of ``loop``, kept for code that used it.

    Returns
    -------
    history : dict
        ``"loss"`` and the head's metric, ``"accuracy"`` (classifiers) or ``"rmse"`` (linear),
        one value per epoch with Keras's semantics, as ``Network.fit``'s history: the
        batch-size-weighted mean over the epoch of each batch's loss before its update, and the
        metric of the same predictions.
    """
    loop = validation.choice("loop", engine or loop, TRAIN_LOOPS)
    epochs = validation.positive_int("epochs", epochs)
    batch_size = validation.positive_int("batch_size", batch_size, allow_none=True)
    seed = validation.seed(seed)
    if on_epoch_end is not None and not callable(on_epoch_end):
        raise ValueError(f"on_epoch_end must be a callable (epoch, logs); got {on_epoch_end!r}.")
    dtype = validation.dtype(_model_dtype(model), "the model's dtype").name
    output, width = _model_output(model), int(model.outputs[0].shape[-1])
    # Network's checks of X and y; X1 is X in dtype with a column of ones appended
    X1 = check_X(X, int(model.trainable_variables[0].shape[0]), dtype)
    X = np.ascontiguousarray(X1[:, :-1])
    # y in the model's layout, rows as examples: a column of labels (m, 1), or the targets (m, k);
    # Keras would otherwise reshape y itself
    y = np.ascontiguousarray(check_y(y, X1, dtype, output=output, width=width)[0].T)
    m = X.shape[0]
    full_batch = batch_size is None or batch_size >= m
    if full_batch:
        schedule = None
    else:
        rng = np.random.default_rng(seed)
        schedule = [epoch_batches(rng, m, batch_size, shuffle) for _ in range(epochs)]
    with floatx(dtype):
        if loop == "fit":
            return _train_fit(model, X, y, epochs, schedule, on_epoch_end)
        return _train_loop(model, X, y, epochs, schedule, on_epoch_end, output)


def _train_fit(model, X, y, epochs, schedule, on_epoch_end):
    import keras
    import tensorflow as tf

    callbacks = []
    if on_epoch_end is not None:
        callbacks.append(keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: on_epoch_end(epoch, {"loss": float(logs["loss"])})))
    if schedule is None:
        # the notebook's own call: the whole training set as one batch, in its order
        history = model.fit(X, y, batch_size=X.shape[0], epochs=epochs, shuffle=False,
                            verbose=0, callbacks=callbacks)
        return _loss_first(history.history)
    # Every epoch's batches, precomputed in Network's order, as one stream of index arrays; with
    # steps_per_epoch set, Keras keeps reading the same iterator from one epoch to the next.
    lengths = [len(batch) for batches in schedule for batch in batches]
    indices = tf.RaggedTensor.from_row_lengths(np.concatenate([np.concatenate(b) for b in schedule]), lengths)
    X_t, y_t = tf.constant(X), tf.constant(y)
    stream = tf.data.Dataset.from_tensor_slices(indices).map(
        lambda idx: (tf.gather(X_t, idx), tf.gather(y_t, idx)))
    history = model.fit(stream, epochs=epochs, steps_per_epoch=len(schedule[0]), shuffle=False,
                        verbose=0, callbacks=callbacks)
    return _loss_first(history.history)


def _loss_first(history):
    # Keras orders its history by name ("accuracy" before "loss"); Network's puts the loss first
    return {"loss": history["loss"], **history}


def _sigmoid_hits(tf, p, t):
    return tf.reduce_sum(tf.cast(tf.equal(tf.cast(p > 0.5, t.dtype), t), tf.int64))  # the notebook's rule


def _softmax_hits(tf, p, t):
    return tf.reduce_sum(tf.cast(tf.equal(tf.argmax(p, axis=1), t[:, 0]), tf.int64))  # the first of equal ones


def _no_hits(tf, p, t):
    return tf.constant(0, tf.int64)  # the linear head's metric comes from the loss


#: Output head -> (its metric's name, the step's count of hits, the epoch's metric from (hits, loss sum, m)),
#: as ``Network``'s heads compute them (:mod:`twinnet.nn.heads`).
_LOOP_METRICS = {
    "sigmoid": ("accuracy", _sigmoid_hits, lambda hits, loss_sum, m: hits / m),
    "softmax": ("accuracy", _softmax_hits, lambda hits, loss_sum, m: hits / m),
    "linear": ("rmse", _no_hits, lambda hits, loss_sum, m: math.sqrt(loss_sum / m)),
}


def _train_loop(model, X, y, epochs, schedule, on_epoch_end, output):
    import tensorflow as tf

    variables = model.trainable_variables
    optimizer = model.optimizer
    optimizer.build(variables)
    metric, count_hits, epoch_metric = _LOOP_METRICS[output]
    spec = [tf.TensorSpec((None, X.shape[1]), X.dtype), tf.TensorSpec((None, y.shape[1]), y.dtype)]

    @tf.function(input_signature=spec)
    def step(x, t):
        with tf.GradientTape() as tape:
            p = model(x, training=True)
            # the compiled loss, from the logits behind the head's activation, batch mean
            loss = model.compute_loss(x=x, y=t, y_pred=p, training=True)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss, count_hits(tf, p, t)

    X_t, y_t = tf.constant(X), tf.constant(y)
    m = X.shape[0]
    history = {"loss": [], metric: []}
    for epoch in range(epochs):
        if schedule is None:  # the loss as computed, not rescaled by m / m, as Network records it
            loss, hits = step(X_t, y_t)
            loss, hits = float(loss), int(hits)
            loss_sum = loss * m
        else:
            loss_sum = hits = 0
            for idx in schedule[epoch]:
                batch_loss, batch_hits = step(tf.gather(X_t, idx), tf.gather(y_t, idx))
                loss_sum += float(batch_loss) * len(idx)  # Keras's mean weighted by batch size
                hits += int(batch_hits)
            loss = loss_sum / m
        history["loss"].append(loss)
        history[metric].append(epoch_metric(hits, loss_sum, m))
        if on_epoch_end is not None:
            on_epoch_end(epoch, {"loss": history["loss"][-1]})
    return history
