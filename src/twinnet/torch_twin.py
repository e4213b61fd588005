"""The PyTorch twin of the NumPy network: same architecture, same weights, same batches.

``to_torch`` / ``from_torch`` convert the parameters dict (the project's common currency) to and
from a ``torch.nn.Sequential`` of ``Linear`` layers with its ``torch.optim`` optimizer; ``train``
trains it the way ``twinnet.Network.fit`` trains the NumPy network, drawing each epoch's batches
with ``twinnet.nn.epoch_batches``, so that the two loss curves can be compared number by number.
PyTorch is imported only when one of these functions is called.

Layouts: ``torch.nn.Linear`` stores its weight as ``(n_l, n_{l-1})``, the notebook's layout, and
its bias as ``(n_l,)``, where the parameters dict has a column ``(n_l, 1)``.

Why the twin agrees with ``Network``
------------------------------------
- The loss. The model outputs logits and the head's loss is computed from them, as ``Network``
  does and as a PyTorch user writes it (:data:`TORCH_HEADS`): ``binary_cross_entropy_with_logits``
  (sigmoid; ``BCEWithLogitsLoss``), ``cross_entropy`` on the integer labels (softmax;
  ``CrossEntropyLoss``, whose ``log_softmax`` shifts by the maximum logit as TensorFlow and
  ``Network`` do), ``mse_loss`` (linear; the mean over examples and outputs, ``Network``'s loss).
  The head travels with the twin (:class:`TorchTwin`'s ``output``), since the model itself ends
  in the logits whatever the head.
- The hyperparameters. Keras, and ``Network`` after it, round momentum and the betas through
  float32 (see :mod:`twinnet.nn.optimizers`); the twin hands ``torch.optim.SGD`` the same
  float32-rounded momentum, so that its updates are Keras's to rounding of the last bit.
- Adam. torch adds ``eps`` to ``sqrt(v) / sqrt(1 - beta_2**t)``, Keras to ``sqrt(v)``, and torch's
  bias corrections ``1 - beta**t`` use the exact betas where Keras rounds them through float32
  (a difference of about 1e-5 in the first steps): before each step ``train`` sets torch's ``lr``
  and ``eps`` so that its step is Keras's (:func:`_keras_adam`).

Example
-------
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

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from twinnet import validation
from twinnet.nn import Network, epoch_batches
from twinnet.nn.heads import default_output

# Network's checks of the data, so that the twin rejects what Network rejects, in the same words
from twinnet.nn.network import check_X, check_y

__all__ = ["ADAM_EPSILON", "TORCH_HEADS", "TorchTwin", "from_torch", "to_torch", "train"]

#: Keras's ``Adam`` epsilon, which ``Network`` follows.
ADAM_EPSILON = 1e-7


class TorchHead(NamedTuple):
    """How a twin's head is trained in PyTorch, from the model's logits ``z`` of shape (m, n_L)."""

    loss: str  # the function of torch.nn.functional: loss(z, targets), the batch mean
    targets: Callable  # Network's checked targets (n_L, m) or (1, m) -> the loss's layout
    hits: Callable  # (torch, z, targets) -> the batch's count of correct labels, as Network's heads
    metric: str  # Network's history key: the epoch's hits / m, or the root of its mean loss


def _sigmoid_hits(torch, z, y):
    return int(((torch.sigmoid(z) > 0.5) == (y == 1)).sum())  # the notebook's rule, on the probability


def _softmax_hits(torch, z, y):
    return int((torch.softmax(z, dim=1).argmax(dim=1) == y).sum())  # the first of equal ones, as np.argmax


#: Output head (:data:`twinnet.validation.OUTPUTS`) -> its loss in PyTorch (see the module's notes).
TORCH_HEADS = {
    "sigmoid": TorchHead("binary_cross_entropy_with_logits", lambda y: y.T, _sigmoid_hits, "accuracy"),  # (m, 1)
    "softmax": TorchHead("cross_entropy", lambda y: y[0], _softmax_hits, "accuracy"),  # int64 labels (m,)
    "linear": TorchHead("mse_loss", lambda y: y.T, None, "rmse"),  # (m, k)
}


class TorchTwin(tuple):
    """A model and its optimizer, as :func:`to_torch` makes them, and the head they are trained for.

    Unpacks as ``model, optimizer``. ``output`` names the head, hence the loss :func:`train`
    computes from the model's logits (:data:`TORCH_HEADS`); ``None``, as for a plain tuple
    ``(model, optimizer)``, means ``Network``'s default: the sigmoid for one output unit.
    """

    def __new__(cls, model, optimizer, output=None):
        twin = super().__new__(cls, (model, optimizer))
        twin.output = None if output is None else validation.choice("output", output, validation.OUTPUTS)
        return twin

    model = property(lambda self: self[0], doc="torch.nn.Sequential of Linear layers and activations, ending in logits")
    optimizer = property(lambda self: self[1], doc="torch.optim.SGD or torch.optim.Adam over the model's parameters")

    def __reduce__(self):
        return type(self), (self.model, self.optimizer, self.output)

    def __repr__(self):
        return f"TorchTwin(model={self.model!r}, optimizer={self.optimizer!r}, output={self.output!r})"


def _activation(torch, name):
    # leaky_relu: Keras 3's default slope, which Network uses
    return {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid,
            "leaky_relu": lambda: torch.nn.LeakyReLU(0.2)}[name]()


def _optimizer(torch, name, params, learning_rate):
    from twinnet.nn.optimizers import keras_cast

    if name == "adam":
        return torch.optim.Adam(params, lr=learning_rate, betas=(0.9, 0.999), eps=ADAM_EPSILON)
    momentum = float(keras_cast(0.9, "float64")) if name == "momentum" else 0.0
    return torch.optim.SGD(params, lr=learning_rate, momentum=momentum)


def to_torch(parameters, *, learning_rate, optimizer="sgd", hidden_activation="relu", dtype="float64",
             output=None):
    """A ``torch.nn.Sequential`` holding exactly ``parameters``, and its optimizer.

    Parameters
    ----------
    parameters : dict
        ``W_l`` of shape ``(n_l, n_{l-1})`` and ``b_l`` of shape ``(n_l, 1)``, as
        ``Network.parameters`` returns them; checked as ``Network.from_parameters`` checks them.
    learning_rate : float
    optimizer : {"sgd", "momentum", "adam"}
        ``torch.optim.SGD``, ``SGD(momentum=0.9)`` or ``Adam``, set up as Network's optimizers.
    hidden_activation : {"relu", "tanh", "sigmoid", "leaky_relu"}
    dtype : {"float64", "float32"}
    output : {"sigmoid", "softmax", "linear"}, optional
        The head, as ``Network``'s ``output``: by default ``"sigmoid"`` for one output unit; an
        output layer wider than 1 needs it named.

    Returns
    -------
    TorchTwin
        ``model``: ``Linear`` layers with weights ``W_l`` and biases ``b_l[:, 0]``, the hidden
        activation between them, ending in the logits (the sigmoid or softmax lives in the loss);
        ``optimizer`` over its parameters; ``output``, the head.

    Example
    -------
    >>> from twinnet import Network, torch_twin
    >>> net = Network([4, 8, 3], output="softmax", seed=0)
    >>> twin = torch_twin.to_torch(net.parameters, learning_rate=0.1, output="softmax")
    >>> model, optimizer = twin
    >>> twin.output, model[-1].out_features
    ('softmax', 3)
    """
    learning_rate = validation.positive_number("learning_rate", learning_rate)
    validation.choice("optimizer", optimizer, validation.OPTIMIZERS)
    validation.choice("hidden_activation", hidden_activation, validation.ACTIVATIONS)
    dtype = validation.dtype(dtype).name
    # Network's validation of the dict (keys, shapes, widths, real and finite values in dtype) and
    # of the head against the output width, in its words
    net = Network.from_parameters(parameters, output=output, hidden_activation=hidden_activation, dtype=dtype)
    import torch

    parameters, L = net.parameters, len(net.layer_dims) - 1  # copies in dtype
    modules = []
    for l in range(1, L + 1):
        W = parameters[f"W{l}"]
        linear = torch.nn.Linear(W.shape[1], W.shape[0], dtype=getattr(torch, dtype))
        with torch.no_grad():
            linear.weight.copy_(torch.as_tensor(W))
            linear.bias.copy_(torch.as_tensor(parameters[f"b{l}"][:, 0]))
        modules += [linear] if l == L else [linear, _activation(torch, hidden_activation)]
    model = torch.nn.Sequential(*modules)
    return TorchTwin(model, _optimizer(torch, optimizer, list(model.parameters()), learning_rate), net.output)


def from_torch(model):
    """The parameters dict of a model made of ``Linear`` layers (the inverse of :func:`to_torch`).

    ``model`` is a :class:`TorchTwin` or a ``torch.nn.Module``; its ``Linear`` layers are taken in
    order. Returns ``W_l`` of shape ``(n_l, n_{l-1})`` and ``b_l`` of shape ``(n_l, 1)``, copies in
    the layers' dtype.
    """
    import torch

    module = model.model if isinstance(model, TorchTwin) else model
    if not isinstance(module, torch.nn.Module):
        raise ValueError(  # noqa: TRY004  (the project raises ValueError for every bad argument)
            f"from_torch expects a TorchTwin or a torch.nn.Module; got {type(module).__name__}.")
    linears = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    if not linears:
        raise ValueError("from_torch: the model has no Linear layers.")
    parameters = {}
    for l, linear in enumerate(linears, start=1):
        if linear.bias is None:
            raise ValueError(f"from_torch expects Linear layers with biases; layer {l} has none.")
        parameters[f"W{l}"] = linear.weight.detach().numpy().copy()
        parameters[f"b{l}"] = linear.bias.detach().numpy().reshape(-1, 1).copy()
    return parameters


def _check_twin(twin):
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
    return model, optimizer, weights[0].shape[1], dtype, output, width


def train(twin, X, y, *, epochs, batch_size=None, shuffle=True, seed=None, on_epoch_end=None):
    """Train a twin exactly as ``Network.fit`` trains the NumPy network.

    Parameters
    ----------
    twin : TorchTwin
        From :func:`to_torch`; trained in place, with the loss of its head (``twin.output``).
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
    on_epoch_end : callable, optional
        Called as ``on_epoch_end(epoch, logs)`` after each epoch, Keras's signature: ``epoch``
        counts from 0 and ``logs`` is ``{"loss": float}``.

    Returns
    -------
    history : dict
        ``"loss"``: one value per epoch with Keras's semantics, the batch-size-weighted mean over
        the epoch of each batch's loss before its update; and the head's metric as
        ``Network.fit``'s history has it: ``"accuracy"`` (classifiers) or ``"rmse"`` (linear).
    """
    model, optimizer, n_features, dtype, output, width = _check_twin(twin)
    epochs = validation.positive_int("epochs", epochs)
    batch_size = validation.positive_int("batch_size", batch_size, allow_none=True)
    seed = validation.seed(seed)
    if on_epoch_end is not None and not callable(on_epoch_end):
        raise ValueError(f"on_epoch_end must be a callable (epoch, logs); got {on_epoch_end!r}.")
    head = TORCH_HEADS[output]
    X1 = check_X(X, n_features, dtype)  # X in dtype with a column of ones appended
    y = head.targets(check_y(y, X1, dtype, output=output, width=width)[0])
    import torch

    X, y = torch.as_tensor(np.ascontiguousarray(X1[:, :-1])), torch.as_tensor(np.ascontiguousarray(y))
    m, rng = X.shape[0], np.random.default_rng(seed)
    full_batch = batch_size is None or batch_size >= m
    step = _Step(model, optimizer, head)
    history = {"loss": [], head.metric: []}
    for epoch in range(epochs):
        if full_batch:  # the data itself, not a copy; the loss as computed, not rescaled by m / m
            loss, hits = step(X, y)
            loss_sum = loss * m
        else:
            loss_sum = hits = 0
            for batch in epoch_batches(rng, m, batch_size, shuffle):
                index = torch.as_tensor(batch)
                batch_loss, batch_hits = step(X[index], y[index])
                loss_sum += batch_loss * len(batch)  # Keras's mean weighted by batch size
                hits += batch_hits
            loss = loss_sum / m
        history["loss"].append(loss)
        history[head.metric].append(math.sqrt(loss_sum / m) if head.hits is None else hits / m)
        if on_epoch_end is not None:
            on_epoch_end(epoch, {"loss": loss})
    return history


class _Step:
    """One optimizer step on a batch; returns the batch's loss before the update and its hits."""

    def __init__(self, model, optimizer, head):
        import torch

        self.torch, self.model, self.optimizer, self.head, self.t = torch, model, optimizer, head, 0
        self.loss = getattr(torch.nn.functional, head.loss)
        self.adam = isinstance(optimizer, torch.optim.Adam)
        self.learning_rates = [group["lr"] for group in optimizer.param_groups]

    def __call__(self, xb, yb):
        self.optimizer.zero_grad()
        z = self.model(xb)
        loss = self.loss(z, yb)
        loss.backward()
        hits = 0
        if self.head.hits is not None:
            with self.torch.no_grad():
                hits = self.head.hits(self.torch, z, yb)
        self.t += 1
        if self.adam:
            for group, learning_rate in zip(self.optimizer.param_groups, self.learning_rates):
                group["lr"], group["eps"] = _keras_adam(learning_rate, *group["betas"], self.t)
        self.optimizer.step()
        return loss.item(), hits


def _keras_adam(learning_rate, beta_1, beta_2, t):
    """torch's ``lr`` and ``eps`` at step ``t`` that make its Adam step Keras's (module notes).

    torch: ``w -= lr / c1 * m / (sqrt(v) / sqrt(c2) + eps)`` with ``c = 1 - beta**t`` of the exact
    betas; Keras: ``w -= learning_rate * sqrt(k2) / k1 * m / (sqrt(v) + 1e-7)`` with ``k = 1 - beta**t``
    of the float32-rounded betas. ``m`` and ``v`` are updated alike by both.
    """
    from twinnet.nn.optimizers import keras_cast

    c1, c2 = 1 - beta_1**t, 1 - beta_2**t
    k1 = 1 - float(keras_cast(beta_1, "float64")) ** t
    k2 = 1 - float(keras_cast(beta_2, "float64")) ** t
    return learning_rate * math.sqrt(k2) / k1 * c1 / math.sqrt(c2), ADAM_EPSILON / math.sqrt(c2)
