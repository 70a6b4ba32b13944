"""Browser logins (issue #14): passwords hashed with Argon2id, lockout after failures, rotating refresh tokens.

Passwords: argon2-cffi's ``PasswordHasher`` (Argon2id, RFC 9106's second recommended profile: t=3, m=64 MiB, p=4), stored
as its PHC string in ``app_user.password_hash``. ``auth.max_failed_logins`` failures in a row lock the user for
``auth.lockout_minutes``; while locked even the right password is refused. Every refusal reads the same (no user
enumeration), and a name without a user, password or enabled account costs the same Argon2 verification.

Refresh tokens: 256 random bits (``secrets.token_urlsafe(32)``), stored as SHA-256 (a random token needs no slow hash).
Each use rotates it: the presented token is marked ``rotated_at`` and a new one of the same ``family`` is issued; a rotated
token presented again means it was copied, so the whole family is revoked (OAuth 2.0 Security BCP, RFC 9700 §4.14.2).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import secrets
import uuid
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

import models as m
from resolvers.errors import InvalidInput
from resolvers.query import SessionMaker

U, RT = m.AppUser, m.RefreshToken
HASHER = PasswordHasher()
"""argon2-cffi's defaults: Argon2id, RFC 9106 low-memory profile."""


@functools.cache
def _dummy_hash() -> str:
    """Verified against when there is no hash to check, so an unknown name takes as long as a wrong password.

    Made on first use, not at import: an Argon2id hash costs 64 MiB and tens of milliseconds, which every worker process
    would otherwise pay while starting.
    """
    return HASHER.hash(secrets.token_urlsafe(16))


LOGIN_FAILED = "login failed: wrong name or password, or the account is locked after repeated failures (try again later)"
"""The one message of every refused login (which reason is not said: no user enumeration)."""


class LoginFailed(Exception):
    """A refused login or refresh → HTTP 401 ``UNAUTHENTICATED`` with the exception's message."""


@dataclass(frozen=True)
class Policy:
    """Login rules (settings ``auth``).

    Attributes:
        max_failures: failed logins in a row that lock a user.
        lockout: how long a lock lasts.
        refresh_ttl: lifetime of each refresh token.
        min_password_length: shortest password ``set_password`` accepts, characters.
        reuse_grace: how long after its rotation a refresh token may be presented again and get a token of its own
            (two tabs of one login refreshing at once: a duplicated browser tab holds a copy of the same token);
            later, a reuse revokes the login.
    """

    max_failures: int
    lockout: dt.timedelta
    refresh_ttl: dt.timedelta
    min_password_length: int
    reuse_grace: dt.timedelta = dt.timedelta(0)


def _verify(hashed: str | None, password: str) -> bool:
    try:
        return HASHER.verify(hashed or _dummy_hash(), password) and hashed is not None
    except (VerificationError, InvalidHashError):
        return False


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def set_password(sm: SessionMaker, name: str, password: str, policy: Policy) -> bool:
    """Set ``name``'s password (Argon2id), clear its failures and lock, revoke its refresh tokens; False: no such user.

    Raises:
        InvalidInput: the password is shorter than ``policy.min_password_length`` or over 1,024 characters (``password``).
    """
    if not policy.min_password_length <= len(password) <= 1024:
        raise InvalidInput(
            f"password: {policy.min_password_length} to 1024 characters (auth.min_password_length)", field="password"
        )
    hashed = await asyncio.to_thread(HASHER.hash, password)
    async with sm() as s, s.begin():
        uid = await s.scalar(
            update(U).where(U.name == name).values(password_hash=hashed, failed_logins=0, locked_until=None).returning(U.id)
        )
        if uid is None:
            return False
        await s.execute(update(RT).where(RT.user_id == uid, RT.revoked_at.is_(None)).values(revoked_at=_now()))
    return True


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def check_password(sm: SessionMaker, name: str, password: str, policy: Policy) -> int:
    """The id of the enabled user ``name`` whose password this is; failures counted, the lock applied.

    Raises:
        LoginFailed: unknown name, no password set, disabled, locked, or the wrong password (one message for all).
    """
    async with sm() as s, s.begin():
        row = (
            await s.execute(
                select(U.id, U.password_hash, U.failed_logins, U.locked_until, U.disabled)
                .where(U.name == name[:64])
                .with_for_update()
            )
        ).first()
        now = _now()
        usable = row is not None and not row.disabled and not (row.locked_until and row.locked_until > now)
        ok = await asyncio.to_thread(_verify, row.password_hash if usable and row else None, password)
        if row is None or not usable:
            raise LoginFailed(LOGIN_FAILED)
        if not ok:
            failures = row.failed_logins + 1
            locked = failures >= policy.max_failures
            await s.execute(
                update(U)
                .where(U.id == row.id)
                .values(failed_logins=0 if locked else failures, locked_until=now + policy.lockout if locked else None)
            )
            await s.commit()
            raise LoginFailed(LOGIN_FAILED)
        values: dict[str, object] = {"failed_logins": 0, "locked_until": None}
        if HASHER.check_needs_rehash(row.password_hash):
            values["password_hash"] = await asyncio.to_thread(HASHER.hash, password)
        await s.execute(update(U).where(U.id == row.id).values(**values))
        return int(row.id)


async def new_refresh_token(sm: SessionMaker, user_id: int, policy: Policy, family: str | None = None) -> str:
    """A new refresh token of ``user_id`` (a new family unless given), valid ``policy.refresh_ttl``."""
    async with sm() as s, s.begin():
        return await _insert(s, user_id, family or uuid.uuid4().hex, policy)


async def _insert(s: AsyncSession, user_id: int, family: str, policy: Policy) -> str:
    token = secrets.token_urlsafe(32)
    await s.execute(
        insert(RT).values(user_id=user_id, family=family, token_hash=_digest(token), expires_at=_now() + policy.refresh_ttl)
    )
    return token


async def rotate(sm: SessionMaker, token: str, policy: Policy) -> tuple[str, str]:
    """Exchange a refresh token for a new one of its family: (user name, new refresh token).

    Raises:
        LoginFailed: unknown, expired or revoked token, disabled user; or a token already rotated more than
            ``policy.reuse_grace`` ago, which revokes its family (within it, another new token of the family).
    """
    async with sm() as s, s.begin():
        row = (
            await s.execute(
                select(RT.id, RT.family, RT.user_id, RT.expires_at, RT.rotated_at, RT.revoked_at, U.name, U.disabled)
                .join(U, U.id == RT.user_id)
                .where(RT.token_hash == _digest(token))
                .with_for_update(of=RT)
            )
        ).first()
        now = _now()
        if row is None or row.revoked_at is not None or row.disabled:
            raise LoginFailed("refresh token is not valid (revoked or unknown); log in again")
        if row.rotated_at is not None and now - row.rotated_at > policy.reuse_grace:
            await s.execute(update(RT).where(RT.family == row.family, RT.revoked_at.is_(None)).values(revoked_at=now))
            await s.commit()
            raise LoginFailed("refresh token was already used: this login is revoked; log in again")
        if row.expires_at <= now:
            raise LoginFailed("refresh token expired; log in again")
        if row.rotated_at is None:  # within the grace, a reuse gets a token of its own and the first rotation stands
            await s.execute(update(RT).where(RT.id == row.id).values(rotated_at=now))
        return row.name, await _insert(s, row.user_id, row.family, policy)


async def revoke(sm: SessionMaker, token: str) -> bool:
    """Log out: revoke the family of ``token`` (every refresh token of that login); False when the token is unknown."""
    async with sm() as s, s.begin():
        family = select(RT.family).where(RT.token_hash == _digest(token)).scalar_subquery()
        done = await s.execute(update(RT).where(RT.family == family, RT.revoked_at.is_(None)).values(revoked_at=_now()))
        known = await s.scalar(select(RT.id).where(RT.token_hash == _digest(token)))
    return known is not None or bool(getattr(done, "rowcount", 0))
