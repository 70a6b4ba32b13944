"""Database engine, sessionmaker, database creation and migrations."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry
from sqlalchemy.util.concurrency import await_
from sqlalchemy.util.queue import AsyncAdaptedQueue, Empty

from anju.settings import PROJECT_ROOT, Settings
from resolvers.access import ScopeCheck, Stale


def server_settings(settings: Settings, application_name: str = "anju") -> dict[str, str]:
    """The session settings of every connection Anju's service opens (the engine's and the ``ReadPool``'s)."""
    return {
        "statement_timeout": str(settings.statement_timeout_ms),
        # JIT compiles for 100-300 ms whenever a plan's cost estimate is large (a tile of 5,000
        # points, a scoped scan priced with enable_seqscan off): never worth it for these queries.
        "jit": "off",
        "application_name": application_name,
    }


class Outage:
    """Whether the database is down, as the pool's own connection attempts tell (one per pool).

    Down: a connection attempt was refused or reset (nothing listens, the server is starting or shutting down), or it
    timed out (``connect_timeout_seconds``) while no other connection of the pool came back healthy during that attempt.
    A timed-out attempt while others finished their work is a busy machine, not an outage, and changes nothing. Up
    again: the next attempt that connects.
    """

    def __init__(self) -> None:
        """Up, nothing seen yet."""
        self.down = False
        self.last_healthy = 0.0
        """``time.monotonic()`` when a connection last connected, or came back to the pool unbroken."""
        self._event: asyncio.Event | None = None

    def healthy(self) -> None:
        """A connection connected or came back unbroken."""
        self.last_healthy = time.monotonic()
        if self.down:
            self.down = False
            self._event = None

    def failed(self, exc: BaseException, attempt_started: float) -> None:
        """A connection attempt begun at ``attempt_started`` (monotonic) failed with ``exc``."""
        if isinstance(exc, TimeoutError) and self.last_healthy > attempt_started:
            return
        self.down = True
        if self._event is not None:
            self._event.set()

    async def wait(self) -> None:
        """Until the database is found down (at once when it is)."""
        if self.down:
            return
        if self._event is None:
            self._event = asyncio.Event()
        await self._event.wait()


class _OutageQueue(AsyncAdaptedQueue[ConnectionPoolEntry]):
    """The pool's idle connections; a request waiting for one gives up when the database is found down."""

    outage: Outage

    def get(self, block: bool = True, timeout: float | None = None) -> ConnectionPoolEntry:
        """An idle connection: at once if one is idle; else the wait for one, cut short when the database is down.

        Raises:
            Empty: none came within ``timeout`` seconds, or the database is down.
        """
        if not block or self.outage.down:
            return self.get_nowait()
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            pass
        try:
            return await_(self._wait(timeout))
        except (asyncio.QueueEmpty, TimeoutError) as err:
            raise Empty() from err

    async def _wait(self, timeout: float | None) -> ConnectionPoolEntry:
        getter = asyncio.ensure_future(self._queue.get())
        down = asyncio.ensure_future(self.outage.wait())
        try:
            await asyncio.wait({getter, down}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            down.cancel()
            if not getter.done():
                getter.cancel()
                # A getter cancelled after it was handed a connection leaves it in the queue (asyncio.Queue's rule);
                # one that finished anyway returns it below. Either way no connection is lost.
                await asyncio.wait({getter})
        if getter.cancelled():
            raise TimeoutError
        return getter.result()


class ServicePool(AsyncAdaptedQueuePool):
    """The service's connection pool: SQLAlchemy's asyncio queue pool with two waits told apart.

    A request finding every connection in use waits in line for one up to the pool's ``timeout``
    (``pool_wait_seconds``: the database is up and busy, e.g. 1,000 edits at once), but not while the database is down
    (``Outage``): then it gives up at once, and so does every request already waiting, so a database that is gone
    answers 503 within the connect timeout, never after the long wait.
    """

    _queue_class = _OutageQueue

    def __init__(self, creator: Callable[..., Any], **kw: Any) -> None:
        """As ``AsyncAdaptedQueuePool``."""
        self.outage = Outage()
        super().__init__(creator, **kw)
        self._pool.outage = self.outage  # type: ignore[attr-defined]

    def _should_wrap_creator(self, creator: Callable[..., Any]) -> Callable[[Any], Any]:
        invoke = super()._should_wrap_creator(creator)

        def connect(record: Any) -> Any:
            started = time.monotonic()
            try:
                connection = invoke(record)
            except BaseException as exc:
                self.outage.failed(exc, started)
                raise
            self.outage.healthy()
            return connection

        return connect

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        if record.dbapi_connection is not None:  # not invalidated: the database answered this request
            self.outage.healthy()
        super()._do_return_conn(record)


def create_engine(settings: Settings, database: str | None = None) -> AsyncEngine:
    """One async engine (asyncpg) sized for sibling resolvers fanning out, with connect, pool-wait and statement timeouts.

    Its pool is a ``ServicePool``: waiting for a free connection is bounded by ``pool_wait_seconds`` while the database
    is up, and ends at once when it is down.
    """
    return create_async_engine(
        settings.sqlalchemy_url(database),
        poolclass=ServicePool,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_wait_seconds,
        # No pre-ping (a round trip per checkout): a connection found dead fails its request, and SQLAlchemy then
        # invalidates the whole pool, so the next requests reconnect.
        # Statement parameters (names, incomes) never reach error messages or logs.
        hide_parameters=True,
        connect_args={"server_settings": server_settings(settings), "timeout": settings.connect_timeout_seconds},
    )


class ReadPool:
    """The connections of the fast path for planned reads (``anju.app.fast_read``), and nothing else.

    At most ``size`` per process, opened on demand and kept; a read finding all in use waits in line for one at most
    ``pool_wait_seconds`` (``TimeoutError``: the caller answers through the full path). ``in_use``, ``waiting`` and
    ``idle`` are sampled into ``/metrics`` (``anju_db_pool_*{pool="fast_read"}``).

    A read is no transaction and at most two round trips: the viewer's ``ScopeCheck`` (``RESET ALL``, ``RESET ROLE``
    and the scope as session settings, in one simple-protocol message), then the planned statement, prepared once per
    connection by asyncpg. Each connection remembers the scope it holds (the check's text, planner settings included);
    a read for the same viewer and settings takes such a connection and sends only the statement, gated by the same
    check (``ScopeCheck.gated``): one round trip, and a disabled or changed user still reads nothing. The connections
    are read-only by default (``default_transaction_read_only``, a connection setting, which ``RESET ALL`` keeps). Any
    failure or cancellation closes the connection it happened on, so a half-applied scope is never reused; the caller
    answers through the full path instead.
    """

    def __init__(self, settings: Settings, size: int) -> None:
        """A pool for ``settings``' database with at most ``size`` connections (nothing is opened yet)."""
        self._dsn = settings.asyncpg_dsn()
        self._connect_timeout = settings.connect_timeout_seconds
        self._server_settings = {
            **server_settings(settings, "anju-read"),
            "default_transaction_read_only": "on",
            "standard_conforming_strings": "on",  # ScopeCheck's literals
        }
        self._idle: list[tuple[asyncpg.Connection, str | None]] = []  # a connection and the scope it holds
        self._slots = asyncio.Semaphore(size)
        self._gated: dict[str, str] = {}  # statement → its gated form
        self._wait_seconds = settings.pool_wait_seconds
        self.in_use = 0
        """Connections taken by a read (also while one is being opened)."""
        self.waiting = 0
        """Reads waiting in line for a connection."""

    @property
    def idle(self) -> int:
        """Open connections no read is using."""
        return len(self._idle)

    async def read(
        self, check: ScopeCheck, settings: Sequence[tuple[str, str]], sql: str, params: Sequence[Any]
    ) -> asyncpg.Record | None:
        """The row of ``sql`` with ``params`` under ``check``'s scope with the planner ``settings`` applied.

        Raises:
            Stale: the check did not hold (nothing was read).
            asyncpg.PostgresError, OSError, asyncio.TimeoutError: the statement or the connection failed, or no
                connection was free within ``pool_wait_seconds``.
        """
        scope = check.applying(settings)
        self.waiting += 1
        try:
            await asyncio.wait_for(self._slots.acquire(), self._wait_seconds)
        finally:
            self.waiting -= 1
        self.in_use += 1
        try:
            conn, held = self._take(scope)
            if conn is None:
                conn = await self._connect()
            try:
                if held == scope:
                    row = await conn.fetchrow(self._gate(sql, len(params)), *params, *check.holds_params)
                    row = Stale if row is None else row
                else:
                    status = await conn.execute(scope)
                    held = scope if ScopeCheck.holds(status) else None
                    row = await conn.fetchrow(sql, *params) if held else Stale
            except BaseException:
                conn.terminate()
                raise
            self._idle.append((conn, held if row is not Stale else None))
        finally:
            self.in_use -= 1
            self._slots.release()
        if row is Stale:
            raise Stale
        return row

    def _take(self, scope: str) -> tuple[asyncpg.Connection | None, str | None]:
        """An idle connection holding ``scope`` if there is one, else the most recently used, else none."""
        for i in range(len(self._idle) - 1, -1, -1):
            if self._idle[i][1] == scope:
                return self._idle.pop(i)
        return self._idle.pop() if self._idle else (None, None)

    def _gate(self, sql: str, n_params: int) -> str:
        gated = self._gated.get(sql)
        if gated is None:
            if len(self._gated) > 4096:  # plans come and go with the plan cache; keep memory bounded
                self._gated.clear()
            gated = self._gated[sql] = ScopeCheck.gated(sql, n_params)
        return gated

    async def _connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self._dsn, server_settings=self._server_settings, timeout=self._connect_timeout)

    async def close(self) -> None:
        """Close the idle connections (at shutdown)."""
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker:  # type: ignore[type-arg]
    """``async_sessionmaker(engine, expire_on_commit=False)``, per STYLE §3."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def create_database(settings: Settings, name: str, *, drop_first: bool = False, exists_ok: bool = True) -> None:
    """Create the empty database ``name`` on the server when missing (nothing in it: no extension).

    With ``drop_first`` an existing database of that name is dropped first. Connects to the server's ``postgres``
    database to do so.

    Raises:
        FileExistsError: it exists, and neither ``drop_first`` nor ``exists_ok``. ValueError: a name outside
        ``DATABASE_NAME``.
    """
    admin = create_async_engine(settings.sqlalchemy_url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            # A database name is an identifier, which cannot be a bound parameter: checked against
            # DATABASE_NAME, then quoted by the dialect's identifier quoting.
            quoted = conn.dialect.identifier_preparer.quote_identifier(check_database_name(name))
            exists = await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if exists and drop_first:
                await conn.execute(text(f"DROP DATABASE {quoted} WITH (FORCE)"))
            elif exists and not exists_ok:
                raise FileExistsError(f"database {name} exists")
            if not exists or drop_first:
                await conn.execute(text(f"CREATE DATABASE {quoted}"))
    finally:
        await admin.dispose()


async def ensure_database(settings: Settings, database: str | None = None, *, drop_first: bool = False) -> None:
    """Create the database (``create_database``) and the ``postgis`` extension in it, each when missing.

    With ``drop_first`` an existing database of that name is dropped (used for the test database).
    """
    name = database or settings.database_name
    await create_database(settings, name, drop_first=drop_first)
    eng = create_async_engine(settings.sqlalchemy_url(name), isolation_level="AUTOCOMMIT")
    try:
        async with eng.connect() as conn:
            await conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    finally:
        await eng.dispose()


DATABASE_NAME = re.compile(r"[A-Za-z0-9_]{1,63}")
"""Database names this project creates or drops: ASCII letters, digits and _, at most 63 (PostgreSQL's NAMEDATALEN)."""


def check_database_name(name: str) -> str:
    """``name`` when it matches ``DATABASE_NAME``. Raises ValueError otherwise."""
    if not DATABASE_NAME.fullmatch(name):
        raise ValueError(f"database name {name[:80]!r}: expected 1 to 63 of A-Z a-z 0-9 _")
    return name


def alembic_config(url: str):  # type: ignore[no-untyped-def]
    """An Alembic ``Config`` for this project pointed at ``url``."""
    from alembic.config import Config

    cfg = Config(str(Path(PROJECT_ROOT) / "alembic.ini"))
    cfg.attributes["url"] = url
    cfg.attributes["configure_logger"] = False
    return cfg


async def migrate(settings: Settings, database: str | None = None, revision: str = "head") -> None:
    """``alembic upgrade <revision>`` against the (given) database.

    Alembic's async env runs its own event loop, so it runs in a worker thread.
    """
    from alembic import command

    await asyncio.to_thread(command.upgrade, alembic_config(settings.sqlalchemy_url(database)), revision)


async def downgrade(settings: Settings, database: str | None = None, revision: str = "base") -> None:
    """``alembic downgrade <revision>`` (in a worker thread, as ``migrate``)."""
    from alembic import command

    await asyncio.to_thread(command.downgrade, alembic_config(settings.sqlalchemy_url(database)), revision)


def safe_url(settings: Settings, database: str | None = None) -> str:
    """The database URL with the password hidden, for messages."""
    return make_url(settings.sqlalchemy_url(database)).render_as_string(hide_password=True)
