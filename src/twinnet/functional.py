"""The notebook's network as small functions: the readable reference engine.

Every function keeps the name, signature, shapes, dictionary keys and caches of the exercise this
module follows (a classic notebook: ReLU hidden layers, one sigmoid output, log-loss, gradient
descent, written as 15 functions; described in docs/network.md and worked through in
``examples/numpy_vs_tensorflow.ipynb``), so code written against the notebook runs unchanged.
Columns are examples: ``X`` has shape ``(n_features, m)`` and ``Y`` has shape ``(1, m)``.

The notebook's three numerically unsafe places (``sigmoid``, ``compute_cost``'s ``log``,
``L_model_backward``'s ``1 / AL``) are made safe without changing any value it computes correctly,
beyond rounding: how, in ``docs/network.md``.

Examples
--------
>>> import numpy as np
>>> from twinnet import functional as F
>>> np.random.seed(1)
>>> X = np.random.randn(3, 8); Y = (X[:1] > 0).astype(float)
>>> parameters = F.L_layer_model(X, Y, [3, 4, 1], learning_rate=0.5, num_iterations=20,
...                              print_cost=False)
>>> float(F.accuracy(X, Y, parameters)) > 0.5
True
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from twinnet import validation

# The notebook's order, in which ``twinnet check`` grades them.
__all__ = [  # noqa: RUF022
    "initialize_parameters",
    "linear_forward",
    "sigmoid",
    "relu",
    "linear_activation_forward",
    "L_model_forward",
    "compute_cost",
    "linear_backward",
    "sigmoid_backward",
    "relu_backward",
    "linear_activation_backward",
    "L_model_backward",
    "update_parameters",
    "L_layer_model",
    "accuracy",
]


def initialize_parameters(layer_dims, *, rng=None):
    """Draw the weights from a normal distribution (scaled by 0.1) and set the biases to zero.

    Parameters
    ----------
    layer_dims : list of int
        Width of each layer, input first: e.g. ``[10, 5, 1]``.
    rng : numpy.random.Generator, optional
        Source of randomness. By default ``np.random.randn`` is used, as in the notebook, so that
        ``np.random.seed`` reproduces the draw.

    Returns
    -------
    parameters : dict
        ``"W" + str(l)`` of shape ``(layer_dims[l], layer_dims[l-1])`` and ``"b" + str(l)`` of
        shape ``(layer_dims[l], 1)`` for ``l = 1 .. L``.
    """
    layer_dims = validation.layer_widths("layer_dims", layer_dims)
    randn = np.random.randn if rng is None else (lambda *shape: rng.standard_normal(shape))
    parameters = {}
    for l in range(1, len(layer_dims)):
        parameters["W" + str(l)] = randn(layer_dims[l], layer_dims[l - 1]) * 0.1
        parameters["b" + str(l)] = np.zeros((layer_dims[l], 1))
    return parameters


def linear_forward(A, W, b):
    """Linear part of a layer: ``Z = W A + b``.

    Parameters
    ----------
    A : ndarray of shape (n_prev, m)
        Output of the previous layer (or the input data).
    W : ndarray of shape (n, n_prev)
    b : ndarray of shape (n, 1)

    Returns
    -------
    Z : ndarray of shape (n, m)
    cache : tuple
        ``(A, W, b)``, used by :func:`linear_backward`.
    """
    Z = np.dot(W, A) + b
    cache = (A, W, b)
    return Z, cache


def sigmoid(Z):
    """Sigmoid activation ``1 / (1 + exp(-Z))``, without overflow or underflow for any finite ``Z``.

    Returns
    -------
    A : ndarray, same shape and dtype as Z
    cache : ndarray
        ``Z``, used by :func:`sigmoid_backward`.
    """
    A = expit(Z)
    cache = Z
    return A, cache


def relu(Z):
    """ReLU activation ``max(0, Z)``.

    Returns
    -------
    A : ndarray, same shape as Z
    cache : ndarray
        ``Z``, used by :func:`relu_backward`.
    """
    A = np.maximum(0, Z)
    cache = Z
    return A, cache


#: The notebook's two activations, name -> forward function ``Z -> (A, cache)``.
FORWARDS = {"sigmoid": sigmoid, "relu": relu}


def linear_activation_forward(A_prev, W, b, activation):
    """Forward pass of one layer, linear part then activation.

    Parameters
    ----------
    A_prev : ndarray of shape (n_prev, m)
    W : ndarray of shape (n, n_prev)
    b : ndarray of shape (n, 1)
    activation : {"sigmoid", "relu"}

    Returns
    -------
    A : ndarray of shape (n, m)
    cache : tuple
        ``(linear_cache, activation_cache)``.
    """
    validation.choice("activation", activation, FORWARDS)
    Z, linear_cache = linear_forward(A_prev, W, b)
    A, activation_cache = FORWARDS[activation](Z)
    cache = (linear_cache, activation_cache)
    return A, cache


def L_model_forward(X, parameters):
    """Forward pass of the whole network: ReLU hidden layers, one sigmoid output layer.

    Parameters
    ----------
    X : ndarray of shape (n_features, m)
    parameters : dict
        As returned by :func:`initialize_parameters`.

    Returns
    -------
    AL : ndarray of shape (1, m)
        Predicted probabilities.
    caches : list
        One cache per layer; ``caches[L-1]`` is the sigmoid layer's.
    """
    caches = []
    A = X
    L = len(parameters) // 2
    for l in range(1, L):
        A_prev = A
        A, cache = linear_activation_forward(
            A_prev, parameters["W" + str(l)], parameters["b" + str(l)], "relu"
        )
        caches.append(cache)
    AL, cache = linear_activation_forward(
        A, parameters["W" + str(L)], parameters["b" + str(L)], "sigmoid"
    )
    caches.append(cache)
    return AL, caches


# Underflow near a saturated sigmoid is harmless (module docstring); other errors are the caller's.
_quiet_underflow = np.errstate(under="ignore")


def _tiny(x):
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
    return np.finfo(dtype).tiny


def compute_cost(AL, Y):
    """Log-loss ``-mean(Y log(AL) + (1 - Y) log(1 - AL))``, finite even for AL of exactly 0 or 1.

    Parameters
    ----------
    AL : ndarray of shape (1, m)
        Predicted probabilities.
    Y : ndarray of shape (1, m)
        Labels, 0 or 1.

    Returns
    -------
    cost : 0-d ndarray
    """
    AL = np.asarray(AL)
    tiny = _tiny(AL)
    # log(max(., tiny)) equals log(.) for every argument >= tiny; it keeps log(0) = -inf (and
    # 0 * -inf = nan) out of the sum when the network saturates to exactly 0 or 1.
    log_p = np.log(np.maximum(AL, tiny))
    log_q = np.log(np.maximum(1 - AL, tiny))
    cost = -1 * np.mean(np.multiply(log_p, Y) + np.multiply(log_q, (1 - Y)))
    cost = np.squeeze(cost)
    return cost


@_quiet_underflow
def linear_backward(dZ, cache):
    """Backward pass through the linear part of a layer.

    Parameters
    ----------
    dZ : ndarray of shape (n, m)
        Gradient of the cost with respect to this layer's ``Z``.
    cache : tuple
        ``(A_prev, W, b)`` from :func:`linear_forward`.

    Returns
    -------
    dA_prev : ndarray of shape (n_prev, m)
    dW : ndarray of shape (n, n_prev)
        ``dZ A_prev^T / m``.
    db : ndarray of shape (n, 1)
        ``mean(dZ, axis=1)``.
    """
    A_prev, W, _ = cache
    m = A_prev.shape[1]
    dW = np.dot(dZ, A_prev.T) / m
    db = np.mean(dZ, axis=1, keepdims=True)
    dA_prev = np.dot(W.T, dZ)
    return dA_prev, dW, db


@_quiet_underflow
def sigmoid_backward(dA, cache):
    """``dZ = dA * s * (1 - s)`` with ``s = sigmoid(Z)``, ``Z`` being the cache."""
    Z = cache
    s = expit(Z)
    dZ = dA * s * (1 - s)
    return dZ


def relu_backward(dA, cache):
    """``dZ = dA`` where ``Z > 0`` and 0 elsewhere, ``Z`` being the cache."""
    Z = cache
    dZ = np.array(dA, copy=True)
    dZ[Z <= 0] = 0
    return dZ


#: The notebook's two activations, name -> backward function ``(dA, cache) -> dZ``.
BACKWARDS = {"sigmoid": sigmoid_backward, "relu": relu_backward}


def linear_activation_backward(dA, cache, activation):
    """Backward pass of one layer: through the activation, then the linear part.

    Returns
    -------
    dA_prev, dW, db : ndarrays
        Shapes of ``A_prev``, ``W`` and ``b``.
    """
    validation.choice("activation", activation, BACKWARDS)
    linear_cache, activation_cache = cache
    dZ = BACKWARDS[activation](dA, activation_cache)
    dA_prev, dW, db = linear_backward(dZ, linear_cache)
    return dA_prev, dW, db


def L_model_backward(AL, Y, caches):
    """Backpropagation through the whole network, by the textbook chain rule.

    Parameters
    ----------
    AL : ndarray of shape (1, m)
        Output of :func:`L_model_forward`.
    Y : ndarray of shape (1, m)
        Labels.
    caches : list
        From :func:`L_model_forward`.

    Returns
    -------
    grads : dict
        ``grads["dA" + str(l)]`` is the gradient with respect to the *input* of layer ``l``
        (the notebook's convention: ``dA1`` is the gradient with respect to ``X``),
        ``grads["dW" + str(l)]`` and ``grads["db" + str(l)]`` those of the parameters.

    Notes
    -----
    ``dAL = -(Y / AL - (1 - Y) / (1 - AL))``. A denominator below the dtype's smallest normal
    number (``AL`` of exactly 0 or 1, or a subnormal ``AL``) is raised to that number, so the
    quotient cannot overflow: the gradient stays finite with the right sign, and every other value
    of ``AL`` enters the formula unchanged.
    """
    grads = {}
    L = len(caches)
    Y = Y.reshape(AL.shape)
    tiny = _tiny(AL)
    dAL = -(np.divide(Y, np.maximum(AL, tiny)) - np.divide(1 - Y, np.maximum(1 - AL, tiny)))
    current_cache = linear_activation_backward(dAL, caches[L - 1], "sigmoid")
    grads["dA" + str(L)], grads["dW" + str(L)], grads["db" + str(L)] = current_cache
    for l in reversed(range(L - 1)):
        current_cache = linear_activation_backward(grads["dA" + str(l + 2)], caches[l], "relu")
        dA_prev_temp, dW_temp, db_temp = current_cache
        grads["dA" + str(l + 1)] = dA_prev_temp
        grads["dW" + str(l + 1)] = dW_temp
        grads["db" + str(l + 1)] = db_temp
    return grads


@_quiet_underflow
def update_parameters(parameters, grads, learning_rate):
    """One gradient-descent step: ``W = W - learning_rate * dW`` and ``b = b - learning_rate * db``.

    Returns
    -------
    parameters : dict
        The same dictionary, holding the new arrays.
    """
    L = len(parameters) // 2
    for l in range(L):
        parameters["W" + str(l + 1)] = parameters["W" + str(l + 1)] - learning_rate * grads["dW" + str(l + 1)]
        parameters["b" + str(l + 1)] = parameters["b" + str(l + 1)] - learning_rate * grads["db" + str(l + 1)]
    return parameters


def _check_training_input(X, Y, layers_dims, learning_rate, num_iterations, initial_parameters):
    layers_dims = validation.layer_widths("layers_dims", layers_dims, output_width=1)
    X = np.asarray(X)
    Y = np.asarray(Y)
    if X.ndim != 2:
        raise ValueError(
            f"X must be 2-D of shape (n_features, m), columns as examples; got X.shape={X.shape}."
        )
    validation.features(X.T, "X.T")  # real, finite, not empty; its rows are the examples
    if Y.size != X.shape[1]:
        raise ValueError(
            f"X and Y have different numbers of examples (columns): X.shape={X.shape}, "
            f"Y.shape={Y.shape}."
        )
    validation.binary_labels("Y", Y)
    if layers_dims[0] != X.shape[0]:
        raise ValueError(
            f"layers_dims[0]={layers_dims[0]} does not match the {X.shape[0]} features of X "
            f"(X.shape={X.shape})."
        )
    validation.positive_number("learning_rate", learning_rate)
    validation.positive_int("num_iterations", num_iterations)
    if initial_parameters is not None:
        # finite=False: as in the notebook, a diverged run may go on; its cost shows the divergence
        widths = validation.parameters_widths(initial_parameters, "initial_parameters", finite=False)
        if widths != layers_dims:
            raise ValueError(f"initial_parameters have the widths {widths}, but layers_dims={layers_dims}.")
    return X, Y.reshape(1, -1), layers_dims


def L_layer_model(
    X,
    Y,
    layers_dims,
    learning_rate,
    num_iterations,
    print_cost=False,
    *,
    rng=None,
    initial_parameters=None,
    return_costs=False,
):
    """Train the network by full-batch gradient descent, as the notebook does.

    Parameters
    ----------
    X : ndarray of shape (n_features, m)
    Y : ndarray of shape (1, m)
    layers_dims : list of int
        ``[n_features, n_1, ..., 1]``.
    learning_rate : float
    num_iterations : int
        Number of gradient-descent steps.
    print_cost : bool
        Print ``"Cost after iteration i: c"`` every 10 iterations.
    rng : numpy.random.Generator, optional
        Passed to :func:`initialize_parameters`.
    initial_parameters : dict, optional
        Start from these parameters (copied) instead of drawing new ones; used to train the
        engines of a comparison from the same initial weights.
    return_costs : bool
        Also return the list of costs, one per iteration, each computed before its update.

    Returns
    -------
    parameters : dict
    costs : list of float
        Only with ``return_costs=True``.
    """
    X, Y, layers_dims = _check_training_input(X, Y, layers_dims, learning_rate, num_iterations,
                                              initial_parameters)
    if initial_parameters is None:
        parameters = initialize_parameters(layers_dims, rng=rng)
    else:
        parameters = {k: np.array(v, copy=True) for k, v in initial_parameters.items()}
    costs = []
    for i in range(num_iterations):
        AL, caches = L_model_forward(X, parameters)
        cost = compute_cost(AL, Y)
        grads = L_model_backward(AL, Y, caches)
        parameters = update_parameters(parameters, grads, learning_rate)
        costs.append(float(cost))
        if print_cost and i % 10 == 0:
            print(f"Cost after iteration {i}: {float(cost):f}")
    return (parameters, costs) if return_costs else parameters


def accuracy(X, y, parameters):
    """Fraction of examples whose predicted probability falls on the right side of 0.5.

    Parameters
    ----------
    X : ndarray of shape (n_features, m)
    y : ndarray of shape (1, m) or (m,)
    parameters : dict

    Returns
    -------
    accuracy : float
        Between 0 and 1; a prediction is 1 when the probability is ``> 0.5``.
    """
    m = X.shape[1]
    probs, _ = L_model_forward(X, parameters)
    p = (probs > 0.5).astype(float)
    accuracy = np.sum(p == np.reshape(y, (1, -1))) / m
    return accuracy
