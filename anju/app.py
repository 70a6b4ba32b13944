"""Starlette app factory: ``POST/GET /graphql`` (GraphiQL in a browser), ``GET /tiles/…`` and ``GET /healthz``.

Every GraphQL request and every tile needs ``Authorization: Bearer <token>`` (``anju token NAME``);
without a valid one the answer is HTTP 401 with ``extensions.code = UNAUTHENTICATED``. The
GraphiQL page itself and ``/healthz`` hold no data and stay open.
"""

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
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from anju import imports
from anju.auth import AuthError, Keys, keys, verify_token
from anju.db import create_engine, create_sessionmaker
from anju.settings import Settings
from resolvers import spatial
from resolvers.access import RECORDS, Role, Viewer, scoped_sessionmaker, viewer_by_name
from resolvers.errors import InvalidInput
from schema import Context, build_schema

log = logging.getLogger("anju.app")


def _error_response(message: str, status: int, code: str = "BAD_USER_INPUT") -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="anju"'} if status == 401 else None
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status_code=status, headers=headers)


NOBODY = Viewer(None, "anonymous", Role.PARTNER)
"""A viewer without rows: a partner of no county."""


class Unavailable(Exception):
    """The database could not be asked who the caller is → HTTP 503, ``INTERNAL``."""


UNAVAILABLE = "the database is unavailable; try again shortly"


async def authenticate(request: Request) -> Viewer:
    """The viewer of a request's bearer token.

    Raises:
        AuthError: no/invalid/expired token, or its user is unknown or disabled.
    """
    state = request.state
    name = verify_token(state.keys, state.settings, request.headers.get("authorization"))
    try:
        viewer = await viewer_by_name(state.sessionmaker, name)
    except Exception as exc:  # the database is unreachable: not the caller's fault
        log.warning("authentication: user lookup failed (%s)", type(exc).__name__)
        raise Unavailable from None
    if viewer is None:
        raise AuthError("token's user is unknown or disabled")
    return viewer


def _wants_ide(request: Request) -> bool:
    """A browser asking for the GraphiQL page (GET, HTML, no query): no data, no token needed."""
    return request.method == "GET" and "query" not in request.query_params and "text/html" in request.headers.get("accept", "")


class AnjuGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI view with Anju's per-request ``Context``.

    Transport errors (bad JSON, no query, too large a body) answer a JSON GraphQL error with ``extensions.code`` instead of text.
    """

    def __init__(self, *args: Any, max_body_bytes: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_body_bytes = max_body_bytes

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket | None = None) -> Context:
        """A fresh ``Context`` per request: the lifespan's sessionmaker and settings, the viewer ``__call__`` authenticated."""
        state = request.state
        # Only the GraphiQL page is served without a viewer; it executes nothing. Its stand-in sees no row.
        viewer = getattr(state, "viewer", None) or NOBODY
        return Context(
            sessionmaker=state.sessionmaker, settings=state.settings, viewer=viewer, id_number_key=state.keys.id_number_key
        )

    def parse_json(self, data: str | bytes) -> Any:
        """The request body as JSON; HTTP 400 when it is not UTF-8 JSON or not an object/list."""
        try:
            value = json.loads(data)
        except (ValueError, RecursionError) as exc:  # bad JSON/UTF-8, ints beyond Python's limit, nesting
            raise HTTPException(400, "request body is not valid UTF-8 JSON") from exc
        if not isinstance(value, dict | list):
            raise HTTPException(400, "request body must be a JSON object {query, variables, operationName}")
        return value

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """ASGI entry: body limit (HTTP 413), then the bearer token (HTTP 401/503), then strawberry."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        length = request.headers.get("content-length", "0")
        if not length.isdigit() or int(length) > self.max_body_bytes:
            await _error_response(f"request body larger than {self.max_body_bytes} bytes", 413, "QUERY_TOO_COMPLEX")(
                scope, receive, send
            )
            return
        if not _wants_ide(request):
            try:
                request.state.viewer = await authenticate(request)
            except AuthError as exc:
                await _error_response(str(exc), 401, "UNAUTHENTICATED")(scope, receive, send)
                return
            except Unavailable:
                await _error_response(UNAVAILABLE, 503, "INTERNAL")(scope, receive, send)
                return
        body = await _read_body(receive, self.max_body_bytes)
        if body is None:  # larger than allowed, whatever Content-Length said (chunked uploads)
            await _error_response(f"request body larger than {self.max_body_bytes} bytes", 413, "QUERY_TOO_COMPLEX")(
                scope, receive, send
            )
            return
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        request = Request(scope=scope, receive=replay)
        try:
            response = await self.run(request)
        except HTTPException as exc:
            response = _error_response(exc.reason, exc.status_code)
        await response(scope, replay, send)


async def _read_body(receive: Any, limit: int) -> bytes | None:
    """The whole request body, or None as soon as it grows past ``limit`` bytes (the rest is not read)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


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
    """``GET /tiles/{layer}/{z}/{x}/{y}.mvt``.

    A Mapbox Vector Tile (ST_AsMVT); 204 when empty, 400 with a JSON error for an unknown layer or out-of-range z/x/y.
    """
    try:
        viewer = await authenticate(request)
    except AuthError as exc:
        return _error_response(str(exc), 401, "UNAUTHENTICATED")
    except Unavailable:
        return _error_response(UNAVAILABLE, 503, "INTERNAL")
    p = request.path_params
    zxy = [p["z"], p["x"], p["y"]]
    if not all(v.isascii() and v.isdigit() and len(v) <= 8 for v in zxy):
        return _error_response("z/x/y: expected non-negative integers (z 0..22, x and y below 2^z)", 400)
    if p["layer"] == "households" and not viewer.reads_households:
        return _error_response("layer: households are not available to partner viewers", 403, "FORBIDDEN")
    try:
        data = await spatial.tile(
            scoped_sessionmaker(request.state.sessionmaker, viewer, RECORDS),
            p["layer"],
            *map(int, zxy),
            max_features=request.state.settings.tiles.max_features_per_tile,
        )
    except InvalidInput as exc:
        return _error_response(exc.message, 400)
    # Tiles differ by viewer: private caches only, and never shared across Authorization headers.
    headers = {"Cache-Control": f"private, max-age={request.state.settings.tiles.cache_seconds}", "Vary": "Authorization"}
    if not data:
        return Response(status_code=204, headers=headers)
    return Response(data, media_type="application/vnd.mapbox-vector-tile", headers=headers)


def create_app(settings: Settings | None = None) -> Starlette:
    """The ASGI app. Settings are built once here and passed down via lifespan state."""
    settings = settings or Settings()
    key_material: Keys = keys(settings)  # fails at start-up, not per request, when a secret is missing

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        engine = create_engine(settings)
        try:
            yield {"engine": engine, "sessionmaker": create_sessionmaker(engine), "settings": settings, "keys": key_material}
        finally:
            await engine.dispose()

    schema = build_schema(settings)
    graphql = AnjuGraphQL(schema, graphql_ide="graphiql", allow_queries_via_get=False, max_body_bytes=settings.max_body_bytes)
    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/healthz", healthz),
            Route("/tiles/{layer}/{z}/{x}/{y}.mvt", tiles),
            Route("/imports/templates/{kind}.{fmt}", imports.template),
            Route("/imports/{kind}", imports.upload, methods=["POST"]),
            Route("/imports/{id}/report.csv", imports.report),
        ],
        lifespan=lifespan,
    )
