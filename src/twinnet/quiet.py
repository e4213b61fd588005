"""Importing TensorFlow quietly: its start-up messages kept off the terminal unless ``$TWINNET_VERBOSE`` is set.

Every import of TensorFlow in twinnet goes through :func:`import_keras`; :func:`descriptor_2_captured`
keeps what C++ libraries write to file descriptor 2 off the terminal for a block of code.
"""

from __future__ import annotations

import contextlib

#: Set to a non-empty value (``twinnet ... --verbose`` does) to let TensorFlow's start-up messages through.
VERBOSE_ENV = "TWINNET_VERBOSE"


def import_keras():
    """Import Keras 3 and TensorFlow, keeping TensorFlow's start-up messages off standard error.

    Every import of TensorFlow in twinnet goes through here, sweep workers' included. Since
    TensorFlow 2.19, ``TF_CPP_MIN_LOG_LEVEL`` no longer silences the lines its C++ libraries write
    to file descriptor 2 while they load (absl's ``WARNING: All log messages before
    absl::InitializeLog() ...``, ``I0000 ... port.cc] oneDNN custom operations are on ...``;
    tensorflow/tensorflow#100442), so the import runs with that descriptor sent to a temporary file;
    the variable is still set, for TensorFlow's later messages. With :data:`VERBOSE_ENV` set
    nothing is hidden; when the import fails, what it wrote is shown before the error.
    """
    import os
    import sys

    if "tensorflow" in sys.modules or os.environ.get(VERBOSE_ENV):
        return _import_keras_now()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with descriptor_2_captured():
        return _import_keras_now()


def _import_keras_now():
    try:
        import keras
        import tensorflow  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name not in ("keras", "tensorflow"):  # a broken installation: its own message
            raise
        raise ModuleNotFoundError(
            "TensorFlow is not installed; the Keras twin needs it: pip install 'twinnet[tf]'"
        ) from None
    return keras


@contextlib.contextmanager
def descriptor_2_captured():
    """Send file descriptor 2 to a temporary file inside the block; if the block raises, show the file.

    Python's ``sys.stderr``, when it writes to descriptor 2, is pointed at a copy of the original
    for the block, so that other threads (a progress bar) still reach the terminal.
    """
    import os
    import sys
    import tempfile

    try:
        python_on_2 = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # a notebook's or a test's stream object
        python_on_2 = False
    with tempfile.TemporaryFile() as file:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(file.fileno(), 2)
        failed = True
        try:
            # entered just below, as the nullcontext is
            terminal = open(saved, "w", closefd=False) if python_on_2 else contextlib.nullcontext(sys.stderr)  # noqa: SIM115
            with terminal as stream, contextlib.redirect_stderr(stream):
                yield
            failed = False
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if failed:  # what the libraries wrote while failing is part of the error
                file.seek(0)
                sys.stderr.write(file.read().decode(errors="replace"))
                sys.stderr.flush()
