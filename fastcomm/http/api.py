"""The HTTP server API for backends: ``POST /api/<command>`` with a JSON body.

Shaped like Centrifugo's server API (paths, fields, ``{"result": ...}``, ``{"error":
{"code", "message"}}``), with the HTTP status that fits each error. Data in, data out:
a transport serves :meth:`HttpApi.handle`. Commands, codes, limits: docs/HTTP-API.md.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, Protocol

import msgspec

from fastcomm.channels.broker import HistoryPage, StreamPosition
from fastcomm.channels.namespaces import channel_problem
from fastcomm.errors import ConfigError
from fastcomm.http import api_messages as m
from fastcomm.http.openapi import COMMANDS, openapi_document
from fastcomm.http.types import Request, Response, header
from fastcomm.protocol.channel_messages import Member

__all__ = ["ApiBackend", "ApiCode", "HttpApi"]

log = logging.getLogger("fastcomm.http.api")

JSON = "application/json"
_NO_STORE = (("Cache-Control", "no-store"),)


class ApiBackend(Protocol):
    """What the HTTP API needs from the server node. Every method is a coroutine
    and raises any exception on backend failure (the API answers 500, code 100)."""

    async def publish(
        self, channel: str, data: Any, *, idempotency_key: str | None = None
    ) -> StreamPosition:
        """Publish ``data`` to ``channel`` as the server (no client hooks apply), once
        per ``idempotency_key``; return its position. ValueError: an invalid name."""
        ...

    async def presence(self, channel: str) -> list[Member]:
        """Members present in ``channel``; empty for an unknown channel."""
        ...

    async def history(self, channel: str, *, since: int | None, limit: int | None) -> HistoryPage:
        """Retained publications, as :meth:`fastcomm.channels.broker.Broker.history`:
        after ``since`` (the first ``limit``), or the latest ``limit``; None: all."""
        ...

    async def disconnect(
        self, *, user: str | None, session: str | None, code: int, reason: str
    ) -> int:
        """Close live connections with ``code``/``reason`` and return how many were
        closed: the session ``session``, or every session of ``user``; with both,
        that session only if it belongs to ``user``. 4003 also revokes the session."""
        ...

    async def unsubscribe(self, user: str, channel: str) -> int:
        """Unsubscribe every live connection of ``user`` from ``channel`` (each gets
        ``unsubscribed`` with ``"id": null``); return how many were subscribed."""
        ...

    async def channels(self, pattern: str | None) -> dict[str, int]:
        """Channels with at least one subscriber -> their subscriber count, those
        whose name matches ``pattern`` (``fnmatch``, ``*`` also matches ``:``) if given."""
        ...

    async def nodes(self) -> list[dict[str, Any]]:
        """Every node of the server (this one first), each a msgspec-encodable dict;
        Centrifugo clients expect ``uid``, ``name``, ``version``, ``num_clients``,
        ``num_users``, ``num_channels``, ``num_subs`` and ``uptime``."""
        ...


class ApiCode:
    """Error codes of the HTTP API (Centrifugo's numbering)."""

    INTERNAL = 100
    UNAUTHORIZED = 101
    METHOD_NOT_FOUND = 104
    LIMIT_EXCEEDED = 106
    BAD_REQUEST = 107
    UNRECOVERABLE_POSITION = 112


class Failure(NamedTuple):  # a command's error answer: a value, not an exception
    status: int
    code: int
    message: str


def bad_request(message: str) -> Failure:
    return Failure(400, ApiCode.BAD_REQUEST, message)


_INVALID = (ApiCode.BAD_REQUEST, "invalid channel name")
_INTERNAL = (ApiCode.INTERNAL, "internal server error")
Result = msgspec.Struct | Failure
Command = Callable[[Any], Awaitable[Result]]
_encoder = msgspec.json.Encoder()
_BAD_CHARS = channel_problem(" ", 2)  # the message for a name with a character not allowed


def error_response(failure: Failure, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    body = _encoder.encode(m.ErrorReply(m.Error(failure.code, failure.message)))
    return Response(failure.status, body, JSON, _NO_STORE + headers)


class HttpApi:
    """The server API of ``backend`` behind ``api_key``. ``max_body`` bounds request
    bodies (413 beyond); ``max_channel_length`` is the server's limit on channel names."""

    def __init__(
        self,
        backend: ApiBackend,
        *,
        api_key: str,
        max_body: int,
        max_channel_length: int = 255,
    ) -> None:
        if not api_key:
            raise ConfigError("the HTTP API needs a non-empty api_key")
        if max_body < 1:
            raise ConfigError("the HTTP API's max_body must be 1 or more")
        self.backend = backend
        self.max_body = max_body
        self.max_channel_length = max_channel_length
        self._key = api_key.encode()
        self.too_large = error_response(
            Failure(413, ApiCode.LIMIT_EXCEEDED, f"request body is larger than {max_body} bytes")
        )
        self._openapi = _encoder.encode(openapi_document())
        self._commands: dict[str, tuple[type[msgspec.Struct], Command]] = {
            name: (request, getattr(self, name)) for name, (request, _, _) in COMMANDS.items()
        }

    def authorized(self, request: Request) -> bool:
        """True if the request carries the key (``X-API-Key`` or ``Authorization: apikey``)."""
        given = header(request, "x-api-key")
        if not given:
            auth = header(request, "authorization") or ""
            scheme, _, value = auth.strip().partition(" ")
            if scheme.lower() != "apikey":
                return False
            given = value.strip()
        return hmac.compare_digest(given.encode(), self._key)

    def channel_problem(self, channel: str, path: str) -> Failure | None:
        """A 400 naming ``path`` if ``channel`` is not a valid channel name."""
        problem = channel_problem(channel, self.max_channel_length)
        return None if problem is None else bad_request(f"invalid channel at `{path}`: {problem}")

    async def handle(self, request: Request) -> Response:
        """Answer one HTTP request (any path; only ``/api/...`` is served)."""
        path = request.path
        if not path.startswith("/api/"):
            return error_response(Failure(404, ApiCode.METHOD_NOT_FOUND, f"no such path {path}"))
        name = path.removeprefix("/api/")
        if name == "openapi.json":
            if request.method not in ("GET", "HEAD"):
                return _not_allowed(request.method, "GET")
            return Response(200, self._openapi, JSON)
        if request.method != "POST":
            return _not_allowed(request.method, "POST")
        if not self.authorized(request):
            failure = Failure(401, ApiCode.UNAUTHORIZED, "unauthorized")
            return error_response(failure, (("WWW-Authenticate", "apikey"),))
        if len(request.body) > self.max_body:
            return self.too_large
        entry = self._commands.get(name)
        if entry is None:
            return error_response(
                Failure(400, ApiCode.METHOD_NOT_FOUND, f"unknown command {name!r}")
            )
        kind, command = entry
        try:
            params = msgspec.json.decode(request.body or b"{}", type=kind)
        except msgspec.ValidationError as exc:
            text = str(exc)
            if "matching regex" in text:  # the only patterns are those of channel names
                text = f"invalid channel: {_BAD_CHARS} - at {text.rpartition(' - at ')[2]}"
            return error_response(bad_request(f"invalid request: {text}"))
        except msgspec.DecodeError as exc:
            return error_response(bad_request(f"invalid JSON: {exc}"))
        channel = getattr(params, "channel", None)
        invalid = None if channel is None else self.channel_problem(channel, "$.channel")
        if invalid is not None:
            return error_response(invalid)
        try:
            result = await command(params)
            if isinstance(result, Failure):
                return error_response(result)
            return Response(200, _encoder.encode({"result": result}), JSON, _NO_STORE)
        except Exception:
            correlation = secrets.token_hex(6)
            log.exception("API command %r failed (correlation_id=%s)", name, correlation)
            message = f"internal server error (correlation_id={correlation})"
            return error_response(Failure(500, ApiCode.INTERNAL, message))

    # -- commands: each takes its decoded request, returns a result or a Failure --
    async def publish(self, req: m.PublishRequest) -> Result:
        try:
            key = req.idempotency_key
            position = await self.backend.publish(req.channel, req.data, idempotency_key=key)
        except ValueError as exc:
            return bad_request(f"invalid channel at `$.channel`: {exc}")
        return m.PublishResult(position.offset, position.epoch)

    async def broadcast(self, req: m.BroadcastRequest) -> Result:
        for i, channel in enumerate(req.channels):
            failure = self.channel_problem(channel, f"$.channels[{i}]")
            if failure is not None:
                return failure
        responses = []
        for channel in req.channels:
            try:
                position = await self.backend.publish(channel, req.data)
                result = m.PublishResult(position.offset, position.epoch)
                responses.append(m.BroadcastResponse(result=result))
            except Exception as exc:
                if not isinstance(exc, ValueError):
                    log.exception("broadcast to %r failed", channel)
                code, text = _INVALID if isinstance(exc, ValueError) else _INTERNAL
                responses.append(m.BroadcastResponse(error=m.Error(code, f"{channel}: {text}")))
        return m.BroadcastResult(responses)

    async def presence(self, req: m.ChannelRequest) -> Result:
        members = await self.backend.presence(req.channel)
        return m.PresenceResult(
            {x.session: m.ClientInfo(x.session, x.user or "", x.meta) for x in members}
        )

    async def presence_stats(self, req: m.ChannelRequest) -> Result:
        members = await self.backend.presence(req.channel)
        users = {x.user for x in members if x.user is not None}
        return m.PresenceStatsResult(num_clients=len(members), num_users=len(users))

    async def history(self, req: m.HistoryRequest) -> Result:
        since = req.since
        if since is not None and req.reverse:
            return bad_request("`reverse` together with `since` is not supported")
        # Centrifugo's convention: no limit (or 0) = only the position, -1 = all retained.
        limit = 0 if not req.limit else None if req.limit < 0 else req.limit
        offset = None if since is None else since.offset
        page = await self.backend.history(req.channel, since=offset, limit=limit)
        if since is not None and _unrecoverable(since, page, limit):
            top = f"{page.offset}/{page.epoch}"
            text = f"position {since.offset}/{since.epoch} is not recoverable (stream at {top})"
            return Failure(416, ApiCode.UNRECOVERABLE_POSITION, text)
        items = [m.HistoryPublication(p.data, p.offset) for p in page.publications]
        if req.reverse:
            items.reverse()
        return m.HistoryResult(items, page.offset, page.epoch)

    async def disconnect(self, req: m.DisconnectRequest) -> Result:
        session = req.session or req.client  # Centrifugo's `client` is fastcomm's session
        if req.client is not None and session != req.client:
            return bad_request("`session` and `client` name different sessions")
        if req.user is None and session is None:
            return bad_request("give `user` or `session`")
        spec = req.disconnect or m.Disconnect()
        if 1000 < spec.code < 3000:
            return bad_request("invalid close code at `$.disconnect.code`: use 1000 or 3000-4999")
        if len(spec.reason.encode()) > 123:
            return bad_request("`$.disconnect.reason` is longer than 123 bytes in UTF-8")
        closed = await self.backend.disconnect(
            user=req.user, session=session, code=spec.code, reason=spec.reason
        )
        return m.DisconnectResult(closed)

    async def unsubscribe(self, req: m.UnsubscribeRequest) -> Result:
        return m.UnsubscribeResult(await self.backend.unsubscribe(req.user, req.channel))

    async def channels(self, req: m.ChannelsRequest) -> Result:
        counts = await self.backend.channels(req.pattern)
        return m.ChannelsResult({name: m.ChannelInfo(n) for name, n in counts.items()})

    async def info(self, req: m.InfoRequest) -> Result:
        return m.InfoResult(await self.backend.nodes())


def _unrecoverable(since: m.Position, page: HistoryPage, limit: int | None) -> bool:
    """True if the publications after ``since`` cannot all be read from ``page``'s stream
    (offset 0 is "nothing yet": any epoch's stream from offset 1 covers it)."""
    if (since.offset and since.epoch != page.epoch) or since.offset > page.offset:
        return True
    if limit == 0 or since.offset == page.offset:
        return False
    pubs = page.publications
    return not pubs or pubs[0].offset != since.offset + 1


def _not_allowed(method: str, allowed: str) -> Response:
    failure = Failure(405, ApiCode.BAD_REQUEST, f"method {method} not allowed; use {allowed}")
    return error_response(failure, (("Allow", allowed),))
