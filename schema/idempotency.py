"""``idempotencyKey`` of the create mutations (``resolvers.idempotency``): the input field and the wrapper of a write."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import strawberry

from resolvers import idempotency

T = TypeVar("T")

IDEMPOTENCY_KEY = (
    "Optional key (8-100 of A-Z a-z 0-9 . _ : -, e.g. a UUID) making a retry safe: sent again by the same user with the "
    "same input within 24 hours, the create answers the record written the first time instead of writing another; the "
    "same key with another input is refused (CONFLICT, field idempotencyKey)."
)


def idempotency_key_field() -> Any:
    """The ``idempotencyKey`` input field of a create."""
    return strawberry.field(default=None, description=IDEMPOTENCY_KEY)


async def once(info: Any, operation: str, input: Any, write: Callable[[], Awaitable[T]]) -> T:
    """``await write()`` under ``input.idempotency_key`` (when given): a repeat answers the first request's result.

    Raises:
        InvalidInput: a malformed key. KeyReused (CONFLICT): the key was used for another input or mutation.
    """
    key = getattr(input, "idempotency_key", None)
    if key is None:
        return await write()
    values = {f.name: getattr(input, f.name) for f in dataclasses.fields(input) if f.name != "idempotency_key"}
    claim = idempotency.Once(
        viewer=info.context.viewer.name,
        key=idempotency.check_key(key),
        operation=operation,
        request_hash=idempotency.request_hash(operation, values),
        hours=info.context.settings.idempotency_hours,
    )
    token = idempotency.CURRENT.set(claim)
    try:
        return await write()
    except idempotency.Replayed as replay:
        return replay.result  # type: ignore[no-any-return]
    finally:
        idempotency.CURRENT.reset(token)
