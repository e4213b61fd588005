"""``twinnet report``: summary.csv against a recomputation from the raw rows, the generated
summary, the figures, the HTML in a real headless browser, and the bad-input contract."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict

import numpy as np
import pytest
from numpy.testing import assert_allclose

from twinnet.cli import main
from twinnet.lab.report import build_report
from twinnet.lab.store import RESULTS, read_results

pytestmark = pytest.mark.slow  # a minute or more: started first (tests/conftest.py)

SWEEP = ["--data", "moons", "--layers", "2,8,1", "--layers", "2,8,4,1", "--learning-rate", "0.1,1",
         "--epochs", "30,5", "--seeds", "0,1,2", "--engines", "functional,numpy", "--jobs", "2",
         "--no-progress"]
FIGURES = {"accuracy_vs_depth.png", "accuracy_vs_width.png", "accuracy_vs_learning_rate.png",
           "accuracy_vs_epochs.png", "time_vs_parameters.png", "time_ratio.png", "loss_curves.png"}


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A finished sweep of the notebook's functional network and Network: twins, 24 runs."""
    out = tmp_path_factory.mktemp("report") / "sweep"
    assert main(["sweep", *SWEEP, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def built(swept, tmp_path_factory):
    """A copy of the sweep with its report built once (only read by the tests)."""
    out = tmp_path_factory.mktemp("built") / "sweep"
    shutil.copytree(swept, out)
    paths, summary = build_report(out)
    return out, paths, summary


@pytest.fixture
def report(built, tmp_path):
    """A copy of the built report's sweep directory that a test may alter, with the report's paths and summary."""
    out = tmp_path / "sweep"
    shutil.copytree(built[0], out)
    return out, [out / path.name for path in built[1]], built[2]


def test_summary_csv_is_the_mean_and_sd_over_seeds_of_the_stored_rows(built):
    out, _, _ = built
    with open(out / "summary.csv", newline="") as f:
        table = list(csv.DictReader(f))
    # 2 networks x 2 learning rates x 2 engines x 2 checkpoints
    assert len(table) == 16
    # recomputed here from the raw rows, with NumPy
    raw = defaultdict(list)
    for line in (out / RESULTS).read_text().splitlines():
        row = json.loads(line)
        for point in row["checkpoints"]:
            key = ("-".join(map(str, row["config"]["layers"])), row["config"]["learning_rate"],
                   row["engine"], point["epoch"])
            raw[key].append((point["test_accuracy"], point["train_loss"], row["ms_per_epoch"]))
    for entry in table:
        values = np.array(raw[(entry["layers"], float(entry["learning_rate"]), entry["engine"],
                               int(entry["epoch"]))])
        assert len(values) == int(entry["runs"]) == int(entry["ok"]) == 3
        assert_allclose(float(entry["test_accuracy"]), values[:, 0].mean(), rtol=1e-12)
        assert_allclose(float(entry["test_accuracy_sd"]), values[:, 0].std(ddof=1), rtol=1e-9, atol=1e-15)
        assert_allclose(float(entry["train_loss"]), values[:, 1].mean(), rtol=1e-12)
        assert_allclose(float(entry["ms_per_epoch"]), values[:, 2].mean(), rtol=1e-12)
        assert entry["batch_size"] == "full" and int(entry["depth"]) == entry["layers"].count("-") - 1


def test_the_summary_answers_with_numbers(built):
    _, _, summary = built
    text = "\n".join(summary)
    assert text.startswith("24 runs (24 ok): 4 configurations × 3 seeds × engines functional, numpy")
    # the notebook's functions and Network are twins: identical accuracy, curves equal to rounding
    agreement = next(s for s in summary if s.startswith("Agreement, numpy vs functional"))
    assert "over 12 runs paired by configuration and seed, the final test accuracy is identical in all 12." in agreement
    gap = float(re.search(r"differ by at most (\S+) over all epochs", agreement).group(1))
    assert gap < 1e-12
    assert "tied (within 0.5 pp, mean over seeds) in 4 of 4 configurations." in text
    speed = next(s for s in summary if s.startswith("Speed per epoch, numpy (twinnet.Network.fit) vs "
                                                    "functional (the notebook's L_layer_model, twinnet.functional): "))
    assert re.search(r": (numpy|functional) is faster in \d of 4 configurations", speed)
    assert "Best functional: layers 2-8" in text and "learning rate 0.1: " in text
    # the best configuration's accuracy is the largest mean in the summary table
    rows = read_results(built[0])
    best = max(np.mean([r["checkpoints"][i]["test_accuracy"] for r in rows
                        if r["engine"] == "numpy" and r["config"]["layers"] == layers
                        and r["config"]["learning_rate"] == lr])
               for layers in ([2, 8, 1], [2, 8, 4, 1]) for lr in (0.1, 1.0) for i in (0, 1))
    stated = float(re.search(r"Best numpy: .*?test accuracy (\S+) ± ", text).group(1))
    assert abs(stated - best) <= 0.0005 + 1e-12  # printed with 3 decimals


def test_every_figure_is_a_png_and_embedded_in_the_html(built):
    out, paths, _ = built
    assert {p.name for p in paths} == {"report.html", "summary.csv", *FIGURES}
    for name in FIGURES:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    page = (out / "report.html").read_text()
    assert page.count("src='data:image/png;base64,") == len(FIGURES)
    assert "src='http" not in page and "src=\"http" not in page  # self-contained


@pytest.mark.parametrize(("sizes", "labelled"), [
    ([2141, 2561, 5101], ["2141", "2561", "5101"]),  # the notebook's three networks, within one decade
    ([100, 105, 1000, 100000], ["100", "1000", "100000"]),  # 105: too close to 100 on this span to label
])
def test_the_time_figures_label_the_network_sizes(monkeypatch, tmp_path, sizes, labelled):
    from twinnet.lab import report_plots

    drawn = []
    monkeypatch.setattr(report_plots, "_save", lambda fig, path: drawn.append(fig))
    ones = np.ones(len(sizes))
    report_plots.plot_time({"numpy": (sizes, ones, 0 * ones)}, tmp_path / "time.png")
    report_plots.plot_time_ratio({"keras": (sizes, ones)}, "numpy", tmp_path / "ratio.png")
    for fig in drawn:
        fig.canvas.draw()
        ax = fig.axes[0]
        assert [label.get_text() for label in ax.get_xticklabels()] == labelled
        assert not ax.xaxis.get_minor_ticks()
        report_plots.pyplot().close(fig)
    assert len(drawn) == 2


#: twinnet's pyplot after ``SETUP``: the backend it draws with.
BACKEND = "{setup}; from twinnet.plotting import pyplot; print(pyplot().get_backend())"


@pytest.mark.parametrize(("setup", "mplbackend", "backend"), [
    ("pass", None, "agg"),  # a terminal's twinnet: files only
    ("import matplotlib; matplotlib.use('svg'); import matplotlib.pyplot", None, "svg"),  # a notebook's own pyplot
    ("pass", "svg", "svg"),  # a Jupyter kernel names its inline backend so
])
def test_twinnet_keeps_a_backend_chosen_before_it_draws(setup, mplbackend, backend):
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env.update({"MPLBACKEND": mplbackend} if mplbackend else {})
    done = subprocess.run([sys.executable, "-c", BACKEND.format(setup=setup)], env=env, capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip().lower() == backend, done.stderr


# A script appended to a copy of the report: once the page has loaded, it writes into the DOM how
# many images there are and how many decoded to a real picture (naturalWidth > 0).
CHECK_IMAGES = """<script>window.addEventListener('load', () => {
  const images = [...document.images];
  document.body.setAttribute('data-images', images.length);
  document.body.setAttribute('data-decoded', images.filter(i => i.complete && i.naturalWidth > 0).length);
});</script>"""


def _images_in_chromium(page, tmp_path):
    path = tmp_path / "checked.html"
    path.write_text(page.replace("</body>", CHECK_IMAGES + "</body>"))
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Chromium is needed for this test: apt-get install chromium (.ci/run does)"
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                          "--virtual-time-budget=10000", "--dump-dom", path.as_uri()],
                         check=False, capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'data-images="(\d+)" data-decoded="(\d+)"', dom)
    assert found, dom[-2000:]
    return int(found.group(1)), int(found.group(2))


def test_the_report_loads_in_a_headless_browser_with_every_image(built, tmp_path):
    out, _, _ = built
    page = (out / "report.html").read_text()
    assert _images_in_chromium(page, tmp_path) == (len(FIGURES), len(FIGURES))
    # the check can fail: one damaged image is seen as not decoded
    start = page.index("base64,") + len("base64,")
    damaged = page[:start] + "AAAA" + page[start + 40:]
    assert _images_in_chromium(damaged, tmp_path) == (len(FIGURES), len(FIGURES) - 1)


def test_runs_that_diverged_are_listed(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", "--data", "moons", "--layers", "2,4,1", "--learning-rate", "0.5,1e6",
                 "--epochs", "10,50", "--engines", "numpy", "--jobs", "1", "--no-progress",
                 "--out", str(out)]) == 0
    assert main(["report", str(out)]) == 0
    text = capsys.readouterr().out
    assert "2 runs (1 diverged, 1 ok)" in text
    assert ("Diverged: 1 run(s) (numpy 1 of 2), left out of every mean, tie and best above; e.g. "
            "numpy with lr 1e+06, seed 0: diverged: ") in text
    page = (out / "report.html").read_text()
    assert "Runs that did not finish ok" in page and "diverged" in page


@pytest.mark.parametrize("setup, match", [
    ("missing", "no such directory"),
    ("plain", "not a sweep directory (no manifest.json)"),
    ("empty", "the sweep has no finished run yet; nothing to report"),
])
def test_report_bad_directories_are_one_line_and_exit_status_2(tmp_path, capsys, setup, match):
    from twinnet.lab.store import ResultStore

    target = tmp_path / "d"
    if setup == "plain":
        target.mkdir()
    elif setup == "empty":
        ResultStore.create(target, grid={}, grid_hash="h", n_runs=1)
    assert main(["report", str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("twinnet report: error: ") and match in err[0]


def _lines(out):
    return (out / RESULTS).read_bytes().split(b"\n")[:-1]


def _good(out):
    return json.loads(_lines(out)[2])


BAD_LINES = {
    "truncated JSON": lambda good: json.dumps(good).encode()[:80],
    "binary garbage": lambda good: bytes(range(11, 256)),  # no newline inside
    "not an object": lambda good: b"[1, 2, 3]",
    "seed of the wrong type": lambda good: json.dumps({**good, "seed": "zero"}).encode(),
    "config missing": lambda good: json.dumps({k: v for k, v in good.items() if k != "config"}).encode(),
    "layers not numbers": lambda good: json.dumps({**good, "config": {**good["config"], "layers": "2-8-1"}}).encode(),
    "unknown status": lambda good: json.dumps({**good, "status": "great"}).encode(),
    "ok without its checkpoints": lambda good: json.dumps({**good, "checkpoints": []}).encode(),
    "accuracy of the wrong type": lambda good: json.dumps(
        {**good, "checkpoints": [{**p, "test_accuracy": "high"} for p in good["checkpoints"]]}).encode(),
}


def test_report_skips_malformed_lines_anywhere_naming_each_and_keeps_the_rest(report, capsys):
    # one file for every kind of bad line, each between good lines, and a last line cut short as a
    # crash mid-write leaves it (no newline): one report, one warning naming each line
    out, _, _ = report
    with open(out / "summary.csv") as f:
        before = f.read()
    good = _lines(out)
    lines = []
    for index, line in enumerate(good):
        lines.append(line)
        if index < len(BAD_LINES):
            lines.append(BAD_LINES[sorted(BAD_LINES)[index]](_good(out)))
    (out / RESULTS).write_bytes(b"\n".join(lines) + b'\n{"run_id": "x", "status": "o')
    assert main(["report", str(out)]) == 0
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    expected = [f"warning: {out / RESULTS}: skipped line {2 * i + 2}: " for i in range(len(BAD_LINES))] + \
        [f"warning: {out / RESULTS}: skipped line {len(lines) + 1}: not JSON"]
    assert len(err) == len(expected), captured.err
    for line, start, case in zip(err, expected, [*sorted(BAD_LINES), "cut short"]):
        assert line.startswith(start), (case, line)
    assert "Traceback" not in captured.err
    assert "24 runs (24 ok)" in captured.out
    with open(out / "summary.csv") as f:
        assert f.read() == before  # the report of the good lines, unchanged


def test_rows_written_before_the_status_field_still_load(report, capsys):
    out, _, _ = report
    rows = [json.loads(line) for line in _lines(out)]
    for row in rows:
        del row["status"]
    rows[0]["error"] = "diverged: the loss became nan at epoch 3"  # the sweep's words for one
    (out / RESULTS).write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert main(["report", str(out)]) == 0
    text = capsys.readouterr().out
    assert "24 runs (1 diverged, 23 ok)" in text


def test_a_diverged_run_is_counted_and_left_out_of_every_mean(report, capsys):
    out, _, _ = report
    rows = [json.loads(line) for line in _lines(out)]
    target = next(r for r in rows if r["engine"] == "numpy")
    # its numbers look excellent: they must count nowhere
    target.update(status="diverged", error="diverged: the loss climbed from 0.7 to 9 at epoch 3",
                  checkpoints=[{**p, "test_accuracy": 1.0, "train_loss": 0.0} for p in target["checkpoints"]])
    (out / RESULTS).write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert main(["report", str(out)]) == 0
    text = capsys.readouterr().out
    assert "24 runs (1 diverged, 23 ok)" in text
    assert "Diverged: 1 run(s) (numpy 1 of 12), left out of every mean, tie and best above" in text
    with open(out / "summary.csv", newline="") as f:
        table = list(csv.DictReader(f))
    layers, lr = "-".join(map(str, target["config"]["layers"])), target["config"]["learning_rate"]
    others = [r for r in rows if r["engine"] == "numpy" and r is not target
              and r["config"] == target["config"]]
    for entry in table:
        if entry["engine"] == "numpy" and entry["layers"] == layers and float(entry["learning_rate"]) == lr:
            assert (entry["runs"], entry["ok"], entry["diverged"]) == ("3", "2", "1")
            accuracy = [next(p for p in r["checkpoints"] if p["epoch"] == int(entry["epoch"]))["test_accuracy"]
                        for r in others]
            assert_allclose(float(entry["test_accuracy"]), np.mean(accuracy), rtol=1e-12)
        else:
            assert entry["diverged"] == "0"
    page = (out / "report.html").read_text()
    assert "<th>diverged</th>" in page and "Runs that did not finish ok" in page


# --------------------------------------------------------------------------- every head
HEADS_SWEEP = ["--data", "iris,diabetes", "--learning-rate", "0.05,0.3", "--epochs", "5,20", "--seeds", "0,1",
               "--engines", "numpy,torch", "--jobs", "2", "--no-progress"]
HEAD_FIGURES = {f"{metric}_vs_{factor}.png" for metric in ("accuracy", "rmse")
                for factor in ("depth", "width", "learning_rate", "epochs")} | \
    {"time_vs_parameters.png", "time_ratio.png", "loss_curves.png"}


@pytest.fixture(scope="module")
def heads_report(tmp_path_factory):
    """A sweep of a 3-class softmax (iris) and a regression (diabetes), each on its default network,
    numpy and torch on one trajectory: 16 runs, and its report."""
    out = tmp_path_factory.mktemp("heads") / "sweep"
    assert main(["sweep", *HEADS_SWEEP, "--out", str(out)]) == 0
    paths, summary = build_report(out)
    return out, paths, summary


def test_each_head_is_reported_by_its_own_metric(heads_report):
    out, _, summary = heads_report
    text = "\n".join(summary)
    assert summary[0].startswith("16 runs (16 ok): 4 configurations × 2 seeds × engines numpy, torch")
    classification = summary.index("Classification (8 runs, data iris): compared by test accuracy.")
    regression = summary.index("Regression (8 runs, data diabetes): compared by test RMSE.")
    assert classification < regression
    assert summary[regression + 1].startswith("Regression: the loss (mean squared error) and the RMSE are in "
                                              "(squared) standard deviations of the target")
    agreement = [s for s in summary if s.startswith("Agreement, torch vs numpy")]
    assert "the final test accuracy is identical in all 4." in agreement[0]
    assert "the final test RMSE is identical in" in agreement[1]
    for sentence in agreement:  # the twins: one trajectory
        assert float(re.search(r"differ by at most (\S+) over all epochs", sentence).group(1)) < 1e-12
    assert "Test RMSE, torch vs numpy: tied (within 0.005, mean over seeds) in 2 of 2 configurations." in text
    for metric in ("test RMSE", "test accuracy"):
        assert f"Effect of each hyperparameter on {metric}" in text
    # the best regression is the lowest mean test RMSE over seeds, the best classifier the highest accuracy
    rows = read_results(out)

    def means(data, key):
        runs = [r for r in rows if r["engine"] == "numpy" and r["config"]["data"] == data]
        return [np.mean([next(p for p in r["checkpoints"] if p["epoch"] == epoch)[key] for r in runs
                         if r["config"]["learning_rate"] == lr])
                for lr in (0.05, 0.3) for epoch in (5, 20)]

    lowest = float(re.search(r"Best numpy \(lowest test RMSE\): data diabetes, .*?test RMSE (\S+) ± \S+ \(R² \S+\)",
                             text).group(1))
    assert abs(lowest - min(means("diabetes", "test_rmse"))) <= 0.0005 + 1e-12  # printed with 3 decimals
    highest = float(re.search(r"Best numpy: data iris, .*?test accuracy (\S+) ± ", text).group(1))
    assert abs(highest - max(means("iris", "test_accuracy"))) <= 0.0005 + 1e-12


def test_each_heads_metrics_fill_their_columns_of_summary_csv(heads_report):
    out, _, _ = heads_report
    with open(out / "summary.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 2 * 2 * 2 * 2  # data x learning rates x engines x checkpoints
    raw = defaultdict(list)
    for row in read_results(out):
        for point in row["checkpoints"]:
            raw[row["config"]["data"], row["config"]["learning_rate"], row["engine"], point["epoch"]].append(point)
    for entry in table:
        points = raw[entry["data"], float(entry["learning_rate"]), entry["engine"], int(entry["epoch"])]
        regression = entry["data"] == "diabetes"
        assert entry["output"] == ("linear" if regression else "softmax")
        for key in ("test_rmse", "train_rmse", "test_r2") if regression else ("test_accuracy", "train_accuracy"):
            assert_allclose(float(entry[key]), np.mean([p[key] for p in points]), rtol=1e-12)
        for key in ("test_accuracy", "test_accuracy_sd") if regression else ("test_rmse", "test_r2", "test_rmse_sd"):
            assert entry[key] == "", (key, entry)


def test_the_report_of_every_head_has_its_figures_and_loads_in_a_browser(heads_report, tmp_path):
    out, paths, _ = heads_report
    assert {p.name for p in paths} == {"report.html", "summary.csv", *HEAD_FIGURES}
    page = (out / "report.html").read_text()
    assert "Final epoch, mean over seeds: classifiers, by test accuracy" in page
    assert "Final epoch, mean over seeds: regression, by test RMSE" in page and "<th>test_r2</th>" in page
    assert _images_in_chromium(page, tmp_path) == (len(HEAD_FIGURES), len(HEAD_FIGURES))


def test_rows_written_before_heads_are_the_notebooks_sigmoid(report, capsys):
    out, _, summary = report
    rows = [json.loads(line) for line in _lines(out)]
    for row in rows:
        del row["config"]["output"]
    (out / RESULTS).write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert main(["report", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"- {summary[0]}"
    with open(out / "summary.csv", newline="") as f:
        assert {entry["output"] for entry in csv.DictReader(f)} == {"sigmoid"}
