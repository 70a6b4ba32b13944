"""Starlette app factory: ``/graphql`` (and its WebSocket), ``/tiles``, ``/ogc``, ``/imports``, ``/exports``, ``/auth``, ``/map``.

Also ``/metrics`` and ``/healthz``; GraphiQL in a browser at ``GET /graphql``.

Every GraphQL request and every tile needs ``Authorization: Bearer <token>`` (``anju token NAME`` or ``POST /auth/login``);
without a valid one the answer is HTTP 401 with ``extensions.code = UNAUTHENTICATED``. The GraphiQL and map pages, their
assets, the login routes and ``/healthz`` hold no data and stay open. CORS (settings ``cors``) applies to every route.

GraphQL over HTTP (the GraphQL-over-HTTP specification, draft of 2024): ``POST`` with ``application/json`` bodies, ``GET``
with ``query``/``variables``/``operationName``/``extensions`` parameters for queries (a mutation over ``GET`` answers 405);
answers in ``application/graphql-response+json`` when the ``Accept`` header asks for it (request errors — unparsable or
invalid documents, variables that do not coerce — then answer 400 without ``data``), else ``application/json`` (200).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

from cross_web import HTTPException
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from anju import exports, imports, login, maps, observe, ogc, web
from anju.auth import AuthError, Keys, VerifiedTokens, keys
from anju.db import ReadPool, create_engine, create_sessionmaker
from anju.live import Hub, LiveConnection
from anju.responses import RateLimits, error_response, too_many_requests
from anju.settings import Settings
from resolvers.access import Role, Stale, Viewer, scope_check, viewer_by_name
from schema import Context, build_schema
from schema.planner import STATS, RawJSON, encode_response, plan_key, will_fail_again

log = logging.getLogger("anju.app")


def _error_response(message: str, status: int, code: str = "BAD_USER_INPUT") -> JSONResponse:
    return error_response(message, status, code)


async def routing_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals in the JSON error shape of every other answer (not plain text).

    405: a method the route does not take (``Allow`` kept, the message names it); 404: no such route (``NOT_FOUND``).
    """
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if "Allow" in headers:  # Starlette joins a set: the order changed from one process to the next (hash seeds)
        headers["Allow"] = ", ".join(sorted(m.strip() for m in headers["Allow"].split(",")))
    if exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}; use {headers.get('Allow', 'another')}"
    elif exc.status_code == 404:
        message = f"no route {request.url.path[:200]}; see docs/api.md"
    else:
        message = exc.detail
    answer = _error_response(message, exc.status_code, "NOT_FOUND" if exc.status_code == 404 else "BAD_USER_INPUT")
    answer.headers.update(headers)
    return answer


NOBODY = Viewer(None, "anonymous", Role.PARTNER)
"""A viewer without rows: a partner of no county."""


class Unavailable(Exception):
    """The database could not be asked who the caller is → HTTP 503, ``INTERNAL``."""


UNAVAILABLE = "the database is unavailable; try again shortly"


async def authenticate(request: Request) -> Viewer:
    """The viewer of a request's bearer token (its user read from the database now: a disabled user is refused at once).

    Raises:
        AuthError: no/invalid/expired token, or its user is unknown or disabled.
    """
    state = request.state
    name = state.tokens.name(state.keys, state.settings, request.headers.get("authorization"))
    try:
        viewer = await viewer_by_name(state.sessionmaker, name)
    except Exception as exc:  # the database is unreachable: not the caller's fault
        log.warning("authentication: user lookup failed (%s)", type(exc).__name__)
        raise Unavailable from None
    if viewer is None:
        raise AuthError("token's user is unknown or disabled")
    state.viewers[name] = viewer
    return viewer


JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
"""The GraphQL-over-HTTP response media type: a request error then answers 4xx (no ``data``), a field error 200."""


def negotiate(accept: str | None) -> str | None:
    """The answer's media type for an ``Accept`` header: ``GRAPHQL_RESPONSE`` or ``JSON``; None when it accepts neither.

    No header (or an empty one) means ``application/json``, as does ``*/*``; among acceptable types the higher ``q``
    wins, then ``application/graphql-response+json`` over ``application/json`` over wildcards.
    """
    if accept is None or not accept.strip():
        return JSON
    best: tuple[float, int, str] | None = None
    for part in accept.split(","):
        media, *params = (x.strip() for x in part.split(";"))
        rank = {GRAPHQL_RESPONSE: 3, JSON: 2, "application/*": 1, "*/*": 0}.get(media.lower())
        if rank is None:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0 and (best is None or (q, rank) > best[:2]):
            best = (q, rank, GRAPHQL_RESPONSE if rank == 3 else JSON)
    return best[2] if best else None


def _wants_ide(request: Request) -> bool:
    """A browser asking for the GraphiQL page (GET, HTML, no query): no data, no token needed."""
    return request.method == "GET" and "query" not in request.query_params and "text/html" in request.headers.get("accept", "")


class AnjuGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI view with Anju's per-request ``Context``.

    Transport errors (bad JSON, no query, too large a body) answer a JSON GraphQL error with ``extensions.code`` instead of text.
    """

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket | None = None) -> Context:
        """A fresh ``Context`` per request: the lifespan's sessionmaker and settings, ``ViewerMiddleware``'s viewer."""
        state = request.state
        # Only the GraphiQL page is served without a viewer; it executes nothing. Its stand-in sees no row.
        viewer = getattr(state, "viewer", None) or NOBODY
        live = getattr(state, "live_connection", None)  # a WebSocket (set in __call__); its viewer comes at connection_init
        if live is not None:
            live.websocket = response if isinstance(response, WebSocket) else request
        context = Context(
            sessionmaker=state.sessionmaker,
            settings=state.settings,
            viewer=viewer,
            id_number_key=state.keys.id_number_key,
            raw_json=True,
            live=live,
        )
        state.graphql_context = context  # process_result reads the operation the schema noted on it
        return context

    def create_response(self, response_data: Any, sub_response: Any) -> Any:
        """Strawberry's response, with HTTP 503 when the database was unavailable and nothing could be answered."""
        response = super().create_response(response_data, sub_response)
        if any((e.get("extensions") or {}).get("unavailable") for e in response_data.get("errors") or ()) and (
            response_data.get("data") is None
        ):
            response.status_code = 503
        return response

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """``connection_init``: authenticate the connection's token (payload ``token`` or ``Authorization``).

        As HTTP requests are; refused (closed with 4403 Forbidden, the protocol's code) without a valid token of an enabled
        user.
        """
        live: LiveConnection | None = context.live
        if live is None:
            raise ConnectionRejectionError()
        try:
            viewer = await live.authenticate(context.connection_params)
        except AuthError as exc:
            log.info("live connection refused: %s", exc)
            raise ConnectionRejectionError({"message": str(exc)}) from None
        context.become(viewer)
        return UNSET

    def encode_json(self, data: Any) -> str:
        """The response as JSON text; root fields PostgreSQL built (``schema.planner``) are copied in, not re-encoded."""
        return encode_response(data)

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        """GraphiQL from the project's own npm install (``anju.web``), not strawberry's CDN page."""
        return HTMLResponse(web.graphiql_page())

    async def process_result(self, request: Request, result: ExecutionResult) -> Any:
        """The response map; a request error (nothing executed: every error without a path) has no ``data`` entry.

        The GraphQL specification (§7.1.2): "If an error was raised before execution begins, the data entry should not be
        present in the result". The request is marked so ``__call__`` answers 400 under ``application/graphql-response+json``.
        """
        out = await super().process_result(request, result)
        if result.data is None and result.errors and all(e.path is None for e in result.errors):
            request.state.request_error = True
            out.pop("data", None)
        context = getattr(request.state, "graphql_context", None)
        if context is not None and context.operation is not None:
            observe.note_operation(*context.operation)
        errors: Any = out.get("errors")
        if errors:  # each error with ``extensions.requestId``; the codes noted for the metrics
            observe.with_request_id(errors)
            observe.note_errors([str((e.get("extensions") or {}).get("code", "INTERNAL")) for e in errors])
        return out

    async def execute_single(self, request: Any, request_adapter: Any, *args: Any, **kwargs: Any) -> ExecutionResult:
        """Strawberry's execution; a mutation (or subscription) sent with ``GET`` answers 405 (``Allow: POST``)."""
        try:
            return await super().execute_single(request, request_adapter, *args, **kwargs)
        except HTTPException as exc:
            if request_adapter.method == "GET" and exc.status_code == 400 and "not allowed" in exc.reason:
                raise HTTPException(405, f"{exc.reason}: send it with POST") from None
            raise

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
        """ASGI entry: strawberry, with transport errors as JSON (the viewer and the body limit are ``ViewerMiddleware``'s).

        A WebSocket (subscriptions) gets a ``LiveConnection``; beyond ``live.max_connections`` in this process, or with
        live updates turned off, it is refused before the handshake completes (HTTP 403).
        """
        if scope["type"] == "websocket":
            hub: Hub | None = scope["state"].get("live_hub")
            if hub is None or hub.connections >= hub.live.max_connections:
                log.warning("live connection refused: %s", "live updates are off" if hub is None else "too many connections")
                await WebSocket(scope, receive, send).close(code=1013)
                return
            connection = LiveConnection(hub)
            scope["state"]["live_connection"] = connection
            hub.connections += 1
            try:
                await super().__call__(scope, receive, send)
            finally:
                hub.connections -= 1
                connection.end()
            return
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        media = negotiate(request.headers.get("accept"))
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        answer: Response
        if media is None and not _wants_ide(request):
            answer = _error_response(f"Accept: answers are {GRAPHQL_RESPONSE} or {JSON}", 406, "BAD_USER_INPUT")
        elif request.method == "POST" and content_type != JSON:
            answer = _error_response(f"Content-Type: send the request as {JSON}", 415, "BAD_USER_INPUT")
        else:
            request.state.request_error = False
            try:
                answer = await self.run(request)
            except HTTPException as exc:
                answer = _error_response(exc.reason, exc.status_code)
                if exc.status_code == 405:
                    answer.headers["Allow"] = "POST"
        if media == GRAPHQL_RESPONSE and answer.headers.get("content-type", "").startswith(JSON):
            answer.headers["content-type"] = f"{GRAPHQL_RESPONSE}; charset=utf-8"
            if getattr(request.state, "request_error", False) and answer.status_code == 200:
                answer.status_code = 400
        await answer(scope, receive, send)


STREAMED_PREFIXES = ("/imports/",)
"""Routes whose body is a file the route streams within its own limit (not read into memory here, not held to
``max_body_bytes``); they are authenticated here like every other route."""
PUBLIC_PATHS = frozenset({"/healthz", "/metrics", "/ogc", "/ogc/", "/ogc/conformance", "/ogc/api"})
"""Routes that hold no data and answer without a token: health, and the OGC landing page, conformance and API
definition (clients such as QGIS read them before they know they need to authenticate); ``/metrics`` checks its own
token or network (``settings.metrics``)."""


PUBLIC_PREFIXES = ("/imports/templates/", "/auth/", *web.PUBLIC_PREFIXES)
"""Routes under these prefixes hold no data either: the import templates (headers and one labelled example row), the
pages and their assets (``anju.web``); nor do the login routes (``anju.login``), which take a password or refresh token."""


def _public(request: Request) -> bool:
    path = request.url.path
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES) or (path == "/graphql" and _wants_ide(request))


class ViewerMiddleware:
    """Once per HTTP request, for every route: the body limit (413), the user's rate limit (429), then the viewer.

    ``authenticate`` is the one lookup (401 ``UNAUTHENTICATED`` without a valid token, 503 when the database cannot
    be asked); routes in ``PUBLIC_PATHS`` and the GraphiQL page run without a viewer. The body is read here, up to
    ``max_body_bytes`` whatever ``Content-Length`` says, and replayed to the route. A ``POST /graphql`` that
    ``fast_read`` can answer (a repeated, fully planned read) is answered before the lookup: it re-reads the user in
    its own transaction.
    """

    def __init__(self, app: Any, max_body_bytes: int, schema: Any = None, body_timeout_seconds: float = 20.0) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.schema = schema
        self.body_timeout_seconds = body_timeout_seconds

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """ASGI entry."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        ogc = request.url.path.startswith("/ogc")
        streamed = request.url.path.startswith(STREAMED_PREFIXES)
        too_large = f"request body larger than {self.max_body_bytes} bytes"
        length = request.headers.get("content-length", "0")
        if not streamed and (not length.isdigit() or int(length) > self.max_body_bytes):
            await error_response(too_large, 413, "QUERY_TOO_COMPLEX", ogc=ogc)(scope, receive, send)
            return
        public = _public(request)
        if not public:
            try:  # the token alone (no database): a bad one is refused before the body is read
                name = request.state.tokens.name(request.state.keys, request.state.settings, request.headers.get("authorization"))
            except AuthError as exc:
                await error_response(str(exc), 401, "UNAUTHENTICATED", ogc=ogc)(scope, receive, send)
                return
            observe.note_viewer(name)
            wait = request.state.rate_limits.wait(name)
            if wait > 0:
                limits = request.state.settings.rate_limit
                limited = too_many_requests(
                    f"too many requests from {name}: at most {limits.per_minute} a minute (burst {limits.burst})", wait, ogc=ogc
                )
                await limited(scope, receive, send)
                return
        if streamed:  # the route reads the body itself, within its own limit (an import file: imports.max_file_bytes)
            refused = None if public else await _viewer_or_refusal(request, ogc)
            await (refused or self.app)(scope, receive, send)
            return
        try:
            body = await asyncio.wait_for(_read_body(receive, self.max_body_bytes), self.body_timeout_seconds)
        except TimeoutError:  # a stalled or trickling client: answer and close the connection
            slow = error_response(
                f"request body not received within {self.body_timeout_seconds:g} s", 408, "BAD_USER_INPUT", ogc=ogc
            )
            slow.headers["Connection"] = "close"
            await slow(scope, receive, send)
            return
        if body is None:  # larger than allowed, whatever Content-Length said (chunked uploads)
            await error_response(too_large, 413, "QUERY_TOO_COMPLEX", ogc=ogc)(scope, receive, send)
            return
        if not public:
            if self.schema is not None and request.url.path == "/graphql":
                media = negotiate(request.headers.get("accept"))
                answer = await fast_read(request, name, body, self.schema) if media else None
                if answer is not None:
                    await Response(answer, media_type=media)(scope, receive, send)
                    return
            refused = await _viewer_or_refusal(request, ogc)
            if refused is not None:
                await refused(scope, receive, send)
                return
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _viewer_or_refusal(request: Request, ogc: bool) -> Response | None:
    """Set ``request.state.viewer`` (``authenticate``); or the answer refusing the request: 401, or 503 without a database."""
    try:
        request.state.viewer = await authenticate(request)
    except AuthError as exc:
        return error_response(str(exc), 401, "UNAUTHENTICATED", ogc=ogc)
    except Unavailable:
        return error_response(UNAVAILABLE, 503, "INTERNAL", ogc=ogc)
    return None


async def fast_read(request: Request, name: str, body: bytes, schema: Any) -> bytes | None:
    """A read whose every root field has a plan (``schema.planner``), answered in one or two round trips without strawberry.

    The request must be exactly one that was validated, cost-checked and planned before (the plan cache is keyed by the
    document, operation name, variables as sent, today and the viewer's kind); its viewer comes from the last full
    authentication of the same user and is re-read by the message that applies its scope (``resolvers.access.ScopeCheck``)
    on a connection of the ``ReadPool``, just before the statement runs there: a disabled or changed user falls through to
    the full path. Answers the response body, or None when the full path must answer (anything not planned, any doubt,
    any failure).
    """
    state = request.state
    viewer = state.viewers.get(name)
    if viewer is None or viewer.role is Role.PARTNER or not state.settings.planner.enabled:
        return None
    if request.method == "GET":  # a query in the URL (GraphQL over HTTP); the full path refuses mutations
        params = request.query_params
        try:
            variables_text = params.get("variables")
            payload: Any = {
                "query": params.get("query"),
                "operationName": params.get("operationName"),
                "variables": json.loads(variables_text) if variables_text else None,
            }
        except (ValueError, RecursionError):
            return None
    elif request.method == "POST" and request.headers.get("content-type", "").startswith("application/json"):
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            return None
    else:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return None
    op, variables = payload.get("operationName"), payload.get("variables")
    if not (op is None or isinstance(op, str)) or not (variables is None or isinstance(variables, dict)):
        return None
    today = dt.datetime.now(ZoneInfo(state.settings.timezone)).date()
    key = plan_key(payload["query"], op, variables, today, viewer)
    cached = schema.plan_cache.get(key) if key is not None else None
    if cached is None or not cached.complete or cached.plan is None:
        return None
    check = state.scope_checks.get(viewer)
    if check is None:
        if len(state.scope_checks) > 1024:  # viewers whose areas changed leave entries behind
            state.scope_checks.clear()
        check = state.scope_checks[viewer] = scope_check(viewer)
    try:
        texts = await state.read_pool.read(check, cached.plan.settings, cached.plan.sql, cached.plan.params)
    except Stale:
        state.viewers.pop(name, None)
        return None
    except Exception as exc:  # the full path answers, with its own error handling (503 when the database is down)
        log.warning("fast read failed (%s); answering through the full path", type(exc).__name__)
        if will_fail_again(exc):  # e.g. a statement timeout: the full path goes straight to the resolvers
            cached.drop()
        return None
    STATS["planned"] += len(cached.keys)
    STATS["fast"] += 1
    observe.note_operation("query", op, fast_read=True)
    data = {k: RawJSON(t if t is not None else "null") for k, t in zip(cached.keys, texts, strict=True)}
    return encode_response({"data": data}).encode()


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
        observe.DB_UP.set(1)
        return JSONResponse({"status": "ok", "database": "ok", "postgis": postgis})
    except Exception as exc:  # any failure to reach the database is "unavailable"
        log.warning("health check: database unreachable (%s)", type(exc).__name__)
        observe.DB_UP.set(0)
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)


def create_app(settings: Settings | None = None) -> Starlette:
    """The ASGI app. Settings are built once here and passed down via lifespan state."""
    settings = settings or Settings()
    key_material: Keys = keys(settings)  # fails at start-up, not per request, when a secret is missing

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        engine = create_engine(settings)
        read_pool = ReadPool(settings, settings.planner.read_connections)
        sessionmaker = create_sessionmaker(engine)
        hub = Hub(settings, engine, sessionmaker) if settings.live.enabled else None
        if hub is not None:
            hub.start()
        try:
            async with observe.pool_sampler(engine, read_pool):
                yield {
                    "engine": engine,
                    "live_hub": hub,
                    "sessionmaker": sessionmaker,
                    "settings": settings,
                    "keys": key_material,
                    "tokens": VerifiedTokens(),
                    "rate_limits": RateLimits(settings.rate_limit.per_minute, settings.rate_limit.burst),
                    "login_limits": login.FailedLoginLimits(
                        settings.auth.failed_logins_per_minute, settings.auth.failed_logins_burst
                    ),
                    "viewers": {},  # user name → Viewer of its last full authentication (fast_read re-checks it)
                    "scope_checks": {},  # Viewer → its ScopeCheck statement
                    "read_pool": read_pool,  # fast_read's own connections
                }
        finally:
            await read_pool.close()
            if hub is not None:
                await hub.stop()
            await engine.dispose()

    schema = build_schema(settings)
    graphql = AnjuGraphQL(
        schema,
        graphql_ide="graphiql",
        allow_queries_via_get=True,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        connection_init_wait_timeout=dt.timedelta(seconds=settings.live.connection_init_seconds),
        max_subscriptions_per_connection=settings.live.max_subscriptions_per_connection,
    )
    cors = settings.cors
    routes = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        Route("/healthz", healthz),
        Route("/metrics", observe.metrics),
        *maps.ROUTES,
        *ogc.ROUTES,
        Route("/imports/templates/{kind}.{fmt}", imports.template),
        Route("/imports/{kind}", imports.upload, methods=["POST"]),
        Route("/imports/{id}/report.csv", imports.report),
        Route("/exports/{kind}.{fmt}", exports.download),
        *login.ROUTES,
        *web.ROUTES,
    ]
    return Starlette(
        routes=routes,
        exception_handlers={StarletteHTTPException: routing_error},
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=cors.allow_origins,
                allow_origin_regex=cors.allow_origin_regex,
                allow_methods=["GET", "POST"],
                allow_headers=["*"],
                expose_headers=["ETag", "Retry-After", "WWW-Authenticate", "Content-Length", "X-Request-Id"],
                max_age=cors.max_age_seconds,
            ),
            # inside CORS, so that its answers (a 500 or 503 for an exception a route let through) carry CORS headers too
            Middleware(observe.ObserveMiddleware, routes=routes, log_requests=settings.log.requests),
            Middleware(
                ViewerMiddleware,
                max_body_bytes=settings.max_body_bytes,
                schema=schema,
                body_timeout_seconds=settings.body_timeout_seconds,
            ),
        ],
        lifespan=lifespan,
    )
