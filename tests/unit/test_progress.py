"""The load generator's live progress line (``fastcomm bench --progress``)."""

from __future__ import annotations

import io

from fastcomm.loadgen.progress import Progress


def test_progress_redraws_one_line_at_most_every_interval() -> None:
    out = io.StringIO()
    progress = Progress("fastcomm bench rpc", "requests", stream=out, interval=0.0)
    progress.show(1_500, note="warmup")
    first = out.getvalue()
    assert first.startswith("\r\x1b[Kfastcomm bench rpc")
    assert "1,500 requests" in first and first.endswith("warmup")
    progress.show(3_000)
    assert out.getvalue().count("\r\x1b[K") == 2  # redrawn in place, never a new line
    assert "\n" not in out.getvalue()
    progress.finish()
    assert out.getvalue().endswith("\r\x1b[K")  # the line is erased
    progress.finish()
    assert out.getvalue().count("\r\x1b[K") == 3  # erasing twice writes nothing more


def test_progress_is_throttled() -> None:
    out = io.StringIO()
    progress = Progress("x", "conns", stream=out, interval=3600.0)
    progress.show(10)
    progress.finish()
    assert out.getvalue() == ""  # nothing drawn inside the interval, nothing to erase
