"""Starlette app factory: ``POST/GET /graphql`` (GraphiQL in a browser) and ``GET /healthz``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from cross_web import HTTPException
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.asgi import GraphQL

from anju.db import create_engine, create_sessionmaker
from anju.settings import Settings
from resolvers import spatial
from resolvers.errors import InvalidInput
from schema import Context, build_schema

log = logging.getLogger("anju.app")


def _error_response(message: str, status: int, code: str = "BAD_USER_INPUT") -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status_code=status)


class AnjuGraphQL(GraphQL):  # type: ignore[type-arg]
    """Strawberry's ASGI view with Anju's per-request ``Context``; transport errors (bad JSON, no
    query, too large a body) answer a JSON GraphQL error with ``extensions.code`` instead of text."""

    def __init__(self, *args: Any, max_body_bytes: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_body_bytes = max_body_bytes

    async def get_context(self, request: Any, response: Any = None) -> Context:
        state = request.state
        return Context(sessionmaker=state.sessionmaker, settings=state.settings)

    def parse_json(self, data: str | bytes) -> Any:
        try:
            value = json.loads(data)
        except (ValueError, RecursionError) as exc:  # bad JSON/UTF-8, ints beyond Python's limit, nesting
            raise HTTPException(400, "request body is not valid UTF-8 JSON") from exc
        if not isinstance(value, dict | list):
            raise HTTPException(400, "request body must be a JSON object {query, variables, operationName}")
        return value

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        length = request.headers.get("content-length", "0")
        if not length.isdigit() or int(length) > self.max_body_bytes:
            await _error_response(f"request body larger than {self.max_body_bytes} bytes", 413,
                                  "QUERY_TOO_COMPLEX")(scope, receive, send)
            return
        try:
            response = await self.run(request)
        except HTTPException as exc:
            response = _error_response(exc.reason, exc.status_code)
        await response(scope, receive, send)


async def healthz(request: Request) -> JSONResponse:
    """200 with the database's state; 503 when the database does not answer within 3 s."""
    try:
        async with request.state.engine.connect() as conn:
            postgis = await asyncio.wait_for(conn.scalar(text("SELECT postgis_lib_version()")), timeout=3)
        return JSONResponse({"status": "ok", "database": "ok", "postgis": postgis})
    except Exception as exc:  # any failure to reach the database is "unavailable"
        log.warning("health check: database unreachable (%s)", type(exc).__name__)
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)


async def tiles(request: Request) -> Response:
    """``GET /tiles/{layer}/{z}/{x}/{y}.mvt``: a Mapbox Vector Tile (ST_AsMVT); 204 when empty,
    400 with a JSON error for an unknown layer or out-of-range z/x/y."""
    p = request.path_params
    zxy = [p["z"], p["x"], p["y"]]
    if not all(v.isascii() and v.isdigit() and len(v) <= 8 for v in zxy):
        return _error_response("z/x/y: expected non-negative integers (z 0..22, x and y below 2^z)", 400)
    try:
        data = await spatial.tile(request.state.sessionmaker, p["layer"], *map(int, zxy),
                                  max_features=request.state.settings.tiles.max_features_per_tile)
    except InvalidInput as exc:
        return _error_response(exc.message, 400)
    headers = {"Cache-Control": f"public, max-age={request.state.settings.tiles.cache_seconds}"}
    if not data:
        return Response(status_code=204, headers=headers)
    return Response(data, media_type="application/vnd.mapbox-vector-tile", headers=headers)


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

    schema = build_schema(max_depth=settings.max_query_depth, max_aliases=settings.max_aliases,
                          max_tokens=settings.max_tokens)
    graphql = AnjuGraphQL(schema, graphql_ide="graphiql", allow_queries_via_get=False,
                          max_body_bytes=settings.max_body_bytes)
    return Starlette(
        routes=[Route("/graphql", graphql, methods=["GET", "POST"]), Route("/healthz", healthz),
                Route("/tiles/{layer}/{z}/{x}/{y}.mvt", tiles)],
        lifespan=lifespan,
    )
