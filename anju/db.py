"""Database engine, sessionmaker, database creation and migrations."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

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


def create_engine(settings: Settings, database: str | None = None) -> AsyncEngine:
    """One async engine (asyncpg) sized for sibling resolvers fanning out, with connect, pool and statement timeouts."""
    return create_async_engine(
        settings.sqlalchemy_url(database),
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout_seconds,
        # No pre-ping (a round trip per checkout): a connection found dead fails its request, and SQLAlchemy then
        # invalidates the whole pool, so the next requests reconnect.
        # Statement parameters (names, incomes) never reach error messages or logs.
        hide_parameters=True,
        connect_args={"server_settings": server_settings(settings), "timeout": settings.connect_timeout_seconds},
    )


class ReadPool:
    """The connections of the fast path for planned reads (``anju.app.fast_read``), and nothing else.

    At most ``size`` per process, opened on demand and kept. A read is no transaction and at most two round trips: the
    viewer's ``ScopeCheck`` (``RESET ALL``, ``RESET ROLE`` and the scope as session settings, in one simple-protocol
    message), then the planned statement, prepared once per connection by asyncpg. Each connection remembers the scope
    it holds (the check's text, planner settings included); a read for the same viewer and settings takes such a
    connection and sends only the statement, gated by the same check (``ScopeCheck.gated``): one round trip, and a
    disabled or changed user still reads nothing. The connections are read-only by default
    (``default_transaction_read_only``, a connection setting, which ``RESET ALL`` keeps). Any failure or cancellation
    closes the connection it happened on, so a half-applied scope is never reused; the caller answers through the full
    path instead.
    """

    def __init__(self, settings: Settings, size: int) -> None:
        """A pool for ``settings``' database with at most ``size`` connections (nothing is opened yet)."""
        url = make_url(settings.sqlalchemy_url()).set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)
        self._connect_timeout = settings.connect_timeout_seconds
        self._server_settings = {
            **server_settings(settings, "anju-read"),
            "default_transaction_read_only": "on",
            "standard_conforming_strings": "on",  # ScopeCheck's literals
        }
        self._idle: list[tuple[asyncpg.Connection, str | None]] = []  # a connection and the scope it holds
        self._slots = asyncio.Semaphore(size)
        self._gated: dict[str, str] = {}  # statement → its gated form

    async def read(
        self, check: ScopeCheck, settings: Sequence[tuple[str, str]], sql: str, params: Sequence[Any]
    ) -> asyncpg.Record | None:
        """The row of ``sql`` with ``params`` under ``check``'s scope with the planner ``settings`` applied.

        Raises:
            Stale: the check did not hold (nothing was read).
            asyncpg.PostgresError, OSError, asyncio.TimeoutError: the statement or the connection failed.
        """
        scope = check.applying(settings)
        async with self._slots:
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


async def ensure_database(settings: Settings, database: str | None = None, *, drop_first: bool = False) -> None:
    """Create the database (and the ``postgis`` extension in it) when missing.

    With ``drop_first`` an existing database of that name is dropped (used for the test
    database). Connects to the server's ``postgres`` database to do so.
    """
    name = database or settings.database_name
    admin = create_async_engine(settings.sqlalchemy_url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            # A database name is an identifier, which cannot be a bound parameter: checked against
            # DATABASE_NAME, then quoted by the dialect's identifier quoting.
            quoted = conn.dialect.identifier_preparer.quote_identifier(check_database_name(name))
            if drop_first:
                await conn.execute(text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
            exists = await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not exists:
                await conn.execute(text(f"CREATE DATABASE {quoted}"))
    finally:
        await admin.dispose()
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
