"""JWT authentication for the connect hook, built on PyJWT.

::

    app = fastcomm.App()
    fastcomm.auth.JWT("a long random secret, 32 bytes or more", audience="chat").install(app)

A :class:`JWT` is the app's connect hook: it reads the token that the
handshake found (``Authorization: Bearer ...`` or ``?token=``), verifies it,
and returns ``Identity(user=<sub>, meta=<claims>)``. Missing, expired or
invalid tokens refuse the upgrade with HTTP 401 and a short reason (never
the key). Its :meth:`JWT.authorize_subscribe` honours an optional
``channels`` claim: a list of channel names or ``fnmatch`` patterns the
token may subscribe to (absent: every channel). See docs/AUTH.md.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import jwt

from fastcomm.app import App, ConnectRequest, Identity
from fastcomm.errors import ConfigError, Rejected
from fastcomm.suggest import did_you_mean

if TYPE_CHECKING:
    from fastcomm.config import Config
    from fastcomm.sessions.connection import Connection

__all__ = ["CHANNELS_CLAIM", "JWT", "allowed", "configure", "from_config"]

#: The claim listing the channels (names or fnmatch patterns) a token may subscribe to.
CHANNELS_CLAIM = "channels"

_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidAudienceError, "invalid token audience"),
    (jwt.InvalidIssuerError, "invalid token issuer"),
    (jwt.InvalidSignatureError, "invalid token signature"),
)


class JWT:
    """A connect hook verifying JSON Web Tokens; see the module docstring.

    ``key`` is the HMAC secret (or, for RS*/ES* algorithms, the public key;
    those need the ``cryptography`` package). ``audience``/``issuer``, when
    set, must match the ``aud``/``iss`` claims; ``leeway`` (seconds) eases
    clock skew for ``exp``/``nbf``. ``meta_claims`` limits which claims go into
    ``Identity.meta`` (None: all; the ``channels`` claim is always kept).
    Presence shows ``meta`` to the channel's members.
    """

    __slots__ = ("_key", "algorithms", "audience", "issuer", "leeway", "meta_claims")

    def __init__(
        self,
        key: str | bytes,
        *,
        algorithms: Iterable[str] = ("HS256",),
        audience: str | None = None,
        issuer: str | None = None,
        leeway: float = 0.0,
        meta_claims: Iterable[str] | None = None,
    ) -> None:
        if not key:
            raise ValueError("the JWT key must not be empty")
        self.algorithms = tuple(algorithms)
        if not self.algorithms or any(a.lower() == "none" for a in self.algorithms):
            raise ValueError("JWT algorithms must be non-empty and must not include 'none'")
        _check_algorithms(self.algorithms)
        self._key = key
        self.audience = audience
        self.issuer = issuer
        self.leeway = leeway
        self.meta_claims = None if meta_claims is None else frozenset(meta_claims)

    def __repr__(self) -> str:  # never show the key
        return f"JWT(algorithms={self.algorithms!r}, audience={self.audience!r})"

    def __call__(self, request: ConnectRequest) -> Identity:
        """Verify ``request.token``: the identity, or :class:`Rejected` (401)."""
        if not request.token:
            raise Rejected(401, "missing token")
        claims = self.decode(request.token)
        user = claims.get("sub")
        if not isinstance(user, str) or not user:
            raise Rejected(401, "token has no subject")
        if self.meta_claims is not None:
            keep = self.meta_claims | {CHANNELS_CLAIM}
            claims = {k: v for k, v in claims.items() if k in keep}
        return Identity(user=user, meta=claims)

    def decode(self, token: str) -> dict[str, Any]:
        """The verified claims of ``token``; :class:`Rejected` (401) if it does not verify."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=list(self.algorithms),
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["sub"], "verify_aud": self.audience is not None},
            )
        except jwt.MissingRequiredClaimError as exc:
            # The claim names come from this verifier's settings (sub, aud, iss), not the token.
            raise Rejected(401, f'token lacks the required claim "{exc.claim}"') from None
        except jwt.PyJWTError as exc:
            for kind, reason in _REASONS:
                if isinstance(exc, kind):
                    raise Rejected(401, reason) from None
            raise Rejected(401, "invalid token") from None
        return claims

    def authorize_subscribe(self, conn: Connection, channel: str) -> bool:
        """True when the connection's ``channels`` claim allows ``channel`` (absent: all)."""
        return allowed(conn.meta, channel)

    def install(self, app: App) -> App:
        """Make this the app's connect hook and add the ``channels`` check to its
        subscribe hook. ValueError if the app already has a connect hook."""
        if app.connect_hook is not None:
            raise ValueError("the app already has a connect hook")
        app.on_connect(self)
        previous = app.subscribe_hook
        if previous is None:
            app.authorize_subscribe(self.authorize_subscribe)
        else:
            app.authorize_subscribe(_both(self.authorize_subscribe, previous))
        return app


def _check_algorithms(algorithms: tuple[str, ...]) -> None:
    """ValueError naming an algorithm PyJWT does not know or cannot use here."""
    usable = jwt.algorithms.get_default_algorithms()
    for name in algorithms:
        if name in jwt.algorithms.requires_cryptography and name not in usable:
            raise ValueError(f"JWT algorithm {name} needs the cryptography package")
        if name not in usable:
            known = sorted((usable.keys() | jwt.algorithms.requires_cryptography) - {"none"})
            raise ValueError(f"unknown JWT algorithm {name!r}{did_you_mean(name, known)}")


def allowed(meta: Any, channel: str) -> bool:
    """Whether identity ``meta`` lets its connection subscribe to ``channel``."""
    if not isinstance(meta, dict) or CHANNELS_CLAIM not in meta:
        return True
    patterns = meta[CHANNELS_CLAIM]
    if isinstance(patterns, str):
        patterns = [patterns]
    if not isinstance(patterns, list):
        return False  # a malformed claim allows nothing
    return any(isinstance(p, str) and fnmatch.fnmatchcase(channel, p) for p in patterns)


def _both(
    first: Callable[[Connection, str], bool], then: Callable[[Connection, str], Any]
) -> Callable[[Connection, str], Any]:
    def hook(conn: Connection, channel: str) -> Any:
        return then(conn, channel) if first(conn, channel) else False

    return hook


def from_config(config: Config) -> JWT:
    """The :class:`JWT` described by ``config.jwt_*`` (``jwt_secret`` must be set)."""
    if config.jwt_secret is None:
        raise ValueError("jwt_secret is not set")
    return JWT(
        config.jwt_secret,
        algorithms=config.jwt_algorithms,
        audience=config.jwt_audience,
        issuer=config.jwt_issuer,
    )


def configure(app: App | None, config: Config) -> App | None:
    """``fastcomm serve``: with ``jwt_secret`` set, install :func:`from_config` on
    ``app`` (a new :class:`App` when None); ConfigError if the app has its own
    connect hook. Without ``jwt_secret``, ``app`` is returned unchanged."""
    if config.jwt_secret is None:
        return app
    app = App() if app is None else app
    if app.connect_hook is not None:
        raise ConfigError("--jwt-secret cannot be used with an app that has its own connect hook")
    try:
        verifier = from_config(config)
    except ValueError as exc:
        raise ConfigError(f"jwt_algorithms: {exc}") from None
    return verifier.install(app)
