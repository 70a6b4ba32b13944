"""Bearer tokens (PyJWT) and the secrets behind them.

A token names a user (``sub``) and nothing else the server trusts: role, areas and partner are
read from ``app_user`` on every request, so disabling a user or changing its areas takes effect
at once. Claims: ``sub``, ``iat``, ``exp``, ``iss`` and ``aud`` (settings ``auth.issuer`` /
``auth.audience``), all required.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import jwt

from anju.settings import PROJECT_ROOT, Settings

SECRETS_FILE = PROJECT_ROOT / ".anju" / "secrets.json"


class AuthError(Exception):
    """A request without a valid token → UNAUTHENTICATED (HTTP 401).

    The message says why, without echoing the token.
    """


class ConfigError(Exception):
    """A secret the settings must provide is missing (env=prod)."""


@dataclass(frozen=True)
class Keys:
    """Resolved key material: what signs tokens, what verifies them, and the ID-number HMAC key."""

    algorithm: str
    signing_key: str | None
    verify_key: str
    id_number_key: bytes


def _local_secrets(path: Path = SECRETS_FILE) -> dict[str, str]:
    """Development secrets, generated once (mode 0600) and kept beside the checkout."""
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]
    path.parent.mkdir(parents=True, exist_ok=True)
    values = {"jwt_secret": secrets.token_urlsafe(48), "id_number_key": secrets.token_urlsafe(48)}
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process wrote it first
        return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(values, f)
    return values


def keys(settings: Settings) -> Keys:
    """The keys for ``settings``.

    Raises:
        ConfigError: env=prod without ``ANJU_AUTH__JWT_SECRET`` (HS256) / ``ANJU_AUTH__JWT_PUBLIC_KEY``
        (RS256) or ``ANJU_PRIVACY__ID_NUMBER_KEY``.
    """
    a, p = settings.auth, settings.privacy
    local = None if settings.env == "prod" else _local_secrets()

    def need(value: str | None, name: str, local_name: str) -> str:
        if value:
            return value
        if local is None:
            raise ConfigError(f"{name} must be set when ANJU_ENV=prod")
        return local[local_name]

    id_key = need(
        p.id_number_key.get_secret_value() if p.id_number_key else None, "ANJU_PRIVACY__ID_NUMBER_KEY", "id_number_key"
    ).encode()
    if a.algorithm == "RS256":
        if not a.jwt_public_key:
            raise ConfigError("ANJU_AUTH__JWT_PUBLIC_KEY (PEM) is required with RS256")
        private = a.jwt_private_key.get_secret_value() if a.jwt_private_key else None
        return Keys("RS256", private, a.jwt_public_key, id_key)
    secret = need(a.jwt_secret.get_secret_value() if a.jwt_secret else None, "ANJU_AUTH__JWT_SECRET", "jwt_secret")
    return Keys("HS256", secret, secret, id_key)


def issue_token(settings: Settings, user: str, *, ttl_hours: float | None = None, now: dt.datetime | None = None) -> str:
    """A signed token for ``user`` valid ``ttl_hours`` (default ``auth.token_ttl_hours``).

    Raises:
        ConfigError: no signing key (RS256 without ``auth.jwt_private_key``).
    """
    k = keys(settings)
    if k.signing_key is None:
        raise ConfigError("ANJU_AUTH__JWT_PRIVATE_KEY (PEM) is needed to issue RS256 tokens")
    now = now or dt.datetime.now(dt.UTC)
    hours = ttl_hours if ttl_hours is not None else settings.auth.token_ttl_hours
    if not 0 < hours <= settings.auth.max_token_hours:
        raise ConfigError(
            f"token lifetime {hours} h: must be above 0 and at most {settings.auth.max_token_hours} h (auth.max_token_hours)"
        )
    ttl = dt.timedelta(hours=hours)
    claims = {"sub": user, "iat": now, "exp": now + ttl, "iss": settings.auth.issuer, "aud": settings.auth.audience}
    return jwt.encode(claims, k.signing_key, algorithm=k.algorithm)


def verify_token(k: Keys, settings: Settings, header: str | None) -> str:
    """The user name of a valid ``Authorization: Bearer <token>`` header (``verified_token``'s).

    Raises:
        AuthError: as ``verified_token``.
    """
    return verified_token(k, settings, header)[0]


def verified_token(k: Keys, settings: Settings, header: str | None) -> tuple[str, float]:
    """(user name, expiry in seconds since the epoch) of a valid ``Authorization: Bearer <token>`` header: one decode.

    Raises:
        AuthError: no header, not a Bearer token, malformed, wrongly signed, expired, missing a claim, or
        claiming a lifetime above ``auth.max_token_hours``.
    """
    if not header:
        raise AuthError("authentication required: send 'Authorization: Bearer <token>' (issue one with `anju token NAME`)")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("Authorization header must be 'Bearer <token>'")
    try:
        claims = jwt.decode(
            token.strip(),
            k.verify_key,
            algorithms=[k.algorithm],
            audience=settings.auth.audience,
            issuer=settings.auth.issuer,
            options={"require": ["sub", "iat", "exp", "iss", "aud"]},
            leeway=30,
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("token expired; ask for a new one") from None
    except jwt.InvalidTokenError as exc:
        raise AuthError(f"invalid token ({type(exc).__name__})") from None
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise AuthError("invalid token (no subject)")
    lifetime = claims["exp"] - claims["iat"] if all(isinstance(claims[c], int | float) for c in ("exp", "iat")) else None
    if lifetime is None or lifetime > settings.auth.max_token_hours * 3600:
        raise AuthError("invalid token (lifetime longer than the server accepts)")
    return sub, float(claims["exp"])


class VerifiedTokens:
    """Authorization headers already verified, by header: their user name until the token expires (bounded, LRU).

    A repeated token then costs a dict lookup instead of a signature check (≈ 0.2 ms with PyJWT). Only valid tokens are
    kept; a token's validity depends on nothing but its signature and expiry, so nothing else can make an entry stale
    (disabled users are refused by the user lookup, which is not cached here).
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.entries: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def name(self, k: Keys, settings: Settings, header: str | None) -> str:
        """``verify_token``'s answer for ``header``, from the cache while the token has not expired.

        Raises:
            AuthError: as ``verify_token``.
        """
        return self.verified(k, settings, header)[0]

    def verified(self, k: Keys, settings: Settings, header: str | None) -> tuple[str, float]:
        """``verified_token``'s answer (user name, expiry) for ``header``, from the cache while the token has not expired.

        Raises:
            AuthError: as ``verified_token``.
        """
        if header is not None:
            hit = self.entries.get(header)
            if hit is not None and hit[1] > time.time():
                self.entries.move_to_end(header)
                return hit
        found = verified_token(k, settings, header)
        assert header is not None  # verified_token refuses a missing header
        self.entries[header] = found
        if len(self.entries) > self.size:
            self.entries.popitem(last=False)
        return found
