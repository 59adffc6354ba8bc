"""Runners: what starts processes around an App (``fastcomm serve --transport granian``).

:mod:`fastcomm.server` runs the picows transport in this process;
:mod:`fastcomm.runners.granian` hands the App to granian's worker processes.
"""

__all__: list[str] = []
