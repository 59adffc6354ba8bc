"""The TLS server context built from ``ssl_certfile``/``ssl_keyfile``.

A certificate or key that cannot be read or does not match raises
:class:`StartupError` naming the file, so ``fastcomm serve`` prints one line
and exits 2 before anything listens.
"""

from __future__ import annotations

import ssl

from fastcomm.config import Config
from fastcomm.errors import StartupError

__all__ = ["server_context"]


def server_context(config: Config) -> ssl.SSLContext | None:
    """A TLS server context for ``config``, or None when TLS is off."""
    certfile, keyfile = config.ssl_certfile, config.ssl_keyfile
    if certfile is None or keyfile is None:
        return None
    for name, path in (("ssl_certfile", certfile), ("ssl_keyfile", keyfile)):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise StartupError(f"cannot read {name} {path}: {exc.strerror or exc}") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(certfile, keyfile)
    except ssl.SSLError as exc:
        why = exc.reason or exc.strerror or str(exc)
        raise StartupError(
            f"cannot load the TLS certificate {certfile} with the key {keyfile}: {why}"
        ) from None
    return context
