"""Kept for code that imported from here: the lab's pieces now live in their own modules.

:mod:`twinnet.lab.config` (``RunConfig``), :mod:`twinnet.lab.results` (``EngineResult``,
``Trained``, ``STATUSES``), :mod:`twinnet.lab.runners` (one runner per library and the
``ENGINES`` table) and :mod:`twinnet.lab.run` (preparing, running and evaluating a run).
"""

from twinnet.lab.config import KERAS_INITS, MAX_SEED, RunConfig
from twinnet.lab.results import STATUSES, EngineResult, Trained
from twinnet.lab.run import run_engine
from twinnet.lab.runners import DEFAULT_ENGINES, ENGINES, NO_CHECKPOINTS, Engine, installed, unsupported_reason
from twinnet.nn.divergence import DIVERGENCE_FACTOR
from twinnet.validation import INITIALIZERS

__all__ = [
           "DEFAULT_ENGINES",
           "DIVERGENCE_FACTOR",
           "ENGINES",
           "INITIALIZERS",
           "KERAS_INITS",
           "MAX_SEED",
           "NO_CHECKPOINTS",
           "STATUSES",
           "Engine",
           "EngineResult",
           "RunConfig",
           "Trained",
           "installed",
           "run_engine",
           "unsupported_reason",
]
