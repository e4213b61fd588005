"""The TensorFlow/Keras twin of the NumPy network: same architecture, same weights, same training.

``keras_model`` is the notebook's function with its bug fixed; ``to_keras`` / ``from_keras`` convert
the parameters dict (the project's common currency) to and from a compiled Keras model; ``train``
trains such a model the way ``twinnet.Network.fit`` trains the NumPy network, either with Keras's
``model.fit`` (loop ``"fit"``) or with a compiled ``tf.function`` step (loop ``"tf-loop"``), so
that the two loss curves can be compared number by number (why they agree: ``docs/twins.md``).
TensorFlow is imported only when one of these functions is called.

Layouts: the parameters dict holds ``W_l`` of shape ``(n_l, n_{l-1})`` and ``b_l`` of shape
``(n_l, 1)``; a Keras ``Dense`` layer holds the transpose, a kernel of shape ``(n_{l-1}, n_l)`` and a
bias of shape ``(n_l,)``.

Examples
--------
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
import itertools

import numpy as np

from twinnet import quiet, validation
from twinnet.nn import Network, epoch_batches, trainer
from twinnet.nn.batchnorm import MOVING, BatchNorm
from twinnet.nn.callbacks import METRIC_MODES, EarlyStopping
from twinnet.nn.heads import HEADS
from twinnet.nn.optimizers import OPTIMIZERS as _OPTIMIZERS
from twinnet.nn.optimizers import get_optimizer

# Network's checks of X and y, so that the twin rejects what Network rejects, in the same words
from twinnet.nn.network import check_X, check_y
from twinnet.nn.schedules import SCHEDULES, LearningRateSchedule, check_learning_rate

__all__ = [
    "KERAS_OPTIMIZERS",
    "TRAIN_LOOPS",
    "floatx",
    "from_keras",
    "gradients",
    "keras_model",
    "keras_schedule",
    "make_optimizer",
    "to_keras",
    "train",
]

#: Optimizer name (:data:`twinnet.validation.OPTIMIZERS`) -> the Keras optimizer class and keyword
#: arguments that ``Network``'s optimizer of that name reproduces exactly: its class's ``keras`` and
#: its defaults (the one table, :func:`twinnet.nn.optimizers.defaults`).
KERAS_OPTIMIZERS = {name: (cls.keras, cls().get_config()) for name, cls in _OPTIMIZERS.items()}
#: How :func:`train` runs the training: Keras's ``model.fit`` or a compiled ``tf.function`` step.
TRAIN_LOOPS = ("fit", "tf-loop")


@contextlib.contextmanager
def floatx(dtype):
    """Set ``keras.config.floatx()`` to ``dtype`` inside the block, restoring it afterwards.

    A twin from :func:`to_keras` does not need it: its own methods set ``floatx`` to its dtype.
    It remains for plain Keras models: a float64 ``keras.Sequential`` built, compiled and fitted
    inside ``with floatx("float64"):`` is float64 throughout. ``floatx`` is one setting for the
    whole process, so a model of another dtype must not be trained in another thread meanwhile.
    """
    dtype = validation.dtype(dtype).name
    keras = quiet.import_keras()
    previous = keras.config.floatx()
    keras.config.set_floatx(dtype)
    try:
        yield
    finally:
        keras.config.set_floatx(previous)


@functools.cache
def _twin_sequential():
    """The class ``TwinSequential``, defined on first use so that importing twinnet needs no Keras."""
    keras = quiet.import_keras()

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
    """A Keras optimizer by twinnet name (``"sgd"``, ``"momentum"``: SGD, 0.9, ...) or for an optimizer object.

    Parameters
    ----------
    name : {"sgd", "momentum", "adam", "rmsprop"} or twinnet.nn.Optimizer
        A name has Keras's defaults; an object (``twinnet.nn.RMSprop(centered=True)``) its own
        hyperparameters (its class's ``keras`` with its ``get_config()``).
    learning_rate : float or LearningRateSchedule
        A constant, or a schedule from :mod:`twinnet.nn.schedules`, which becomes Keras's own
        schedule of the same class (see :func:`keras_schedule`).
    dtype : {"float32", "float64"}, optional
        Dtype of the optimizer's learning-rate variable, which should be the model's (0.03 rounded
        to float32 moves a float64 loss curve by about 1e-8); default: ``keras.config.floatx()``.
        A schedule's values are float32 whatever the dtype, as Keras computes them.

    Notes
    -----
    The hyperparameters are Keras's own Python floats. Keras 3's TensorFlow backend casts
    ``momentum``, ``beta_1`` and ``beta_2`` to the variables' dtype through float32 (``tf.cast`` of
    a Python float makes a float32 constant first), so a float64 ``SGD(momentum=0.9)`` uses
    0.8999999761581421; ``Network``'s optimizers round them the same way, so that the twin is
    Keras exactly as users write it.
    """
    optimizer = get_optimizer(name)
    learning_rate = check_learning_rate(learning_rate)
    keras = quiet.import_keras()
    if isinstance(learning_rate, LearningRateSchedule):
        learning_rate = keras_schedule(learning_rate)
    # Keras optimizers take no dtype: the learning-rate variable is created in floatx()
    with contextlib.nullcontext() if dtype is None else floatx(dtype):
        return getattr(keras.optimizers, optimizer.keras)(learning_rate=learning_rate, **optimizer.get_config())


def keras_schedule(schedule):
    """Keras's own learning-rate schedule of a twinnet schedule's class, from its ``get_config()``.

    Parameters
    ----------
    schedule : LearningRateSchedule
        One of :data:`twinnet.nn.schedules.SCHEDULES` (``ExponentialDecay``, ``InverseTimeDecay``,
        ``PiecewiseConstantDecay``, ``CosineDecay``).

    Returns
    -------
    keras.optimizers.schedules.LearningRateSchedule
        ``keras.optimizers.schedules.<Class>.from_config(schedule.get_config())``.

    Examples
    --------
    >>> from twinnet.nn.schedules import ExponentialDecay
    >>> keras_schedule(ExponentialDecay(0.1, decay_steps=100, decay_rate=0.5)).get_config()["decay_rate"]
    0.5
    """
    # the classes themselves: a subclass may compute other values than Keras's class of its name
    if type(schedule) not in SCHEDULES.values():
        names = ", ".join(cls.__name__ for cls in SCHEDULES.values())
        raise validation.InvalidArgument(
            "learning_rate", f"a float or one of twinnet's schedules {names}", schedule,
            f"learning_rate must be a float or a schedule with a Keras twin ({names} from "
            f"twinnet.nn.schedules); got {type(schedule).__module__}.{type(schedule).__qualname__}.")
    keras = quiet.import_keras()
    return getattr(keras.optimizers.schedules, type(schedule).__name__).from_config(schedule.get_config())


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
    keras = quiet.import_keras()
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
             output=None, l2=0.0, dropout=0.0, batch_norm=False):
    """A compiled Keras model holding exactly ``parameters``.

    Parameters
    ----------
    parameters : dict
        ``W_l`` of shape ``(n_l, n_{l-1})`` and ``b_l`` of shape ``(n_l, 1)``, as
        ``Network.parameters`` returns them; checked as ``Network.from_parameters`` checks them
        (finite real values, consistent shapes, an output layer that fits the head).
    learning_rate : float or LearningRateSchedule
        A constant, or a schedule from :mod:`twinnet.nn.schedules`, which becomes Keras's own
        schedule of that class (:func:`keras_schedule`).
    optimizer : {"sgd", "momentum", "adam", "rmsprop"} or twinnet.nn.Optimizer
        Keras ``SGD()``, ``SGD(momentum=0.9)``, ``Adam(epsilon=1e-7)`` or ``RMSprop()``, Network's
        optimizers; an optimizer object gives its own hyperparameters (:func:`make_optimizer`).
    hidden_activation : {"relu", "tanh", "sigmoid", "leaky_relu"}
    dtype : {"float64", "float32"}
        Dtype of the layers, the data the model is fed, the optimizer's learning rate and the
        loss: a plain ``model.fit(X, y)`` trains in this dtype, with no ``floatx`` to set.
    output : {"sigmoid", "softmax", "linear"}, optional
        The head, as ``Network``'s ``output``: by default ``"sigmoid"`` for one output unit; an
        output layer wider than 1 needs it named.
    l2 : float, default=0.0
        As ``Network``'s: every ``Dense`` layer gets ``kernel_regularizer=keras.regularizers.L2(l2)``
        (Keras weighs the penalty by ``l2`` rounded to float32: see the module's notes).
    dropout : float or list of float, default=0.0
        As ``Network``'s, one rate or one per hidden layer: ``keras.layers.Dropout(rate)`` after
        each hidden layer's activation whose rate is not 0.
    batch_norm : bool or BatchNorm, default=False
        As ``Network``'s: each hidden layer becomes ``Dense(use_bias=False)``, then
        ``keras.layers.BatchNormalization`` with the same ``momentum``, ``epsilon``, ``center``
        and ``scale`` and the dict's ``gamma_l``, ``beta_l``, ``moving_mean_l`` and
        ``moving_variance_l``, then ``keras.layers.Activation(hidden_activation)``.

    Returns
    -------
    model : TwinSequential
        A ``keras.Sequential`` (see the module's notes on the dtype): ``Dense`` layers with
        kernels ``W_l.T`` and biases ``b_l[:, 0]``, the last with the head's activation, compiled
        with the head's loss (computed from the logits, see the module's notes) and metric
        (``HEADS[output].keras``).

    Examples
    --------
    >>> from twinnet import Network, keras_twin
    >>> net = Network([4, 8, 3], output="softmax", seed=0)
    >>> model = keras_twin.to_keras(net.parameters, learning_rate=0.1, output="softmax", dropout=0.5)
    >>> [layer.__class__.__name__ for layer in model.layers], model.loss
    (['Dense', 'Dropout', 'Dense'], 'sparse_categorical_crossentropy')
    """
    learning_rate = check_learning_rate(learning_rate)
    optimizer = get_optimizer(optimizer)
    # the one check of the dict (keys, shapes, widths, real and finite values in dtype), of the head
    # against the output width, of the activation, dtype, l2 and dropout rates, via Network, in its words
    net = Network.from_parameters(parameters, output=output, hidden_activation=hidden_activation, l2=l2,
                                  dropout=dropout, batch_norm=batch_norm, dtype=dtype)
    head, dtype, rates = HEADS[net.output].keras, net.dtype.name, net.dropout_rates
    L = len(net.layer_dims) - 1
    keras = quiet.import_keras()
    model = _twin_sequential()([keras.Input(shape=(net.n_features,), dtype=dtype)])
    for l in range(1, L + 1):
        normalized = net.batch_norm and l < L
        # zeros: the weights are set below, so no random draw is wasted
        activation = head.activation if l == L else None if normalized else hidden_activation
        model.add(keras.layers.Dense(net.layer_dims[l], activation=activation, use_bias=not normalized, dtype=dtype,
                                     kernel_initializer="zeros", bias_initializer="zeros",
                                     kernel_regularizer=keras.regularizers.L2(net.l2) if net.l2 else None))
        if normalized:
            model.add(keras.layers.BatchNormalization(**net.batch_norm.get_config(), dtype=dtype))
            model.add(keras.layers.Activation(hidden_activation, dtype=dtype))
        if l < L and rates[l - 1]:
            model.add(keras.layers.Dropout(rates[l - 1], dtype=dtype))
    _set_parameters(model, net.parameters)
    model.compile(optimizer=make_optimizer(optimizer, learning_rate, dtype=dtype),
                  loss=head.loss, metrics=[_keras_metric(keras, head.metric, dtype)])
    return model


def _keras_metric(keras, name, dtype):
    # "accuracy": Keras picks binary or sparse categorical accuracy from the shapes of y and the
    # output, in compile's floatx (the model's dtype); a metric object keeps the dtype it is made with
    return keras.metrics.RootMeanSquaredError(name="rmse", dtype=dtype) if name == "rmse" else name


def _model_output(model):
    """The head of a Keras model, read from its last ``Dense`` layer's activation (``HEADS[output].keras``).

    Raises
    ------
    ValueError
        When the last layer's activation is none of the heads' (``sigmoid``, ``softmax``, ``linear``).
    """
    dense = [layer for layer in model.layers if layer.weights]
    activation = getattr(dense[-1], "activation", None) if dense else None
    name = getattr(activation, "__name__", repr(activation))
    for output, head in HEADS.items():
        if head.keras.activation == name:
            return output
    raise ValueError(
        f"the model's last layer must have a head's activation: one of "
        f"{', '.join(repr(h.keras.activation) for h in HEADS.values())} (see twinnet.nn.heads.HEADS); "
        f"got {name!r}.")


def from_keras(model):
    """The parameters dict of a Keras model made of ``Dense`` layers (the inverse of ``to_keras``).

    Returns
    -------
    parameters : dict
        ``W_l = kernel.T`` of shape ``(n_l, n_{l-1})`` and ``b_l`` of shape ``(n_l, 1)``, in the
        layers' dtype; for a ``Dense`` without bias followed by ``BatchNormalization``, instead of
        ``b_l``, its ``gamma_l``, ``beta_l`` (as it has them), ``moving_mean_l`` and
        ``moving_variance_l``, each of shape ``(n_l, 1)``.
    """
    return _model_parameters(model, lambda variable: variable.numpy())


def _structure(model):
    """Per ``Dense`` layer ``[dense, its BatchNormalization or None, its dropout rate]``, checked as
    :func:`to_keras` builds them: a ``Dense`` without bias is followed by a ``BatchNormalization``,
    an ``Activation`` and at most one ``Dropout``; a ``Dense`` with one by at most one ``Dropout``."""
    keras = quiet.import_keras()
    layers = []
    for layer in model.layers:
        last = layers[-1] if layers else None
        if isinstance(layer, keras.layers.Dense):
            layers.append([layer, None, 0.0])
        elif (isinstance(layer, keras.layers.BatchNormalization) and last and not last[0].use_bias
              and last[1] is None):
            last[1] = layer
        elif isinstance(layer, keras.layers.Activation) and last and last[1] is not None and not last[2]:
            continue
        elif isinstance(layer, keras.layers.Dropout) and last and not last[2] and (last[0].use_bias or last[1]):
            last[2] = float(layer.rate)
        else:
            raise ValueError(f"the model must be Dense layers with biases only; layer {layer.name!r} is a "
                             f"{type(layer).__name__} there. to_keras follows each hidden Dense by at most one "
                             "Dropout, and leaves out the bias of a batch-normalized one: Dense(use_bias=False), "
                             "BatchNormalization, Activation, then at most one Dropout.")
    if not layers:
        raise ValueError("the model has no Dense layers.")
    if any(not dense.use_bias and norm is None for dense, norm, _ in layers):
        raise ValueError("the model has a Dense layer without bias and no BatchNormalization after it; to_keras "
                         "leaves out the bias of a batch-normalized layer only.")
    if layers[-1][2]:
        raise ValueError("the model's output layer is followed by a Dropout; to_keras puts Dropout after hidden "
                         "layers only.")
    if layers[-1][1] is not None:
        raise ValueError("the model's output layer is followed by a BatchNormalization; to_keras normalizes hidden "
                         "layers only.")
    return layers


def _batch_norm(model):
    """The :class:`~twinnet.nn.batchnorm.BatchNorm` of a model's ``BatchNormalization`` layers (None without)."""
    configs = [{key: norm.get_config()[key] for key in BatchNorm.DEFAULTS}
               for _, norm, _ in _structure(model)[:-1] if norm is not None]
    if not configs:
        return None
    if len(configs) < len(_structure(model)) - 1 or any(config != configs[0] for config in configs):
        raise ValueError("the model's hidden layers must all be batch-normalized alike, or none: Network's "
                         "batch_norm is one setting for every hidden layer.")
    return BatchNorm(**configs[0])


def _model_parameters(model, value, prefix="", moving=True):
    """The parameters dict of a model :func:`_structure` accepts, ``value(variable)`` for each of its weights
    (without the moving statistics when not ``moving``: the gradients' dict)."""
    _batch_norm(model)  # every hidden layer normalized alike, or none: a dict Network takes
    layers, norms = [], []
    for dense, norm, _ in _structure(model):
        layers.append((np.ascontiguousarray(value(dense.kernel).T), value(dense.bias) if dense.use_bias else None))
        names = [] if norm is None else [n for n in ("gamma", "beta") if getattr(norm, n) is not None]
        names += list(MOVING) if norm is not None and moving else []
        norms.append({name: value(getattr(norm, name)) for name in names})
    return trainer.as_parameters(layers, prefix, norms)


def _set_parameters(model, parameters):
    """Set a model's weights (:func:`_structure`'s layers) to copies of ``parameters``, checked against it."""
    layers = _structure(model)
    widths = [int(layers[0][0].kernel.shape[0])] + [dense.units for dense, _, _ in layers]
    options = _batch_norm(model)
    dtype = _model_dtype(model)
    pairs = trainer.parameter_layers(parameters, widths, dtype, "model", options)
    arrays = trainer.norm_arrays(parameters, options, len(layers) - 1) if options else []
    for (dense, norm, _), (W, b), values in itertools.zip_longest(layers, pairs, arrays):
        dense.set_weights([np.asarray(W.T, dtype)] + ([] if b is None else [np.asarray(b[:, 0], dtype)]))
        if norm is not None:
            norm.set_weights([np.asarray(values[name], dtype) for name in options.names])


def _model_dtype(model):
    return str(model.trainable_variables[0].dtype)


def _describe(model):
    """The model's dtype, head, output width and number of features."""
    dtype = validation.dtype(_model_dtype(model), "the model's dtype").name
    return dtype, _model_output(model), int(model.outputs[0].shape[-1]), int(model.trainable_variables[0].shape[0])


def _data(X, y, model_description, names=("X", "y")):
    """``X`` of shape (m, n_features) and ``y`` in the model's layout, checked as ``Network.fit`` checks them.

    ``y`` becomes rows as examples: a column of labels ``(m, 1)``, or the targets ``(m, k)``
    (Keras would otherwise reshape it itself).
    """
    dtype, output, width, n_features = model_description
    X1 = check_X(X, n_features, dtype, name=names[0])  # X in dtype with a column of ones appended
    y = check_y(y, X1, dtype, names[1], output=output, width=width)[0]
    return np.ascontiguousarray(X1[:, :-1]), np.ascontiguousarray(y.T)


def _dropout_rates(model):
    """The dropout rate after each hidden ``Dense`` layer (0 where no ``Dropout`` follows it)."""
    return [rate for _, _, rate in _structure(model)[:-1]]


def _keep_masks(model, rates, m, masks, dtype):
    """``masks`` checked (:func:`twinnet.nn.trainer.check_masks`), as arrays of ``dtype``; ``None`` stays ``None``."""
    if masks is None:
        return None
    hidden = [dense.units for dense, _, _ in _structure(model)[:-1]]
    return [None if mask is None else np.asarray(mask, dtype=dtype)
            for mask in trainer.check_masks(masks, hidden, rates, m)]


def gradients(model, X, y, masks=None):
    """Gradients of the model's loss on ``(X, y)`` with respect to every weight, as ``Network.gradients``.

    The loss is what Keras trains on: the head's mean loss plus the L2 penalty of the layers'
    ``kernel_regularizer``, differentiated by ``tf.GradientTape``.

    Parameters
    ----------
    model : keras.Model
        From :func:`to_keras`: ``Dense`` layers, a hidden one possibly followed by a ``Dropout``.
    X : ndarray of shape (m, n_features)
    y : ndarray of shape (m,) or (m, k)
        Checked as ``Network`` checks them.
    masks : list, optional
        Dropout's keep masks, ``Network.gradients``'s convention: one per hidden layer, ``masks[l]``
        of shape ``(m, n_{l+1})``, 1 (or True) where a unit is kept, ``None`` for a layer without
        dropout. Each ``Dropout`` layer is replaced by its replay, ``x * (1 / (1 - rate)) * mask``,
        TensorFlow's order of operations. Default: no dropout (the layers pass their input on).

    Returns
    -------
    grads : dict
        ``{"dW1": (n1, n0), "db1": (n1, 1), ...}`` in the model's dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from twinnet import Network, keras_twin
    >>> X = np.random.default_rng(0).standard_normal((8, 3)); y = (X[:, 0] > 0).astype(int)
    >>> net = Network([3, 4, 1], dropout=0.5, l2=0.0625, seed=0)
    >>> model = keras_twin.to_keras(net.parameters, learning_rate=0.1, dropout=0.5, l2=0.0625)
    >>> masks = [np.random.default_rng(1).random((8, 4)) >= 0.5]
    >>> ours, theirs = net.gradients(X, y, masks=masks), keras_twin.gradients(model, X, y, masks=masks)
    >>> all(np.allclose(ours[k], theirs[k], rtol=1e-12, atol=0) for k in ours)
    True
    """
    description = _describe(model)
    dtype, output = description[:2]
    X, y = _data(X, y, description)
    rates = _dropout_rates(model)
    masks = _keep_masks(model, rates, X.shape[0], masks, dtype)
    keras = quiet.import_keras()
    import tensorflow as tf

    variables = model.trainable_variables
    moving = [variable.numpy() for variable in model.non_trainable_variables]
    with floatx(dtype):
        x, t = tf.constant(X), tf.constant(y)
        with tf.GradientTape() as tape:
            h, hidden = x, -1
            for layer in model.layers:
                if not isinstance(layer, keras.layers.Dropout):
                    # training: batch normalization with the batch's statistics
                    h, hidden = layer(h, training=True), hidden + isinstance(layer, keras.layers.Dense)
                elif masks is not None:  # tf.nn.dropout's order: x * scale, then the mask
                    h = h * tf.constant(1 / (1 - layer.rate), dtype) * tf.constant(masks[hidden])
            # the compiled loss from the logits, plus the model's losses: the L2 penalties
            loss = model.compute_loss(x=x, y=t, y_pred=h, training=True)
        grads = {id(variable): g.numpy() for variable, g in zip(variables, tape.gradient(loss, variables))}
    for variable, value in zip(model.non_trainable_variables, moving):  # the training call moved them
        variable.assign(value)
    return _model_parameters(model, lambda variable: grads[id(variable)], "d", moving=False)


def train(model, X, y, *, epochs, batch_size=None, shuffle=True, seed=None, loop="fit", validation_data=None,
          callbacks=None, on_epoch_end=None):
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
        Seed of the batch order: the same seed as ``Network.fit`` gives the same batches. (Keras's
        ``Dropout`` layers draw their masks from Keras's own generator.)
    loop : {"fit", "tf-loop"}
        ``"fit"``: Keras's ``model.fit``. ``"tf-loop"``: a ``tf.function`` step (forward pass, the
        compiled loss, gradient tape, the model's optimizer) called from a Python loop, which
        measures TensorFlow's arithmetic without ``model.fit``'s per-epoch machinery.
    validation_data : tuple (X_val, y_val), optional
        Evaluated after each epoch's updates (no dropout, the L2 penalty included), as
        ``Network.fit`` does: the history gets ``val_loss`` and ``val_accuracy`` (or ``val_rmse``).
    callbacks : list of twinnet.nn.callbacks.Callback, optional
        Called as ``Network.fit`` calls them, after ``on_epoch_end``. An ``EarlyStopping`` (the
        class itself) runs as Keras's ``keras.callbacks.EarlyStopping`` with the same arguments
        (``mode="auto"`` resolved by :data:`twinnet.nn.callbacks.METRIC_MODES`, Keras's
        directions, since Keras resolves it from compiled metrics the ``"tf-loop"`` does not
        build); its ``stopped_epoch``, ``best_epoch``, ``best``, ``wait`` and ``best_weights``
        (the parameters dict) are copied back onto the given object when training ends. Other
        callbacks see a model with ``stop_training``, ``parameters`` and ``set_parameters``.
    on_epoch_end : callable, optional
        Called as ``on_epoch_end(epoch, logs)`` after each epoch, as a Keras callback's method of
        that name (and as ``Network.fit`` calls it): ``epoch`` counts from 0 and ``logs`` is
        ``{"loss": float}``, the epoch's loss as ``history["loss"]`` records it.

    Returns
    -------
    history : dict
        ``"loss"`` and the head's metric, ``"accuracy"`` (classifiers) or ``"rmse"`` (linear),
        one value per epoch with Keras's semantics, as ``Network.fit``'s history: the
        batch-size-weighted mean over the epoch of each batch's loss before its update (with the
        L2 penalty), and the metric of the same predictions; then ``"val_loss"`` and the
        metric's ``val_`` version with ``validation_data``. Fewer epochs if a callback stopped
        the training.
    """
    loop = validation.choice("loop", loop, TRAIN_LOOPS)
    epochs, batch_size, seed, callbacks = trainer.check_arguments(
        epochs=epochs, batch_size=batch_size, shuffle=shuffle, seed=seed, callbacks=callbacks,
        on_epoch_end=on_epoch_end, validation_data=validation_data)
    description = _describe(model)
    dtype, output = description[:2]
    X, y = _data(X, y, description)
    val = None if validation_data is None else _data(*validation_data, description, names=("X_val", "y_val"))
    names = trainer.history_names(HEADS[output], val)
    for callback in callbacks:
        if isinstance(callback, EarlyStopping):  # Network's error for a metric this fit does not log, up front
            callback.get_monitor_value(dict.fromkeys(names, 0.0))
    m = X.shape[0]
    if batch_size is None or batch_size >= m:
        batches = None
    else:
        rng = np.random.default_rng(seed)
        batches = [epoch_batches(rng, m, batch_size, shuffle) for _ in range(epochs)]
    keras_callbacks, copy_back = _keras_callbacks(model, callbacks, on_epoch_end, names)
    with floatx(dtype):
        if loop == "fit":
            history = _train_fit(model, X, y, epochs, batches, val, keras_callbacks)
        else:
            history = _train_loop(model, X, y, epochs, batches, val, keras_callbacks, output, names)
    copy_back()
    # Network's order: the loss, the metric, their val_ versions (Keras orders its history by name)
    return {**{name: list(history[name]) for name in names}, **history}


def _early_stopping_arguments(stop):
    """Keras's ``EarlyStopping`` arguments of a twinnet ``EarlyStopping`` (``mode="auto"`` resolved)."""
    mode = METRIC_MODES[stop.monitor.removeprefix("val_")] if stop.mode == "auto" else stop.mode
    return {"monitor": stop.monitor, "min_delta": abs(stop.min_delta), "patience": stop.patience,
            "verbose": stop.verbose, "mode": mode, "baseline": stop.baseline,
            "restore_best_weights": stop.restore_best_weights, "start_from_epoch": stop.start_from_epoch}


def _keras_callbacks(model, callbacks, on_epoch_end, names):
    """The Keras callbacks of :func:`train`, and a function that copies Keras's early stopping back.

    ``on_epoch_end`` first, then the twinnet callbacks in order, as ``Network.fit`` calls them.
    """
    keras = quiet.import_keras()
    out, stops = [], []
    if on_epoch_end is not None:
        out.append(keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: on_epoch_end(epoch, {"loss": float(logs["loss"])})))
    view = _KerasView(model)
    for callback in callbacks:
        if type(callback) is EarlyStopping:  # a subclass may behave otherwise: it runs as itself
            keras_stop = keras.callbacks.EarlyStopping(**_early_stopping_arguments(callback))
            stops.append((callback, keras_stop))
            out.append(keras_stop)
        else:
            out.append(_callback_adapter()(callback, view, names))

    def copy_back():
        for ours, theirs in stops:
            ours.stopped_epoch, ours.best_epoch, ours.wait = theirs.stopped_epoch, theirs.best_epoch, theirs.wait
            ours.best = None if theirs.best is None else float(theirs.best)
            if theirs.best_weights is None:
                ours.best_weights = None
            else:  # Keras's get_weights(): the model's weights in its order
                best = {id(variable): value for variable, value in zip(model.weights, theirs.best_weights)}
                ours.best_weights = _model_parameters(model, lambda variable: best[id(variable)])

    return out, copy_back


class _KerasView:
    """What a twinnet callback sees of a Keras model: ``stop_training``, ``parameters``, ``set_parameters``."""

    def __init__(self, model):
        self.model = model

    @property
    def stop_training(self):
        return bool(self.model.stop_training)

    @stop_training.setter
    def stop_training(self, value):
        self.model.stop_training = value

    @property
    def parameters(self):
        """Copies of the weights, the notebook's dict."""
        return from_keras(self.model)

    def set_parameters(self, parameters):
        """Replace the weights by ``parameters`` (the notebook's dict, of this architecture)."""
        _set_parameters(self.model, parameters)


@functools.cache
def _callback_adapter():
    """The Keras callback that calls a twinnet callback, defined on first use (no Keras at import)."""
    keras = quiet.import_keras()

    class TwinnetCallback(keras.callbacks.Callback):
        """A twinnet callback called by Keras: against a :class:`_KerasView`, with ``Network``'s logs."""

        def __init__(self, callback, view, names):
            super().__init__()
            self.callback, self.view, self.names = callback, view, names

        def set_model(self, model):
            super().set_model(model)
            self.callback.set_model(self.view)

        def set_params(self, params):
            super().set_params(params)
            self.callback.set_params(dict(params))

        def _logs(self, logs):
            # Network's keys in Network's order, as Python floats
            logs = logs or {}
            return {name: float(logs[name]) for name in self.names if name in logs}

        def on_train_begin(self, logs=None):
            self.callback.on_train_begin(self._logs(logs))

        def on_epoch_begin(self, epoch, logs=None):
            self.callback.on_epoch_begin(epoch, self._logs(logs))

        def on_epoch_end(self, epoch, logs=None):
            self.callback.on_epoch_end(epoch, self._logs(logs))

        def on_train_end(self, logs=None):
            self.callback.on_train_end(self._logs(logs))

    return TwinnetCallback


def _train_fit(model, X, y, epochs, batches, val, callbacks):
    """``model.fit`` on tf.data streams read ``steps_per_epoch`` batches at a time, so that Keras keeps one
    iterator for the whole fit (given arrays, it makes a new one each epoch: about 40 ms on two cores)."""
    import tensorflow as tf

    X_t, y_t = tf.constant(X), tf.constant(y)
    options = {"epochs": epochs, "shuffle": False, "verbose": 0, "callbacks": callbacks}
    if val is not None:  # one batch, as Network evaluates it
        options.update(validation_data=tf.data.Dataset.from_tensors(tuple(map(tf.constant, val))).repeat(),
                       validation_steps=1)
    if batches is None:  # the notebook's own call: the whole training set as one batch, in its order
        return model.fit(tf.data.Dataset.from_tensors((X_t, y_t)).repeat(), steps_per_epoch=1, **options).history
    # Every epoch's batches, precomputed in Network's order, as one stream of index arrays
    lengths = [len(batch) for epoch in batches for batch in epoch]
    indices = tf.RaggedTensor.from_row_lengths(np.concatenate([np.concatenate(b) for b in batches]), lengths)
    stream = tf.data.Dataset.from_tensor_slices(indices).map(
        lambda idx: (tf.gather(X_t, idx), tf.gather(y_t, idx)))
    return model.fit(stream, steps_per_epoch=len(batches[0]), **options).history


def _train_loop(model, X, y, epochs, batches, val, callbacks, output, names):
    """The ``"tf-loop"``: a compiled step, driven by the trainer contract with Keras's ``CallbackList``."""
    import tensorflow as tf

    keras = quiet.import_keras()
    variables = model.trainable_variables
    optimizer = model.optimizer
    optimizer.build(variables)
    head = HEADS[output]
    metric_sum = head.keras.metric_sum
    spec = [tf.TensorSpec((None, X.shape[1]), X.dtype), tf.TensorSpec((None, y.shape[1]), y.dtype)]

    @tf.function(input_signature=spec)
    def step(x, t):
        with tf.GradientTape() as tape:
            p = model(x, training=True)
            # the compiled loss, from the logits behind the head's activation, batch mean, plus the
            # model's losses (the L2 penalties)
            loss = model.compute_loss(x=x, y=t, y_pred=p, training=True)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss, metric_sum(tf, p, t)

    @tf.function(input_signature=spec)
    def score(x, t):  # as Keras's evaluate: no dropout, the loss with its penalties
        p = model(x, training=False)
        return model.compute_loss(x=x, y=t, y_pred=p, training=False), metric_sum(tf, p, t)

    X_t, y_t = tf.constant(X), tf.constant(y)

    def batch_step(idx):  # None: the full batch, the data itself
        loss, total = step(X_t, y_t) if idx is None else step(tf.gather(X_t, idx), tf.gather(y_t, idx))
        return float(loss), float(total)

    def validation_score():
        val_loss, val_total = score(*val)
        return float(val_loss), head.metric(float(val_total), val[0].shape[0])

    # Keras's own driver of callbacks, as fit's: EarlyStopping is Keras's, called as fit calls it
    steps = 1 if batches is None else len(batches[0])
    callback_list = keras.callbacks.CallbackList(callbacks, model=model, verbose=0, epochs=epochs, steps=steps)
    history = {name: [] for name in names}
    trainer.run_epochs(model, callback_list, epochs,
                       lambda epoch: trainer.epoch_mean(batch_step, [None] if batches is None else batches[epoch],
                                                        X.shape[0]),
                       head, X.shape[0], names, history, score=None if val is None else validation_score)
    return history
