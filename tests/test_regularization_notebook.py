"""examples/regularization.ipynb, executed from top to bottom twice in one kernel, as a reader runs
it and runs it again, then checked: the Keras twin follows Network where the arithmetic is the same
(L2, the schedule, early stopping, dropout's gradients under the same masks), L2 shrinks the
generalization gap, the figures are drawn, the notebook stays short, and it writes no file."""

import re
from typing import NamedTuple

import pytest
from test_notebook import HANG, NOTEBOOK, agreement, number_after, printed, run_twice
from test_quiet import tensorflow_lines

REGULARIZATION = NOTEBOOK.with_name("regularization.ipynb")
#: Same arithmetic, the same batches, float64: rounding only (measured at most 9e-16).
SAME_ARITHMETIC = 1e-12

pytestmark = [pytest.mark.tf, pytest.mark.slow]  # half a minute or more in CI: started first (tests/conftest.py)


class Executed(NamedTuple):
    notebook: object  # as its second run left it
    text: str  # what it printed
    workdir: object  # the folder it ran in


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("regularization")
    notebook = run_twice(REGULARIZATION, workdir, timeout=HANG)
    return Executed(notebook, printed(notebook), workdir)


def test_it_writes_no_file(executed):
    assert [path.name for path in executed.workdir.iterdir()] == [REGULARIZATION.name]


def test_no_tensorflow_start_up_line_reaches_the_outputs(executed):
    text = executed.text
    assert tensorflow_lines(text) == [], tensorflow_lines(text)


@pytest.mark.parametrize("feature", ["baseline", "L2", "schedule", "early stopping"])
def test_keras_follows_network_where_the_arithmetic_is_the_same(executed, feature):
    epochs, loss, weight = agreement(executed.text, feature)
    assert epochs > 1
    assert loss < SAME_ARITHMETIC and weight < SAME_ARITHMETIC, (feature, loss, weight)


def test_dropout_gradients_agree_under_the_same_masks(executed):
    text = executed.text
    assert number_after("dropout: max |Keras - NumPy| gradient under the same masks:", text) < SAME_ARITHMETIC


def test_both_libraries_stop_at_the_same_epoch_and_restore_an_earlier_one(executed):
    text = executed.text
    match = re.search(r"early stopping: NumPy stopped after epoch (\d+) \(best (\d+)\), "
                      r"Keras after epoch (\d+) \(best (\d+)\)", text)
    assert match, "the notebook did not print where early stopping stopped"
    ours_stop, ours_best, keras_stop, keras_best = map(int, match.groups())
    assert (ours_stop, ours_best) == (keras_stop, keras_best)
    epochs = int(re.search(r"baseline: max \|Keras - NumPy\| loss over (\d+) epochs", text).group(1))
    assert ours_best < ours_stop < epochs  # it stopped early, and restored the weights of an earlier epoch


def test_the_baseline_overfits_and_l2_shrinks_the_gap(executed):
    text = executed.text
    match = re.search(r"baseline: lowest validation loss ([0-9.]+) at epoch (\d+), ([0-9.]+) at epoch (\d+)", text)
    assert match, "the notebook did not print the baseline's validation loss"
    lowest, at, last, epochs = float(match.group(1)), int(match.group(2)), float(match.group(3)), int(match.group(4))
    assert at < epochs and last > lowest  # the validation loss turned up: overfitting
    gaps = {name.strip(): float(gap) for name, gap in
            re.findall(r"^ *([A-Za-z][A-Za-z0-9 ]*): gap ([-0-9.]+), validation accuracy", text, re.MULTILINE)}
    assert set(gaps) == {"baseline", "L2", "dropout", "schedule", "early stopping"}, gaps
    assert gaps["L2"] < gaps["baseline"], gaps
    # the closing notes' words: L2 shrinks the gap the most, dropout a little
    assert gaps["L2"] == min(gaps.values()) and gaps["dropout"] < gaps["baseline"], gaps


def test_every_section_draws_its_curves(executed):
    notebook = executed.notebook
    images = [output for cell in notebook.cells for output in cell.get("outputs", [])
              if "image/png" in output.get("data", {})]
    assert len(images) == 5  # baseline, L2, dropout, schedule, early stopping: NumPy and Keras side by side
