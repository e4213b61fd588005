"""TensorFlow's start-up messages stay off the terminal of ``compare`` and ``sweep`` (main process
and workers), ``--verbose`` lets them through, and a failing TensorFlow import still shows its error.

Each command runs as a user runs it, in a subprocess, with TensorFlow's log level as a user has it
by default (``TF_CPP_MIN_LOG_LEVEL`` unset), and its standard error is read whole. twinnet's quiet
import sets the variable to 2 when it is unset (TensorFlow's errors only) and hides what
TensorFlow's C++ libraries write while they load, which since TensorFlow 2.19 ignores the variable
(tensorflow/tensorflow#100442). A user who sets the variable to 0 asks for every line TensorFlow
writes later, and those depend on the CPU: on AVX-512 machines float64 graphs log ``W0000 ...
Not handling type DT_DOUBLE`` at run time, on AVX2 machines they do not. So the commands are tested
at the default level, and the import alone at level 0, where every machine writes start-up lines.
The ``--verbose`` tests are the controls: the same lines do reach standard error when they are let
through.

Also here: every sentence about speed says which Keras it means, ``model.fit`` or the compiled
``tf.function`` loop (``tf-loop``), and states what ``model.fit`` adds per epoch.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from twinnet.lab.report import build_report
from twinnet.lab.store import read_results

pytestmark = pytest.mark.slow  # a minute or more: started first (tests/conftest.py)

SRC = Path(__file__).resolve().parents[1] / "src"
#: Marks of the lines TensorFlow's C++ libraries write while they load.
START_UP = ("absl::InitializeLog", "port.cc", "oneDNN custom operations", "cpu_feature_guard")
#: Marks of TensorFlow's and absl's C++ log lines (absl's prefix is I/W/E, then the date 0000).
MARKERS = (*START_UP, "I0000", "W0000", "E0000")
SMALL = ["--data", "moons", "--layers", "2,8,1", "--no-progress"]


def python(args, *, path=(), **env):
    """Run ``python ARGS`` as a user with no TensorFlow or twinnet variable set, plus ``env``, with
    ``path`` first on the module path; return the completed process (text, both streams captured)."""
    environment = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TWINNET_VERBOSE")}
    environment["PYTHONPATH"] = os.pathsep.join([*map(str, path), str(SRC), os.environ.get("PYTHONPATH", "")])
    environment.update(env)
    return subprocess.run([sys.executable, *args], check=False, capture_output=True, text=True,
                          env=environment, timeout=600)


def twinnet(args, **options):
    """Run ``python -m twinnet ARGS``, as :func:`python` runs it."""
    return python(["-m", "twinnet", *args], **options)


def tensorflow_lines(stderr):
    return [line for line in stderr.splitlines() if any(mark in line for mark in MARKERS)]


#: ``twinnet compare ARGV`` (from :func:`twinnet.cli.main`, as ``python -m twinnet`` runs it), then
#: the log level TensorFlow's quiet import left set.
COMPARE_THEN_LEVEL = ("import os, sys; from twinnet.cli import main; status = main(ARGV); "
                      "print(os.environ.get('TF_CPP_MIN_LOG_LEVEL')); sys.exit(status)")


@pytest.mark.tf
def test_compare_with_both_keras_engines_writes_no_tensorflow_line(tmp_path):
    # TensorFlow's log level unset, as a user has it: also the quiet import's case "unset" below
    argv = ["compare", *SMALL, "--epochs", "3", "--engines", "numpy,keras,tf-loop", "--out", str(tmp_path / "c")]
    done = python(["-c", COMPARE_THEN_LEVEL.replace("ARGV", repr(argv))])
    assert done.returncode == 0, done.stderr
    assert tensorflow_lines(done.stderr) == [], done.stderr
    assert " keras " in done.stdout and " tf-loop " in done.stdout, done.stdout
    assert "note: keras (model.fit) takes " in done.stdout  # its overhead over tf-loop, stated
    assert done.stdout.split()[-1] == "2"  # unset: 2, TensorFlow's errors only, for what it logs later


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A sweep of Network and both Keras engines on two worker processes, and what it printed."""
    out = tmp_path_factory.mktemp("quiet") / "sweep"
    done = twinnet(["sweep", *SMALL, "--epochs", "3", "--engines", "numpy,keras,tf-loop", "--jobs", "2",
                    "--out", str(out)])
    assert done.returncode == 0, done.stderr
    assert "3 ok" in done.stdout, done.stdout
    return out, done


@pytest.mark.tf
def test_sweep_workers_write_no_tensorflow_line(swept):
    _, done = swept
    assert tensorflow_lines(done.stderr) == [], done.stderr


@pytest.mark.tf
def test_the_reports_speed_sentences_say_which_keras_they_mean(swept):
    out, _ = swept
    _, summary = build_report(out)
    # every claim of speed is one of these sentences, each engine named with what it runs
    assert all(line.startswith("Speed per epoch, ") for line in summary if "faster" in line), summary
    fit = "keras (the Keras twin trained by model.fit)"
    loop = "tf-loop (the Keras twin trained by a compiled tf.function loop)"
    numpy = "numpy (twinnet.Network.fit)"
    assert any(line.startswith(f"Speed per epoch, {numpy} vs {fit}: ") for line in summary), summary
    assert any(line.startswith(f"Speed per epoch, {loop} vs {fit}: ") for line in summary), summary
    # numpy against the loop too: the same arithmetic without model.fit's overhead
    against_loop = next(line for line in summary if line.startswith(f"Speed per epoch, {numpy} vs {loop}: "))
    # recomputed from the stored runs (one configuration, one seed)
    ms = {row["engine"]: row["ms_per_epoch"] for row in read_results(out)}
    ratio = max(ms["numpy"], ms["tf-loop"]) / min(ms["numpy"], ms["tf-loop"])
    stated = float(re.search(r"is faster in 1 of 1 configurations, (\S+)× \(median\)", against_loop).group(1))
    assert stated == float(f"{ratio:.2g}" if ratio < 10 else f"{ratio:.0f}"), (stated, ratio)
    overhead = next(line for line in summary if line.startswith("Keras's model.fit overhead: "))
    extra = ms["keras"] - ms["tf-loop"]
    assert f"keras takes {extra:.3g} ms more per epoch than tf-loop" in overhead, (overhead, ms)
    assert f"({100 * extra / ms['keras']:.0f}% of keras's time per epoch; medians over 1 runs" in overhead


@pytest.mark.tf
def test_verbose_lets_the_workers_tensorflow_lines_through(tmp_path):
    done = twinnet(["sweep", *SMALL, "--epochs", "3", "--seeds", "0", "--engines", "keras",
                    "--jobs", "2", "--out", str(tmp_path / "s"), "--verbose"])
    assert done.returncode == 0, done.stderr
    assert tensorflow_lines(done.stderr), f"--verbose showed no TensorFlow line:\n{done.stderr}"
    # also the control of the quiet import at level 0 below: with --verbose twinnet leaves the level
    # unset, which TensorFlow reads as 0, and the workers' imports write their start-up lines
    assert any(mark in done.stderr for mark in START_UP), f"no start-up line at level 0:\n{done.stderr}"


#: twinnet's quiet import of Keras and TensorFlow, then the log level it leaves set.
IMPORT = ("import os; from twinnet import quiet; quiet.import_keras(); "
          "print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'))")


@pytest.mark.tf
def test_the_quiet_import_hides_the_start_up_lines_and_keeps_a_level_the_user_set():
    # the level unset (the quiet import sets 2) is the compare test's case above; the control, the
    # start-up lines shown at level 0, is the --verbose sweep's
    done = python(["-c", IMPORT], TF_CPP_MIN_LOG_LEVEL="0")
    assert done.returncode == 0, done.stderr
    assert tensorflow_lines(done.stderr) == [], done.stderr
    assert done.stdout.split() == ["0"]


def broken_tensorflow(tmp_path, source):
    """A folder holding a ``tensorflow`` package whose ``__init__`` is ``source``, to put on the path."""
    package = tmp_path / "broken" / "tensorflow"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(source)
    return package.parent


def test_a_failing_tensorflow_import_shows_its_error(tmp_path):
    # fails as a broken installation does: a line from "its C++ loader" on descriptor 2, then an error
    broken = broken_tensorflow(tmp_path, (
        "import os\n"
        "os.write(2, b'E0000 loader: libtensorflow_framework.so.2: cannot open shared object file\\n')\n"
        "raise ImportError('boom')\n"))
    done = twinnet(["compare", *SMALL, "--epochs", "2", "--engines", "keras", "--out", str(tmp_path / "c")],
                   path=[broken])
    assert done.returncode != 0
    assert "ImportError: boom" in done.stderr, done.stderr
    assert "libtensorflow_framework.so.2: cannot open shared object file" in done.stderr, done.stderr


def test_a_missing_dependency_of_tensorflow_is_named_not_taken_for_tensorflow(tmp_path):
    broken = broken_tensorflow(tmp_path, "import twinnet_missing_dependency\n")
    done = twinnet(["compare", *SMALL, "--epochs", "2", "--engines", "keras", "--out", str(tmp_path / "c")],
                   path=[broken])
    assert done.returncode == 2, done.stderr
    assert "No module named 'twinnet_missing_dependency'" in done.stderr, done.stderr
    assert "TensorFlow is not installed" not in done.stderr


def test_descriptor_2_is_hidden_during_the_block_and_shown_when_it_fails(capfd):
    from twinnet.quiet import descriptor_2_captured

    with descriptor_2_captured():
        os.write(2, b"I0000 written while loading\n")
    with pytest.raises(ImportError, match="boom"), descriptor_2_captured():
        os.write(2, b"E0000 written while failing\n")
        raise ImportError("boom")
    os.write(2, b"after the block\n")  # the descriptor is back
    err = capfd.readouterr().err
    assert "written while loading" not in err
    assert err.index("E0000 written while failing") < err.index("after the block"), err


def test_tensorflow_missing_is_said_with_the_fix(monkeypatch):
    from twinnet import quiet

    monkeypatch.setitem(sys.modules, "keras", None)  # `import keras` fails as when it is not installed
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)  # restored afterwards, if the import sets it
    with pytest.raises(ModuleNotFoundError, match=r"TensorFlow is not installed; .*'twinnet\[tf\]'"):
        quiet.import_keras()
