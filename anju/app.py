"""Starlette app factory: ``POST/GET /graphql`` (GraphiQL in a browser) and ``GET /healthz``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from strawberry.asgi import GraphQL

from anju.db import create_engine, create_sessionmaker
from anju.settings import Settings
from schema import Context, build_schema

log = logging.getLogger("anju.app")


class AnjuGraphQL(GraphQL):  # type: ignore[type-arg]
    """Strawberry's ASGI view with Anju's per-request ``Context``."""

    async def get_context(self, request: Any, response: Any = None) -> Context:
        state = request.state
        return Context(sessionmaker=state.sessionmaker, settings=state.settings)


async def healthz(request: Request) -> JSONResponse:
    """200 with the database's state; 503 when the database does not answer within 3 s."""
    try:
        async with request.state.engine.connect() as conn:
            postgis = await asyncio.wait_for(conn.scalar(text("SELECT postgis_lib_version()")), timeout=3)
        return JSONResponse({"status": "ok", "database": "ok", "postgis": postgis})
    except Exception as exc:  # any failure to reach the database is "unavailable"
        log.warning("health check: database unreachable (%s)", type(exc).__name__)
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)


def create_app(settings: Settings | None = None) -> Starlette:
    """The ASGI app. Settings are built once here and passed down via lifespan state."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        engine = create_engine(settings)
        try:
            yield {"engine": engine, "sessionmaker": create_sessionmaker(engine), "settings": settings}
        finally:
            await engine.dispose()

    graphql = AnjuGraphQL(build_schema(max_depth=settings.max_query_depth), graphql_ide="graphiql",
                          allow_queries_via_get=False)
    return Starlette(
        routes=[Route("/graphql", graphql, methods=["GET", "POST"]), Route("/healthz", healthz)],
        lifespan=lifespan,
    )
