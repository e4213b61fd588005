"""examples/optimization.ipynb, executed from top to bottom twice in one kernel, as a reader runs it
and runs it again, then checked: the Keras twin follows Network with each optimizer (mini-batch
gradient descent, momentum, RMSprop, Adam) and on a deeper network with and without batch
normalization, the closing notes' story holds (gradient descent stays on the plateau, RMSprop and
Adam leave it at once, momentum later; batch normalization leaves it where the plain deep network
stays, and its moving statistics predict well with momentum 0.9, badly with 0.99), the figures are
drawn, and it writes no file."""

import re

import pytest
from test_notebook import HANG, NOTEBOOK, agreement, printed, run_twice
from test_quiet import tensorflow_lines

OPTIMIZATION = NOTEBOOK.with_name("optimization.ipynb")
#: Same arithmetic, the same batches, float64: rounding only (measured at most 4.4e-16).
SAME_ARITHMETIC = 1e-12
OPTIMIZERS = ["mini-batch GD", "momentum", "RMSprop", "Adam"]
DEEP = ["deep", "deep, batch norm"]

pytestmark = [pytest.mark.tf, pytest.mark.slow]  # half a minute or more in CI: started first (tests/conftest.py)


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("optimization")
    notebook = run_twice(OPTIMIZATION, workdir, timeout=HANG)
    return notebook, printed(notebook), workdir


#: The loss of a network that predicts 0.5 everywhere (log 2): the plateau.
PLATEAU = 0.693


def _figures(text, name, line, what):
    """The first three numbers of the printed line ``^ *NAME: LINE$`` (a regular expression)."""
    match = re.search(rf"^ *{re.escape(name)}: {line}$", text, re.MULTILINE)
    assert match, f"the notebook did not print the {name} {what}"
    return tuple(float(match.group(k)) for k in (1, 2, 3))


def _losses(text, name):
    return _figures(text, name, r"training loss ([0-9.]+) at epoch 1, ([0-9.]+) at epoch 5, ([0-9.]+) at epoch (\d+)",
                    "losses")


def test_it_writes_no_file(executed):
    workdir = executed[2]
    assert [path.name for path in workdir.iterdir()] == [OPTIMIZATION.name]


def test_no_tensorflow_start_up_line_reaches_the_outputs(executed):
    text = executed[1]
    assert tensorflow_lines(text) == [], tensorflow_lines(text)


@pytest.mark.parametrize("name", OPTIMIZERS + DEEP)
def test_keras_follows_network_with_each_optimizer(executed, name):
    epochs, loss, weight = agreement(executed[1], name)
    assert epochs > 1
    assert loss < SAME_ARITHMETIC and weight < SAME_ARITHMETIC, (name, loss, weight)


def test_the_closing_notes_hold(executed):
    text = executed[1]
    losses = {name: _losses(text, name) for name in OPTIMIZERS}
    # gradient descent stays on the plateau; every other optimizer leaves it
    assert losses["mini-batch GD"][2] > PLATEAU - 0.05, losses
    assert all(losses[name][2] < 0.4 for name in ["momentum", "RMSprop", "Adam"]), losses
    # RMSprop and Adam leave it at once (by epoch 5), momentum later; Adam a little after RMSprop
    assert losses["momentum"][1] > PLATEAU - 0.05 and losses["Adam"][1] < PLATEAU - 0.1, losses
    assert losses["RMSprop"][1] < losses["Adam"][1], losses


def _inference(text, name):
    return _figures(text, name, r"fit's last loss ([0-9.]+); evaluate \(moving statistics\): training loss "
                    r"([0-9.]+), test accuracy ([0-9.]+)", "evaluation")


def test_the_batch_normalization_notes_hold(executed):
    text = executed[1]
    losses = {name: _losses(text, name) for name in DEEP}
    # the plain deep network stays on the plateau; with batch norm it leaves it in the first epoch
    assert losses["deep"][2] > PLATEAU - 0.05 and losses["deep, batch norm"][0] < PLATEAU - 0.05, losses
    assert losses["deep, batch norm"][2] < 0.3, losses
    moving = {name: _inference(text, name) for name in [*DEEP, "deep, batch norm 0.99"]}
    fit, inference, accuracy = moving["deep, batch norm"]
    assert abs(inference - fit) < 0.1 and accuracy > moving["deep"][2], moving  # momentum 0.9: caught up
    fit, inference, accuracy = moving["deep, batch norm 0.99"]
    assert inference > fit + 0.3 and accuracy < moving["deep"][2], moving  # 0.99: the moving statistics lag


def test_every_section_draws_its_curves(executed):
    notebook = executed[0]
    images = [output for cell in notebook.cells for output in cell.get("outputs", [])
              if "image/png" in output.get("data", {})]
    # each optimizer, NumPy and Keras side by side; the four together; the deep network without and with
    # batch norm, NumPy and Keras on each
    assert len(images) == 6
