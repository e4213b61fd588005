"""Gradient checking: backpropagation against central finite differences, per parameter."""

from __future__ import annotations

import numpy as np

from twinnet import validation

__all__ = ["EPS_RANGE", "check_eps", "count_kinks", "gradcheck"]

#: The steps at which float64 central differences measure a derivative. Each loss is rounded to about
#: 1e-16 of itself, an error the difference divides by ``2 eps``: below 1e-8 (about the square root of
#: float64's machine epsilon) that rounding is more than 1e-8 of the loss per unit of slope and swamps
#: the check. Above 1e-2 the truncation of the differences (of order ``eps**2``) does.
EPS_RANGE = (1e-8, 1e-2)

#: Hidden activations whose derivative jumps at 0, where a central difference straddling the
#: kink measures neither side's slope.
KINKED = ("leaky_relu", "relu")


def gradcheck(network, X, y, eps=1e-5, masks=None):
    """Compare ``network.gradients(X, y, masks=masks)`` with central differences of the loss.

    For every weight and bias ``theta_i`` the numerical gradient is
    ``(J(theta_i + eps) - J(theta_i - eps)) / (2 eps)``, ``J`` the network's head's mean loss on
    ``(X, y)``: the log-loss (sigmoid), the categorical cross-entropy (softmax) or the mean squared
    error (linear), as :mod:`twinnet.nn.heads` computes it, plus the network's L2 penalty
    ``l2 * sum(W**2)``, with its dropout under the fixed keep ``masks`` (dropout draws new masks at
    every step, so a loss with random masks has no derivative to check), and its batch
    normalization with the batch's statistics, which move with every weight: the differences go
    through them as backpropagation does. The differences are taken in float64 on
    an exact copy of the network and of its inputs and targets as the network sees them (cast to its
    dtype; a float32 value is representable in float64), so ``eps = 1e-5`` is meaningful for a
    float32 network too. The backpropagation side runs in the network's own dtype: for float32 the
    error measures float32 rounding in backpropagation (about 1e-7 to 1e-5), for float64 the
    truncation of the differences (about 1e-9 or less).

    Parameters
    ----------
    network : Network
        Any head (``network.output``), hidden activation and dtype.
    X : array-like of shape (m, n_features)
    y : array-like of shape (m,) or (m, k)
        The head's targets, as :meth:`Network.fit` takes them: labels 0 and 1 (sigmoid), labels
        ``0 .. K-1`` (softmax of K units), real targets ``(m,)`` or ``(m, k)`` (linear of k units).
    eps : float, default=1e-5
        The step, within :data:`EPS_RANGE`.
    masks : list, optional
        Dropout's keep masks, one per hidden layer, as :meth:`Network.gradients` takes them:
        ``masks[l]`` of shape ``(m, n_{l+1})``, 1 where a unit is kept, 0 where it is dropped (the kept
        ones scaled by ``1 / (1 - rate)``), None for a layer of rate 0. Default: no dropout.

    Returns
    -------
    errors : dict of str -> float
        For ``"W1", "b1", ...``: ``||g - n|| / (||g|| + ||n||)`` with ``g`` backpropagation's and
        ``n`` the numerical gradient (Euclidean norms; 0 where both are 0).

    Raises
    ------
    FloatingPointError
        Where the loss, a backpropagated gradient or a finite difference is NaN or inf (the values
        overflow at these weights and data): no relative error can be measured, and the message
        names which one and the scales involved.

    Notes
    -----
    Costs two forward passes per parameter: check on a few dozen examples. A ReLU (or leaky
    ReLU) kink within ``eps`` of a pre-activation can make one entry disagree: :func:`count_kinks`
    tells, and a smaller ``eps`` or another seed tells such a kink from a bug. A gradient scaled by
    ``s`` shows as ``|s - 1| / (s + 1)`` for every parameter (1/3 for a factor 2).

    Examples
    --------
    >>> import numpy as np
    >>> from twinnet import Network, gradcheck
    >>> X = np.random.default_rng(0).standard_normal((20, 3)); y = (X[:, 0] > 0).astype(int)
    >>> errors = gradcheck(Network([3, 4, 1], hidden_activation="tanh", seed=0), X, y)
    >>> max(errors.values()) < 1e-7
    True
    >>> y3 = np.argmax(X, axis=1)  # three classes
    >>> net = Network([3, 4, 3], output="softmax", hidden_activation="tanh", seed=0)
    >>> max(gradcheck(net, X, y3).values()) < 1e-7
    True
    >>> net = Network([3, 4, 1], hidden_activation="tanh", l2=0.01, dropout=0.5, seed=0)
    >>> keep = [np.random.default_rng(1).random((20, 4)) >= 0.5]  # a fixed dropout mask
    >>> max(gradcheck(net, X, y, masks=keep).values()) < 1e-7
    True
    """
    from twinnet.nn.heads import HEADS
    from twinnet.nn.network import Network

    eps = check_eps(eps)
    # NaN and inf (an overflowing loss) are named below, not warned of
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        analytic = network.gradients(X, y, masks=masks)  # checks X, y and the masks
        # the network's own inputs (cast to its dtype), represented exactly in float64; so are a linear
        # head's targets (labels are exact in any dtype)
        X = np.asarray(X, dtype=network.dtype)
        if not HEADS[network.output].classifier:
            y = np.asarray(y, dtype=network.dtype)
        ref = Network.from_parameters(network.parameters, output=network.output,
                                      hidden_activation=network.hidden_activation, l2=network.l2,
                                      dropout=network.dropout, batch_norm=network.batch_norm, dtype="float64")
        theta, loss, as_gradients = ref.loss_function(X, y, masks)
        numeric = as_gradients(_central_differences(theta, loss, eps))
        values = {"the loss": np.array(loss()),
                  **{f"backpropagation's {key}": g for key, g in analytic.items()},
                  **{f"the finite difference of {key[1:]}": n for key, n in numeric.items()}}
    bad = next((what for what, value in values.items() if not np.isfinite(value).all()), None)
    if bad:
        scales = ", ".join(f"{name} up to {float(np.max(np.abs(value), initial=0.0)):.3g} in magnitude"
                           for name, value in (("X", X), ("y", y), ("the weights", theta)))
        raise FloatingPointError(
            f"{bad} is NaN or inf at these weights and data ({network.dtype.name}"
            f"{f', l2={network.l2:g}' if network.l2 else ''}, {scales}), so no relative error can be measured.")
    return {key[1:]: _relative_error(g.astype(np.float64), numeric[key]) for key, g in analytic.items()}


def check_eps(eps):
    """``eps`` as a float if it is a step within :data:`EPS_RANGE`, else :class:`InvalidArgument` naming the range."""
    eps = validation.positive_number("eps", eps)
    low, high = EPS_RANGE
    if not low <= eps <= high:
        expected = f"a number between {low:g} and {high:g}"
        raise validation.InvalidArgument(
            "eps", f"{expected} (below, rounding swamps the differences; above, their truncation does)", eps,
            f"eps must be between {low:g} and {high:g} for float64 central differences: below, the rounding of "
            f"the losses swamps their differences; above, the differences' truncation does; got eps={eps!r}.")
    return eps


def _central_differences(theta, loss, eps):
    """``(loss(theta_i + eps) - loss(theta_i - eps)) / (2 eps)`` for each entry, ``theta`` restored."""
    numeric = np.empty_like(theta)
    for i in range(theta.size):
        saved = theta[i]
        theta[i] = saved + eps
        plus = loss()
        theta[i] = saved - eps
        minus = loss()
        theta[i] = saved
        numeric[i] = (plus - minus) / (2 * eps)
    return numeric


def _relative_error(g, n):
    # divided by the largest magnitude first: the norms of gradients near 1e300 do not overflow
    scale = max(float(np.max(np.abs(g), initial=0.0)), float(np.max(np.abs(n), initial=0.0)))
    if not scale:
        return 0.0
    g, n = g / scale, n / scale
    return float(np.linalg.norm(g - n) / (np.linalg.norm(g) + np.linalg.norm(n)))


def count_kinks(network, X, eps, masks=None):
    """Number of hidden pre-activations ``Z`` with ``|Z| < eps`` at a kinked activation.

    Zero for smooth activations (``sigmoid``, ``tanh``). A positive count means that a central
    difference of step ``eps`` may straddle a ReLU kink and disagree with backpropagation there.
    With dropout's keep ``masks`` (as :func:`gradcheck` takes them), the pre-activations are those
    under the masks.
    """
    if network.hidden_activation not in KINKED:
        return 0
    return int(sum(np.count_nonzero(np.abs(Z) < eps) for Z in network.hidden_preactivations(X, masks)))
