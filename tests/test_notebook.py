"""examples/numpy_vs_tensorflow.ipynb, executed from top to bottom twice in one kernel, as a reader
runs it and runs it again, then checked: the functional network, Network and the Keras twin agree,
the figures are drawn, the sweep and its report ran, and it wrote only into its own folder of ``twinnet-runs/``."""

import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from test_quiet import tensorflow_lines

from twinnet import data

pytestmark = pytest.mark.slow  # a minute or more: started first (tests/conftest.py)

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "numpy_vs_tensorflow.ipynb"
#: A cell still running after this long hangs (it is no time limit: speed is the bench's to measure;
#: the slowest cell, the sweep, took about 3 minutes on two cores under a load average of 13).
HANG = 900


#: Where the notebook writes everything, in the folder it runs in.
OUT = Path("twinnet-runs", "numpy_vs_tensorflow")


def import_nbformat():
    """nbformat, imported when a test runs (not when this file is collected, in every xdist worker),
    without rfc3987_syntax: jsonschema imports it where Jupyter installed it, 3-4 s of CPU building a
    grammar for IRIs, which no notebook holds (twinnet check's notebook reader leaves it out too)."""
    sys.modules.setdefault("rfc3987_syntax", None)
    import nbformat

    return nbformat


def run_twice(path, workdir, *, timeout):
    """Run the notebook at ``path`` from top to bottom twice in one kernel (two "Run All"), in
    ``workdir`` beside a copy of it; return it, as the second run left it.

    Raises CellExecutionError, with the cell and its traceback, if a cell fails.
    """
    nbformat = import_nbformat()
    from nbclient import NotebookClient

    shutil.copy(path, workdir)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(workdir)}})
    with client.setup_kernel():
        for _ in range(2):
            for index, cell in enumerate(notebook.cells):
                client.execute_cell(cell, index)
    return notebook


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The notebook after its second run, and the directory it ran in."""
    workdir = tmp_path_factory.mktemp("notebook")
    return run_twice(NOTEBOOK, workdir, timeout=HANG), workdir


def printed(notebook):
    """Everything the code cells printed or displayed as text, in order."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output["output_type"] == "stream":
                parts.append(output["text"])
            elif "text/plain" in output.get("data", {}):
                parts.append(output["data"]["text/plain"])
    return "\n".join(parts)


def agreement(text, name):
    """``(epochs, loss, weight)`` of the notebook's line ``NAME: max |Keras - NumPy| loss over E epochs: L,
    final weight: W``."""
    match = re.search(rf"^{re.escape(name)}: max \|Keras - NumPy\| loss over (\d+) epochs: ([-+0-9.e]+), "
                      rf"final weight: ([-+0-9.e]+)$", text, re.MULTILINE)
    assert match, f"the notebook did not print the {name} agreement"
    return int(match.group(1)), float(match.group(2)), float(match.group(3))


def number_after(label, text):
    match = re.search(re.escape(label) + r"\s*([-+0-9.e]+)", text)
    assert match, f"the notebook did not print {label!r}"
    return float(match.group(1))


@pytest.mark.parametrize("path", sorted(NOTEBOOK.parent.glob("*.ipynb")), ids=lambda path: path.name)
def test_the_committed_notebooks_have_no_outputs(path):
    # CI executes the notebooks: stored outputs would only go stale and bloat the diff
    nbformat = import_nbformat()
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert notebook.metadata.kernelspec.name == "python3"


def test_it_writes_only_into_its_folder_of_twinnet_runs_which_git_ignores(executed):
    _, workdir = executed
    assert sorted(path.name for path in workdir.iterdir()) == [NOTEBOOK.name, "twinnet-runs"]
    assert [path.name for path in (workdir / "twinnet-runs").iterdir()] == [OUT.name]
    assert sorted(path.name for path in (workdir / OUT).iterdir()) == ["data.pickle", "my_attempt.py", "net.npz",
                                                                        "sweep"]
    ignored = (NOTEBOOK.parents[1] / ".gitignore").read_text().splitlines()
    assert "twinnet-runs/" in ignored  # at any depth: examples/twinnet-runs/ too


def test_no_tensorflow_start_up_line_reaches_the_outputs(executed):
    # the kernel's descriptor 2 is part of the outputs; TensorFlow loads in the kernel (the Keras
    # twin) and in the sweep's worker processes, which write to the same descriptor
    text = printed(executed[0])
    assert tensorflow_lines(text) == [], tensorflow_lines(text)


def test_the_data_comes_from_the_built_in_set_and_from_a_pickle(executed):
    notebook, workdir = executed
    text = printed(notebook)
    assert "same as the built-in set: True" in text
    X, y = data.load(workdir / OUT / "data.pickle")  # the file the notebook wrote, in the exercise's format
    assert X.shape == (2000, 100) and y.shape == (2000,)
    assert "train (1600, 100) test (400, 100)" in text


def test_the_cost_is_printed_every_ten_iterations_and_falls(executed):
    text = printed(executed[0])
    costs = {int(i): float(c) for i, c in re.findall(r"Cost after iteration (\d+): ([0-9.]+)", text)}
    assert list(costs) == list(range(0, 250, 10))
    assert abs(costs[0] - np.log(2)) < 0.05, costs[0]  # small initial weights: probabilities near 0.5
    assert costs[240] < costs[0] / 2, costs


def test_backpropagation_matches_the_finite_difference(executed):
    match = re.search(r"backpropagation ([-0-9.]+), finite difference ([-0-9.]+)", printed(executed[0]))
    assert match, "the notebook did not print its gradient check"
    analytic, numeric = map(float, match.groups())
    # central differences with eps = 1e-6 on a smooth cost: ~1e-10 absolute, printed to 1e-10
    assert abs(analytic - numeric) <= 1e-6 * abs(analytic), (analytic, numeric)


def test_network_and_keras_follow_the_functional_network(executed):
    text = printed(executed[0])
    # the same sums in another order: float64 rounding, ~1e-16 per epoch (see test_network.py)
    assert number_after("max |Network - functional| cost over 250 epochs:", text) < 1e-12
    assert number_after("max |Keras - NumPy| loss over 250 epochs:", text) < 1e-9
    assert number_after("max |Keras - NumPy| final weight:", text) < 1e-9
    # the same final weights: the same test accuracy from the functional network and from Keras
    functional = number_after("Accuracy:", text)
    assert functional == number_after("Accuracy ", text) and functional > 0.9
    assert "reloaded network, same test metrics: True" in text


def test_the_sweep_ran_and_its_report_is_shown(executed):
    notebook, workdir = executed
    text = printed(notebook)
    assert "sweep: 12 ok in" in text  # 3 networks x 2 seeds x 2 engines
    assert "- Agreement, tf-loop vs numpy: over 6 runs paired by configuration and seed" in text
    assert (workdir / OUT / "sweep" / "report.html").is_file()
    images = [output for cell in notebook.cells for output in cell.get("outputs", [])
              if "image/png" in output.get("data", {})]
    assert len(images) == 5  # the two loss curves and their difference, and four report figures


def test_the_closing_times_cover_every_implementation(executed):
    text = printed(executed[0])
    for name in ("functional", "Network", "Keras model.fit"):
        assert re.search(rf"{re.escape(name)}: +[0-9.]+ s, +[0-9.]+ ms per epoch", text), name


def test_the_closing_check_names_the_learners_slip(executed):
    text = printed(executed[0])
    assert f"twinnet check: runs the code in {OUT / 'my_attempt.py'}" in text
    assert re.search(r"linear_backward +FAIL .*missing 1/m in db", text)
    assert re.search(r"relu_backward +PASS", text)


def test_the_softmax_section_trains_digits10_with_both_twins(executed):
    text = printed(executed[0])
    assert "digits10: 1797 images of 64 pixels, output 'softmax', classes [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]" in text
    # the same arithmetic as Network's on the same batches: float64 rounding (see test_twin_heads.py)
    assert number_after("max |Keras - NumPy| softmax loss over 10 epochs:", text) < 1e-12
    # the same final weights: the same test accuracy, and far above chance (0.1 for ten classes)
    match = re.search(r"digits10 test accuracy: Network ([0-9.]+), Keras ([0-9.]+)", text)
    assert match, "the notebook did not print the digits10 test accuracies"
    network, keras = map(float, match.groups())
    assert network == keras and network > 0.5, (network, keras)
