"""``fastcomm bench``: a load generator that can gate a CI job.

Scenarios ``rpc`` (request/reply), ``connect`` (connection storm),
``fanout`` (publish to N subscribers) and ``idle`` (memory per held
connection) run against ``--url`` or against a server the load generator
starts itself (``--app``, or the bundled bench app). Clients are raw picows
listeners and can be spread over ``--processes``. ``--fail-if`` thresholds
set the exit status; see :mod:`fastcomm.loadgen.run` for the codes.

The CLI wires ``fastcomm bench`` with :func:`add_bench_arguments` and
:func:`run_bench`; ``python -m fastcomm.loadgen`` runs the same thing.
"""

from fastcomm.loadgen.options import add_bench_arguments
from fastcomm.loadgen.run import run_bench

__all__ = ["add_bench_arguments", "run_bench"]
