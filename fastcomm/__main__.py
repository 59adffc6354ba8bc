"""``python -m fastcomm``: the command line of :mod:`fastcomm.cli`."""

from fastcomm.cli import main

__all__: list[str] = []

raise SystemExit(main())
