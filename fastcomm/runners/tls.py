"""The TLS server context built from ``ssl_certfile``/``ssl_keyfile``.

A certificate or key that cannot be read, is not what its setting says
(files swapped, a certificate where the key belongs), is encrypted, is
malformed or does not match the other raises :class:`StartupError` naming
the file and why, so ``fastcomm serve`` prints one line and exits 2 before
anything listens. OpenSSL's own message (``[SSL] PEM lib``) says neither.
"""

from __future__ import annotations

import re
import ssl

from fastcomm.config import Config
from fastcomm.errors import StartupError

__all__ = ["server_context"]

_LABEL = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")


class _Encrypted(Exception):
    """OpenSSL asked for the key's passphrase (there is no setting for one)."""


def _passphrase() -> bytes:
    raise _Encrypted  # instead of OpenSSL prompting on the terminal


def _read(name: str, path: str) -> set[str]:
    """The PEM block labels in ``path`` (``CERTIFICATE``, ``PRIVATE KEY``...)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise StartupError(f"cannot read {name} {path}: {exc.strerror or exc}") from None
    return {label.decode() for label in _LABEL.findall(data)}


def _problem(certfile: str, keyfile: str) -> str | None:
    """What is wrong with the two files that their PEM labels already show."""
    in_cert, in_key = _read("ssl_certfile", certfile), _read("ssl_keyfile", keyfile)
    cert_has_key = any(label.endswith("PRIVATE KEY") for label in in_cert)
    key_has_key = any(label.endswith("PRIVATE KEY") for label in in_key)
    if "CERTIFICATE" not in in_cert and cert_has_key and "CERTIFICATE" in in_key:
        return (
            f"ssl_certfile {certfile} holds a private key and ssl_keyfile {keyfile} a "
            "certificate: the two are swapped"
        )
    if "CERTIFICATE" not in in_cert:
        what = "a private key, not a certificate" if cert_has_key else "no PEM certificate"
        return f"ssl_certfile {certfile} holds {what} (expected -----BEGIN CERTIFICATE-----)"
    if not key_has_key:
        what = "a certificate, not a private key" if "CERTIFICATE" in in_key else "no PEM key"
        return f"ssl_keyfile {keyfile} holds {what} (expected -----BEGIN PRIVATE KEY-----)"
    return None


def server_context(config: Config) -> ssl.SSLContext | None:
    """A TLS server context for ``config``, or None when TLS is off."""
    certfile, keyfile = config.ssl_certfile, config.ssl_keyfile
    if certfile is None or keyfile is None:
        return None
    problem = _problem(certfile, keyfile)
    if problem is not None:
        raise StartupError(problem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(certfile, keyfile, password=_passphrase)
    except _Encrypted:
        raise StartupError(
            f"ssl_keyfile {keyfile} is encrypted with a passphrase, which fastcomm cannot "
            f"take: decrypt it (openssl pkey -in {keyfile} -out plain-key.pem)"
        ) from None
    except ssl.SSLError as exc:
        raise StartupError(_load_error(exc, certfile, keyfile)) from None
    return context


def _load_error(exc: ssl.SSLError, certfile: str, keyfile: str) -> str:
    if exc.reason == "KEY_VALUES_MISMATCH":
        return f"ssl_keyfile {keyfile} is not the private key of ssl_certfile {certfile}"
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(certfile)
    except ssl.SSLError:
        return f"ssl_certfile {certfile}: the certificate is malformed (not valid PEM)"
    return f"ssl_keyfile {keyfile}: the private key is malformed or of an unsupported kind"
