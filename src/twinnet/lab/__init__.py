"""The lab: train several engines from the same initial weights and compare them.

One description of a run, :class:`RunConfig` (:mod:`twinnet.lab.config`); one runner per library
(:mod:`twinnet.lab.runners`); one home for preparing, running and evaluating a run
(:mod:`twinnet.lab.run`), whose :func:`run_engine` returns a plain :class:`EngineResult`
(:mod:`twinnet.lab.results`); :mod:`twinnet.lab.compare` runs a set of engines on one
configuration, :mod:`twinnet.lab.sweep` a grid of them; :mod:`twinnet.lab.plots` draws the figures.
Every output head runs through them: the data set's own (or ``RunConfig.output``), with its metrics
(accuracy for classifiers; RMSE and R^2 for regression, whose targets are standardized as the
features are). Regularization and training control are fields of the run's description (``l2``,
``dropout``, ``lr_schedule``, ``early_stopping``): every engine that can trains them, the others are
left out with a reason, and the sweep's report shows the train-test gap against ``l2`` and
``dropout`` and where early stopping ended each run.
Nothing here imports TensorFlow, PyTorch or matplotlib until an engine or a plot needs it.
"""

from twinnet.lab.compare import Comparison, compare, resolve_engines
from twinnet.lab.config import DEFAULT_HIDDEN, RunConfig
from twinnet.lab.results import EngineResult
from twinnet.lab.run import run_engine
from twinnet.lab.runners import DEFAULT_ENGINES, ENGINES

__all__ = [
           "DEFAULT_ENGINES",
           "DEFAULT_HIDDEN",
           "ENGINES",
           "Comparison",
           "EngineResult",
           "RunConfig",
           "compare",
           "resolve_engines",
           "run_engine",
]
