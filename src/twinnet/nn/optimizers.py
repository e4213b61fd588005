"""Optimizers with Keras 3's exact update rules, applied in place to flat parameter vectors.

``Network`` keeps all its weights and biases in one contiguous vector (and its gradients in
another), so one optimizer step is a handful of NumPy calls over the whole network, whatever its
depth. The rules, defaults and order of operations are those of ``keras.optimizers.SGD`` and
``keras.optimizers.Adam`` (``keras/src/optimizers/sgd.py`` and ``adam.py``), scalars included: they
are rounded as Keras rounds them, so a twin in Keras (TensorFlow backend) reproduces every step
to the last place, in float32 and in float64: bit for bit on AVX2 CPUs, within an ulp where
TensorFlow's and NumPy's vector paths round differently (AVX-512):

- Python-float hyperparameters that Keras passes through ``ops.cast(x, variable.dtype)``
  (``momentum``, ``beta_1``, ``beta_2``) become a float32 tensor first under TensorFlow, so even a
  float64 variable sees ``float32(0.9) = 0.89999997615814...``; we round them the same way
  (:func:`keras_cast`).
- Those that Keras combines with a tensor directly (``1 - beta_1``, ``1 - beta_2``, ``epsilon``)
  keep their Python value, rounded to the variable's dtype.
- The learning rate is used as given. (Keras keeps it in a ``floatx`` variable, float32 by
  default: a float64 twin must set ``floatx`` to float64, as ``twinnet.keras_twin`` does.)

An optimizer object holds hyperparameters only until :meth:`Optimizer.build`, which ``fit`` calls
at its start: each ``fit`` call starts from a fresh state (zero moments, step count 0), whether
the optimizer is given by name or as an object.

Examples
--------
>>> import numpy as np
>>> from twinnet.nn import Adam
>>> w = np.array([1.0, -2.0]); g = np.array([0.5, 0.5])
>>> opt = Adam(); opt.build(w.size, w.dtype)
>>> opt.apply(w, g.copy(), learning_rate=0.1)  # first Adam step moves each weight by ~lr
>>> np.round(w, 4)
array([ 0.9, -2.1])
"""

from __future__ import annotations

import numpy as np

from twinnet import validation

__all__ = ["OPTIMIZERS", "SGD", "Adam", "Momentum", "Optimizer", "RMSprop", "defaults", "get_optimizer",
           "keras_cast"]


class Optimizer:
    """Base class: hyperparameters in ``__init__``, state in :meth:`build`, steps in :meth:`apply`."""

    #: Name in :data:`OPTIMIZERS`.
    name = ""
    #: The class of ``keras.optimizers`` that this one reproduces, with :meth:`get_config` as arguments.
    keras = ""
    #: The class of ``torch.optim`` that takes the same steps with :meth:`torch_options`.
    torch = ""

    def build(self, size, dtype):
        """Reset the state for a flat parameter vector of ``size`` elements of ``dtype``."""
        self.dtype = np.dtype(dtype)
        self.iterations = 0

    def apply(self, params, grads, learning_rate):
        """Update ``params`` in place from ``grads`` (which may be overwritten).

        Parameters
        ----------
        params : ndarray of shape (n_params,)
            All weights and biases, updated in place.
        grads : ndarray of shape (n_params,)
            Gradient of the loss with respect to ``params``; used as scratch.
        learning_rate : float
        """
        raise NotImplementedError

    def get_config(self):
        """Hyperparameters, as keyword arguments of the constructor."""
        return {}

    def torch_options(self):
        """Keyword arguments of :attr:`torch`'s class (besides ``lr``) for the same steps."""
        return {}

    def sklearn_options(self):
        """scikit-learn's MLP solver settings for the same steps, or None where it has no such solver."""
        return None

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    __hash__ = None


def keras_cast(value, dtype):
    """``value`` as Keras's ``ops.cast(value, dtype)`` gives it under TensorFlow: via float32."""
    return np.dtype(dtype).type(np.float32(value))


class SGD(Optimizer):
    """Plain gradient descent, the notebook's update: ``w = w - learning_rate * g``."""

    name = "sgd"
    keras = torch = "SGD"

    def torch_options(self):
        return {"momentum": 0.0}

    def sklearn_options(self):
        return {"solver": "sgd", "momentum": 0.0}

    def apply(self, params, grads, learning_rate):
        # Keras: variable.assign_sub(gradient * learning_rate)
        np.multiply(grads, learning_rate, out=grads)
        np.subtract(params, grads, out=params)
        self.iterations += 1


class Momentum(Optimizer):
    """Keras's ``SGD(momentum=0.9, nesterov=False)``.

    ``v = momentum * v - learning_rate * g; w = w + v`` with ``v`` starting at 0, or with
    ``nesterov=True``: ``w = w + momentum * v - learning_rate * g`` after updating ``v``.
    ``momentum`` is rounded to float32 first, as Keras's TensorFlow backend does.
    """

    name = "momentum"
    keras = torch = "SGD"

    def __init__(self, momentum=0.9, nesterov=False):
        self.momentum = validation.fraction("momentum", momentum, "[0, 1]")
        self.nesterov = bool(nesterov)

    def build(self, size, dtype):
        super().build(size, dtype)
        self.velocity = np.zeros(size, dtype)
        self._scratch = np.empty(size, dtype) if self.nesterov else None

    def apply(self, params, grads, learning_rate):
        v = self.velocity
        momentum = keras_cast(self.momentum, self.dtype)
        np.multiply(grads, learning_rate, out=grads)  # learning_rate * g
        np.multiply(v, momentum, out=v)
        np.subtract(v, grads, out=v)  # v = momentum * v - learning_rate * g
        if self.nesterov:
            step = np.multiply(v, momentum, out=self._scratch)
            np.subtract(step, grads, out=step)
            np.add(params, step, out=params)
        else:
            np.add(params, v, out=params)
        self.iterations += 1

    def get_config(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}

    def torch_options(self):
        # the float32-rounded momentum that Keras uses (see the module's notes)
        return {"momentum": float(keras_cast(self.momentum, "float64")), "nesterov": self.nesterov}

    def sklearn_options(self):
        return {"solver": "sgd", "momentum": self.momentum, "nesterovs_momentum": self.nesterov}


class Adam(Optimizer):
    """Keras's ``Adam(beta_1=0.9, beta_2=0.999, epsilon=1e-7)``.

    With ``t`` the step number counted from 1::

        alpha = learning_rate * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m = m + (g - m) * (1 - beta_1)
        v = v + (g * g - v) * (1 - beta_2)
        w = w - (m * alpha) / (sqrt(v) + epsilon)

    ``m`` and ``v`` start at 0. ``epsilon`` is Keras's 1e-7, not the paper's 1e-8, and it is added
    to ``sqrt(v)`` without bias correction, as Keras does. In the powers ``beta_1**t`` and
    ``beta_2**t`` the betas are rounded to float32 first, as Keras's TensorFlow backend does.
    """

    name = "adam"
    keras = torch = "Adam"

    def __init__(self, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        self.beta_1 = validation.fraction("beta_1", beta_1, "[0, 1)")
        self.beta_2 = validation.fraction("beta_2", beta_2, "[0, 1)")
        self.epsilon = validation.positive_number("epsilon", epsilon)

    def build(self, size, dtype):
        super().build(size, dtype)
        self.m = np.zeros(size, dtype)
        self.v = np.zeros(size, dtype)
        self._scratch = np.empty(size, dtype)

    def apply(self, params, grads, learning_rate):
        # The scalars in the parameters' dtype, computed as Keras computes them.
        f = self.dtype.type
        t = f(self.iterations + 1)
        beta_1_power = np.power(keras_cast(self.beta_1, self.dtype), t)
        beta_2_power = np.power(keras_cast(self.beta_2, self.dtype), t)
        alpha = f(learning_rate) * np.sqrt(f(1) - beta_2_power) / (f(1) - beta_1_power)
        m, v, s = self.m, self.v, self._scratch
        np.subtract(grads, m, out=s)
        np.multiply(s, 1 - self.beta_1, out=s)
        np.add(m, s, out=m)  # m += (g - m) * (1 - beta_1)
        np.multiply(grads, grads, out=s)
        np.subtract(s, v, out=s)
        np.multiply(s, 1 - self.beta_2, out=s)
        np.add(v, s, out=v)  # v += (g * g - v) * (1 - beta_2)
        np.sqrt(v, out=grads)
        np.add(grads, self.epsilon, out=grads)
        np.multiply(m, alpha, out=s)
        np.divide(s, grads, out=s)
        np.subtract(params, s, out=params)  # w -= (m * alpha) / (sqrt(v) + epsilon)
        self.iterations += 1

    def get_config(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}

    def torch_options(self):
        # torch's step differs from Keras's in its epsilon and bias corrections: torch_twin sets its
        # lr and eps at each step so that it is Keras's (torch_twin._keras_adam)
        return {"betas": (self.beta_1, self.beta_2), "eps": self.epsilon}

    def sklearn_options(self):
        return {"solver": "adam", "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class RMSprop(Optimizer):
    """Keras's ``RMSprop(rho=0.9, momentum=0.0, epsilon=1e-7, centered=False)``.

    With ``v`` (and ``a``, ``s``) starting at 0::

        v = rho * v + (1 - rho) * g * g
        a = rho * a + (1 - rho) * g                      # centered only
        denominator = v - (a * a - epsilon) if centered else v + epsilon
        increment = (learning_rate * g) * (1 / sqrt(denominator))
        s = momentum * s + increment; w = w - s          # momentum > 0
        w = w - increment                                # momentum == 0

    ``epsilon`` is added under the square root, as Keras does; PyTorch's ``RMSprop`` adds it to
    ``sqrt(v)``, so no choice of its ``eps`` takes Keras's steps (torch_twin takes them itself,
    :func:`twinnet.torch_twin._keras_rmsprop`). Keras combines ``rho``, ``1 - rho``, ``momentum``
    and ``epsilon`` with the variables directly, without ``ops.cast``: they keep their Python
    values, rounded to the variables' dtype (not through float32, unlike SGD's momentum).

    Keras writes ``(learning_rate * g) / sqrt(denominator)`` and ``v - a * a + epsilon``;
    TensorFlow's graph optimizer (grappler, which runs on every ``tf.function``: ``fit``'s step and
    the twin's tf-loop) rewrites the division by a square root as a product with ``rsqrt`` and the
    centered denominator as ``v - (a * a - epsilon)``, and that is what Keras computes: so do we,
    with ``1 / sqrt(denominator)`` for ``rsqrt``, TensorFlow's float64 ``rsqrt`` bit for bit on AVX2
    CPUs. Its float32 ``rsqrt`` (on arrays of 8 or more) is an approximation refined by a Newton
    step, within about 2 ulps of ``1 / sqrt``: float32 steps agree to a few ulps, not to the bit.
    (Keras run eagerly divides, as written: about 1 ulp a step from these.)
    """

    name = "rmsprop"
    keras = torch = "RMSprop"

    def __init__(self, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False):
        self.rho = validation.fraction("rho", rho, "[0, 1)")
        self.momentum = validation.fraction("momentum", momentum, "[0, 1)")
        self.epsilon = validation.positive_number("epsilon", epsilon)
        self.centered = validation.flag("centered", centered)

    def build(self, size, dtype):
        super().build(size, dtype)
        self.velocity = np.zeros(size, dtype)
        self.average_gradient = np.zeros(size, dtype) if self.centered else None
        self.moment = np.zeros(size, dtype) if self.momentum > 0 else None
        self._scratch = np.empty(size, dtype)

    def apply(self, params, grads, learning_rate):
        rho, v, s = self.rho, self.velocity, self._scratch
        np.multiply(v, rho, out=v)
        np.multiply(grads, grads, out=s)
        np.multiply(s, 1 - rho, out=s)
        np.add(v, s, out=v)  # v = rho * v + (1 - rho) * g * g
        if self.centered:
            a = self.average_gradient
            np.multiply(a, rho, out=a)
            np.multiply(grads, 1 - rho, out=s)
            np.add(a, s, out=a)  # a = rho * a + (1 - rho) * g
            np.multiply(a, a, out=s)
            np.subtract(s, self.epsilon, out=s)
            np.subtract(v, s, out=s)  # v - (a * a - epsilon), as grappler rewrites it
        else:
            np.add(v, self.epsilon, out=s)
        np.sqrt(s, out=s)
        np.divide(1, s, out=s)
        np.multiply(grads, learning_rate, out=grads)
        np.multiply(grads, s, out=grads)  # increment = (learning_rate * g) * rsqrt(denominator)
        if self.moment is not None:
            np.multiply(self.moment, self.momentum, out=self.moment)
            np.add(self.moment, grads, out=self.moment)  # s = momentum * s + increment
            grads = self.moment
        np.subtract(params, grads, out=params)
        self.iterations += 1

    def get_config(self):
        return {"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon, "centered": self.centered}

    def torch_options(self):
        # torch's names for the same hyperparameters; its step puts epsilon outside the square root,
        # so torch_twin takes Keras's step itself with them (torch_twin._keras_rmsprop)
        return {"alpha": self.rho, "eps": self.epsilon, "momentum": self.momentum, "centered": self.centered}

    def sklearn_options(self):
        return None  # scikit-learn's MLPs have the solvers 'sgd' (with momentum), 'adam' and 'lbfgs', no RMSprop


#: Optimizer name (:data:`twinnet.validation.OPTIMIZERS`) -> class; ``OPTIMIZERS[name]()`` has
#: Keras's defaults, the one table of them (:func:`defaults`).
OPTIMIZERS = {
    "adam": Adam,
    "momentum": Momentum,
    "rmsprop": RMSprop,
    "sgd": SGD,
}


def defaults(name):
    """The hyperparameters of ``OPTIMIZERS[name]()``, Keras's defaults: what every twin and runner reads.

    >>> defaults("adam")
    {'beta_1': 0.9, 'beta_2': 0.999, 'epsilon': 1e-07}
    """
    return OPTIMIZERS[name]().get_config()


def get_optimizer(optimizer):
    """An :class:`Optimizer` from a name in :data:`OPTIMIZERS` or an optimizer object."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    name = validation.choice("optimizer", optimizer, OPTIMIZERS,
                             alternative="an Optimizer object such as Adam(beta_1=0.9)")
    return OPTIMIZERS[name]()
