"""Operating Anju: Prometheus metrics, one structured log line per request, request ids (issue #16).

``ObserveMiddleware`` is the outermost ASGI layer, so it sees every request whichever part answers it — strawberry, the
fast read path inside ``ViewerMiddleware``, tiles, OGC, imports, a 401 or a 413. For each request it

- takes the client's ``X-Request-Id`` (when it is 1..64 of ``A-Z a-z 0-9 . _ -``) or makes one, and returns it in the
  ``X-Request-Id`` header; ``current_request()`` lets the error writers put it in ``extensions.requestId``;
- counts it in ``anju_http_requests_total`` and times it in ``anju_http_request_duration_seconds``, labelled by the
  route's *template* (``/tiles/{layer}/{z}/{x}/{y}.mvt``, never the raw path) and the GraphQL operation *type*
  (``query``/``mutation``; never the client's operation name, which is unbounded); every GraphQL error code of the
  answer goes to ``anju_graphql_errors_total`` (an HTTP 200 with ``errors`` counts);
- writes one ``anju.request`` log line: request id, method, route, status, duration, viewer (the user's account name),
  operation type and name, error codes — never a query parameter, variable or body;
- answers an exception a route let through with JSON instead of Starlette's plain-text 500: HTTP 503 ``INTERNAL`` when
  the database could not be reached (a warning line, no traceback), else 500 ``INTERNAL`` (logged with its traceback).

Metrics work with several worker processes: ``anju serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's
multiprocess mode, one file per process) before any worker imports this module; ``/metrics`` then sums the files of all
workers. Without it (tests, one process) the default registry is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ipaddress
import logging
import os
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from resolvers.errors import is_unavailable

log = logging.getLogger("anju.request")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter(
    "anju_http_requests_total",
    "HTTP requests answered, by route template, method, status and GraphQL operation type ('' outside GraphQL)",
    ["route", "method", "status", "operation"],
)
LATENCY = Histogram(
    "anju_http_request_duration_seconds",
    "Time from the request's arrival to the end of its answer, seconds",
    ["route", "operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
GRAPHQL_ERRORS = Counter(
    "anju_graphql_errors_total",
    "Errors in GraphQL answers (also those of an HTTP 200), by extensions.code and operation type",
    ["code", "operation"],
)
IN_FLIGHT = Gauge("anju_http_requests_in_flight", "Requests being answered", multiprocess_mode="livesum")
POOL_IN_USE = Gauge(
    "anju_db_pool_in_use",
    "Database connections in use, by pool (service: the engine's; fast_read: anju.db.ReadPool)",
    ["pool"],
    multiprocess_mode="livesum",
)
POOL_IDLE = Gauge("anju_db_pool_idle", "Database connections open and idle, by pool", ["pool"], multiprocess_mode="livesum")
POOL_WAITING = Gauge(
    "anju_db_pool_waiting", "Requests waiting in line for a database connection, by pool", ["pool"], multiprocess_mode="livesum"
)
DB_UP = Gauge(
    "anju_db_up",
    "1 when the last /healthz (of any worker) reached the database, 0 when it could not",
    multiprocess_mode="livemostrecent",  # the latest answer of any live process: not the supervisor's unset 0
)
IMPORT_JOBS = Counter("anju_import_jobs_total", "Import jobs finished, by kind and final state", ["kind", "state"])
IMPORTS_RUNNING = Gauge("anju_import_jobs_running", "Import jobs running", ["kind"], multiprocess_mode="livesum")


@dataclass(slots=True)
class Observed:
    """What one request's parts tell about it, for its metrics and log line (never a parameter value)."""

    request_id: str
    method: str
    started: float
    operation_type: str = ""
    operation_name: str | None = None
    viewer: str | None = None
    error_codes: list[str] = field(default_factory=list)
    unavailable: bool = False
    fast_read: bool = False


_CURRENT: contextvars.ContextVar[Observed | None] = contextvars.ContextVar("anju_observed", default=None)
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
"""A client's own ``X-Request-Id`` is kept when it looks like an id (else Anju makes one)."""


def current_request() -> Observed | None:
    """The request being answered in this task (None outside a request)."""
    return _CURRENT.get()


def note_viewer(name: str) -> None:
    """The request's authenticated user name (logged; a name, not personal data)."""
    if (obs := _CURRENT.get()) is not None:
        obs.viewer = name


def note_operation(operation_type: str, operation_name: str | None, *, fast_read: bool = False) -> None:
    """The GraphQL operation's type (``query``/``mutation``/``subscription``) and name.

    ``fast_read``: answered by ``anju.app.fast_read`` (one planned statement, no strawberry).
    """
    if (obs := _CURRENT.get()) is not None:
        obs.fast_read = fast_read
        obs.operation_type = operation_type
        obs.operation_name = operation_name[:100] if operation_name else None


def note_errors(codes: list[str]) -> None:
    """The ``extensions.code`` of each error in the answer."""
    if (obs := _CURRENT.get()) is not None:
        obs.error_codes.extend(codes)


def with_request_id(errors: list[dict[str, Any]]) -> None:
    """Add ``extensions.requestId`` to each formatted error (in place)."""
    obs = _CURRENT.get()
    if obs is None:
        return
    for error in errors:
        error.setdefault("extensions", {})["requestId"] = obs.request_id


def _route(scope: dict[str, Any], routes: list[Any]) -> str:
    """The template of the route of ``scope``; ``other`` for an unknown path.

    Starlette's ``scope['route']`` once routed; else the first route whose path matches, for answers given before routing
    (the fast read path, 401, 413).
    """
    from starlette.routing import Match

    route = scope.get("route")
    if route is None:
        route = next((r for r in routes if r.matches(scope)[0] is not Match.NONE), None)
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "other"


class ObserveMiddleware:
    """Request ids, metrics and the request log for every HTTP request (see the module docstring)."""

    def __init__(self, app: Any, routes: list[Any], log_requests: bool = True) -> None:
        self.app = app
        self.routes = routes
        self.log_requests = log_requests

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """ASGI entry."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"").decode("latin-1")
        obs = Observed(given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex, scope["method"], time.perf_counter())
        token = _CURRENT.set(obs)
        status = 500
        started = False
        rid = obs.request_id.encode()

        async def send_with_id(message: Any) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid)]
            await send(message)

        IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if started:  # the answer is partly sent: nothing else can be said
                raise
            if is_unavailable(exc):
                log.warning("request %s: the database is unavailable (%s)", obs.request_id, type(exc).__name__)
                obs.unavailable = True
                response = _json_error("the database is unavailable; try again shortly", 503)
            else:
                log.error("request %s: unexpected error", obs.request_id, exc_info=exc)
                response = _json_error("Internal server error; the incident was logged.", 500)
            obs.error_codes.append("INTERNAL")
            await response(scope, receive, send_with_id)
        finally:
            IN_FLIGHT.dec()
            _CURRENT.reset(token)
            self._finish(obs, scope, status)

    def _finish(self, obs: Observed, scope: dict[str, Any], status: int) -> None:
        elapsed = time.perf_counter() - obs.started
        route = _route(scope, self.routes)
        REQUESTS.labels(route, obs.method, str(status), obs.operation_type).inc()
        LATENCY.labels(route, obs.operation_type).observe(elapsed)
        for code in obs.error_codes:
            GRAPHQL_ERRORS.labels(code, obs.operation_type).inc()
        if self.log_requests and route not in QUIET_ROUTES:
            log.info(
                "%s %s %s %.1f ms",
                obs.method,
                route,
                status,
                elapsed * 1000,
                extra={
                    "request_id": obs.request_id,
                    "method": obs.method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "viewer": obs.viewer,
                    "operation_type": obs.operation_type or None,
                    "operation_name": obs.operation_name,
                    "error_codes": obs.error_codes or None,
                    "fast_read": obs.fast_read or None,
                },
            )


QUIET_ROUTES = frozenset({"/metrics", "/healthz"})
"""Scrapes and health probes are counted but not logged (a line every few seconds per prober)."""


def _json_error(message: str, status: int) -> JSONResponse:
    from anju.responses import error_response

    return error_response(message, status, "INTERNAL")


# --------------------------------------------------------------------------- /metrics


def allowed(request: Request, token: str | None, networks: list[str]) -> bool:
    """Whether ``request`` may read ``/metrics``: its bearer token equals ``token``, or its peer is in ``networks``."""
    header = request.headers.get("authorization", "")
    if token and header.startswith("Bearer ") and secrets.compare_digest(header[7:].strip().encode(), token.encode()):
        return True
    client = request.client.host if request.client else None
    if not client:
        return False
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(n, strict=False) for n in networks)


async def metrics(request: Request) -> Response:
    """``GET /metrics``: Prometheus text format, every worker's metrics summed (403 outside the allowed token/networks)."""
    settings = request.state.settings.metrics
    token = settings.token.get_secret_value() if settings.token else None
    if not allowed(request, token, settings.allowed_networks):
        from anju.responses import error_response

        return error_response("metrics: not allowed from this address without the metrics token", 403, "FORBIDDEN")
    sample_pool(request.state.engine, request.state.read_pool)
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        data = await asyncio.to_thread(generate_latest, registry)
    else:
        data = generate_latest(DEFAULT_REGISTRY)
    return Response(data, media_type=CONTENT_TYPE_LATEST)


def sample_pool(engine: Any, read_pool: Any = None) -> None:
    """Set this process's pool gauges.

    SQLAlchemy's pool (``pool="service"``: checked out, idle, waiters on its queue) and the fast read path's
    ``anju.db.ReadPool`` (``pool="fast_read"``), when given.
    """
    pool = engine.pool
    POOL_IN_USE.labels("service").set(pool.checkedout())
    POOL_IDLE.labels("service").set(pool.checkedin())
    # SQLAlchemy's AsyncAdaptedQueuePool waits on an asyncio.Queue when every connection is out; its getters are the waiters.
    queue = getattr(getattr(pool, "_pool", None), "_queue", None)
    POOL_WAITING.labels("service").set(len(getattr(queue, "_getters", ()) or ()))
    if read_pool is not None:
        POOL_IN_USE.labels("fast_read").set(read_pool.in_use)
        POOL_IDLE.labels("fast_read").set(read_pool.idle)
        POOL_WAITING.labels("fast_read").set(read_pool.waiting)


@contextlib.asynccontextmanager
async def pool_sampler(engine: Any, read_pool: Any = None, every_seconds: float = 1.0) -> AsyncIterator[None]:
    """While the app runs, sample the pools every ``every_seconds`` (each worker its own; ``livesum`` adds them up)."""

    async def loop() -> None:
        while True:
            sample_pool(engine, read_pool)
            await asyncio.sleep(every_seconds)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if os.environ.get(MULTIPROC_ENV):  # this worker's live gauges stop counting
            multiprocess.mark_process_dead(os.getpid())


@contextlib.contextmanager
def import_job(kind: str) -> Any:
    """Count an import job of ``kind`` while it runs; the caller sets ``state['state']`` to its final state."""
    state = {"state": "failed"}
    IMPORTS_RUNNING.labels(kind).inc()
    try:
        yield state
    finally:
        IMPORTS_RUNNING.labels(kind).dec()
        IMPORT_JOBS.labels(kind, state["state"]).inc()


# --------------------------------------------------------------------------- logging


def log_config(fmt: str) -> dict[str, Any]:
    """Uvicorn's logging config, plus Anju's loggers (``anju.*``) at INFO: plain text, or one JSON object a line.

    JSON lines carry ``time``, ``level``, ``logger``, ``message`` and the request fields (``request_id``, ``route``,
    ``status``, ``duration_ms``, ``viewer``, ``operation_type``, ``operation_name``, ``error_codes``).
    """
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    if fmt == "json":
        config["formatters"]["anju"] = {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"},
            "timestamp": False,
        }
        for name in ("default", "access"):  # uvicorn's own lines as JSON too
            config["formatters"][name] = config["formatters"]["anju"]
    else:
        config["formatters"]["anju"] = {"format": "%(levelname)s %(name)s: %(message)s%(request_fields)s"}
        config["filters"] = {"request_fields": {"()": "anju.observe.RequestFields"}}
    config["handlers"]["anju"] = {"formatter": "anju", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
    if fmt != "json":
        config["handlers"]["anju"]["filters"] = ["request_fields"]
    config["loggers"]["anju"] = {"handlers": ["anju"], "level": "INFO", "propagate": False}
    return config


class RequestFields(logging.Filter):
    """Plain-text logs: the request fields of an ``anju.request`` line as ``key=value`` after its message."""

    KEYS = ("request_id", "viewer", "operation_type", "operation_name", "error_codes", "fast_read")

    def filter(self, record: logging.LogRecord) -> bool:
        """Add ``record.request_fields`` (empty for other lines)."""
        parts = [f"{k}={getattr(record, k)}" for k in self.KEYS if getattr(record, k, None)]
        record.request_fields = (" " + " ".join(parts)) if parts else ""
        return True
