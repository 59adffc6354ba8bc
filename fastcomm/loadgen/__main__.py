"""``python -m fastcomm.loadgen``: ``fastcomm bench`` without the CLI around it.

Usage errors print one line, ``fastcomm: error: ...``, and exit 2, as the CLI does.
"""

import argparse
import sys
from typing import NoReturn

from fastcomm.loadgen import add_bench_arguments, run_bench

__all__: list[str] = []


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"fastcomm: error: {message}", file=sys.stderr)
        raise SystemExit(2)


_parser = _Parser(
    prog="fastcomm bench",
    description="Load-test a fastcomm (or any WebSocket) server; gate CI with --fail-if.",
    allow_abbrev=False,
)
add_bench_arguments(_parser)
raise SystemExit(run_bench(_parser.parse_args()))
