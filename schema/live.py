"""GraphQL subscriptions (``Subscription.changes``): what changed, by id, as it is committed (anju/live.py serves them).

An event names the topic, the operation, the table written, the id of the household, monitoring case or import job and
its sequence number; it carries no row data: a client that wants the data re-reads it through the normal (scoped)
queries.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Annotated, Protocol

import strawberry

import models as m
from resolvers.errors import OutOfScope
from resolvers.live import TOPICS, EventRow
from schema.context import Context
from schema.enums import describe_values

strawberry.enum(
    m.LiveTopic,
    name="LiveTopic",
    description="What a live event is about: HOUSEHOLD (the household or one of its members, employments, incomes and "
    "income linkages), MONITORING_CASE (a monitoring case or one of its steps, assistance measures and follow-up "
    "visits), IMPORT_JOB (state and progress of an import you sent)",
)


describe_values(
    m.LiveTopic,
    {
        "HOUSEHOLD": "搬迁户: a household, or its members, employments, incomes or income linkages (id: the household's)",
        "IMPORT_JOB": "导入任务: an import sent over HTTP, its state and progress (id: the job's)",
        "MONITORING_CASE": "监测对象: a monitoring case, or its steps, assistance measures or follow-up visits (id: the case's)",
    },
)


@strawberry.enum(description="How a record changed")
class ChangeOperation(enum.Enum):
    """The SQL operation that changed the record."""

    INSERT = strawberry.enum_value("INSERT", description="新增: the row was created")
    UPDATE = strawberry.enum_value("UPDATE", description="修改: the row was changed")
    DELETE = strawberry.enum_value("DELETE", description="删除: the row was deleted")


class LiveFeed(Protocol):
    """What a subscription reads from its connection (``anju.live.LiveConnection``)."""

    def events(self, topics: Sequence[str], after: str | None) -> AsyncIterator[EventRow]:
        """The connection's viewer's events of ``topics`` after ``after``, then live."""


@strawberry.type(description="One committed change: what changed (topic, table, operation) and its id; never its data")
class LiveEvent:
    """One event of ``Subscription.changes``."""

    seq: strawberry.ID = strawberry.field(
        description="Sequence number (decimal digits of a 64-bit integer), increasing in commit order without gaps across "
        "all topics; resume after a disconnect with changes(after: <the last seq received>)"
    )
    at: dt.datetime = strawberry.field(description="When the writing transaction started (UTC)")
    topic: m.LiveTopic = strawberry.field(description="What the event is about")
    operation: ChangeOperation = strawberry.field(description="INSERT, UPDATE or DELETE of the row in `table`")
    table: str = strawberry.field(
        description="The table written: household, member, employment, income_linkage, household_income, monitoring_case, "
        "case_step, assistance_measure, follow_up_visit or import_job"
    )
    id: strawberry.ID = strawberry.field(
        description="The household id (topic HOUSEHOLD, whichever of its tables changed), the monitoring case id "
        "(MONITORING_CASE) or the import job id (IMPORT_JOB)"
    )


def _event(row: EventRow) -> LiveEvent:
    return LiveEvent(
        seq=strawberry.ID(str(row.seq)),
        at=row.at,
        topic=row.topic,
        operation=ChangeOperation(row.operation),
        table=row.source,
        id=strawberry.ID(str(row.entity_id)),
    )


@strawberry.type(description="Live updates over WebSocket (protocol graphql-transport-ws, path /graphql): docs/api.md")
class Subscription:
    """Live updates over WebSocket (protocol ``graphql-transport-ws``, path ``/graphql``)."""

    @strawberry.subscription(
        description="Changes you may see, as they are committed: households and monitoring cases (county officers: under "
        "their areas as they are at delivery; grid workers: of their grids as they are at delivery; partners: none) and "
        "your import jobs (admins: all). With `after`, first every event after "
        "that seq still kept (retention: settings live.retention_hours), in order, then live. BAD_USER_INPUT (field "
        "after) when `after` is older than the events kept or newer than the newest."
    )
    async def changes(
        self,
        info: strawberry.Info[Context, None],
        topics: Annotated[
            list[m.LiveTopic] | None, strawberry.argument(description="Only these topics (default: all you may see).")
        ] = None,
        after: Annotated[
            strawberry.ID | None,
            strawberry.argument(
                description="Replay the events after this seq (the last you received) before the live ones; omitted: from now on."
            ),
        ] = None,
    ) -> AsyncGenerator[LiveEvent, None]:
        """The viewer's events (``LiveFeed.events``), as GraphQL objects; FORBIDDEN outside a WebSocket."""
        feed = info.context.live
        if feed is None:
            raise OutOfScope("subscriptions are served over WebSocket at /graphql (protocol graphql-transport-ws)")
        wanted = tuple(dict.fromkeys(t.value for t in topics)) if topics else TOPICS
        async for row in feed.events(wanted, after):
            yield _event(row)
