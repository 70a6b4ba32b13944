"""Live events read under the subscriber's scope, at delivery (migrations/sql/live_events.sql holds the outbox).

Each read is one read-only REPEATABLE READ transaction on a pool connection: the subscriber's user row is re-read and
its scope applied (``resolvers.access.ScopeCheck``: role, area codes, disabled), then the events after the
subscriber's position are selected under that scope — county officers and partners through the row-level-security
policy of ``live_event`` (a household event is visible exactly when a household under its admin codes is), import-job
events kept to their sender and admins here. A changed or disabled user makes the read fail with ``Stale`` before any
event is read, so no event is ever delivered under a scope the user no longer has.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import models as m
from resolvers.access import ScopeCheck, Stale
from resolvers.errors import InvalidInput

TOPICS = tuple(t.value for t in m.LiveTopic)
"""Every topic's database value (``live_topic``)."""

READ = """
SELECT e.seq, e.at, e.topic::text AS topic, e.operation, e.source, e.entity_id
FROM live_event e
WHERE e.seq > $1 AND e.seq <= $2 AND e.topic = ANY($3::live_topic[])
  AND (e.owner IS NULL OR e.owner = $4 OR $5)
ORDER BY e.seq
LIMIT $6"""
"""The events after a position (``$1``) up to the newest numbered one (``$2``) of some topics, visible to the viewer."""


@dataclass(frozen=True)
class EventRow:
    """One numbered change.

    ``seq`` (increasing, gap-free across all topics), when it was written (``at``, the writing transaction's start),
    ``topic``, ``operation`` (INSERT/UPDATE/DELETE), ``source`` (the table written) and ``entity_id`` (the household or
    import job id).
    """

    seq: int
    at: dt.datetime
    topic: m.LiveTopic
    operation: str
    source: str
    entity_id: int


@dataclass(frozen=True)
class Batch:
    """Events read at once, and the position to read after next (the newest numbered event seen, visible or not)."""

    events: list[EventRow]
    position: int


def parse_after(value: str | None) -> int | None:
    """The ``after`` argument as a sequence number (None: from now on).

    Raises:
        InvalidInput: not the decimal digits of a number ≥ 0 (field ``after``).
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text.isdigit() or len(text) > 19:
        raise InvalidInput(f"after: a sequence number (the seq of the last event received), got {text[:30]!r}", field="after")
    return int(text)


async def read_events(
    conn: Any, check: ScopeCheck, position: int | None, topics: Sequence[str], batch: int, retention_hours: float
) -> Batch:
    """The events after ``position`` of ``topics`` that ``check``'s viewer may see now, at most ``batch`` of them.

    ``position`` None: only the newest position, no events. ``conn`` is an asyncpg connection.

    Raises:
        Stale: the viewer's user row changed or was disabled (nothing read).
        InvalidInput: ``position`` is older than the oldest event kept (pruned after ``retention_hours``) or newer
            than the newest (field ``after``).
    """
    viewer = check.viewer
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        if not check.holds(await conn.execute(check.local_sql)):
            raise Stale
        oldest, newest = await conn.fetchrow("SELECT oldest, newest FROM anju_live_bounds()")
        if position is None:
            return Batch([], newest)
        if position > newest:
            raise InvalidInput(f"after: {position} is beyond the newest event ({newest})", field="after")
        if oldest and position < oldest - 1:
            raise InvalidInput(
                f"after: events after {position} are no longer kept (the oldest kept is {oldest}; events are kept "
                f"{retention_hours:g} h): re-read what you show, then subscribe without after",
                field="after",
            )
        rows = await conn.fetch(READ, position, newest, list(topics), viewer.name, viewer.is_admin, batch)
    events = [EventRow(r["seq"], r["at"], m.LiveTopic(r["topic"]), r["operation"], r["source"], r["entity_id"]) for r in rows]
    return Batch(events, events[-1].seq if len(events) == batch else newest)
