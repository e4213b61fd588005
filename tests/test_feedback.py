"""What a newcomer meets first: discovery of the API, and what a long fit says while it runs."""

import subprocess
import sys

import twinnet


def test_dir_and_help_list_the_public_names_without_importing_them():
    # In a fresh interpreter: dir() imports nothing (the names are PEP 562 lazy ones), help()'s
    # text lists the classes with their documentation, and neither loads a heavy library.
    code = (
        "import sys, pydoc, twinnet\n"
        "names = dir(twinnet)\n"
        "print(sorted(m for m in sys.modules if m.startswith('twinnet.')))\n"
        "print(sorted(set(twinnet.__all__) - set(names)))\n"
        "text = pydoc.render_doc(twinnet, renderer=pydoc.plaintext)\n"
        "print(sorted(n for n in twinnet.__all__ if 'class ' + n not in text and n + '(' not in text))\n"
        "heavy = ('tensorflow', 'keras', 'dask', 'distributed', 'matplotlib', 'torch')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    imported, missing_from_dir, undocumented, heavy = out.stdout.splitlines()
    assert imported == "[]"
    assert missing_from_dir == "[]"
    assert heavy == "[]"
    # every class and function of __all__ has its section in help(); modules and __version__ are data
    lazy = sorted(set(twinnet.__all__) - {"__version__", *twinnet._SUBMODULES})
    assert all(name not in undocumented for name in lazy), undocumented
    assert {"Network", "TwinNetClassifier", "TwinNetRegressor", "gradcheck"} <= set(lazy)
