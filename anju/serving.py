"""What ``anju serve`` hands uvicorn beyond its options: an HTTP protocol without Nagle's delay and with a header timeout.

uvicorn (0.54, httptools) starts its keep-alive timer only after a response: a client that connects and sends nothing, or
sends its headers a byte at a time, holds the connection (and a place under ``limit_concurrency``) forever. Each
connection here gets ``header_timeout_seconds`` from its start, and from the first byte of each further request, to
complete its request line and headers; then it is closed. The body is ``ViewerMiddleware``'s (``body_timeout_seconds``).

With ``workers > 1`` uvicorn binds the listening socket itself as ``socket.socket(AF_INET)`` (protocol number 0), so asyncio
does not recognise the accepted connections as TCP and leaves ``TCP_NODELAY`` off (uvicorn 0.54). A response written as
headers, then body, then waits for the client's delayed ACK: every request on a kept-alive connection took ≥ 40 ms more
(measured with wrk on 127.0.0.1: 46 ms per /healthz with 2 workers, under 1 ms with one). Setting the option on each new
connection gives the workers the latency of the single-process server.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


@functools.cache
def header_timeout() -> float:
    """``header_timeout_seconds`` of the settings (read once per worker process, from its environment)."""
    from anju.settings import Settings

    return Settings().header_timeout_seconds


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol (its C HTTP parser): ``TCP_NODELAY`` on every connection, and a header timeout."""

    header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Turn Nagle's algorithm off for this connection (TCP only), start its header timer, then hand over to httptools."""
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
        self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        if self.header_timer is None:
            self.header_timer = self.loop.call_later(header_timeout(), self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _headers_too_slow(self) -> None:
        self.header_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def on_message_begin(self) -> None:
        """A request starts (on a kept-alive connection too): its headers must be in within the timeout."""
        super().on_message_begin()
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        """The headers are in: the body and the answer are the app's."""
        self._disarm_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Any) -> None:
        """The connection is gone: no timer left behind."""
        self._disarm_header_timer()
        super().connection_lost(exc)
