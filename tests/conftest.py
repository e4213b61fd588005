"""Fixtures shared by the test files."""

import tempfile

import pytest

from twinnet.cli import main


def pytest_collection_modifyitems(items):
    """The tests marked ``slow`` first. .ci/run's pytest-xdist hands each file to a worker in this
    order, so the long files start first and the workers end together."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session", autouse=True)
def system_temporary_folder(tmp_path_factory):
    """The system's temporary folder, for the tests and every process they start, is a folder of
    this run's under pytest's: what a library writes there (TensorFlow's autograph writes a module
    per traced function and removes it at a clean exit only, so a killed worker leaves it) stays
    with the tests' other files instead of piling up in /tmp."""
    folder = tmp_path_factory.mktemp("tmp")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", str(folder))
        patch.setattr(tempfile, "tempdir", str(folder))
        yield folder


@pytest.fixture
def cli(capsys):
    """Run the ``twinnet`` command in this process: ``status, out, err = cli("compare", "--epochs", 1)``.

    Usage errors, which argparse raises as ``SystemExit`` from inside the parser, give their status
    like any other error.
    """
    def run(*argv):
        try:
            status = main([str(arg) for arg in argv])
        except SystemExit as exc:
            status = exc.code
        out, err = capsys.readouterr()
        return status, out, err
    return run
