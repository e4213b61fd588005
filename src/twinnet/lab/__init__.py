"""The lab: train several engines from the same initial weights and compare them.

The core is reusable by the sweep: :mod:`twinnet.lab.engines` runs one engine on one
:class:`RunConfig` and returns a plain :class:`EngineResult`; :mod:`twinnet.lab.compare` runs a
set of engines on one configuration; :mod:`twinnet.lab.plots` draws the figures (matplotlib is
imported only there, when a figure is drawn). Nothing here imports TensorFlow, PyTorch or
matplotlib until an engine or a plot needs it.
"""

from twinnet.lab.compare import Comparison, compare, resolve_engines
from twinnet.lab.engines import DEFAULT_ENGINES, ENGINES, EngineResult, RunConfig, run_engine

__all__ = ["RunConfig", "EngineResult", "ENGINES", "DEFAULT_ENGINES", "run_engine", "Comparison",
           "compare", "resolve_engines"]
