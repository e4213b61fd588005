"""What a newcomer meets first: discovery of the API, and what a long fit says while it runs."""

import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
from problems import binary_problem

import twinnet
from twinnet import Network, TwinNetClassifier, TwinNetRegressor, data
from twinnet.lab import RunConfig, compare, results
from twinnet.nn import LambdaCallback
from twinnet.nn.divergence import DIVERGENCE_FACTOR, DivergenceWarning
from twinnet.validation import InvalidArgument


def test_dir_and_help_list_the_public_names_without_importing_them():
    # In a fresh interpreter: dir() imports nothing (the names are PEP 562 lazy ones), help()'s
    # text lists the classes with their documentation, and neither loads a heavy library.
    code = (
        "import sys, pydoc, twinnet\n"
        "names = dir(twinnet)\n"
        "print(sorted(m for m in sys.modules if m.startswith('twinnet.')))\n"
        "print(sorted(set(twinnet.__all__) - set(names)))\n"
        "text = pydoc.render_doc(twinnet, renderer=pydoc.plaintext)\n"
        "print(sorted(n for n in twinnet.__all__ if 'class ' + n not in text and n + '(' not in text))\n"
        "heavy = ('tensorflow', 'keras', 'dask', 'distributed', 'matplotlib', 'torch')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    imported, missing_from_dir, undocumented, heavy = out.stdout.splitlines()
    assert imported == "[]"
    assert missing_from_dir == "[]"
    assert heavy == "[]"
    # every class and function of __all__ has its section in help(); modules and __version__ are data
    lazy = sorted(set(twinnet.__all__) - {"__version__", *twinnet._SUBMODULES})
    assert all(name not in undocumented for name in lazy), undocumented
    assert {"Network", "TwinNetClassifier", "TwinNetRegressor", "gradcheck"} <= set(lazy)


# --------------------------------------------------------------------------- verbose
def small_fit(**options):
    X, y = binary_problem(m=60, n=3, seed=0)
    return Network([3, 4, 1], seed=0).fit(X, y, epochs=5, learning_rate=0.1, **options)


# "Epoch 3/5 - 12.3ms - ": the epoch's time has 3 significant digits, in ms or s
LINE = re.compile(r"^Epoch (\d+)/5 - [\d.]+m?s - (.*)$")


def logs_text(history, epoch):
    return " - ".join(f"{name}: {format(values[epoch], '.4g')}" for name, values in history.history.items())


def test_verbose_2_prints_one_keras_line_per_epoch(capsys):
    X, y = binary_problem(m=60, n=3, seed=0)
    history = small_fit(verbose=2, validation_data=(X, y))
    lines = capsys.readouterr().out.splitlines()
    assert [LINE.match(line).group(1) for line in lines] == ["1", "2", "3", "4", "5"]
    assert [LINE.match(line).group(2) for line in lines] == [logs_text(history, epoch) for epoch in range(5)]
    assert lines[0].split(" - ")[2:] == [f"loss: {history.history['loss'][0]:.4g}",
                                         f"accuracy: {history.history['accuracy'][0]:.4g}",
                                         f"val_loss: {history.history['val_loss'][0]:.4g}",
                                         f"val_accuracy: {history.history['val_accuracy'][0]:.4g}"]
    small_fit(verbose=2)  # without validation data, a line fits 80 columns
    assert max(len(line) for line in capsys.readouterr().out.splitlines()) <= 80


def test_small_losses_keep_their_digits(capsys):
    # y = 2x, a linear unit from w = 0, b = 0 (b stays 0: x is symmetric about 0): each update at
    # rate 0.75 on the mean squared error multiplies w - 2 by 1 - 0.75 * 2 * mean(x**2) = 0.45, so
    # the 25th epoch's loss is 4 * mean(x**2) * 0.45**48 = 3.3e-17, printed as such where a
    # fixed-point format printed 0.0000.
    X = np.linspace(-1, 1, 21).reshape(-1, 1)
    net = Network.from_parameters({"W1": np.zeros((1, 1)), "b1": np.zeros((1, 1))}, output="linear")
    history = net.fit(X, 2 * X[:, 0], epochs=25, learning_rate=0.75, verbose=2)
    last = capsys.readouterr().out.splitlines()[-1]
    loss = history.history["loss"][-1]
    assert loss == pytest.approx(3.3e-17, rel=0.05)  # rel: 3.3 is rounded (see above)
    assert f"loss: {loss:.4g} - rmse: " in last and "e-17" in last


@pytest.mark.parametrize("verbose", [1, "auto", True])
def test_verbose_1_draws_a_bar_with_the_times_and_the_logs(verbose, capsys, monkeypatch):
    # Not a terminal (pytest captures): rich draws the display once, as it stands at the end.
    monkeypatch.setenv("COLUMNS", "80")
    X, y = binary_problem(m=60, n=3, seed=0)
    history = small_fit(verbose=verbose, validation_data=(X, y))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2, lines
    assert re.fullmatch(r"Epoch 5/5 ━{30} \d:\d\d:\d\d, [\d.]+m?s/epoch", lines[0]), lines[0]
    assert lines[1] == logs_text(history, 4)
    assert max(len(line) for line in lines) <= 80


def test_the_bar_closes_when_the_fit_is_interrupted(capsys, monkeypatch):
    # As in a terminal: rich draws live, redirects sys.stdout and hides the cursor until it stops.
    monkeypatch.setenv("FORCE_COLOR", "1")

    def interrupt(epoch, logs):
        if epoch == 2:
            raise KeyboardInterrupt

    stdout = sys.stdout
    with pytest.raises(KeyboardInterrupt):
        small_fit(verbose=1, callbacks=[LambdaCallback(on_epoch_end=interrupt)])
    assert sys.stdout is stdout
    out = capsys.readouterr().out
    assert "\x1b[?25l" in out and out.endswith("\x1b[?25h")  # the cursor hidden, then shown again
    assert "Epoch 2/5" in out  # the last epoch the bar saw


@pytest.mark.parametrize("verbose", [3, -1, 1.0, "yes", None])
def test_bad_verbose_says_what_is_accepted(verbose):
    with pytest.raises(InvalidArgument, match=re.escape(
            "verbose must be 'auto', 0 (nothing), 1 (a progress bar), 2 (one line per epoch); "
            f"got verbose={verbose!r}.")):
        small_fit(verbose=verbose)


def test_estimators_take_the_same_verbose(capsys):
    X, y = binary_problem(m=60, n=3, seed=0)
    TwinNetClassifier(hidden_layer_sizes=(4,), max_iter=3, n_iter_no_change=np.inf, verbose=2).fit(X, y)
    assert [line.split(" - ")[0] for line in capsys.readouterr().out.splitlines()] == [
        "Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    TwinNetRegressor(hidden_layer_sizes=(4,), max_iter=3, n_iter_no_change=np.inf, verbose="auto").fit(X, y)
    assert capsys.readouterr().out.startswith("Epoch 3/3 ━")


# --------------------------------------------------------------------------- divergence
def diverging_fit(**options):
    # learning_rate=50 on moons: the loss climbs from 0.69 to a finite plateau (test_runners)
    X, y = data.load("moons")
    return Network([2, 8, 1], seed=0).fit(X, y, epochs=30, learning_rate=50.0, **options)


def test_a_climbing_loss_warns_once_at_the_epoch_it_passes_the_rule():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = diverging_fit()
    losses = history.history["loss"]
    first = next(epoch for epoch, loss in enumerate(losses) if loss > DIVERGENCE_FACTOR * losses[0])
    assert [w.category for w in caught] == [DivergenceWarning]
    assert str(caught[0].message) == (
        f"the training loss climbed from {losses[0]:.4g} to {losses[first]:.4g} at epoch {first + 1} of 30, "
        "past 4 times its start: training diverged (learning_rate=50.0); try a smaller learning_rate.")
    assert caught[0].filename == __file__  # attributed to the caller's line
    assert issubclass(DivergenceWarning, UserWarning) and not issubclass(DivergenceWarning, RuntimeWarning)


def test_the_warning_can_be_an_error_or_silenced():
    with warnings.catch_warnings():
        warnings.simplefilter("error", twinnet.DivergenceWarning)
        with pytest.raises(twinnet.DivergenceWarning, match="training diverged"):
            diverging_fit()
        small_fit()  # a fit that learns does not warn
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", twinnet.DivergenceWarning)
        diverging_fit()
    assert caught == []


def test_the_lab_marks_diverged_what_fit_warns_of_and_says_it_once():
    # One rule: the run Network.fit warns of is the lab's "diverged" run, reported in the result
    # and not also as a warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error", DivergenceWarning)
        result = compare(RunConfig(data="moons", epochs=30, learning_rate=50.0), engines=["numpy"])
    assert result.results[0].status == "diverged"
    assert "the loss climbed from 0.694" in result.results[0].error
    assert not hasattr(results, "DIVERGENCE_FACTOR")  # one copy of the rule, in twinnet.nn.divergence
