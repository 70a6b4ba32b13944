"""HTTP answers shared by every route outside GraphQL's own (tiles, OGC API Features) and by the request middleware.

Errors are JSON in the GraphQL shape every client of Anju already reads, ``{"errors": [{"message", "extensions":
{"code", "field"}}]}`` — for ``/ogc`` also OGC's exception members ``code`` and ``description``. Data answers carry a
weak ``ETag`` (304 on ``If-None-Match``) and are gzipped when the client accepts it.
"""

from __future__ import annotations

import gzip
import hashlib
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from anju.observe import current_request
from resolvers.errors import AnjuError

STATUS = {"BAD_USER_INPUT": 400, "UNAUTHENTICATED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404, "QUERY_TOO_COMPLEX": 413}
"""HTTP status of each ``extensions.code`` outside GraphQL."""
GZIP_MIN_BYTES = 512
"""Smaller answers go out uncompressed."""


def error_response(
    message: str, status: int, code: str = "BAD_USER_INPUT", *, field: str | None = None, ogc: bool = False
) -> JSONResponse:
    """A JSON error answer; 401 adds ``WWW-Authenticate: Bearer``; ``ogc`` adds OGC's ``code``/``description``.

    ``extensions.requestId`` is the request's id (``anju.observe``), as in the ``X-Request-Id`` header.
    """
    extensions = {"code": code, **({"field": field} if field else {})}
    if (request := current_request()) is not None:
        extensions["requestId"] = request.request_id
    body: dict[str, Any] = {"errors": [{"message": message, "extensions": extensions}]}
    if ogc:
        body = {"code": code, "description": message, **body}
    headers = {"WWW-Authenticate": 'Bearer realm="anju"'} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def anju_error_response(exc: AnjuError, *, ogc: bool = False) -> JSONResponse:
    """The answer to a domain error: its code, its HTTP status (400, 403, 404), its message naming the parameter."""
    return error_response(exc.message, STATUS.get(exc.code, 400), exc.code, field=exc.field, ogc=ogc)


def data_response(request: Request, body: bytes, media_type: str, headers: dict[str, str]) -> Response:
    """``body`` with a weak ETag of its bytes: 304 when the client holds it already, gzip when accepted and worth it.

    ``headers`` (cache control, Vary) go on every answer; ``Vary`` gains ``Accept-Encoding``.
    """
    etag = 'W/"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    vary = ", ".join(v for v in (headers.get("Vary"), "Accept-Encoding") if v)
    out = {**headers, "ETag": etag, "Vary": vary}
    wanted = request.headers.get("if-none-match", "")
    if etag in (t.strip() for t in wanted.split(",")) or wanted.strip() == "*":
        return Response(status_code=304, headers=out)
    if len(body) >= GZIP_MIN_BYTES and "gzip" in request.headers.get("accept-encoding", "").lower():
        return Response(gzip.compress(body, 6), media_type=media_type, headers={**out, "Content-Encoding": "gzip"})
    return Response(body, media_type=media_type, headers=out)


class RateLimits:
    """A token bucket per key (a user name, a client address): ``burst`` at once, refilled at ``per_minute``.

    This process only: with N worker processes a key may get up to N times the rate in all; the buckets live in memory,
    so a restart refills them. ``per_minute`` 0 means no limit.
    """

    def __init__(self, per_minute: int, burst: int) -> None:
        """Buckets of ``burst`` tokens, refilled at ``per_minute`` tokens a minute."""
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.buckets: dict[str, tuple[float, float]] = {}  # key → (tokens, at)

    def level(self, key: str, now: float) -> float:
        """The tokens in ``key``'s bucket at ``now`` (``time.monotonic()``), refilled since it was last touched."""
        tokens, at = self.buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.rate)

    def wait(self, key: str, take: int = 1) -> float:
        """Take ``take`` tokens (0 or 1) from ``key``'s bucket: 0 when there was one, else the seconds until there is."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        tokens = self.level(key, now)
        if tokens < 1:
            self.buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate
        if len(self.buckets) > 100_000:  # keep memory bounded whatever the keys
            self.buckets.clear()
        self.buckets[key] = (tokens - take, now)
        return 0.0


def too_many_requests(message: str, wait: float, *, ogc: bool = False) -> JSONResponse:
    """HTTP 429 ``RATE_LIMITED``: ``message`` and the seconds to wait, also as ``Retry-After`` (whole seconds, ≥ 1)."""
    limited = error_response(f"{message}; retry in {wait:.1f} s", 429, "RATE_LIMITED", ogc=ogc)
    limited.headers["Retry-After"] = str(max(1, round(wait + 0.5)))
    return limited
