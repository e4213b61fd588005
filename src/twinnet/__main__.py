"""``python -m twinnet`` runs the command-line interface."""

from twinnet.cli import main

raise SystemExit(main())
