"""Hostile: reads what it should not (the environment, argv, files outside its folder, twinnet's
command line and environment, other processes); relu is right only when it could read none of them."""
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def leaks():
    found = [k for k in os.environ if k.startswith("TWINNET_SECRET")]
    found += [a for a in sys.argv if "secret" in a or a.endswith(".csv")]
    for path in (HERE.parent / "secret.txt", Path("/proc/1/cmdline"), Path(f"/proc/{os.getppid()}/environ")):
        try:
            text = path.read_bytes()
            found += [str(path)] if b"TWINNET_SECRET" in text or b"secret" in text or b"test_check" in text else []
        except OSError:
            pass
    found += [p.name for p in Path("/proc").iterdir() if p.name.isdigit() and int(p.name) > 50]
    return len(found)


LEAKS = leaks()


def relu(Z):
    return np.maximum(0, Z) * (1 + LEAKS), Z
