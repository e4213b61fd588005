"""When training diverges: the one rule that ``Network.fit`` warns by and the lab marks runs by.

A loss that stops being finite has diverged (``fit`` raises ``FloatingPointError``); so has one
that climbs past :data:`DIVERGENCE_FACTOR` times where it started (:func:`climbed`), which ``fit``
reports with a :class:`DivergenceWarning` and the lab with the status ``"diverged"``.

Example
-------
>>> import warnings
>>> from twinnet.nn.divergence import DivergenceWarning, climbed
>>> climbed(3.1, 7.1e11), climbed(3.1, 3.5)
(True, False)
>>> with warnings.catch_warnings():
...     warnings.simplefilter("error", DivergenceWarning)  # a diverging fit raises it in here
"""

from __future__ import annotations

__all__ = ["DIVERGENCE_FACTOR", "DivergenceWarning", "climbed"]

#: A stable step lowers the training loss; one that overshoots makes it climb, often until the
#: network saturates at a finite but useless loss (ReLUs dead, sigmoid pinned at 0 or 1). A loss
#: that rises past this multiple of its starting value marks the training as diverged.
DIVERGENCE_FACTOR = 4.0


class DivergenceWarning(UserWarning):
    """The training loss climbed past :data:`DIVERGENCE_FACTOR` times its first epoch's.

    ``Network.fit`` (and so the estimators) warns once per fit, at the epoch where it happens.
    A ``UserWarning``, as scikit-learn's ``ConvergenceWarning``: it is about the settings (the
    learning rate, the data's scale), not about floating-point arithmetic, which NumPy's
    ``RuntimeWarning`` reports. ``warnings.simplefilter("error", DivergenceWarning)`` makes
    ``fit`` raise it; ``"ignore"`` silences it.
    """


def climbed(start, loss):
    """Whether ``loss`` rose past :data:`DIVERGENCE_FACTOR` times ``start``: training diverged."""
    return loss > DIVERGENCE_FACTOR * start
