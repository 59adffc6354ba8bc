"""Network servers that carry fastcomm's transport-independent endpoints.

Only modules in this package import a server library (granian, picows); the
rest of fastcomm deals in :class:`~fastcomm.http.types.Request` and
:class:`~fastcomm.http.types.Response`.
"""

__all__: list[str] = []
