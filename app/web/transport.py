"""The HTTP connection as `reitti serve` runs it: uvicorn's h11 protocol, with Nagle's algorithm off.

asyncio turns Nagle's algorithm off on each accepted TCP connection, but only when the listening
socket says it is TCP by its protocol number. With `--workers N`, uvicorn binds the socket itself
as `socket.socket(family=...)`, whose protocol number is 0, so its workers answer with Nagle on: a
response's body waits behind its headers for the client's delayed ACK, about 40 ms here. A client
that sends its next request only after the last answer (most integrations, and wrk at 8
connections) then waited 43 ms a request, with either the service or the stack's ceiling. One
worker binds through `loop.create_server(host, port)` and never had it.
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol

# What `reitti serve` and the benchmarks give uvicorn as `http`: importable by name in each worker.
PROTOCOL = "app.web.transport:NoDelayH11Protocol"


class NoDelayH11Protocol(H11Protocol):
    """uvicorn's h11 protocol that sends each write at once, whatever socket it was accepted on."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        connection = transport.get_extra_info("socket")
        if connection is not None and connection.family in (socket.AF_INET, socket.AF_INET6):
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
