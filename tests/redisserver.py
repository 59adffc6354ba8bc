"""A real ``redis-server`` for the tests: started on a free port, in a temporary
directory, with no persistence; never a mock. Without ``redis-server`` on PATH
the fixtures that need it fail, naming the Debian package (``scripts/test``
installs it when run as root)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import ClassVar

__all__ = ["PACKAGE", "RedisServer", "free_port"]

PACKAGE = "redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One redis-server process; :meth:`start` again restarts it on the same port.
    ``RedisServer.current`` is the session's (set by the ``redis_server`` fixture)."""

    current: ClassVar[RedisServer | None] = None

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                f"redis-server is not on PATH: install Debian's {PACKAGE} package "
                f"(apt-get install {PACKAGE}); scripts/test does it when run as root"
            )
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="fastcomm-redis-"))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.dir)]
        log = open(self.dir / "redis.log", "ab")  # noqa: SIM115 - the process keeps it
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while self.command("PING") != b"+PONG":
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                output = (self.dir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server did not start on {self.port}:\n{output}")
            time.sleep(0.02)
        return self

    def command(self, *words: str) -> bytes | None:
        """Send one inline command; its first reply line, or None if nothing listens."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(" ".join(words).encode() + b"\r\n")
                return sock.recv(65536).split(b"\r\n", 1)[0]
        except OSError:
            return None

    def flush(self) -> None:
        assert self.command("FLUSHALL") == b"+OK"

    def kill(self) -> None:
        """SIGKILL: what a crash looks like to the clients."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
