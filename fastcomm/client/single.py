"""One connection's client: :class:`SingleClient`, the base of ``fastcomm.Client``.

::

    from fastcomm.client.single import SingleClient

    async with await SingleClient.connect(url, token="...") as client:
        total = await client.call(Add(a=1, b=2))
        async for push in client:
            ...

The transport-level work (pending requests, close handshake, RFC 6455 rules)
lives in :class:`~fastcomm.client.connection.ClientConnection`. The façade
owns what outlives one connection: the connect parameters, the codec and the
inbox of pushes. Extension points for layered features (subscriptions,
reconnect with resume) are :meth:`SingleClient._open` (open and adopt a new
connection), :meth:`SingleClient._on_push` (route a push) and
:meth:`SingleClient._on_connection_closed` (decide what a lost connection means).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from ssl import SSLContext
from types import TracebackType
from typing import Any, Self

from fastcomm.client.codec import ClientCodec, Decoded
from fastcomm.client.connection import DEFAULT_MAX_MESSAGE_SIZE, ClientConnection
from fastcomm.client.inbox import Inbox
from fastcomm.errors import ClientError, CloseCode, ConnectionClosed
from fastcomm.protocol.codec import JSON_SUBPROTOCOL
from fastcomm.protocol.messages import Message, Result, Welcome

__all__ = ["Push", "SingleClient", "auth_headers"]

#: A push as :meth:`SingleClient.receive` returns it: a decoded Struct, or a dict for unknown types.
Push = Decoded


def auth_headers(headers: Mapping[str, str] | None, token: str | None) -> dict[str, str]:
    """``headers`` plus ``Authorization: Bearer <token>`` when a token is given."""
    merged = dict(headers or {})
    if token is not None:
        merged["Authorization"] = f"Bearer {token}"
    return merged


class SingleClient:
    """A fastcomm client. Create it with :meth:`connect`.

    * :meth:`request` sends a message with an ``id`` and returns its reply;
      :meth:`call` returns the ``data`` of a ``result`` reply.
    * :meth:`send` is fire-and-forget; :meth:`send_raw` sends any frame.
    * Pushes (everything that is not a reply to a pending request: application
      pushes decoded to the declared ``types``, publications, presence events,
      errors with ``id`` null, unknown types as dict) are read with
      :meth:`receive` or ``async for``. They are buffered without bound
      until read (see :mod:`fastcomm.client.inbox`).
    * :meth:`close` completes the close handshake; ``close_code`` and
      ``close_reason`` then hold what the server sent (1006 if the
      connection dropped without a CLOSE frame).
    """

    def __init__(
        self,
        url: str,
        *,
        subprotocol: str = JSON_SUBPROTOCOL,
        headers: Mapping[str, str] | None = None,
        types: Iterable[type[Message]] = (),
        timeout: float = 10.0,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        ssl: SSLContext | None = None,
    ) -> None:
        """Prepare a client without connecting; :meth:`connect` is the usual way in."""
        self.url = url
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.max_message_size = max_message_size
        self.ssl = ssl
        self.codec = ClientCodec(subprotocol, types)
        self.inbox: Inbox[Decoded] = Inbox()
        self._conn: ClientConnection | None = None

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        subprotocol: str = JSON_SUBPROTOCOL,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        resume: str | None = None,
        types: Iterable[type[Message]] = (),
        timeout: float = 10.0,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        ssl: SSLContext | None = None,
    ) -> Self:
        """Connect to ``url`` and return once the server's ``welcome`` arrived.

        ``subprotocol`` is ``fastcomm.v1.json`` or ``fastcomm.v1.msgpack``;
        ``token`` is sent as ``Authorization: Bearer``; ``resume`` is the
        resume token of an earlier session; ``types`` are the application push
        types to decode into Structs; ``max_message_size`` bounds a message
        from the server (larger ones close the connection with 1009); ``ssl``
        is the context that verifies a ``wss://`` server (None: system defaults).

        Raises :class:`~fastcomm.client.handshake.HandshakeFailed` (with the
        HTTP status) when the server refuses the upgrade, ``TimeoutError``
        after ``timeout`` seconds, ``OSError`` when the server is unreachable,
        ``ValueError``/``TypeError`` for bad arguments.
        """
        client = cls(
            url,
            subprotocol=subprotocol,
            headers=auth_headers(headers, token),
            types=types,
            timeout=timeout,
            max_message_size=max_message_size,
            ssl=ssl,
        )
        await client._open(resume)
        return client

    # -- extension points ---------------------------------------------------------
    async def _open(self, resume: str | None = None) -> ClientConnection:
        """Open a new connection (resuming ``resume`` if given) and make it current."""
        headers = dict(self.headers)
        if resume:
            headers["Fastcomm-Resume"] = resume  # not in the URL: kept out of access logs
        conn = await ClientConnection.open(
            self.url,
            self.codec,
            on_push=self._on_push,
            on_closed=self._on_connection_closed,
            headers=headers,
            timeout=self.timeout,
            max_message_size=self.max_message_size,
            ssl=self.ssl,
        )
        self._conn = conn
        return conn

    def _on_push(self, msg: Decoded) -> None:
        """Route one push; the base client queues it for :meth:`receive`."""
        self.inbox.put(msg)

    def _on_connection_closed(self, conn: ClientConnection) -> None:
        """A connection ended; the base client ends the inbox when it was current."""
        if conn is self._conn:
            code = conn.close_code if conn.close_code is not None else CloseCode.NORMAL
            self.inbox.close(ConnectionClosed(code, conn.close_reason))

    # -- state ----------------------------------------------------------------------
    @property
    def connection(self) -> ClientConnection:
        """The current transport-level connection."""
        if self._conn is None:
            raise ClientError("not connected; use SingleClient.connect()")
        return self._conn

    @property
    def welcome(self) -> Welcome:
        """The ``welcome`` message of the current connection."""
        welcome = self.connection.welcome
        assert welcome is not None  # open() returns only after welcome
        return welcome

    @property
    def session(self) -> str:
        """The session id the server assigned."""
        return self.welcome.session

    @property
    def resume_token(self) -> str:
        """The token to resume this session with after a disconnect."""
        return self.welcome.resume_token

    @property
    def subprotocol(self) -> str:
        """The negotiated subprotocol."""
        return self.codec.name

    @property
    def closed(self) -> bool:
        """True once closing started or the connection ended."""
        return self.connection.closed

    @property
    def close_code(self) -> int | None:
        """The close code the server sent; 1006 if dropped; None while open."""
        return self.connection.close_code

    @property
    def close_reason(self) -> str:
        """The close reason the server sent ("" while open)."""
        return self.connection.close_reason

    # -- requests and sending -------------------------------------------------------------
    async def request(self, msg: Message, timeout: float | None = 10.0) -> Decoded:
        """Send ``msg`` as a request and return the reply (Pong, Result, Subscribed, ...).

        An id is assigned unless ``msg.id`` is an int (``msg`` itself is not
        modified). Raises :class:`~fastcomm.errors.RequestFailed` on an
        ``error`` reply, :class:`~fastcomm.errors.ConnectionClosed` if the
        connection is or becomes closed before the reply, ``TimeoutError``
        after ``timeout`` seconds (a late reply is then dropped), ValueError
        if an explicit id is already in flight.
        """
        return await self.connection.request(msg, timeout)

    async def call(self, msg: Message, timeout: float | None = 10.0) -> Any:
        """:meth:`request` and return the ``data`` of the ``result`` reply.

        Raises :class:`~fastcomm.errors.ClientError` if the reply is not a
        ``result`` (e.g. ``call(Ping())``), plus everything :meth:`request` raises.
        """
        reply = await self.request(msg, timeout)
        if isinstance(reply, Result):
            return reply.data
        if isinstance(reply, dict) and reply.get("type") == "result":
            return reply.get("data")
        kind = reply.get("type") if isinstance(reply, dict) else type(reply).__name__
        raise ClientError(f"expected a result reply, got {kind}")

    def send(self, msg: Message) -> None:
        """Send ``msg`` without waiting (fire-and-forget: give it no ``id``).

        A message sent with an ``id`` is sent as is; its reply arrives as a push.
        Raises :class:`~fastcomm.errors.ConnectionClosed` once closed.
        """
        self.connection.send(msg)

    def send_raw(self, data: bytes | str, *, binary: bool | None = None) -> None:
        """Send one raw frame, unvalidated (to test how servers handle bad input).

        ``str`` goes as TEXT, ``bytes`` as the subprotocol's frame type, unless
        ``binary`` says otherwise.
        """
        self.connection.send_raw(data, binary=binary)

    # -- pushes ---------------------------------------------------------------------------
    async def receive(self, timeout: float | None = None) -> Push:
        """The next push, in arrival order.

        Raises ``TimeoutError`` after ``timeout`` seconds, and
        :class:`~fastcomm.errors.ConnectionClosed` once the connection has
        closed and every push received before has been read.
        """
        return await self.inbox.get(timeout)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Push:
        try:
            return await self.inbox.get()
        except ConnectionClosed:
            raise StopAsyncIteration from None

    # -- closing --------------------------------------------------------------------------
    async def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Complete the close handshake (abort after 5 s without an answer)."""
        if self._conn is not None:
            await self._conn.close(code, reason)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None or self._conn.closed else "open"
        session = self._conn.welcome.session if self._conn and self._conn.welcome else None
        return f"<{type(self).__name__} {self.url} session={session} {state}>"
