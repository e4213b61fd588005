"""The lab with L2, dropout, learning-rate schedules and early stopping (issue 14): compare's engines
against Network trained by hand, against each other from the same weights, the validation part,
what the engines cannot do, and the report's overfitting lesson from the stored rows.

Keras is exercised through ``tf-loop`` (a compiled step), which trains the same model as ``model.fit``
in a fraction of its time per epoch.
"""

import importlib.util
import json
import re
import shutil

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from twinnet import Network
from twinnet.lab import RunConfig, compare, resolve_engines, run_engine
from twinnet.lab.report import build_report, summarize
from twinnet.lab.run import initial_parameters, load_split
from twinnet.lab.runners import unsupported_reason
from twinnet.lab.store import RESULTS, read_results
from twinnet.nn.callbacks import EarlyStopping
from twinnet.nn.schedule_parse import parse

SPEC = "exponential:decay_steps=5,decay_rate=0.5"
TWINS = [e for e, module in (("torch", "torch"), ("tf-loop", "tensorflow")) if importlib.util.find_spec(module)]


def _prepared(**options):
    config = RunConfig(**{"data": "moons", "epochs": 12, "learning_rate": 0.5, **options}).validate()
    split = load_split(config)
    return config.with_layers(split.X_train.shape[1], output=split.output, width=split.width), split


def _by_hand(config, split, **fit):
    """Network.fit of the run's configuration, written out: the lab's numpy engine must be this."""
    net = Network.from_parameters(initial_parameters(config), output=config.output, l2=config.l2,
                                  dropout=config.dropout, dtype=config.dtype)
    history = net.fit(split.X_train, split.y_train, epochs=config.epochs, batch_size=config.batch_size,
                      seed=config.seed, **{"learning_rate": config.learning_rate, **fit})
    return net, history.history


# --------------------------------------------------------------------------- numpy: Network.fit with each option
@pytest.mark.parametrize("options, fit", [
    ({"l2": 0.01}, {}),
    ({"dropout": 0.3, "batch_size": 64}, {}),
    ({"lr_schedule": SPEC}, {"learning_rate": parse(SPEC, initial_learning_rate=0.5)}),
], ids=["l2", "dropout", "lr_schedule"])
def test_numpy_engine_is_network_fit_with_the_option(options, fit):
    config, split = _prepared(**options)
    result = compare(config, engines=["numpy"]).result("numpy")
    net, history = _by_hand(config, split, **fit)
    assert result.loss_curve == history["loss"]  # the same arithmetic: bit for bit
    for part, X, y in (("train", split.X_train, split.y_train), ("test", split.X_test, split.y_test)):
        scores = net.evaluate(X, y)  # the loss with the L2 penalty, as Keras's evaluate
        assert getattr(result, f"{part}_loss") == scores["loss"] and getattr(result, f"{part}_accuracy") == \
            scores["accuracy"]
    assert result.stopped_epoch is None and result.epochs_run == config.epochs


def test_l2_is_in_the_losses_and_not_in_the_accuracy():
    plain, penalized = (compare(RunConfig(data="moons", epochs=3, l2=l2), engines=["numpy"]).result("numpy")
                        for l2 in (0.0, 0.5))
    net = Network.from_parameters(initial_parameters(_prepared(epochs=3)[0]))
    penalty = 0.5 * sum(np.sum(net.parameters[f"W{l}"] ** 2) for l in (1, 2, 3))
    # the first loss is the initial weights': the same data loss plus the penalty
    assert penalized.loss_curve[0] == pytest.approx(plain.loss_curve[0] + penalty, rel=1e-12)


def test_early_stopping_holds_out_a_stratified_validation_part_and_leaves_the_test_part_alone():
    plain = load_split(RunConfig(data="digits10"))
    config = RunConfig(data="digits10", early_stopping=3, validation_fraction=0.2)
    split = load_split(config)
    assert_array_equal(split.X_test, plain.X_test)
    assert_array_equal(split.y_test, plain.y_test)
    n = plain.X_train.shape[0]
    assert split.X_val.shape[0] == int(np.ceil(0.2 * n)) and split.X_train.shape[0] + split.X_val.shape[0] == n
    # the two parts are the training part, each example once
    together = np.sort(np.concatenate([split.X_train, split.X_val]), axis=0)
    assert_array_equal(together, np.sort(plain.X_train, axis=0))
    # stratified: every class's share within one example of its share of the training part
    for label in range(10):
        expected = 0.2 * np.count_nonzero(plain.y_train == label)
        assert abs(np.count_nonzero(split.y_val == label) - expected) <= 1, label
    assert plain.X_val is None and plain.validation_data is None


def test_early_stopping_stops_where_keras_rule_says_and_keeps_the_best_weights():
    config, split = _prepared(data="digits10", layers=(64, 16, 10), epochs=200, early_stopping=2)
    result = run_engine("numpy", config, split, initial_parameters(config))
    callback = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    net, history = _by_hand(config, split, validation_data=split.validation_data, callbacks=[callback])
    assert callback.stopped_epoch > 0, "the test needs a run that stops: more epochs or a larger learning rate"
    assert result.stopped_epoch == callback.stopped_epoch + 1 == result.epochs_run == len(history["loss"])
    assert result.best_epoch == callback.best_epoch + 1 == int(np.argmin(history["val_loss"])) + 1
    assert result.test_accuracy == net.evaluate(split.X_test, split.y_test)["accuracy"]
    assert result.checkpoints[-1]["epoch"] == config.epochs  # the run's result, wherever it stopped
    assert result.ms_per_epoch == pytest.approx(1000 * result.seconds / result.epochs_run)


def test_dropout_runs_are_reproducible_and_not_the_plain_run():
    runs = [compare(RunConfig(data="moons", epochs=5, dropout=rate), engines=["numpy"]).result("numpy")
            for rate in (0.4, 0.4, 0.0)]
    assert runs[0].loss_curve == runs[1].loss_curve != runs[2].loss_curve


# --------------------------------------------------------------------------- sklearn: l2 as alpha; the rest refused
# scikit-learn's alpha = 2 c b l2: the same steps up to the order of rounding (gradient (A^T delta + alpha W) / b
# against ours, A^T delta / b + 2 l2 W): 1e-10 relative over 12 epochs holds SGD's rounding (~1e-15) with room.
@pytest.mark.parametrize("data, layers", [("moons", (2, 8, 4, 1)), ("iris", (4, 8, 3)), ("diabetes", (10, 8, 1))])
def test_sklearn_l2_as_alpha_follows_numpy_full_batch(data, layers):
    config, split = _prepared(data=data, layers=layers, l2=0.01, learning_rate=0.1, hidden_activation="tanh")
    initial = initial_parameters(config)
    numpy, sklearn = (run_engine(e, config, split, initial) for e in ("numpy", "sklearn"))
    assert_allclose(sklearn.loss_curve, numpy.loss_curve, rtol=1e-10)
    assert sklearn.same_trajectory and "runs as alpha = 2 * " in sklearn.note and "exact only" not in sklearn.note


def test_sklearn_l2_with_a_short_last_batch_says_it_is_not_exact():
    config, split = _prepared(l2=0.01, batch_size=100)  # 320 training examples: 3 batches of 100 and one of 20
    note = run_engine("sklearn", config, split, initial_parameters(config)).note
    assert "exact only for full batches of 100: the last batch of 20 examples (of 320) gets a 5x stronger penalty" \
        in note


@pytest.mark.parametrize("options, engine, says", [
    ({"dropout": 0.2}, "sklearn", "have no dropout; got dropout=0.2"),
    ({"lr_schedule": SPEC}, "sklearn", "have no Keras learning-rate schedule"),
    ({"early_stopping": 3}, "sklearn", "have no Keras EarlyStopping (their own early_stopping stops on the "
                                       "validation score"),
    ({"l2": 0.1, "data": "synthetic_regression", "output": "linear", "layers": (10, 4, 3)}, "sklearn",
     "holds the L2 penalty k/2 times"),
    ({"l2": 0.1}, "functional", "has no L2 penalty, dropout, batch normalization, learning-rate schedule or early "
                                "stopping; got l2=0.1"),
    ({"early_stopping": 0}, "functional", "got early_stopping=0"),
    ({"dropout": 0.1, "keras_init": "notebook"}, "keras", "keras_init='notebook' uses the notebook's model"),
])
def test_what_an_engine_cannot_train_is_said(options, engine, says):
    config = RunConfig(**{"data": "moons", **options})
    assert says in unsupported_reason(engine, config, 320)
    chosen, notes = resolve_engines(None, config, 320)  # compare's choice of engines by default
    assert engine not in chosen and any(note.startswith(f"{engine} skipped: ") and says in note for note in notes)
    with pytest.raises(ValueError, match=f"engine '{engine}' cannot run this configuration: "):
        resolve_engines([engine], config, 320)


# --------------------------------------------------------------------------- the twins from the same weights
# Float64, full batch: the twins compute the same sums in another order, so their curves agree with
# Network's to rounding (the heads' tests measure ~1e-15); 1e-12 absolute leaves a thousandfold margin.
# Keras weighs its L2 penalty by l2 rounded to float32 (the PyTorch twin and Network too); powers of
# two here, and 0.01, which float32 does not hold, below.
L2 = 2.0 ** -10  # 0.0009765625


# Both at once: a twin that left out either (the penalty in every loss and gradient, the decayed
# rate of every update; each moves the curve by far more than 1e-12) is off Network's curve.
@pytest.mark.parametrize("engine", TWINS)
def test_twins_follow_numpy_with_l2_and_schedules(engine):
    config, split = _prepared(data="iris", layers=(4, 8, 3), epochs=15, l2=L2, lr_schedule=SPEC)
    initial = initial_parameters(config)
    numpy, twin = (run_engine(e, config, split, initial) for e in ("numpy", engine))
    assert twin.same_trajectory, twin.note
    assert np.max(np.abs(np.subtract(twin.loss_curve, numpy.loss_curve))) < 1e-12
    assert twin.test_loss == pytest.approx(numpy.test_loss, abs=1e-12)


# model.fit runs Keras's own EarlyStopping in its own loop: checked once too
@pytest.mark.parametrize("engine", TWINS + ["keras"] * ("tf-loop" in TWINS))
def test_twins_stop_at_the_same_epoch_as_numpy(engine):
    config, split = _prepared(data="iris", layers=(4, 8, 3), epochs=100, early_stopping=2, l2=2.0 ** -13,
                              learning_rate=2.0)
    initial = initial_parameters(config)
    numpy, twin = (run_engine(e, config, split, initial) for e in ("numpy", engine))
    assert numpy.stopped_epoch is not None, "the test needs a run that stops"
    assert (twin.stopped_epoch, twin.best_epoch, twin.epochs_run) == (numpy.stopped_epoch, numpy.best_epoch,
                                                                      numpy.epochs_run)
    assert np.max(np.abs(np.subtract(twin.loss_curve, numpy.loss_curve))) < 1e-12
    assert twin.test_accuracy == numpy.test_accuracy


@pytest.mark.parametrize("engine", TWINS)
def test_twins_follow_numpy_with_an_l2_that_float32_does_not_hold(engine):
    # Keras weighs its L2 penalty by l2 rounded to float32, the PyTorch twin and Network too
    config, split = _prepared(data="iris", layers=(4, 8, 3), epochs=5, l2=0.01)
    initial = initial_parameters(config)
    numpy, twin = (run_engine(e, config, split, initial) for e in ("numpy", engine))
    assert twin.same_trajectory and np.max(np.abs(np.subtract(twin.loss_curve, numpy.loss_curve))) < 1e-12


@pytest.mark.parametrize("engine", TWINS)
def test_twins_with_dropout_are_marked_off_the_trajectory(engine):
    result = compare(RunConfig(data="moons", epochs=3, dropout=0.2), engines=["numpy", engine])
    twin = result.result(engine)
    assert not twin.same_trajectory and "draws its own dropout masks" in twin.note
    assert np.isnan(result.max_loss_diff(twin))  # the |Δloss| column claims no agreement
    assert result.result("numpy").same_trajectory


# --------------------------------------------------------------------------- the report's lesson
def _row(engine, seed, l2, dropout, train, test, **extra):
    config = {"data": "moons", "output": "sigmoid", "layers": [2, 8, 1], "learning_rate": 0.1, "epochs": [10],
              "batch_size": None, "optimizer": "sgd", "hidden_activation": "relu", "init": "normal",
              "dtype": "float64", "l2": l2, "dropout": dropout, "batch_norm": False, "lr_schedule": None,
              "early_stopping": None, "validation_fraction": 0.1}
    point = {"epoch": 10, "train_loss": 0.1, "train_accuracy": train, "test_loss": 0.2, "test_accuracy": test}
    return {"run_id": f"{engine}{seed}{l2}{dropout}", "engine": engine, "seed": seed, "config": config,
            "status": "ok", "error": None, "n_parameters": 33, "checkpoints": [point], "loss_curve": [0.5] * 10,
            "seconds": 0.1, "ms_per_epoch": 10.0, "versions": {}, "machine": {}, **extra}


@pytest.mark.parametrize("tests, says", [
    ((0.90, 0.93), "shrank the train-test gap from 10.0 pp to 2.0 pp (train 1.000 → 0.950, test 0.900 → 0.930): "
                   "the L2 penalty traded fit to the training part for a better test accuracy."),
    ((0.90, 0.88), "shrank the train-test gap from 10.0 pp to 7.0 pp (train 1.000 → 0.950, test 0.900 → 0.880): "
                   "less overfitting, but a worse test accuracy: at l2 0.01 the network underfits."),
    ((0.90, 0.80), "widened the train-test gap from 10.0 pp to 15.0 pp (train 1.000 → 0.950, test 0.900 → 0.800): "
                   "no sign that the L2 penalty curbed overfitting here."),
    ((0.99, 0.942), "left the train-test gap about unchanged, 1.0 pp to 0.8 pp (train 1.000 → 0.950, "
                    "test 0.990 → 0.942): no sign"),
    ((0.998, 0.948), "moved the train-test gap from 0.2 pp to 0.2 pp (train 1.000 → 0.950, test 0.998 → 0.948): "
                     "there was no overfitting to curb, the gap being within 0.5 pp at l2 0."),
    ((1.0, 0.99), "moved the train-test gap from 0.0 pp to -4.0 pp (train 1.000 → 0.950, test 1.000 → 0.990): "
                  "there was no overfitting to curb, the gap being within 0.5 pp at l2 0."),
])
def test_the_overfitting_sentence_is_computed_from_the_rows(tests, says):
    # train accuracy 1.0 at l2 0 and 0.95 at l2 0.01, test accuracy as given: the gap is their difference
    rows = [_row("numpy", seed, l2, 0.0, train, test) for seed in (0, 1)
            for l2, train, test in ((0.0, 1.0, tests[0]), (0.01, 0.95, tests[1]))]
    summary = summarize(rows)
    sentence = next(s for s in summary if s.startswith("Overfitting and l2 (test accuracy; final epoch, mean over "
                                                       "engines, seeds and the other hyperparameters): raising l2 "
                                                       "from 0 to 0.01 "))
    assert says in sentence, sentence
    assert not any(s.startswith("Overfitting and dropout") for s in summary)  # dropout did not vary


def test_rows_stored_before_regularization_still_report(tmp_path):
    from twinnet.lab.rows import read_rows
    from twinnet.lab.store import ResultStore

    old = _row("numpy", 0, 0.0, 0.0, 1.0, 0.9)
    for key in ("l2", "dropout", "lr_schedule", "early_stopping", "validation_fraction"):
        del old["config"][key]
    store = ResultStore.create(tmp_path / "sweep", grid={}, grid_hash="h", n_runs=2)
    store.append(old)
    store.append(_row("numpy", 0, 0.01, 0.0, 0.95, 0.93, epochs_run=10, stopped_epoch=None, best_epoch=None))
    store.close()
    rows, warnings = read_rows(tmp_path / "sweep")
    assert not warnings and rows[0]["config"]["l2"] == 0.0 and rows[0]["config"]["early_stopping"] is None
    _, summary = build_report(tmp_path / "sweep")
    assert any(s.startswith("Overfitting and l2") and "from 0 to 0.01" in s for s in summary)


@pytest.fixture(scope="module")
def regularized_sweep(tmp_path_factory):
    """A sweep over l2 and dropout, and early stopping on and off: 2 seeds, numpy."""
    from twinnet.cli import main

    out = tmp_path_factory.mktemp("regularized") / "sweep"
    assert main(["sweep", "--data", "moons", "--layers", "2,16,16,1", "--learning-rate", "0.5", "--epochs", "20,60",
                 "--l2", "0,0.01", "--dropout", "0,0.3", "--early-stopping", "none,2", "--seeds", "0,1",
                 "--engines", "numpy", "--jobs", "2", "--no-progress", "--out", str(out)]) == 0
    return out


def test_a_sweep_over_l2_and_dropout_reports_the_gap_in_figures_and_words(regularized_sweep, tmp_path):
    out = tmp_path / "sweep"
    shutil.copytree(regularized_sweep, out)
    paths, summary = build_report(out)
    names = {p.name for p in paths}
    assert {"accuracy_gap_vs_l2.png", "accuracy_gap_vs_dropout.png"} <= names
    rows = read_results(out)
    assert len(rows) == 16 and {r["config"]["l2"] for r in rows} == {0.0, 0.01}
    for factor, high in (("l2", 0.01), ("dropout", 0.3)):
        sentence = next(s for s in summary if s.startswith(f"Overfitting and {factor} "))
        # the gap at each value, recomputed from the stored rows' final checkpoints
        for value in (0.0, high):
            points = [r["checkpoints"][-1] for r in rows if r["config"][factor] == value]
            gap = np.mean([p["train_accuracy"] - p["test_accuracy"] for p in points])
            assert f"{value:g}: {100 * gap:.1f} pp" in sentence, (value, sentence)
    page = (out / "report.html").read_text()
    assert "Overfitting against l2, final epoch" in page and "Early stopping: where each run stopped" in page


def test_the_report_says_where_early_stopping_stopped_each_run(regularized_sweep):
    rows = read_results(regularized_sweep)
    stopping = [r for r in rows if r["config"]["early_stopping"] == 2]
    assert {tuple(r["checkpoints"][i]["epoch"] for i in range(len(r["checkpoints"]))) for r in stopping} == {(60,)}
    stopped = sorted(r["stopped_epoch"] for r in stopping if r["stopped_epoch"] is not None)
    assert all(r["epochs_run"] == (r["stopped_epoch"] or 60) == len(r["loss_curve"]) for r in stopping)
    sentence = next(s for s in summarize(rows) if s.startswith("Early stopping (patience 2"))
    assert f"it ended {len(stopped)} of {len(stopping)} runs" in sentence
    if stopped:
        assert re.search(rf"after epochs? {stopped[0]}\b", sentence)
    assert json.loads((regularized_sweep / RESULTS).read_text().splitlines()[0])["config"]["validation_fraction"] == 0.1


def test_the_early_stopping_sentence_says_where_runs_stopped_and_whether_engines_stopped_together():
    def stopping(engine, seed, stopped, same=True):
        row = _row(engine, seed, 0.0, 0.0, 1.0, 0.9, epochs_run=stopped or 10, stopped_epoch=stopped,
                   best_epoch=(stopped or 10) - 1, same_trajectory=same)
        row["config"]["early_stopping"] = 3
        return row

    rows = [stopping("numpy", 0, 7), stopping("torch", 0, 7), stopping("numpy", 1, 7), stopping("torch", 1, 9),
            stopping("numpy", 2, None), stopping("keras", 2, 4, same=False)]  # its own dropout masks: not paired
    [sentence] = [s for s in summarize(rows) if s.startswith("Early stopping")]
    assert sentence == ("Early stopping (patience 3, val_loss on 0.1 of each run's training part, the best epoch's "
                        "weights kept): it ended 5 of 6 runs, after epochs 4 to 9 (median 7) of 10; the others ran "
                        "every epoch. Engines on one trajectory (numpy, torch) stopped after the same epoch in 1 of "
                        "the 2 (configuration, seed) pairs that more than one of them ran; not in layers 2-8-1, "
                        "seed 1: numpy 7, torch 9.")
