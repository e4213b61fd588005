"""Fixtures shared by the test files."""

import pytest

from twinnet.cli import main


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
