"""Idempotency keys of create mutations: a retried create answers its first result instead of writing a duplicate.

A client that sent ``recordEmployment`` (or another create) and lost the answer — the server was killed after the commit,
the connection dropped — cannot tell whether it was written. Sent again with the same ``idempotencyKey``, the create
answers the record written the first time. The key is claimed in the create's own transaction
(``resolvers.mutations.in_transaction``): ``INSERT … ON CONFLICT`` on (viewer, key) waits for a concurrent twin to
finish, so of two racing requests one writes and the other answers its result; a create that fails (CONFLICT,
BAD_USER_INPUT) rolls its key back and may be retried as it is.

Keys are per viewer (user name), kept ``idempotency_hours`` (24 by default; an older key is claimed afresh). The same key
with a different input (or mutation) is refused with ``CONFLICT`` naming ``idempotencyKey``.
"""

from __future__ import annotations

import contextvars
import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from resolvers.errors import AnjuError, InvalidInput

T = TypeVar("T", bound=type)

KEY = re.compile(r"[A-Za-z0-9._:-]{8,100}")
"""An idempotency key: 8 to 100 of ``A-Z a-z 0-9 . _ : -`` (a UUID fits)."""

RESULT_TYPES: dict[str, type] = {}
"""What creates answer (dataclasses of ids), by name: stored as ``{"type", "fields"}`` and rebuilt on a replay."""


def result_type(cls: T) -> T:
    """Register a dataclass a create returns, so a replay can rebuild it (class decorator)."""
    RESULT_TYPES[cls.__name__] = cls
    return cls


class KeyReused(AnjuError):
    """The key was used before for another input or mutation → CONFLICT."""

    code = "CONFLICT"


@dataclass(frozen=True)
class Once:
    """One create's claim: viewer, key, mutation, hash of its input, how long keys last."""

    viewer: str
    key: str
    operation: str
    request_hash: bytes
    hours: int


class Replayed(Exception):  # noqa: N818 - a signal, not an error
    """The key was claimed and committed before: ``result`` is what that request wrote."""

    def __init__(self, result: Any) -> None:
        super().__init__("replayed")
        self.result = result


CURRENT: contextvars.ContextVar[Once | None] = contextvars.ContextVar("anju_idempotency", default=None)
"""The claim of the create being run (set around one mutation's resolver by ``schema.idempotency.once``)."""


def request_hash(operation: str, values: dict[str, Any]) -> bytes:
    """SHA-256 of the mutation's name and its input values (canonical JSON, keys sorted)."""
    canonical = json.dumps([operation, values], sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).digest()


def check_key(key: str) -> str:
    """``key`` when it is a valid idempotency key. Raises InvalidInput naming ``idempotencyKey``."""
    if not KEY.fullmatch(key):
        raise InvalidInput("idempotencyKey: expected 8 to 100 of A-Z a-z 0-9 . _ : - (e.g. a UUID)", field="idempotencyKey")
    return key


async def claim(s: AsyncSession, once: Once) -> None:
    """Claim ``once.key`` in ``s``'s transaction (first use, or an expired one).

    Raises:
        Replayed: the key was committed before with the same input: its result.
        KeyReused: it was committed before with another input or mutation.
    """
    claimed = await s.scalar(
        text(
            "INSERT INTO idempotency_key (viewer_name, key, operation, request_hash) VALUES (:v, :k, :o, :h) "
            "ON CONFLICT (viewer_name, key) DO UPDATE SET operation = EXCLUDED.operation, "
            "request_hash = EXCLUDED.request_hash, result = NULL, created_at = now() "
            "WHERE idempotency_key.created_at < now() - make_interval(hours => :hours) RETURNING true"
        ),
        {"v": once.viewer, "k": once.key, "o": once.operation, "h": once.request_hash, "hours": once.hours},
    )
    if claimed:
        return
    row = (
        await s.execute(
            text("SELECT operation, request_hash, result FROM idempotency_key WHERE viewer_name = :v AND key = :k"),
            {"v": once.viewer, "k": once.key},
        )
    ).one()
    if row.operation != once.operation or bytes(row.request_hash) != once.request_hash:
        raise KeyReused(
            f"idempotencyKey: {once.key} was used for another request ({row.operation}); use a new key for a new request",
            field="idempotencyKey",
        )
    raise Replayed(_rebuild(row.result))


async def store(s: AsyncSession, once: Once, result: Any) -> None:
    """Record what the create wrote under its key (same transaction)."""
    if not dataclasses.is_dataclass(result) or type(result).__name__ not in RESULT_TYPES:
        raise TypeError(f"{type(result).__name__}: not a registered create result")
    stored = {"type": type(result).__name__, "fields": dataclasses.asdict(result)}  # type: ignore[arg-type]
    await s.execute(
        text("UPDATE idempotency_key SET result = CAST(:r AS jsonb) WHERE viewer_name = :v AND key = :k"),
        {"r": json.dumps(stored), "v": once.viewer, "k": once.key},
    )


def _rebuild(stored: dict[str, Any]) -> Any:
    return RESULT_TYPES[stored["type"]](**stored["fields"])
