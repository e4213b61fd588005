"""Hyperparameter grids: validation, presets, and expansion into runs with stable ids.

A grid maps each key of :data:`GRID_KEYS` to a list of values. It expands into one
:class:`RunSpec` per combination of configuration, seed and engine; the values of ``epochs`` are
checkpoints of one training run (a run trained for 1000 epochs records its metrics at 100 and 250
on the way), so they do not multiply the number of runs.

Examples
--------
>>> from twinnet.lab.grid import check_grid, expand
>>> grid = check_grid({"data": "moons", "layers": [[2, 8, 1]], "learning_rate": [0.1, 1.0],
...                    "epochs": [10, 50], "seeds": [0, 1], "engines": ["functional"]})
>>> runs = expand(grid)
>>> len(runs), runs[0].checkpoints, runs[0].config.epochs
(4, (10, 50), 50)
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass

from twinnet import validation
from twinnet.lab.config import CONTROLS, RunConfig, default_layers
from twinnet.nn.heads import DEFAULT_OUTPUT
from twinnet.safe_io import open_regular

__all__ = ["GRID_KEYS", "PRESETS", "RunSpec", "check_grid", "expand", "grid_hash", "load_toml"]


def _data(value):
    # a built-in data set's name or a file's path: twinnet.data.load checks it when the sweep plans
    if not isinstance(value, str) or not value:
        raise ValueError(f"data must be a data set's name or a file's path; got data={value!r}.")
    return value


def _field(name, convert=lambda value: value):
    """Check one value with :meth:`RunConfig.validate`'s rules: the field set, the others default."""
    def check(value):
        value = convert(value)
        RunConfig(**{name: value}).validate()
        return value

    return check


def _seed(value):
    return validation.seed(value, allow_none=False)  # every run of a sweep must be reproducible


def _none(*spellings):
    """``None`` for the words that mean it in TOML and on the command line (TOML has no null)."""
    return lambda value: None if isinstance(value, str) and value.strip().lower() in spellings else value


def _engine(value):
    from twinnet.lab.runners import ENGINES

    return validation.choice("engines", value, ENGINES)


#: grid key -> (check and normalize one value, default values). ``layers`` None is the data set's
#: default network and ``output`` None its head, resolved by :func:`expand`; ``batch_size`` "full"
#: (as TOML and the CLI spell it) is None, full batch; ``lr_schedule`` and ``early_stopping`` "none"
#: are None, off.
GRID_KEYS = {
    "data": (_data, ("synthetic",)),
    "output": (_field("output"), (None,)),
    "layers": (_field("layers", lambda v: None if v is None else tuple(v) if isinstance(v, list) else v), (None,)),
    "learning_rate": (_field("learning_rate", lambda v: float(v) if validation.is_int(v) else v), (0.1,)),
    "epochs": (_field("epochs"), (250,)),
    "batch_size": (_field("batch_size", lambda v: None if v == "full" else v), (None,)),
    "optimizer": (_field("optimizer"), ("sgd",)),
    "hidden_activation": (_field("hidden_activation"), ("relu",)),
    "init": (_field("init"), ("normal",)),
    "dtype": (_field("dtype"), ("float64",)),
    "l2": (_field("l2", lambda v: float(v) if validation.is_int(v) else v), (0.0,)),
    "dropout": (_field("dropout", lambda v: float(v) if validation.is_int(v) else v), (0.0,)),
    "batch_norm": (_field("batch_norm"), (False,)),
    "lr_schedule": (_field("lr_schedule", lambda v: _none("none", "constant")(v.strip() if isinstance(v, str) else v)),
                    (None,)),
    "early_stopping": (_field("early_stopping", _none("none", "off")), (None,)),
    "validation_fraction": (_field("validation_fraction"), (0.1,)),
    "seeds": (_seed, (0,)),
    "engines": (_engine, ("numpy",)),
}

#: Ready grids. ``notebook``: the notebook's network [100, 20, 5, 1] and three neighbours (shallower,
#: wider, deeper), learning rates 0.01 and the notebook's 0.1, its 250 epochs with checkpoints at 50
#: and 100, three seeds; NumPy and both Keras engines, ``model.fit`` and the ``tf.function`` loop, so
#: that the report separates ``model.fit``'s per-epoch overhead from TensorFlow's arithmetic. Its
#: size is bounded by ``model.fit``'s fixed cost per epoch, whatever the network: 250 epochs keep
#: its runs to minutes on two cores (``twinnet bench`` measures the times on a given machine).
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
        output last (1 for a sigmoid, K for K classes or targets); by default
        ``n_features,20,5,K`` for the data set's head. ``output`` values are heads (``sigmoid``,
        ``softmax``, ``linear``); by default the data set's.
    source : str
        Named in error messages (a file path, ``"--preset notebook"``, ...).

    Returns
    -------
    dict of str to tuple
        In the order of :data:`GRID_KEYS`; ``epochs`` sorted ascending.

    Raises
    ------
    ValueError
        An unknown key (named), an empty list, or a value that :meth:`RunConfig.validate` refuses
        (the key named, then its message), or an engine that does not exist.
    """
    if not isinstance(grid, dict) or not grid:
        raise ValueError(f"{source}: the grid is empty; give at least one key such as layers or "
                         f"learning_rate. Known keys: {', '.join(GRID_KEYS)}.")
    for key in grid:
        try:
            validation.choice("grid key", key, list(GRID_KEYS), ordered=True)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None
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
            except ValueError as exc:
                raise ValueError(f"{source}: grid key {key!r}: {exc}") from None
            if value not in normalized:
                normalized.append(value)
        out[key] = tuple(sorted(normalized) if key == "epochs" else normalized)
    # the rules that join two keys: a learning rate within dtype's range, a head that fits the layers
    for dtype in out["dtype"]:
        try:
            RunConfig(learning_rate=max(out["learning_rate"]), dtype=dtype).validate()
        except ValueError as exc:
            raise ValueError(f"{source}: grid key 'learning_rate': {exc}") from None
    for output, layers in itertools.product(out["output"], out["layers"]):
        try:
            RunConfig(output=output, layers=layers).validate()
        except ValueError as exc:
            raise ValueError(f"{source}: grid keys 'output' and 'layers': {exc}") from None
    for learning_rate, schedule in itertools.product(out["learning_rate"], out["lr_schedule"]):
        try:  # a schedule's initial learning rate is the run's, unless its spec gives one
            RunConfig(learning_rate=learning_rate, lr_schedule=schedule).validate()
        except ValueError as exc:
            raise ValueError(f"{source}: grid keys 'learning_rate' and 'lr_schedule': {exc}") from None
    return out


#: The most bytes a grid file may hold: a grid of every key and hundreds of values takes a few kB.
GRID_BYTES = 1 << 20


def load_toml(path):
    """Read a grid from a TOML file (``learning_rate = [0.01, 0.1]``, ...) and validate it.

    Only a regular file of at most :data:`GRID_BYTES` is read.
    """
    source = f"--grid {path}"
    try:
        file, size = open_regular(path, "a TOML grid file")
    except (FileNotFoundError, ValueError) as exc:
        raise type(exc)(f"--grid {exc}") from None
    with file:
        if size > GRID_BYTES:
            raise ValueError(f"{source}: {size:,} bytes, more than a grid file takes ({GRID_BYTES:,}).")
        raw = file.read(GRID_BYTES + 1)
    try:
        grid = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{source}: not valid TOML ({exc}).") from None
    except RecursionError:
        raise ValueError(f"{source}: not valid TOML (nested too deeply).") from None
    return check_grid(grid, source=source)


@dataclass(frozen=True)
class RunSpec:
    """One training run of a sweep: a :class:`RunConfig` (seed included), an engine, checkpoints.

    ``config.epochs`` is the last of ``checkpoints`` (ascending): one training run records its
    metrics at each. ``run_id`` is a hash of the rest (:func:`expand`). A run with early stopping
    has one checkpoint, its last epoch: it ends at its own epoch and keeps its best weights.
    """

    run_id: str
    engine: str
    config: RunConfig
    checkpoints: tuple

    def record(self):
        """The configuration as stored in a result row: JSON-ready, ``epochs`` the checkpoints
        (no engine, seed or id); ``output`` the head (rows stored before heads have none: sigmoid);
        the fields of :data:`CONTROLS` and ``validation_fraction`` (rows stored before them have none:
        off)."""
        c = self.config
        return {"data": c.data, "output": c.output, "layers": list(c.layers), "learning_rate": c.learning_rate,
                "epochs": list(self.checkpoints), "batch_size": c.batch_size, "optimizer": c.optimizer,
                "hidden_activation": c.hidden_activation, "init": c.init, "dtype": c.dtype,
                **{key: getattr(c, key) for key in CONTROLS}, "validation_fraction": c.validation_fraction}

    def identity(self):
        """What the run id hashes: :meth:`record`, seed and engine. Fields added since sweeps began
        are left out at the value that turns them off: a sigmoid run's head, the fields of
        :data:`CONTROLS`, and ``validation_fraction`` without early stopping; so runs stored before
        them keep their ids (a sweep of then resumes now)."""
        identity = {**self.record(), "seed": self.config.seed, "engine": self.engine}
        if identity["output"] in (None, DEFAULT_OUTPUT):
            del identity["output"]
        for key, off in CONTROLS.items():
            if identity[key] == off:
                del identity[key]
        if self.config.early_stopping is None:
            del identity["validation_fraction"]
        return identity


def _digest(obj):
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def expand(grid, n_features=None, heads=None):
    """All runs of a checked grid, in a stable order; ids are hashes of config, seed and engine.

    ``n_features`` maps each data set to its number of features; it resolves the default layers
    (``None``) to the notebook's network, :func:`twinnet.lab.config.default_layers`. ``heads`` maps
    each ``(data set, output)`` of the grid (``output`` None: the data set's own) to the resolved
    head and the output width it needs, ``(output, width)``; without it a head stays as given and
    the default network has one output unit.
    """
    keys = [k for k in GRID_KEYS if k not in ("epochs", "seeds", "engines")]
    checkpoints = grid["epochs"]
    runs = []
    for values in itertools.product(*(grid[k] for k in keys)):
        fields = dict(zip(keys, values))
        output, width = (heads or {}).get((fields["data"], fields["output"]), (fields["output"], 1))
        fields["output"] = output
        if fields["layers"] is None:
            if n_features is None or fields["data"] not in n_features:
                raise ValueError(f"layers are not given and the number of features of data "
                                 f"{fields['data']!r} is unknown; give layers.")
            fields["layers"] = default_layers(n_features[fields["data"]], width)
        if fields["early_stopping"] is None and fields["validation_fraction"] != grid["validation_fraction"][0]:
            continue  # the held-out part only matters with early stopping: one run without it
        # early stopping ends each run at its own epoch: its last epoch is its one checkpoint
        points = checkpoints if fields["early_stopping"] is None else checkpoints[-1:]
        for seed, engine in itertools.product(grid["seeds"], grid["engines"]):
            spec = RunSpec("", engine, RunConfig(**fields, epochs=checkpoints[-1], seed=seed), points)
            # the id of the stored row's configuration, seed and engine: stable across versions
            runs.append(RunSpec(_digest(spec.identity()), engine, spec.config, points))
    return runs


def grid_hash(runs):
    """A hash of the set of run ids: two grids with the same runs have the same hash."""
    return _digest(sorted(run.run_id for run in runs))
