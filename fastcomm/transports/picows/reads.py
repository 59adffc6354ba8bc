"""picows' read path, cut at CLOSE frames and at frames picows will refuse.

picows parses one frame ahead of the one it delivers: when the frame after
the current one is a protocol error (a second CLOSE, a reserved opcode, a
CLOSE with an invalid code), it sends its own CLOSE (1002) before the
current frame reaches fastcomm. :class:`FramedReads` sits between the event
loop and picows' parser (picows is a ``BufferedProtocol``: the loop reads
into the buffer :meth:`get_buffer` returns, then calls
:meth:`buffer_updated`) and finds the frame boundaries in each read, from
the frame headers alone, before picows sees the bytes. It hands picows:

* a CLOSE frame on its own, once the frames before it are delivered, and
  nothing after it (RFC 6455 section 5.5.1: no data follows a CLOSE; the
  answer to the first CLOSE is fastcomm's);
* a frame whose header picows refuses (reserved opcode, a fragmented or
  oversized control frame, an unmasked frame) only once the frames before it
  are delivered, and nothing after it.

A read with neither (every read of a normal connection) goes to picows
whole, in place: the cost is a scan of the headers.
"""

from __future__ import annotations

from typing import Any

from picows.picows import WSProtocol  # type: ignore[attr-defined]

__all__ = ["FramedReads", "frame_header"]

_get_buffer = WSProtocol.get_buffer
_buffer_updated = WSProtocol.buffer_updated

# What the scanner is doing; 0 (the hot path) is "at a frame boundary or in a payload".
_FRAMES = 0
_REQUEST = 1  # before the end of the HTTP upgrade request
_CARRY = 2  # a frame header is split between two reads
_CLOSING = 3  # inside a CLOSE frame: its last bytes go to picows, nothing after them
_DONE = 4  # after a CLOSE or a refused frame: reads are dropped
_CLOSE = 0x8
_DATA_OR_CONTROL = frozenset({0x0, 0x1, 0x2, 0x8, 0x9, 0xA})
_PLAIN = frozenset({0x00, 0x01, 0x02, 0x80, 0x81, 0x82})  # first bytes of data frames, no RSV
_MAX_HEADER = 14
_MAX_REQUEST = 64 * 1024  # picows itself refuses requests beyond 16 KiB


def frame_header(data: Any, pos: int, stop: int) -> tuple[int, int, int] | None:
    """``(opcode, header size, payload size)`` of the frame header at ``data[pos:stop]``,
    or None if the header is not all there yet. The opcode is -1 if picows refuses
    the frame on its header alone."""
    if stop - pos < 2:
        return None
    first, second = data[pos], data[pos + 1]
    size = second & 0x7F
    head = 6 if second & 0x80 else 2
    shortest = True
    if size == 126:
        head += 2
        if stop - pos < head:
            return None
        size = (data[pos + 2] << 8) | data[pos + 3]
        shortest = size >= 126
    elif size == 127:
        head += 8
        if stop - pos < head:
            return None
        size = int.from_bytes(data[pos + 2 : pos + 10], "big")
        shortest = 65536 <= size < 1 << 63
    opcode = first & 0x0F
    if (
        opcode not in _DATA_OR_CONTROL
        or not shortest
        or not second & 0x80
        or (opcode >= _CLOSE and (size > 125 or not first & 0x80))
    ):
        opcode = -1
    return opcode, head, size


class FramedReads(WSProtocol):  # type: ignore[misc]
    """picows' protocol, whose reads are handed over as the module doc says."""

    __slots__ = ("_carry", "_mode", "_skip", "_view")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._view: Any = None  # the buffer of the read in progress (picows' memory)
        self._skip = 0  # bytes of the current frame still to arrive
        self._mode = _REQUEST
        self._carry = b""  # the upgrade request so far, or a split frame header

    def get_buffer(self, size_hint: int) -> Any:
        view = self._view = _get_buffer(self, size_hint)
        return view

    def buffer_updated(self, nbytes: int) -> None:
        pos = self._skip
        if pos > nbytes:  # the read ends inside the current frame's payload
            self._skip = pos - nbytes
            _buffer_updated(self, nbytes)
            return
        view = self._view
        self._view = None  # picows may move its buffer: this view is not read again
        if self._mode:
            pos = self._resume(view, nbytes)
            if pos < 0:
                return
        while pos < nbytes:
            if pos + 1 < nbytes:  # the common frame: data, masked, under 126 bytes
                second = view[pos + 1]
                if 0x80 <= second < 0xFE and view[pos] in _PLAIN:
                    pos += second - 0x7A  # 2 + 4 (mask) + the size in the low 7 bits
                    continue
            header = frame_header(view, pos, nbytes)
            if header is None:  # a header split between this read and the next
                self._carry = bytes(view[pos:nbytes])
                self._mode = _CARRY
                break
            opcode, head, size = header
            if opcode == _CLOSE or opcode < 0:
                self._cut(view, pos, pos + head + size, nbytes, opcode)
                return
            pos += head + size
        self._skip = pos - nbytes if pos > nbytes else 0
        _buffer_updated(self, nbytes)

    def _resume(self, view: Any, nbytes: int) -> int:
        """Where the frames resume in this read, or -1 if the read was handled here."""
        mode = self._mode
        if mode == _REQUEST:
            before = len(self._carry)
            request = self._carry + bytes(view[:nbytes])
            end = request.find(b"\r\n\r\n", max(0, before - 3))
            if end < 0:
                self._carry = request if len(request) <= _MAX_REQUEST else b""
                _buffer_updated(self, nbytes)
                return -1
            self._carry, self._mode = b"", _FRAMES
            return end + 4 - before
        if mode == _CLOSING:  # the CLOSE frame ends in this read, at self._skip
            self._mode, end, self._skip = _DONE, self._skip, 0
            _buffer_updated(self, end)
            return -1
        if mode == _DONE:
            return -1
        # _CARRY: complete the split header with the first bytes of this read.
        carried = len(self._carry)
        data = self._carry + bytes(view[: min(nbytes, _MAX_HEADER)])
        header = frame_header(data, 0, len(data))
        if header is None:
            self._carry = data
            _buffer_updated(self, nbytes)
            return -1
        self._carry, self._mode = b"", _FRAMES
        opcode, head, size = header
        if opcode == _CLOSE or opcode < 0:
            # The frames before this one went to picows with the previous read.
            self._cut(view, 0, head + size - carried, nbytes, opcode)
            return -1
        return head + size - carried

    def _cut(self, view: Any, start: int, end: int, nbytes: int, opcode: int) -> None:
        """Hand picows the whole frames before ``start``, then the frame at ``start``
        (``end`` is where it ends; it may have begun in an earlier read) on its own,
        and nothing after it. Offsets are in this read."""
        self._mode, self._skip = _DONE, 0
        if opcode < 0:
            stop = nbytes  # picows refuses the frame on its header: the rest is moot
        elif end > nbytes:
            stop, self._mode, self._skip = nbytes, _CLOSING, end - nbytes
        else:
            stop = end
        if start <= 0:
            _buffer_updated(self, stop)
            return
        frame = bytes(view[start:stop])
        _buffer_updated(self, start)  # picows delivers them and empties its buffer
        target = _get_buffer(self, -1)
        target[: len(frame)] = frame
        _buffer_updated(self, len(frame))
