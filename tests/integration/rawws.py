"""A deliberately minimal WebSocket client over a raw socket, for sending
frames no well-behaved library would send (bad UTF-8, reserved bits, bad
fragmentation, bad close codes) and for reading exactly what comes back."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct


class RawWS:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        path: str = "/ws",
        headers: dict[str, str] | None = None,
        connection: str = "Upgrade",
    ) -> tuple[RawWS, int, bytes]:
        """Open and upgrade; return (client, HTTP status, raw response head)."""
        reader, writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            f"Connection: {connection}",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        return cls(reader, writer), status, head

    def send_frame(
        self, opcode: int, payload: bytes, fin: bool = True, rsv: int = 0, mask: bool = True
    ) -> None:
        first = (0x80 if fin else 0) | (rsv << 4) | opcode
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", first, (0x80 if mask else 0) | n)
        elif n < 65536:
            header = struct.pack("!BBH", first, (0x80 if mask else 0) | 126, n)
        else:
            header = struct.pack("!BBQ", first, (0x80 if mask else 0) | 127, n)
        if mask:
            key = os.urandom(4)
            masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            self.writer.write(header + key + masked)
        else:
            self.writer.write(header + payload)

    def send_text(self, text: str | bytes) -> None:
        self.send_frame(1, text.encode() if isinstance(text, str) else text)

    def send_close(self, code: int | None = 1000, reason: bytes = b"") -> None:
        payload = b"" if code is None else struct.pack("!H", code) + reason
        self.send_frame(8, payload)

    async def recv_frame(self, timeout: float = 5.0) -> tuple[int, bytes]:
        """Next frame from the server: (opcode, payload). Raises EOFError on EOF."""

        async def read() -> tuple[int, bytes]:
            try:
                head = await self.reader.readexactly(2)
            except asyncio.IncompleteReadError as exc:
                raise EOFError from exc
            opcode = head[0] & 0x0F
            n = head[1] & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
            return opcode, await self.reader.readexactly(n)

        return await asyncio.wait_for(read(), timeout)

    async def recv_until_close(self, timeout: float = 5.0) -> tuple[int, list[bytes]]:
        """Read frames until CLOSE; return (close code, data payloads seen before)."""
        seen: list[bytes] = []
        while True:
            opcode, payload = await self.recv_frame(timeout)
            if opcode == 8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                return code, seen
            if opcode in (1, 2):
                seen.append(payload)

    async def wait_eof(self, timeout: float = 5.0) -> None:
        async def drain() -> None:
            while await self.reader.read(65536):
                pass

        await asyncio.wait_for(drain(), timeout)

    def abort(self) -> None:
        transport = self.writer.transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # SO_LINGER 0: the kernel sends RST, like a crashed client.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()

    def close(self) -> None:
        self.writer.close()
