"""The PyTorch twin of the NumPy network: same architecture, same weights, same batches.

``to_torch`` / ``from_torch`` convert the parameters dict (the project's common currency) to and
from a ``torch.nn.Sequential`` of ``Linear`` layers with its ``torch.optim`` optimizer; ``train``
trains it the way ``twinnet.Network.fit`` trains the NumPy network, drawing each epoch's batches
with ``twinnet.nn.epoch_batches``, so that the two loss curves can be compared number by number
(why they agree: ``docs/twins.md``). PyTorch is imported only when one of these functions is called.

Layouts: ``torch.nn.Linear`` stores its weight as ``(n_l, n_{l-1})``, the notebook's layout, and
its bias as ``(n_l,)``, where the parameters dict has a column ``(n_l, 1)``.

Examples
--------
>>> import numpy as np
>>> from twinnet import Network, torch_twin
>>> X = np.random.default_rng(0).standard_normal((64, 3)); y = (X[:, 0] > 0).astype(int)
>>> net = Network([3, 4, 1], seed=0)
>>> twin = torch_twin.to_torch(net.parameters, learning_rate=0.1)
>>> history = torch_twin.train(twin, X, y, epochs=5)
>>> ours = net.fit(X, y, epochs=5, learning_rate=0.1)
>>> bool(np.allclose(history["loss"], ours.history["loss"], rtol=1e-12))
True
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from twinnet import validation
from twinnet.nn import Network, epoch_batches, trainer
from twinnet.nn.batchnorm import BatchNorm
from twinnet.nn.heads import HEADS, default_output
from twinnet.nn.optimizers import get_optimizer, keras_cast
from twinnet.nn.schedules import LearningRateSchedule, check_learning_rate
from twinnet.nn.threads import torch_threads

# Network's checks of the data, so that the twin rejects what Network rejects, in the same words
from twinnet.nn.network import check_X, check_y

__all__ = ["TorchTwin", "from_torch", "gradients", "to_torch", "train"]


class TorchTwin(tuple):
    """A model and its optimizer, as :func:`to_torch` makes them, and how they are trained.

    Unpacks as ``model, optimizer``. ``output`` names the head, hence the loss :func:`train`
    computes from the model's logits (its head's ``torch``); ``None``, as for a plain tuple
    ``(model, optimizer)``, means ``Network``'s default: the sigmoid for one output unit. ``l2``
    weighs the L2 penalty added to that loss (0: none), ``scheduler`` is the learning-rate
    scheduler stepped after each update (``None``: a constant rate).

    For callbacks, the twin offers what ``Network`` offers them: ``stop_training``,
    ``parameters`` (copies of the weights, the notebook's dict) and ``set_parameters``.
    """

    def __new__(cls, model, optimizer, output=None, l2=0.0, scheduler=None):
        twin = super().__new__(cls, (model, optimizer))
        twin.output = None if output is None else validation.choice("output", output, validation.OUTPUTS)
        twin.l2 = validation.penalty("l2", l2)
        twin.scheduler = scheduler
        twin.stop_training = False
        return twin

    model = property(lambda self: self[0], doc="torch.nn.Sequential of Linear layers and activations, ending in logits")
    optimizer = property(lambda self: self[1], doc="torch.optim.SGD, Adam or RMSprop over the model's parameters")

    @property
    def parameters(self):
        """Copies of the weights: the notebook's dict (see :func:`from_torch`)."""
        return from_torch(self.model)

    def set_parameters(self, parameters):
        """Replace the weights, in place, by copies of ``parameters`` (the notebook's dict, of this architecture)."""
        import torch

        _set_parameters(torch, self.model, parameters)

    def __reduce__(self):
        return type(self), (self.model, self.optimizer, self.output, self.l2, self.scheduler)

    def __repr__(self):
        extra = (f", l2={self.l2!r}" if self.l2 else "") + (f", scheduler={self.scheduler!r}" if self.scheduler else "")
        return f"TorchTwin(model={self.model!r}, optimizer={self.optimizer!r}, output={self.output!r}{extra})"


def _linears(torch, module):
    return [m for m in module.modules() if isinstance(m, torch.nn.Linear)]


def _structure(torch, module):
    """Per ``Linear`` layer ``(linear, the BatchNorm1d after it or None)``, in the order of ``module.modules()``.

    A ``Linear`` has a bias, or none and a ``BatchNorm1d`` after it, as :func:`to_torch` builds them.
    """
    layers = []
    for m in module.modules():
        if isinstance(m, torch.nn.Linear):
            layers.append([m, None])
        elif isinstance(m, torch.nn.BatchNorm1d):
            if not layers or layers[-1][0].bias is not None or layers[-1][1] is not None:
                raise ValueError("the model must have a BatchNorm1d only after a Linear layer without bias, as "
                                 "to_torch builds it.")
            layers[-1][1] = m
    if not layers:
        raise ValueError("from_torch: the model has no Linear layers.")
    for l, (linear, norm) in enumerate(layers, start=1):
        if linear.bias is None and norm is None:
            raise ValueError(f"from_torch expects Linear layers with biases; layer {l} has none, nor a BatchNorm1d "
                             "after it (to_torch leaves out the bias of a batch-normalized layer only).")
    if layers[-1][1] is not None:
        raise ValueError("the model's output layer is followed by a BatchNorm1d; to_torch normalizes hidden layers "
                         "only.")
    return layers


def _batch_norm(torch, module):
    """The :class:`~twinnet.nn.batchnorm.BatchNorm` of a model's ``BatchNorm1d`` layers (None without)."""
    norms = [norm for _, norm in _structure(torch, module)[:-1]]
    if all(norm is None for norm in norms):
        return None
    options = {None if norm is None else (1 - norm.momentum, norm.eps, norm.bias.requires_grad,
                                          norm.weight.requires_grad) for norm in norms}
    if len(options) > 1 or None in options:
        raise ValueError("the model's hidden layers must all be batch-normalized alike, or none: Network's "
                         "batch_norm is one setting for every hidden layer.")
    momentum, epsilon, center, scale = options.pop()
    return BatchNorm(momentum=momentum, epsilon=epsilon, center=center, scale=scale)


def _model_parameters(torch, module, value, prefix="", moving=True):
    """The parameters dict of a model :func:`_structure` accepts, ``value(tensor)`` for each weight (without
    the running statistics when not ``moving``: the gradients' dict)."""
    _batch_norm(torch, module)  # every hidden layer normalized alike, or none: a dict Network takes
    layers, norms = [], []
    for linear, norm in _structure(torch, module):
        layers.append((value(linear.weight), None if linear.bias is None else value(linear.bias)))
        pairs = () if norm is None else (("gamma", norm.weight), ("beta", norm.bias))
        tensors = {name: tensor for name, tensor in pairs if tensor.requires_grad}
        if norm is not None and moving:
            tensors.update(moving_mean=norm.running_mean, moving_variance=norm.running_var)
        norms.append({name: value(tensor) for name, tensor in tensors.items()})
    return trainer.as_parameters(layers, prefix, norms)


def _set_parameters(torch, module, parameters):
    """Set a model's weights (:func:`_structure`'s layers) to copies of ``parameters``, checked against it."""
    layers = _structure(torch, module)
    widths = [layers[0][0].in_features] + [linear.out_features for linear, _ in layers]
    dtype = np.dtype(str(layers[0][0].weight.dtype).removeprefix("torch."))
    options = _batch_norm(torch, module)
    pairs = trainer.parameter_layers(parameters, widths, dtype, "twin", options)
    arrays = trainer.norm_arrays(parameters, options, len(layers) - 1) if options else [{}] * (len(layers) - 1)
    targets = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}
    with torch.no_grad():
        for (linear, norm), (W, b), values in zip(layers, pairs, [*arrays, {}]):
            linear.weight.copy_(torch.as_tensor(np.asarray(W, dtype)))
            if b is not None:
                linear.bias.copy_(torch.as_tensor(np.asarray(b, dtype)[:, 0]))
            for name, value in values.items():
                getattr(norm, targets[name]).copy_(torch.as_tensor(np.asarray(value, dtype)))


def _activation(torch, name):
    # leaky_relu: Keras 3's default slope, which Network uses
    return {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid,
            "leaky_relu": lambda: torch.nn.LeakyReLU(0.2)}[name]()


def _optimizer(torch, optimizer, params, learning_rate):
    # Network's optimizer (a name: with Keras's defaults), as torch's class and arguments
    return getattr(torch.optim, optimizer.torch)(params, lr=learning_rate, **optimizer.torch_options())


def to_torch(parameters, *, learning_rate, optimizer="sgd", hidden_activation="relu", dtype="float64",
             output=None, l2=0.0, dropout=0.0, batch_norm=False):
    """A ``torch.nn.Sequential`` holding exactly ``parameters``, and its optimizer.

    Parameters
    ----------
    parameters : dict
        ``W_l`` of shape ``(n_l, n_{l-1})`` and ``b_l`` of shape ``(n_l, 1)``, as
        ``Network.parameters`` returns them; checked as ``Network.from_parameters`` checks them.
    learning_rate : float or LearningRateSchedule
        A constant, or a schedule from :mod:`twinnet.nn.schedules`: the optimizer is then made
        with a rate of 1 and driven by ``torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)``,
        whose rate at step ``k`` is ``1 * schedule(k)``, exactly Keras's value (module notes).
    optimizer : {"sgd", "momentum", "adam", "rmsprop"} or twinnet.nn.Optimizer
        ``torch.optim.SGD``, ``SGD(momentum=0.9)``, ``Adam`` or ``RMSprop``, set up as Network's
        optimizers (a name with Keras's defaults, an object with its own hyperparameters).
    hidden_activation : {"relu", "tanh", "sigmoid", "leaky_relu"}
    dtype : {"float64", "float32"}
    output : {"sigmoid", "softmax", "linear"}, optional
        The head, as ``Network``'s ``output``: by default ``"sigmoid"`` for one output unit; an
        output layer wider than 1 needs it named.
    l2 : float, default=0.0
        As ``Network``'s: ``l2 * sum(W**2)`` over the weights, a term of the loss (module notes).
    dropout : float or list of float, default=0.0
        As ``Network``'s: ``torch.nn.Dropout(rate)`` after each hidden activation whose rate is not 0.
    batch_norm : bool or BatchNorm, default=False
        As ``Network``'s: each hidden layer becomes ``Linear(bias=False)``, then
        ``torch.nn.BatchNorm1d(momentum=1 - momentum, eps=epsilon)`` holding ``gamma_l``,
        ``beta_l`` (frozen where ``scale`` or ``center`` is off) and the moving statistics as its
        running ones (module notes).

    Returns
    -------
    TorchTwin
        ``model``: ``Linear`` layers with weights ``W_l`` and biases ``b_l[:, 0]``, the hidden
        activation (and dropout) between them, ending in the logits (the sigmoid or softmax lives
        in the loss), in ``eval()`` mode; ``optimizer`` over its parameters; ``output``, the head;
        ``l2``; ``scheduler``, the ``LambdaLR`` of a schedule or ``None``.

    Examples
    --------
    >>> from twinnet import Network, torch_twin
    >>> net = Network([4, 8, 3], output="softmax", seed=0)
    >>> twin = torch_twin.to_torch(net.parameters, learning_rate=0.1, output="softmax", dropout=0.5)
    >>> model, optimizer = twin
    >>> twin.output, [type(m).__name__ for m in model], model.training
    ('softmax', ['Linear', 'ReLU', 'Dropout', 'Linear'], False)
    """
    learning_rate = check_learning_rate(learning_rate)
    optimizer = get_optimizer(optimizer)
    # Network's validation of the dict (keys, shapes, widths, real and finite values in dtype), of
    # the head against the output width, of the activation, dtype, l2 and dropout rates, in its words
    net = Network.from_parameters(parameters, output=output, hidden_activation=hidden_activation, l2=l2,
                                  dropout=dropout, batch_norm=batch_norm, dtype=dtype)
    import torch

    dtype, rates = net.dtype.name, net.dropout_rates
    L, options = len(net.layer_dims) - 1, net.batch_norm
    modules = []
    for l in range(1, L + 1):
        normalized = options and l < L
        modules.append(torch.nn.Linear(net.layer_dims[l - 1], net.layer_dims[l], bias=not normalized,
                                       dtype=getattr(torch, dtype)))
        if normalized:
            norm = torch.nn.BatchNorm1d(net.layer_dims[l], eps=options.epsilon, momentum=1 - options.momentum,
                                        dtype=getattr(torch, dtype))
            norm.weight.requires_grad_(options.scale)
            norm.bias.requires_grad_(options.center)
            modules.append(norm)
        if l < L:
            modules.append(_activation(torch, hidden_activation))
            if rates[l - 1]:
                modules.append(torch.nn.Dropout(rates[l - 1]))
    model = torch.nn.Sequential(*modules).eval()  # training mode only inside train
    _set_parameters(torch, model, net.parameters)
    schedule = learning_rate if isinstance(learning_rate, LearningRateSchedule) else None
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = _optimizer(torch, optimizer, trained, 1.0 if schedule else learning_rate)
    scheduler = None if schedule is None else torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    return TorchTwin(model, optimizer, net.output, net.l2, scheduler)


def from_torch(model):
    """The parameters dict of a model made of ``Linear`` layers (the inverse of :func:`to_torch`).

    A ``Linear`` without bias followed by a ``BatchNorm1d`` gives, instead of ``b_l``, ``gamma_l``
    (its ``weight``, when trained), ``beta_l`` (its ``bias``, when trained), ``moving_mean_l`` and
    ``moving_variance_l`` (its running statistics).

    ``model`` is a :class:`TorchTwin` or a ``torch.nn.Module``; its ``Linear`` layers are taken in
    order. Returns ``W_l`` of shape ``(n_l, n_{l-1})`` and ``b_l`` of shape ``(n_l, 1)``, copies in
    the layers' dtype.
    """
    import torch

    module = model.model if isinstance(model, TorchTwin) else model
    if not isinstance(module, torch.nn.Module):
        raise ValueError(  # noqa: TRY004  (the project raises ValueError for every bad argument)
            f"from_torch expects a TorchTwin or a torch.nn.Module; got {type(module).__name__}.")
    return _model_parameters(torch, module, lambda tensor: tensor.detach().numpy().copy())


def _check_twin(twin):
    """``(twin, n_features, dtype, output, width)``: a plain ``(model, optimizer)`` becomes a :class:`TorchTwin`."""
    import torch

    if not (isinstance(twin, tuple) and len(twin) == 2 and isinstance(twin[0], torch.nn.Module)
            and isinstance(twin[1], torch.optim.Optimizer)):
        raise ValueError(f"twin must be a TorchTwin (model, optimizer) from to_torch; got {type(twin).__name__}.")
    model, optimizer = twin
    weights = [p for p in model.parameters()]
    if not weights:
        raise ValueError("twin: the model has no parameters.")
    dtype = str(weights[0].dtype).removeprefix("torch.")
    validation.choice("the model's dtype", dtype, validation.DTYPES)
    width = weights[-1].shape[0]  # the last Linear's bias: the output layer's width
    output = default_output(getattr(twin, "output", None), width, "the twin's output")
    if not isinstance(twin, TorchTwin):
        twin = TorchTwin(model, optimizer, output)
    return twin, weights[0].shape[1], dtype, output, width


def _data(torch, X, y, description, names=("X", "y")):
    """``X`` and ``y`` checked as ``Network.fit`` checks them, as tensors in the layout of the head's loss."""
    n_features, dtype, output, width = description
    X1 = check_X(X, n_features, dtype, name=names[0])  # X in dtype with a column of ones appended
    y = HEADS[output].torch.targets(check_y(y, X1, dtype, names[1], output=output, width=width)[0])
    return torch.as_tensor(np.ascontiguousarray(X1[:, :-1])), torch.as_tensor(np.ascontiguousarray(y))


def _penalty(torch, model, l2, dtype):
    """Keras's L2 penalty: ``float32(l2) * sum(W**2)`` for each ``Linear`` weight, summed over the layers."""
    weight = float(keras_cast(l2, dtype))  # as Keras's L2 casts its Python float (module notes)
    return sum(weight * torch.sum(torch.square(linear.weight)) for linear in _linears(torch, model))


def _dropout_rates(torch, model):
    """The dropout rate after each hidden ``Linear`` layer (0 where no ``Dropout`` follows it)."""
    rates = []
    for module in model.children() if isinstance(model, torch.nn.Sequential) else [model]:
        if isinstance(module, torch.nn.Linear):
            rates.append(0.0)
        elif isinstance(module, torch.nn.Dropout):
            if not rates or rates[-1]:
                raise ValueError("the model must have at most one Dropout after each hidden Linear layer, as "
                                 "to_torch builds it.")
            rates[-1] = float(module.p)
    if rates and rates[-1]:
        raise ValueError("the model's output layer is followed by a Dropout; to_torch puts Dropout after hidden "
                         "layers only.")
    return rates[:-1]


def _forward(torch, model, X, masks):
    """The logits, each ``Dropout`` replaced by its replay under ``masks`` (or left out without masks), each
    ``BatchNorm1d`` normalizing with the batch's statistics, its running ones left alone."""
    h, hidden = X, -1
    for module in model.children() if isinstance(model, torch.nn.Sequential) else [model]:
        if isinstance(module, torch.nn.Dropout):
            if masks is not None:  # TensorFlow's and Network's order: x * (1 / (1 - rate)), then the mask
                h = h * (1 / (1 - module.p)) * torch.as_tensor(masks[hidden])
            continue
        if isinstance(module, torch.nn.BatchNorm1d):
            h = torch.nn.functional.batch_norm(h, None, None, module.weight, module.bias, True, 0.0, module.eps)
            continue
        h = module(h)
        hidden += isinstance(module, torch.nn.Linear)
    return h


def gradients(twin, X, y, masks=None):
    """Gradients of the twin's loss on ``(X, y)`` with respect to every weight, as ``Network.gradients``.

    The loss is the head's mean loss plus the twin's L2 penalty, differentiated by autograd.

    Parameters
    ----------
    twin : TorchTwin
    X : ndarray of shape (m, n_features)
    y : ndarray of shape (m,) or (m, k)
        Checked as ``Network`` checks them.
    masks : list, optional
        Dropout's keep masks, ``Network.gradients``'s convention: one per hidden layer, ``masks[l]``
        of shape ``(m, n_{l+1})``, 1 (or True) where a unit is kept, ``None`` for a layer without
        dropout; each ``Dropout`` module is replaced by ``x * (1 / (1 - rate)) * mask``. Default:
        no dropout.

    Returns
    -------
    grads : dict
        ``{"dW1": (n1, n0), "db1": (n1, 1), ...}`` in the twin's dtype.
    """
    import torch

    twin, *description = _check_twin(twin)
    n_features, dtype, output, width = description
    X, y = _data(torch, X, y, description)
    rates = _dropout_rates(torch, twin.model)
    linears = _linears(torch, twin.model)
    if masks is not None:  # the one check of the masks
        hidden = [linear.out_features for linear in linears[:-1]]
        masks = [None if mask is None else np.asarray(mask, dtype=dtype)
                 for mask in trainer.check_masks(masks, hidden, rates, X.shape[0])]
    weights = [p for p in twin.model.parameters() if p.requires_grad]
    loss = getattr(torch.nn.functional, HEADS[output].torch.loss)(_forward(torch, twin.model, X, masks), y)
    if twin.l2:
        loss = loss + _penalty(torch, twin.model, twin.l2, dtype)
    grads = {id(p): g.numpy().copy() for p, g in zip(weights, torch.autograd.grad(loss, weights))}
    return _model_parameters(torch, twin.model, lambda tensor: grads[id(tensor)], "d", moving=False)


def train(twin, X, y, *, epochs, batch_size=None, shuffle=True, seed=None, validation_data=None, callbacks=None,
          on_epoch_end=None):
    """Train a twin exactly as ``Network.fit`` trains the NumPy network.

    Parameters
    ----------
    twin : TorchTwin
        From :func:`to_torch`; trained in place, with the loss of its head (``twin.output``) and
        its L2 penalty, its scheduler stepped after each update. Its model is in ``train()``
        mode (dropout on) during the epochs' updates only.
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
        Seed of the batch order: the same seed as ``Network.fit`` gives the same batches. It also
        seeds torch's generator for the dropout masks, inside the call only (the caller's torch
        generator is left as it was); ``None``: the masks come from torch's global generator.
    validation_data : tuple (X_val, y_val), optional
        Evaluated after each epoch's updates, without dropout and with the L2 penalty, as
        ``Network.fit`` does: the history gets ``val_loss`` and ``val_accuracy`` (or ``val_rmse``).
    callbacks : list of twinnet.nn.callbacks.Callback, optional
        Called as ``Network.fit`` calls them, after ``on_epoch_end``, with the twin as their model
        (``stop_training``, ``parameters``, ``set_parameters``); ``params`` is Keras's
        ``{"verbose": 0, "epochs": ..., "steps": ...}``.
    on_epoch_end : callable, optional
        Called as ``on_epoch_end(epoch, logs)`` after each epoch, Keras's signature: ``epoch``
        counts from 0 and ``logs`` is ``{"loss": float}``.

    Returns
    -------
    history : dict
        ``"loss"``: one value per epoch with Keras's semantics, the batch-size-weighted mean over
        the epoch of each batch's loss (with the L2 penalty) before its update; the head's metric
        as ``Network.fit``'s history has it: ``"accuracy"`` (classifiers) or ``"rmse"`` (linear,
        of the data alone); and their ``val_`` versions with ``validation_data``.
    """
    import torch

    epochs, batch_size, seed, callbacks = trainer.check_arguments(
        epochs=epochs, batch_size=batch_size, shuffle=shuffle, seed=seed, callbacks=callbacks,
        on_epoch_end=on_epoch_end, validation_data=validation_data)
    twin, *description = _check_twin(twin)
    dtype, output = description[1:3]
    head = HEADS[output]
    X, y = _data(torch, X, y, description)
    val = None if validation_data is None else _data(torch, *validation_data, description, names=("X_val", "y_val"))
    names = trainer.history_names(head, val)
    m, rng = X.shape[0], np.random.default_rng(seed)
    full_batch = batch_size is None or batch_size >= m
    norms = [norm for _, norm in _structure(torch, twin.model) if norm is not None]
    if norms and (m if full_batch else m % batch_size or batch_size) == 1:
        raise validation.InvalidArgument(
            "batch_size", "a batch size that leaves no batch of one example", batch_size,
            f"batch_size={batch_size} leaves a batch of one example (m={m}): torch's BatchNorm1d refuses to "
            "normalize it in training ('Expected more than 1 value per channel'), where Keras and Network normalize "
            "it to beta; choose a batch_size with m % batch_size != 1.")
    step = _Step(twin, head.torch, dtype, X, y)
    history = {name: [] for name in names}
    params = {"verbose": 0, "epochs": epochs, "steps": 1 if full_batch else math.ceil(m / batch_size)}
    callback_list = trainer.CallbackList(callbacks, twin, params, on_epoch_end, loss_only=True)

    def train_epoch(epoch):
        twin.model.train()
        batches = [None] if full_batch else [torch.as_tensor(b) for b in epoch_batches(rng, m, batch_size, shuffle)]
        loss, total = trainer.epoch_mean(step, batches, m)
        twin.model.eval()
        return loss, total

    @contextlib.contextmanager
    def context():
        training = twin.model.training
        hooks = [hook for norm in norms for hook in (norm.register_forward_pre_hook(_keep_running_var),
                                                     norm.register_forward_hook(_keras_running_var))]
        # the dropout masks from torch's generator, seeded for this call only
        with torch.random.fork_rng(devices=[]) if seed is not None else contextlib.nullcontext(), torch_threads(torch):
            if seed is not None:
                torch.default_generator.manual_seed(seed)
            try:
                yield
            finally:
                twin.model.train(training)
                for hook in hooks:
                    hook.remove()

    score = None if val is None else (lambda: _score(torch, twin, head.torch, dtype, *val))
    trainer.run_epochs(twin, callback_list, epochs, train_epoch, head, m, names, history, score=score,
                       context=context())
    return history


def _keep_running_var(norm, inputs):
    """Before a ``BatchNorm1d``'s training step: its ``running_var``, which torch updates with the unbiased variance."""
    if norm.training:
        norm.keras_running_var = norm.running_var.clone()


def _keras_running_var(norm, inputs, output):
    """After it: Keras's update instead, from the value before the step and the batch's biased variance."""
    if norm.training:
        import torch

        with torch.no_grad():
            variance = inputs[0].var(dim=0, unbiased=False)
            # a new buffer: torch's backward checks that the one it saved was not changed in place
            norm.running_var = norm.keras_running_var * (1 - norm.momentum) + variance * norm.momentum
        del norm.keras_running_var


def _score(torch, twin, head, dtype, X, y):
    """Validation's loss (with the L2 penalty) and metric, without dropout, as ``Network.fit`` evaluates."""
    with torch.no_grad():
        z = twin.model(X)
        data = getattr(torch.nn.functional, head.loss)(z, y)
        loss = data + _penalty(torch, twin.model, twin.l2, dtype) if twin.l2 else data
        total = head.metric_sum(torch, z, y, data)
    return loss.item(), HEADS[twin.output].metric(total, len(X))


class _Step:
    """One optimizer step on a batch (an index tensor, or None: all of ``X``).

    Returns the batch's loss before the update and its metric's sum.
    """

    def __init__(self, twin, head, dtype, X, y):
        import torch

        self.torch, self.model, self.optimizer, self.head, self.t = torch, twin.model, twin.optimizer, head, 0
        self.X, self.y = X, y
        self.l2, self.dtype, self.scheduler = twin.l2, dtype, twin.scheduler
        self.loss = getattr(torch.nn.functional, head.loss)
        self.adam = isinstance(self.optimizer, torch.optim.Adam)
        self.rmsprop = isinstance(self.optimizer, torch.optim.RMSprop)  # Keras's step, taken by _keras_rmsprop
        self.momentum_scheduled = self.scheduler is not None and not self.rmsprop and any(
            group.get("momentum") for group in self.optimizer.param_groups)
        self.settings = [(group["lr"], group["eps"]) if self.adam else None for group in self.optimizer.param_groups]

    def __call__(self, index):
        torch = self.torch
        # the full batch is the data itself, not a copy
        xb, yb = (self.X, self.y) if index is None else (self.X[index], self.y[index])
        self.optimizer.zero_grad()
        z = self.model(xb)
        data = self.loss(z, yb)
        loss = data + _penalty(torch, self.model, self.l2, self.dtype) if self.l2 else data
        loss.backward()
        with torch.no_grad():  # the metric sees the data's loss alone, as Network's
            total = self.head.metric_sum(torch, z, yb, data)
        self.t += 1
        groups = self.optimizer.param_groups
        if self.adam:
            rates = self.scheduler.get_last_lr() if self.scheduler else [lr for lr, _ in self.settings]
            for group, learning_rate, (_, eps) in zip(groups, rates, self.settings):
                group["lr"], group["eps"] = _keras_adam(learning_rate, eps, *group["betas"], self.t)
        elif self.momentum_scheduled:
            # torch's momentum accumulates gradients and scales the sum by the step's rate (buf = m buf + g,
            # w -= lr buf), Keras's accumulates steps (v = m v - lr g, w += v): the same for a constant rate,
            # not under a schedule. Keras's rule: each gradient scaled by its step's rate, torch stepped at 1.
            for group, learning_rate in zip(groups, self.scheduler.get_last_lr()):
                for p in group["params"]:
                    p.grad.mul_(learning_rate)
                group["lr"] = 1.0
        if self.rmsprop:  # at the rate the scheduler set, if any
            with torch.no_grad():
                _keras_rmsprop(torch, self.optimizer)
            self.optimizer._opt_called = True  # as torch's own step records it for the scheduler's check
        else:
            self.optimizer.step()
        if self.adam:  # the optimizer's own settings back, for the next call of train
            for group, (learning_rate, eps) in zip(groups, self.settings):
                group["lr"], group["eps"] = learning_rate, eps
        if self.scheduler is not None:
            self.scheduler.step()
        return loss.item(), total


def _keras_adam(learning_rate, epsilon, beta_1, beta_2, t):
    """torch's ``lr`` and ``eps`` at step ``t`` that make its Adam step Keras's (module notes).

    torch: ``w -= lr / c1 * m / (sqrt(v) / sqrt(c2) + eps)`` with ``c = 1 - beta**t`` of the exact
    betas; Keras: ``w -= learning_rate * sqrt(k2) / k1 * m / (sqrt(v) + epsilon)`` with ``k = 1 - beta**t``
    of the float32-rounded betas. ``m`` and ``v`` are updated alike by both.
    """
    c1, c2 = 1 - beta_1**t, 1 - beta_2**t
    k1 = 1 - float(keras_cast(beta_1, "float64")) ** t
    k2 = 1 - float(keras_cast(beta_2, "float64")) ** t
    return learning_rate * math.sqrt(k2) / k1 * c1 / math.sqrt(c2), epsilon / math.sqrt(c2)


def _keras_rmsprop(torch, optimizer):
    """Keras's RMSprop step on a ``torch.optim.RMSprop``'s parameters, with its hyperparameters, in its state.

    :class:`twinnet.nn.RMSprop`'s step, op by op. torch's own step divides by ``sqrt(v) + eps`` (module
    notes); this one multiplies by ``1 / sqrt(v + eps)`` (centered: ``1 / sqrt(v - (a * a - eps))``), as
    Keras's compiled step does. The state keeps torch's names (``square_avg``, ``grad_avg``,
    ``momentum_buffer``, ``step``), so that torch's own ``step`` could go on from it.
    """
    for group in optimizer.param_groups:
        rho, epsilon, momentum, learning_rate = group["alpha"], group["eps"], group["momentum"], group["lr"]
        for p in group["params"]:
            g, state = p.grad, optimizer.state[p]
            if not state:
                state.update(step=torch.tensor(0.0), square_avg=torch.zeros_like(p))
                if momentum > 0:
                    state["momentum_buffer"] = torch.zeros_like(p)
                if group["centered"]:
                    state["grad_avg"] = torch.zeros_like(p)
            state["step"] += 1
            v = state["square_avg"].mul_(rho).add_(g * g * (1 - rho))  # v = rho * v + (1 - rho) * g * g
            if group["centered"]:
                a = state["grad_avg"].mul_(rho).add_(g * (1 - rho))  # a = rho * a + (1 - rho) * g
                denominator = v - (a * a - epsilon)
            else:
                denominator = v + epsilon
            increment = g * learning_rate * torch.sqrt(denominator).reciprocal_()
            if momentum > 0:
                increment = state["momentum_buffer"].mul_(momentum).add_(increment)
            p.sub_(increment)
