"""Hyperparameter grids: validation, presets, and expansion into runs with stable ids.

A grid maps each key of :data:`GRID_KEYS` to a list of values. It expands into one
:class:`RunSpec` per combination of configuration, seed and engine; the values of ``epochs`` are
checkpoints of one training run (a run trained for 1000 epochs records its metrics at 100 and 250
on the way), so they do not multiply the number of runs.

Example
-------
>>> from twinnet.lab.grid import check_grid, expand
>>> grid = check_grid({"data": "moons", "layers": [[2, 8, 1]], "learning_rate": [0.1, 1.0],
...                    "epochs": [10, 50], "seeds": [0, 1], "engines": ["functional"]})
>>> runs = expand(grid)
>>> len(runs), runs[0].epochs
(4, (10, 50))
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["GRID_KEYS", "PRESETS", "RunSpec", "check_grid", "load_toml", "expand", "grid_hash"]

_DTYPES = ("float32", "float64")


def _name(value):
    if not isinstance(value, str) or not value:
        raise TypeError("a non-empty string")
    return value


def _positive_int(value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TypeError("an integer >= 1")
    return value


def _seed(value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError("an integer >= 0")
    return value


def _learning_rate(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("a number > 0")
    value = float(value)
    if not 0 < value < float("inf"):
        raise TypeError("a finite number > 0")
    return value


def _layers(value):
    if value is None:  # the data set's n_features,20,5,1, resolved by expand()
        return None
    if (not isinstance(value, (list, tuple)) or len(value) < 2
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in value)):
        raise TypeError("a list of at least two positive integers such as [100, 20, 5, 1]")
    if value[-1] != 1:
        raise TypeError("a list of layer widths ending in 1 (one sigmoid output unit)")
    return tuple(value)


def _batch_size(value):
    # None means full batch, as the notebook trains; "full" is how TOML and the CLI spell it.
    if value is None or value == "full":
        return None
    try:
        return _positive_int(value)
    except TypeError:
        raise TypeError('an integer >= 1 or "full"') from None


def _dtype(value):
    if value not in _DTYPES:
        raise TypeError(" or ".join(repr(d) for d in _DTYPES))
    return value


#: grid key -> (check and normalize one value, default values)
GRID_KEYS = {
    "data": (_name, ("synthetic",)),
    "layers": (_layers, (None,)),
    "learning_rate": (_learning_rate, (0.1,)),
    "epochs": (_positive_int, (250,)),
    "batch_size": (_batch_size, (None,)),
    "optimizer": (_name, ("sgd",)),
    "hidden_activation": (_name, ("relu",)),
    "init": (_name, ("normal",)),
    "dtype": (_dtype, ("float64",)),
    "seeds": (_seed, (0,)),
    "engines": (_name, ("numpy",)),
}

#: Ready grids. ``notebook``: the notebook's network [100, 20, 5, 1] and three neighbours (shallower,
#: wider, deeper), learning rates 0.01 and the notebook's 0.1, its 250 epochs with checkpoints at 50
#: and 100, three seeds; NumPy and both Keras engines, ``model.fit`` and the ``tf.function`` loop, so
#: that the report separates ``model.fit``'s per-epoch overhead from TensorFlow's arithmetic. Keras's
#: ``model.fit`` costs about 40 ms per epoch whatever the network, so 250 epochs keep its 24 runs
#: within 10 minutes on 2 cores; a ``tf-loop`` run takes about a tenth of a ``keras`` run (measured:
#: 0.11 and 0.14 of it on the smallest and largest network), so its 24 runs add about 30 s of CPU.
PRESETS = {
    "notebook": {
        "data": ["synthetic"],
        "layers": [[100, 20, 1], [100, 20, 5, 1], [100, 50, 20, 1], [100, 64, 32, 16, 1]],
        "learning_rate": [0.01, 0.1],
        "epochs": [50, 100, 250],
        "seeds": [0, 1, 2],
        "engines": ["numpy", "keras", "tf-loop"],
    },
}


def check_grid(grid, *, source="grid"):
    """Validate a grid and return it normalized: every key present, values as deduplicated tuples.

    Parameters
    ----------
    grid : dict
        Maps keys of :data:`GRID_KEYS` to a value or a list of values; missing keys take their
        defaults (the notebook's experiment). ``layers`` values are lists of widths, input first,
        output 1; by default ``n_features,20,5,1``.
    source : str
        Named in error messages (a file path, ``"--preset notebook"``, ...).

    Returns
    -------
    dict of str to tuple
        In the order of :data:`GRID_KEYS`; ``epochs`` sorted ascending.

    Raises
    ------
    ValueError
        An unknown key (named), a value of the wrong type (key and value named), an empty list, or
        an engine, optimizer, activation or initializer name that does not exist.
    """
    if not isinstance(grid, dict) or not grid:
        raise ValueError(f"{source}: the grid is empty; give at least one key such as layers or "
                         f"learning_rate. Known keys: {', '.join(GRID_KEYS)}.")
    unknown = [key for key in grid if key not in GRID_KEYS]
    if unknown:
        raise ValueError(f"{source}: unknown grid key {unknown[0]!r}. Expected one of: "
                         f"{', '.join(GRID_KEYS)}.")
    out = {}
    for key, (check, default) in GRID_KEYS.items():
        values = grid.get(key, default)
        # A bare value is a one-value list; a flat list of ints under "layers" is one network.
        if not isinstance(values, (list, tuple)) or (key == "layers" and values
                                                     and isinstance(values[0], int)):
            values = [values]
        if len(values) == 0:
            raise ValueError(f"{source}: grid key {key!r} has no values; give at least one.")
        normalized = []
        for value in values:
            try:
                value = check(value)
            except TypeError as exc:
                raise ValueError(f"{source}: grid key {key!r} expects {exc}; got {value!r} "
                                 f"({type(value).__name__}).") from None
            if value not in normalized:
                normalized.append(value)
        out[key] = tuple(sorted(normalized) if key == "epochs" else normalized)
    _check_names(out, source)
    return out


def _check_names(grid, source):
    from twinnet.keras_twin import HIDDEN_ACTIVATIONS, OPTIMIZERS
    from twinnet.lab.engines import ENGINES, INITIALIZERS

    tables = {"engines": ENGINES, "optimizer": OPTIMIZERS, "hidden_activation": HIDDEN_ACTIVATIONS,
              "init": INITIALIZERS}
    for key, table in tables.items():
        for value in grid[key]:
            if value not in table:
                raise ValueError(f"{source}: unknown {key} {value!r} in the grid. Expected one of: "
                                 f"{', '.join(repr(n) for n in sorted(table))}.")


def load_toml(path):
    """Read a grid from a TOML file (``learning_rate = [0.01, 0.1]``, ...) and validate it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--grid {path}: no such file.")
    try:
        grid = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"--grid {path}: not valid TOML ({exc}).") from None
    return check_grid(grid, source=f"--grid {path}")


@dataclass(frozen=True)
class RunSpec:
    """One training run: a configuration, a seed and an engine.

    ``epochs`` holds the checkpoints, ascending; the run trains for ``epochs[-1]`` epochs.
    ``batch_size`` None is full batch. ``run_id`` is a hash of everything else.
    """

    run_id: str
    engine: str
    seed: int
    data: str
    layers: tuple
    learning_rate: float
    epochs: tuple
    batch_size: int | None
    optimizer: str
    hidden_activation: str
    init: str
    dtype: str

    def config(self):
        """The configuration as a JSON-ready dict (no engine, seed or id)."""
        d = asdict(self)
        for key in ("run_id", "engine", "seed"):
            del d[key]
        d["layers"], d["epochs"] = list(self.layers), list(self.epochs)
        return d


def _digest(obj):
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def expand(grid, n_features=None):
    """All runs of a checked grid, in a stable order; ids are hashes of config, seed and engine.

    ``n_features`` maps each data set to its number of features; it resolves the default layers
    (``None``) to the notebook's shape, ``n_features,20,5,1``.
    """
    config_keys = [k for k in GRID_KEYS if k not in ("epochs", "seeds", "engines")]
    runs = []
    for values in itertools.product(*(grid[k] for k in config_keys)):
        config = dict(zip(config_keys, values), epochs=grid["epochs"])
        if config["layers"] is None:
            if n_features is None or config["data"] not in n_features:
                raise ValueError(f"layers are not given and the number of features of data "
                                 f"{config['data']!r} is unknown; give layers.")
            config["layers"] = (n_features[config["data"]], 20, 5, 1)
        for seed, engine in itertools.product(grid["seeds"], grid["engines"]):
            fields = dict(config, seed=seed, engine=engine)
            run_id = _digest({k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()})
            runs.append(RunSpec(run_id=run_id, **fields))
    return runs


def grid_hash(runs):
    """A hash of the set of run ids: two grids with the same runs have the same hash."""
    return _digest(sorted(run.run_id for run in runs))
