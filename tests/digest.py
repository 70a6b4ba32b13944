"""One digest of a whole database's rows: equal digests before and after a refused write = nothing written."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

import models


def _statement() -> str:
    # Every table of the models (identifiers from the metadata, never input), each as its rows' text in
    # primary-key order, derived tables included: a write anywhere changes the digest.
    # The live-event outbox counts as one set of changes, pending or numbered alike: a server's sequencer moves rows
    # from live_pending to live_event (numbering them) at any time, which writes no data, and numbers the identical
    # events of one transaction (same transaction time) once (migration 0026): UNION, not UNION ALL.
    outbox = ", ".join(("at", "topic", "operation", "source", "entity_id", "admin_codes", "owner"))
    parts = [
        f"(SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) FROM (SELECT {outbox} FROM live_pending "
        f"UNION SELECT {outbox} FROM live_event) x)"
    ]
    for name, table in sorted(models.Base.metadata.tables.items()):
        if name in ("live_pending", "live_event"):
            continue
        order = ", ".join(c.name for c in table.primary_key.columns)
        parts.append(f"(SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY {order}), '')) FROM {name} t)")
    return "SELECT md5(concat_ws('|', " + ", ".join(parts) + "))"


STATEMENT = _statement()


async def digest(eng: AsyncEngine) -> str:
    """md5 over every row of every table the models declare (audit log, residences and status included)."""
    async with eng.connect() as c:
        return str(await c.scalar(text(STATEMENT)))
