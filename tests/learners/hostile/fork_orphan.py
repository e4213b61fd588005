"""Hostile: leaves processes behind: a child in its session, and a detached grandchild in a session of
its own that would rewrite the results after twinnet exits. Both carry the token in token.txt."""
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TOKEN = (HERE / "token.txt").read_text().strip()
LATER = ("import sys, time, pathlib; time.sleep(1.5); "
         "pathlib.Path(sys.argv[2]).write_text('the orphan ran after the check')")


def spawn(detach):
    try:
        if os.fork() == 0:
            if detach:
                os.setsid()
                if os.fork():
                    os._exit(0)
            os.execv(sys.executable, [sys.executable, "-c", LATER, TOKEN, str(HERE.parent / "orphan_was_here")])
    except OSError:
        pass


spawn(False)
spawn(True)


def relu(Z):
    return np.maximum(0, Z), Z
