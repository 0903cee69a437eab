"""`reitti serve --workers N` answers with Nagle's algorithm off, as one worker always did.

Each server here is uvicorn itself, on the socket uvicorn binds for its workers (`Config.bind_socket`),
answering real HTTP; the test reads TCP_NODELAY off the connection the server accepted.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.importer import import_from_string

from app.cli.serve import uvicorn_options
from app.web.transport import PROTOCOL, NoDelayH11Protocol


async def _hello(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello"})


@contextmanager
def served_as_a_worker(http: str) -> Iterator[tuple[uvicorn.Server, str]]:
    """uvicorn serving `_hello` on a socket bound as `--workers N` binds it: the server and its base URL."""
    config = uvicorn.Config(_hello, host="127.0.0.1", port=0, http=http, lifespan="off", log_level="warning")
    listening = config.bind_socket()
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    try:
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("uvicorn did not start")
        yield server, f"http://127.0.0.1:{listening.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listening.close()


def no_delay_of_accepted_connections(http: str) -> list[int]:
    """TCP_NODELAY of each connection the server holds, read while a kept-alive client holds it open."""
    with served_as_a_worker(http) as (server, base), httpx.Client(base_url=base) as client:
        assert client.get("/").text == "hello"
        protocols = list(server.server_state.connections)
        return [
            protocol.transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            for protocol in protocols
        ]


def test_uvicorns_own_h11_leaves_nagle_on_for_a_worker_socket() -> None:
    """Why the protocol exists: if uvicorn or asyncio ever fixes this, this test says so."""
    assert no_delay_of_accepted_connections("h11") == [0]


def test_the_protocol_turns_nagle_off_on_a_worker_socket() -> None:
    (flag,) = no_delay_of_accepted_connections(PROTOCOL)
    assert flag != 0


@pytest.mark.parametrize("workers", [1, 2])
def test_reitti_serve_gives_uvicorn_the_protocol(workers: int) -> None:
    options = uvicorn_options(argparse.Namespace(host="127.0.0.1", port=8000, workers=workers))
    assert options["workers"] == workers
    assert import_from_string(options["http"]) is NoDelayH11Protocol
