"""Browser login routes (issue #14): ``POST /auth/login``, ``POST /auth/refresh``, ``POST /auth/logout``.

Bodies are JSON. Login ``{"name", "password"}`` and refresh ``{"refreshToken"}`` answer
``{"accessToken", "tokenType": "Bearer", "expiresIn", "refreshToken", "refreshExpiresIn", "user": {"name", "role"}}``
(seconds); logout ``{"refreshToken"}`` answers 204 and revokes that login's refresh tokens. Refusals are HTTP 401
``UNAUTHENTICATED``, one message for every login refusal (``resolvers.logins``). Access tokens are the same JWTs as
``anju token``'s, living ``auth.access_token_minutes``; answers are ``Cache-Control: no-store``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from anju.auth import issue_token
from anju.responses import RateLimits, error_response, too_many_requests
from anju.settings import Settings
from resolvers import logins
from resolvers.access import viewer_by_name

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def policy(settings: Settings) -> logins.Policy:
    """The login rules of ``settings.auth``."""
    a = settings.auth
    return logins.Policy(
        max_failures=a.max_failed_logins,
        lockout=dt.timedelta(minutes=a.lockout_minutes),
        refresh_ttl=dt.timedelta(days=a.refresh_token_days),
        min_password_length=a.min_password_length,
        reuse_grace=dt.timedelta(seconds=a.refresh_reuse_grace_seconds),
    )


class FailedLoginLimits(RateLimits):
    """Failed logins per client address: a token bucket (``RateLimits``) that only failures drain.

    A login attempt reserves a token before its password is checked and settles after: a failure takes it, a success
    gives it back. Attempts sent at once from one address therefore never get more checks than the bucket holds; an
    attempt that finds every token reserved by attempts in flight waits for them (a password check takes well under a
    second) rather than being refused, since those may succeed.
    """

    def __init__(self, per_minute: int, burst: int) -> None:
        """Buckets of ``burst`` failed logins, refilled at ``per_minute`` a minute; 0 = no limit."""
        super().__init__(per_minute, burst)
        self.in_flight: dict[str, int] = {}
        self.settled = asyncio.Condition()

    async def reserve(self, key: str) -> float:
        """0 when an attempt from ``key`` may be checked (a token reserved; call ``settle``), else the seconds to wait."""
        if self.rate <= 0:
            return 0.0
        async with self.settled:
            while True:
                pending = self.in_flight.get(key, 0)
                if self.level(key, time.monotonic()) - pending >= 1:
                    self.in_flight[key] = pending + 1
                    return 0.0
                if pending == 0:
                    return self.wait(key, take=0)
                await self.settled.wait()  # attempts in flight may give their tokens back

    async def settle(self, key: str, *, failed: bool) -> None:
        """End an attempt ``reserve`` let through: a failure takes its token, a success leaves the bucket as it was."""
        if self.rate <= 0:
            return
        async with self.settled:
            pending = self.in_flight.pop(key, 1) - 1
            if pending > 0:
                self.in_flight[key] = pending
            if failed:
                self.wait(key)
            self.settled.notify_all()


class _BadBody(Exception):
    pass


async def _fields(request: Request, *names: str) -> list[str]:
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise _BadBody("send a JSON body (Content-Type: application/json)")
    try:
        body: Any = json.loads(await request.body())
    except (ValueError, RecursionError):
        raise _BadBody("request body is not valid UTF-8 JSON") from None
    if not isinstance(body, dict):
        raise _BadBody(f"request body must be a JSON object with {', '.join(names)}")
    values = [body.get(n) for n in names]
    for n, v in zip(names, values, strict=True):
        if not isinstance(v, str) or not v:
            raise _BadBody(f"{n}: a non-empty string is required")
        if len(v) > 1024:
            raise _BadBody(f"{n}: at most 1024 characters")
        if "\x00" in v or not _encodable(v):  # PostgreSQL and Argon2 take neither a NUL nor a lone surrogate
            raise _BadBody(f"{n}: contains a NUL character or an unpaired surrogate (\\ud800-\\udfff)")
    return values  # type: ignore[return-value]


def _encodable(value: str) -> bool:
    """Whether ``value`` encodes as UTF-8 (a JSON escape of a lone surrogate decodes to a string that does not)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def _tokens(request: Request, name: str, refresh: str) -> Response:
    settings: Settings = request.state.settings
    viewer = await viewer_by_name(request.state.sessionmaker, name)
    if viewer is None:  # disabled between the check and now
        return error_response(logins.LOGIN_FAILED, 401, "UNAUTHENTICATED")
    minutes = settings.auth.access_token_minutes
    body = {
        "accessToken": issue_token(settings, name, ttl_hours=minutes / 60),
        "tokenType": "Bearer",
        "expiresIn": round(minutes * 60),
        "refreshToken": refresh,
        "refreshExpiresIn": round(settings.auth.refresh_token_days * 86400),
        "user": {"name": viewer.name, "role": viewer.role.name},
    }
    return JSONResponse(body, headers=NO_STORE)


async def login(request: Request) -> Response:
    """``POST /auth/login`` ``{"name", "password"}``: an access token and a refresh token; 401 for any refusal.

    429 ``RATE_LIMITED`` (with ``Retry-After``) once the client address has used up its failed logins
    (``auth.failed_logins_per_minute``, ``auth.failed_logins_burst``): guessing across many user names, and locking
    them out one after another, is slowed down per address, not only per user.
    """
    try:
        name, password = await _fields(request, "name", "password")
    except _BadBody as exc:
        return error_response(str(exc), 400)
    settings: Settings = request.state.settings
    address = request.client.host if request.client else ""
    limits: FailedLoginLimits = request.state.login_limits
    wait = await limits.reserve(address)
    if wait > 0:  # refused before the password is checked: no guess is tried, no user's failure count grows
        a = settings.auth
        return too_many_requests(
            f"too many failed logins from this address: at most {a.failed_logins_per_minute} a minute "
            f"(burst {a.failed_logins_burst})",
            wait,
        )
    sm, p = request.state.sessionmaker, policy(settings)
    failed = False
    try:
        user_id = await logins.check_password(sm, name, password, p)
    except logins.LoginFailed as exc:
        failed = True
        return error_response(str(exc), 401, "UNAUTHENTICATED")
    finally:
        await limits.settle(address, failed=failed)
    return await _tokens(request, name, await logins.new_refresh_token(sm, user_id, p))


async def refresh(request: Request) -> Response:
    """``POST /auth/refresh`` ``{"refreshToken"}``: a new pair (the old refresh token is spent); 401 when refused."""
    try:
        (token,) = await _fields(request, "refreshToken")
    except _BadBody as exc:
        return error_response(str(exc), 400)
    try:
        name, new = await logins.rotate(request.state.sessionmaker, token, policy(request.state.settings))
    except logins.LoginFailed as exc:
        return error_response(str(exc), 401, "UNAUTHENTICATED")
    return await _tokens(request, name, new)


async def logout(request: Request) -> Response:
    """``POST /auth/logout`` ``{"refreshToken"}``: 204; that login's refresh tokens are revoked (unknown tokens: 204 too)."""
    try:
        (token,) = await _fields(request, "refreshToken")
    except _BadBody as exc:
        return error_response(str(exc), 400)
    await logins.revoke(request.state.sessionmaker, token)
    return Response(status_code=204, headers=NO_STORE)


ROUTES = [
    Route("/auth/login", login, methods=["POST"]),
    Route("/auth/refresh", refresh, methods=["POST"]),
    Route("/auth/logout", logout, methods=["POST"]),
]
"""The login routes (public: they need no bearer token), mounted by ``anju.app.create_app``."""
