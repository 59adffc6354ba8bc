"""What granian needs of a listening address, and its socket errors as OSError.

granian binds IP addresses only (a host name is ``ValueError: invalid IP
address syntax``): :func:`ip_address` resolves a name first, as picows
does. It reports a failed bind as ``RuntimeError("Address already in use
(os error 98)")``, followed by a Rust backtrace when ``RUST_BACKTRACE`` is
set: :func:`os_error` keeps the errno, so that callers can say it in one
line like any other socket error.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket

__all__ = ["ip_address", "os_error"]

_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def os_error(error: BaseException | None) -> OSError | None:
    """The OSError that ``error`` (raised by granian) stands for, or None."""
    if isinstance(error, OSError):
        return error
    if error is None:
        return None
    found = _OS_ERROR.search(str(error).split("\n", 1)[0])
    if found is None:
        return None
    errno = int(found.group(1))
    return OSError(errno, os.strerror(errno))


def ip_address(host: str) -> str:
    """``host`` as an IP address granian can bind (the first the resolver gives).

    Raises ``socket.gaierror`` (an OSError) for a name that does not resolve.
    """
    try:
        ipaddress.ip_address(host)
    except ValueError:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        return str(infos[0][4][0])
    return host
