"""Keyset pagination: opaque cursors, page-size limits and the ``Page`` result."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from resolvers.errors import InvalidInput

T = TypeVar("T")
U = TypeVar("U")


@dataclass(frozen=True)
class PageArgs:
    """Validated ``first``/``after``: ``limit`` rows after keyset position ``after_key`` (None = start)."""

    limit: int
    after_key: str | int | None


@dataclass
class Page(Generic[T]):
    """One page of a connection. ``count`` computes ``totalCount`` over the same filter, lazily."""

    nodes: list[T]
    has_next_page: bool
    end_cursor: str | None
    count: Callable[[], Awaitable[int]] = field(repr=False)

    def map(self, fn: Callable[[T], U]) -> Page[U]:
        """The same page with ``fn`` applied to every node."""
        return Page([fn(x) for x in self.nodes], self.has_next_page, self.end_cursor, self.count)


def encode_cursor(kind: str, key: str | int) -> str:
    """Opaque cursor for keyset position ``key`` in a list of ``kind``."""
    return base64.urlsafe_b64encode(f"{kind}:{key}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str, *, numeric: bool) -> str | int:
    """Inverse of ``encode_cursor``.

    Raises:
        InvalidInput: (field ``after``) the cursor was not issued for this list.
    """
    bad = InvalidInput(
        f"after: cursor {cursor[:40]!r} is not a cursor of this {kind} list; pass pageInfo.endCursor from a previous page",
        field="after",
    )
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad from None
    prefix, _, key = raw.partition(":")
    if prefix != kind or not key:
        raise bad
    if not (key.isascii() and key.isdigit()):
        raise bad
    if numeric:
        if len(key) > 19 or int(key) > 2**63 - 1:
            raise bad
        return int(key)
    if len(key) > 12:
        raise bad
    return key


def page_args(first: int | None, after: str | None, *, kind: str, numeric: bool, default: int, maximum: int) -> PageArgs:
    """Validate connection arguments.

    Args:
        first: page size; None → ``default``; must be in 0..``maximum`` (settings, 500).
        after: an ``endCursor`` from a previous page of the same list, or None.
        kind: the list's cursor kind (a cursor of another list is refused).
        numeric: whether the list's keys are integers.
        default: page size when ``first`` is None.
        maximum: the largest page size allowed.

    Raises:
        InvalidInput: ``first`` negative or above the maximum (field ``first``); bad ``after``.
    """
    if first is None:
        first = default
    if first < 0 or first > maximum:
        raise InvalidInput(f"first: {first} is outside 0..{maximum}; request at most {maximum} rows a page", field="first")
    return PageArgs(first, None if after is None else decode_cursor(after, kind, numeric=numeric))


def make_page(
    rows: Sequence[T], args: PageArgs, *, kind: str, key: Callable[[T], Any], count: Callable[[], Awaitable[int]]
) -> Page[T]:
    """Cut the ``limit + 1`` rows a keyset query fetched into a ``Page``."""
    nodes = list(rows[: args.limit])
    return Page(
        nodes=nodes,
        has_next_page=len(rows) > args.limit,
        end_cursor=encode_cursor(kind, key(nodes[-1])) if nodes else None,
        count=count,
    )
