"""Database engine, sessionmaker, database creation and migrations."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from anju.settings import PROJECT_ROOT, Settings


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
        connect_args={
            "server_settings": {
                "statement_timeout": str(settings.statement_timeout_ms),
                # JIT compiles for 100-300 ms whenever a plan's cost estimate is large (a tile of 5,000
                # points, a scoped scan priced with enable_seqscan off): never worth it for these queries.
                "jit": "off",
                "application_name": "anju",
            },
            # A stopped server refuses at once; an unreachable one is given up on after connect_timeout_seconds. (No
            # client-side command timeout: bulk work — seeding, imports — lifts the statement timeout for itself.)
            "timeout": settings.connect_timeout_seconds,
        },
    )


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
