"""What ``anju serve`` hands uvicorn beyond its options: an HTTP protocol that never waits for Nagle's algorithm.

With ``workers > 1`` uvicorn binds the listening socket itself as ``socket.socket(AF_INET)`` (protocol number 0), so asyncio
does not recognise the accepted connections as TCP and leaves ``TCP_NODELAY`` off (uvicorn 0.54). A response written as
headers, then body, then waits for the client's delayed ACK: every request on a kept-alive connection took ≥ 40 ms more
(measured with wrk on 127.0.0.1: 46 ms per /healthz with 2 workers, under 1 ms with one). Setting the option on each new
connection gives the workers the latency of the single-process server.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol (its C HTTP parser), with ``TCP_NODELAY`` set on every connection it is given."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Turn Nagle's algorithm off for this connection (TCP only), then hand over to httptools."""
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
