"""One raw recomputation of the trigger-kept household values, for tests to compare against.

``status_mismatches(conn, dates)`` recomputes, from member, employment and household_residence rows only
(never household_status, member_count or employment.household_id), for every household and every date:
members present (joined_on <= D < left_on, NULL bounds open), those with labor force, distinct present
members employed and stably employed (active: start_on <= D <= coalesce(end_on, D)), the residence in
effect (site_id, admin_code: the latest residence row starting on or before D), and, for today's columns,
member_count / labor_force_count (members who have not left) and the household's current site/admin code
(its latest residence row). It answers the (household id, date, what) of every disagreement: [] = exact.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import Date

RAW = text(
    """
    WITH d AS (SELECT unnest(:dates) AS d),
    raw AS (
        SELECT h.id, d.d,
            (SELECT count(*) FROM member mb WHERE mb.household_id = h.id
                AND coalesce(mb.joined_on, date '-infinity') <= d.d AND d.d < coalesce(mb.left_on, date 'infinity')) AS members,
            (SELECT count(*) FROM member mb WHERE mb.household_id = h.id AND mb.labor_force
                AND coalesce(mb.joined_on, date '-infinity') <= d.d AND d.d < coalesce(mb.left_on, date 'infinity')) AS lf,
            (SELECT count(DISTINCT e.member_id) FROM employment e JOIN member mb ON mb.id = e.member_id
              WHERE mb.household_id = h.id AND e.start_on <= d.d AND (e.end_on IS NULL OR e.end_on >= d.d)
                AND coalesce(mb.joined_on, date '-infinity') <= d.d AND d.d < coalesce(mb.left_on, date 'infinity')) AS employed,
            (SELECT count(DISTINCT e.member_id) FROM employment e JOIN member mb ON mb.id = e.member_id
              WHERE mb.household_id = h.id AND e.stable AND e.start_on <= d.d AND (e.end_on IS NULL OR e.end_on >= d.d)
                AND coalesce(mb.joined_on, date '-infinity') <= d.d AND d.d < coalesce(mb.left_on, date 'infinity')) AS stable,
            (SELECT r.site_id FROM household_residence r WHERE r.household_id = h.id AND r.valid_from <= d.d
              ORDER BY r.valid_from DESC LIMIT 1) AS site_id,
            (SELECT r.admin_code FROM household_residence r WHERE r.household_id = h.id AND r.valid_from <= d.d
              ORDER BY r.valid_from DESC LIMIT 1) AS admin_code
        FROM household h CROSS JOIN d
    )
    SELECT raw.id, raw.d, 'status' AS what FROM raw
    LEFT JOIN household_status st ON st.household_id = raw.id AND st.valid_from <= raw.d AND raw.d < st.valid_to
    WHERE st.household_id IS NULL
       OR (st.members, st.labor_force, st.employed, st.stably_employed, st.site_id, st.admin_code)
          IS DISTINCT FROM (raw.members, raw.lf, raw.employed, raw.stable, raw.site_id, raw.admin_code)
    UNION ALL
    SELECT h.id, NULL, 'counts' FROM household h
    WHERE (h.member_count, h.labor_force_count) IS DISTINCT FROM (
        (SELECT count(*) FROM member mb WHERE mb.household_id = h.id AND mb.left_on IS NULL),
        (SELECT count(*) FROM member mb WHERE mb.household_id = h.id AND mb.left_on IS NULL AND mb.labor_force))
    UNION ALL
    SELECT h.id, NULL, 'current residence' FROM household h
    JOIN LATERAL (SELECT r.site_id, r.admin_code FROM household_residence r WHERE r.household_id = h.id
                  ORDER BY r.valid_from DESC LIMIT 1) cur ON true
    WHERE (h.site_id, h.admin_code) IS DISTINCT FROM (cur.site_id, cur.admin_code)
    UNION ALL
    SELECT h.id, NULL, 'segments' FROM household h CROSS JOIN d
    WHERE (SELECT count(*) FROM household_status st WHERE st.household_id = h.id
           AND st.valid_from <= d.d AND d.d < st.valid_to) <> 1
    ORDER BY 1, 2
    """
).bindparams(bindparam("dates", type_=ARRAY(Date)))


async def status_mismatches(conn: Any, dates: list[dt.date]) -> list[tuple[Any, ...]]:
    """Every (household id, date or None, what) where a trigger-kept value differs from the raw rows."""
    return [tuple(r) for r in (await conn.execute(RAW, {"dates": dates})).all()]
