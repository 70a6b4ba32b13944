"""Test fixtures: a real PostGIS (the project's local cluster, or DATABASE_URL's server), a fresh
test database migrated with Alembic and loaded with the demo seed, whose counts are asserted."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from anju import db, localdb
from anju.auth import issue_token
from anju.seed import load_demo
from anju.settings import Settings
from resolvers.access import Role, Viewer, add_user
from schema import Context, build_schema, planner

# Every planned read is also resolved through the resolvers and compared (schema/planner.py).
os.environ.setdefault("ANJU_PLANNER__VERIFY", "true")

DATA = Path(__file__).resolve().parent.parent / "data"
FACTS = json.loads((DATA / "seed-article-facts.json").read_text(encoding="utf-8"))
ADMIN = Viewer(None, "test-admin", Role.ADMIN)
"""The viewer of tests that are not about access (tests/test_access.py covers every role)."""


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Settings pointing at the test database (``anju_test`` on the local cluster, or ``<db>_test``)."""
    s = Settings(env="test")
    if s.uses_local_db:
        try:
            localdb.start(s.local_db)
        except localdb.LocalDbError as exc:  # once, not once per test
            pytest.exit(f"the local PostGIS did not start: {exc}", returncode=1)
        name = s.local_db.test_database
        return s.model_copy(update={"local_db": s.local_db.model_copy(update={"database": name})})
    url = make_url(s.sqlalchemy_url())
    return s.model_copy(update={"database_url": url.set(database=f"{url.database}_test").render_as_string(False)})


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """A fresh test database: dropped, created with postgis, migrated (alembic), seeded; counts asserted."""
    await db.ensure_database(settings, drop_first=True)
    await db.migrate(settings)
    eng = db.create_engine(settings)
    summary = await load_demo(eng)
    site = FACTS["relocation_sites"][0]
    tea = FACTS["facilities"][1]
    assert summary.loaded
    assert summary.households == site["households"] + tea["tea_farming_households"]  # 1,447 + 126
    async with eng.connect() as c:
        counts = (
            await c.execute(
                text(
                    "SELECT (SELECT count(*) FROM household h JOIN relocation_site s ON s.id = h.site_id "
                    "        WHERE s.name = '彝欣社区') AS hh,"
                    " (SELECT count(*) FROM member m JOIN household h ON h.id = m.household_id "
                    "  JOIN relocation_site s ON s.id = h.site_id WHERE s.name = '彝欣社区') AS people,"
                    " (SELECT count(*) FROM admin_area WHERE level = 'county') AS counties"
                )
            )
        ).one()
    assert tuple(counts) == (1447, 7518, 17)
    yield eng
    await eng.dispose()


@pytest.fixture(scope="session")
def sm(engine: AsyncEngine) -> async_sessionmaker:  # type: ignore[type-arg]
    return async_sessionmaker(engine, expire_on_commit=False)


@pytest.fixture(scope="session")
async def users(sm: async_sessionmaker, settings: Settings) -> dict[str, str]:  # type: ignore[type-arg]
    """One user per role in the test database (partner: the demo partner, paired with Xide 513432),
    name → a bearer token for it."""
    async with sm() as s:
        pid = await s.scalar(text("SELECT id FROM cooperation_partner ORDER BY id LIMIT 1"))
    specs = {
        "t-admin": (Role.ADMIN, (), None),
        "t-planner": (Role.PLANNER, (), None),
        "t-officer": (Role.COUNTY_OFFICER, ("513432",), None),
        "t-partner": (Role.PARTNER, (), pid),
        # an officer of Zhaojue county (513431): none of the demo households
        "t-officer-zhaojue": (Role.COUNTY_OFFICER, ("513431",), None),
    }
    for name, (role, areas, partner_id) in specs.items():
        await add_user(sm, name, role, areas, partner_id)
    return {name: issue_token(settings, name) for name in specs}


@pytest.fixture(scope="session")
def admin_headers(users: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {users['t-admin']}"}


def admin_runner(schema: Any, sm: Any, settings: Any, *, data_only: bool = False):  # type: ignore[no-untyped-def]
    """``await run(query, **variables)`` as ADMIN with a fresh Context (fresh loaders) per call.

    Answers the ExecutionResult; with ``data_only``, asserts there are no errors and answers its data.
    """

    async def run(query: str, **variables: Any) -> Any:
        r = await schema.execute(
            query, variable_values=variables or None, context_value=Context(sessionmaker=sm, settings=settings, viewer=ADMIN)
        )
        if not data_only:
            return r
        assert r.errors is None, r.errors
        return r.data

    return run


@pytest.fixture(scope="session")
def schema(settings: Settings) -> Any:
    return build_schema(settings)


@pytest.fixture
def gql(schema: Any, sm: async_sessionmaker, settings: Settings):  # type: ignore[no-untyped-def, type-arg]
    """``await gql(query, **variables)`` → ExecutionResult, with a fresh Context (fresh loaders)."""
    return admin_runner(schema, sm, settings)


class StatementCounter:
    """Counts SQL statements sent through an engine (``before_cursor_execute``). The viewer-scope
    ``set_config`` that opens each transaction (resolvers.access) is counted apart, in ``scope``:
    it is one per transaction, never per row."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine.sync_engine
        self.statements: list[str] = []
        self.scope: list[str] = []

    def _on(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        (self.scope if statement.startswith("SELECT set_config(") else self.statements).append(statement)

    def __enter__(self) -> StatementCounter:
        event.listen(self.engine, "before_cursor_execute", self._on)
        return self

    def __exit__(self, *exc: Any) -> None:
        event.remove(self.engine, "before_cursor_execute", self._on)


@pytest.fixture
def count_statements(engine: AsyncEngine):  # type: ignore[no-untyped-def]
    return lambda: StatementCounter(engine)


@pytest.fixture(autouse=True)
def planned_reads_match_resolvers() -> Any:
    """After every test: no planned read answered differently from the resolvers (schema.planner verification)."""
    before = len(planner.MISMATCHES)
    yield
    assert planner.MISMATCHES[before:] == [], "planned SQL differs from the resolvers"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """How many root fields the planner answered (and the resolvers, for fields it does not plan)."""
    terminalreporter.write_line(
        f"read planner: {planner.STATS['planned']} root fields planned into SQL, "
        f"{planner.STATS['fallback']} through the resolvers"
    )
