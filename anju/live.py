"""Live updates: GraphQL subscriptions over WebSocket (``graphql-transport-ws``), fed by the outbox of live_events.sql.

The outbox: migrations/sql/live_events.sql.

Each worker process has one ``Hub``: one dedicated asyncpg connection (not a pool connection) that LISTENs on
``anju_live``, numbers pending events when notified (and every ``live.poll_seconds`` as a safety net:
``anju_live_sequence()``), prunes events past ``live.retention_hours`` every ``live.prune_interval_seconds``, and wakes
this process's subscriptions when the newest number moves. A woken subscription reads the events after its position
under its viewer's scope, re-read from ``app_user`` in the same transaction (resolvers/live.py); so scope is the one at
delivery, and a client that reconnects with ``after: <seq>`` gets every event it missed, in order, once.

A ``LiveConnection`` is one WebSocket: authenticated at ``connection_init`` (payload ``{"token": "<JWT>"}`` or
``{"Authorization": "Bearer <JWT>"}``, verified as HTTP requests are), re-checked every ``live.recheck_seconds``
(a disabled or deleted user, or an expired token, closes it with 4403), at most ``live.max_subscriptions_per_connection``
operations at once (strawberry's limit) and ``live.max_connections`` WebSockets per worker (more are refused before the
handshake completes: HTTP 403).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.websockets import WebSocket

from anju.auth import AuthError
from anju.settings import LiveSettings, Settings
from resolvers.access import ScopeCheck, Stale, Viewer, scope_check, viewer_by_name
from resolvers.live import Batch, EventRow, parse_after, read_events
from resolvers.query import SessionMaker

log = logging.getLogger("anju.live")
CHANNEL = "anju_live"
"""The NOTIFY channel of migrations/sql/live_events.sql (empty payloads: "something changed")."""


class Hub:
    """One per worker process: the LISTEN connection, the sequencer and prune calls, and the subscriptions to wake."""

    def __init__(self, settings: Settings, engine: AsyncEngine, sessionmaker: SessionMaker) -> None:
        self.settings = settings
        self.live: LiveSettings = settings.live
        self.engine = engine
        self.sessionmaker = sessionmaker
        self.head = 0
        """The newest event number this process has seen numbered."""
        self.connections = 0
        """Open subscription WebSockets in this process."""
        self._waiters: set[asyncio.Event] = set()
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()
        """Set while the LISTEN connection is up (tests wait for it)."""

    def start(self) -> None:
        """Start listening (in the running event loop)."""
        self._task = asyncio.create_task(self._run(), name="anju-live-hub")

    async def stop(self) -> None:
        """Stop listening and close the dedicated connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def waiter(self) -> asyncio.Event:
        """An event set whenever new events are numbered (``forget`` it when done)."""
        wake = asyncio.Event()
        self._waiters.add(wake)
        return wake

    def forget(self, wake: asyncio.Event) -> None:
        """Stop waking ``wake``."""
        self._waiters.discard(wake)

    def _notified(self, *_: Any) -> None:
        self._kick.set()

    async def _run(self) -> None:
        dsn = self.settings.asyncpg_dsn()
        retention = dt.timedelta(hours=self.live.retention_hours)
        pruned_at = 0.0
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    dsn, timeout=self.settings.connect_timeout_seconds, server_settings={"application_name": "anju-live"}
                )
                await conn.add_listener(CHANNEL, self._notified)
                self.listening.set()
                self._kick.set()  # catch up with whatever was written while not listening
                while True:
                    # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation that arrives as
                    # the event is set, and this loop then polled on forever (a test's shutdown hung in hub.stop())
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.live.poll_seconds):
                            await self._kick.wait()
                    self._kick.clear()
                    head = int(await conn.fetchval("SELECT anju_live_sequence()"))
                    if head != self.head:
                        self.head = head
                        for wake in self._waiters:
                            wake.set()
                    if time.monotonic() - pruned_at > self.live.prune_interval_seconds:
                        gone = await conn.fetchval("SELECT anju_live_prune($1)", retention)
                        pruned_at = time.monotonic()
                        if gone:
                            log.info("live events: pruned %s older than %s", gone, retention)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database restarted or is unreachable: listen again shortly
                log.warning("live events: listener connection lost (%s); reconnecting", type(exc).__name__)
                self.listening.clear()
                await asyncio.sleep(1)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), timeout=2)


def _bearer(params: dict[str, Any] | None, websocket: WebSocket) -> str | None:
    """The ``Authorization`` value of a connection: from ``connection_init``'s payload, else the upgrade request's header."""
    params = params or {}
    token = params.get("token")
    if isinstance(token, str) and token:
        return f"Bearer {token}"
    header = params.get("Authorization") or params.get("authorization")
    if isinstance(header, str) and header:
        return header
    return websocket.headers.get("authorization")


class LiveConnection:
    """One subscription WebSocket: its viewer from ``connection_init`` on, its token's expiry, its watchdog."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.websocket: WebSocket = None  # type: ignore[assignment]  # strawberry's WebSocket, set by the view's get_context
        self.viewer: Viewer | None = None
        self.expires_at = 0.0
        self.closed = False
        self._watchdog: asyncio.Task[None] | None = None

    async def authenticate(self, params: dict[str, Any] | None) -> Viewer:
        """The viewer of the connection's token (as ``anju.app.authenticate``); starts the re-checks.

        Raises:
            AuthError: no/invalid/expired token (expired: past its ``exp``, no leeway, as the re-checks), unknown or
                disabled user (or the database could not be asked).
        """
        state = self.websocket.state
        header = _bearer(params, self.websocket)
        name, expires_at = state.tokens.verified(state.keys, state.settings, header)
        try:
            viewer = await viewer_by_name(state.sessionmaker, name)
        except Exception as exc:  # the database is unreachable
            log.warning("live connection: user lookup failed (%s)", type(exc).__name__)
            raise AuthError("the database is unavailable; try again shortly") from None
        if viewer is None:
            raise AuthError("token's user is unknown or disabled")
        self.expires_at = expires_at
        if time.time() >= self.expires_at:
            # Past its expiry but within the verification's clock-skew leeway: HTTP still accepts it, but the re-check
            # would close this connection at once (and a client would reconnect in a loop): refused now instead.
            raise AuthError("token expired; ask for a new one")
        self.viewer = viewer
        self._watchdog = asyncio.create_task(self._recheck(), name="anju-live-recheck")
        return viewer

    async def close(self, reason: str) -> None:
        """Close the WebSocket with 4403 and ``reason`` (once)."""
        if self.closed:
            return
        self.closed = True
        log.info("live connection of %s closed: %s", self.viewer.name if self.viewer else "?", reason)
        with contextlib.suppress(Exception):
            await self.websocket.close(code=4403, reason=reason)

    def end(self) -> None:
        """The WebSocket is gone: stop re-checking."""
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()

    async def _current(self) -> Viewer | None:
        """The connection's user as it is now (None: disabled or deleted, or the token expired: the connection is closed)."""
        assert self.viewer is not None
        if time.time() >= self.expires_at:
            await self.close("token expired")
            return None
        viewer = await viewer_by_name(self.hub.sessionmaker, self.viewer.name)
        if viewer is None:
            await self.close("user disabled")
            return None
        self.viewer = viewer
        return viewer

    async def _recheck(self) -> None:
        while not self.closed:
            await asyncio.sleep(max(0.05, min(self.hub.live.recheck_seconds, self.expires_at - time.time())))
            try:
                await self._current()
            except Exception as exc:  # the database is unreachable: keep the connection, try again later
                log.warning("live connection: re-check failed (%s)", type(exc).__name__)

    async def _read(self, check: ScopeCheck, position: int | None, topics: Sequence[str]) -> Batch:
        async with self.hub.engine.connect() as conn:
            driver: Any = (await conn.get_raw_connection()).driver_connection
            return await read_events(driver, check, position, topics, self.hub.live.batch, self.hub.live.retention_hours)

    async def events(self, topics: Sequence[str], after: str | None) -> AsyncIterator[EventRow]:
        """The events of ``topics`` this connection's viewer may see at delivery, those after ``after`` first.

        Those after ``after`` are replayed from the outbox, then each is read as it is numbered. Ends (the connection
        closed) when the user is disabled or the token expires.

        Raises:
            InvalidInput: a malformed ``after``, or one older than the events kept or newer than the newest.
        """
        position = parse_after(after)
        live = self.hub.live
        wake = self.hub.waiter()
        check: ScopeCheck | None = None
        try:
            while not self.closed:
                wake.clear()
                assert self.viewer is not None
                try:
                    # Shielded: a subscription cancelled mid-read (the client left) must not hand its pool connection
                    # back inside the read's transaction, still in the viewer's role (the pool cannot see it).
                    if check is None or check.viewer is not self.viewer:  # built once per viewer, not per read
                        check = scope_check(self.viewer)
                    batch = await asyncio.shield(self._read(check, position, topics))
                except Stale:  # role, areas or partner changed (or the user was disabled): read the user again
                    if await self._current() is None:
                        break
                    continue
                position = batch.position
                for event in batch.events:
                    yield event
                if len(batch.events) == live.batch:
                    continue  # more to catch up with
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(live.recheck_seconds):  # (not wait_for: see Hub._run)
                        await wake.wait()
        finally:
            self.hub.forget(wake)
        await asyncio.Future()  # closed: strawberry cancels the operation when the WebSocket ends
