"""Live updates (GraphQL subscriptions over graphql-transport-ws), end to end: `anju serve --workers 2` in a subprocess
against the test database, real WebSockets (the `websockets` client), writes committed to PostGIS by the test.

What a subscriber receives is compared with the outbox itself (``live_event``, read with raw SQL), and with what its
scope allows (the household's county against the officer's areas, read from ``household``).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import text
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from anju.auth import issue_token
from resolvers.access import Role, add_user
from tests.test_cli import _env
from tests.test_household_import import family, write_csv
from tests.test_workers import _free_port

XIDE, ZHAOJUE = "513432", "513431"
SUBSCRIBE = (
    "subscription($topics: [LiveTopic!], $after: ID) { changes(topics: $topics, after: $after) { seq topic operation table id } }"
)
LIVE_ENV = {
    "ANJU_LIVE__RECHECK_SECONDS": "1",
    "ANJU_LIVE__POLL_SECONDS": "0.5",
    "ANJU_LIVE__MAX_SUBSCRIPTIONS_PER_CONNECTION": "2",
    "ANJU_LIVE__MAX_CONNECTIONS": "10",
}


@pytest.fixture(scope="module")
def server(settings, engine, tmp_path_factory) -> Iterator[int]:  # type: ignore[no-untyped-def]
    """`anju serve --workers 2` on a free port (live settings above); its port once /healthz answers. Its log: a file."""
    port = _free_port()
    log = (tmp_path_factory.mktemp("live") / "serve.log").open("w+")
    env = {**_env(settings), **LIVE_ENV}
    if settings.uses_local_db:
        env["ANJU_LOCAL_DB__DATABASE"] = settings.local_db.database
    else:
        env["DATABASE_URL"] = settings.sqlalchemy_url()
    proc = subprocess.Popen(
        [sys.executable, "-m", "anju.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 180
    while True:
        if proc.poll() is not None or time.time() > deadline:
            proc.terminate()  # SIGTERM: uvicorn's supervisor stops its workers too (SIGKILL would orphan them)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise AssertionError("anju serve did not answer /healthz: " + _tail(log))
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    yield port
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    sys.stdout.write(_tail(log))  # shown with a failure
    log.close()


def _tail(log: Any) -> str:
    log.flush()
    log.seek(0)
    return str(log.read()[-5000:])


@pytest.fixture(scope="module")
async def people(sm, settings) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Users of this module, name → token: an admin, a Xide officer, a partner, one to disable, a grid worker."""
    async with sm() as s:
        pid = await s.scalar(text("SELECT id FROM cooperation_partner ORDER BY id LIMIT 1"))
    specs = {
        "live-admin": (Role.ADMIN, (), None),
        "live-officer": (Role.COUNTY_OFFICER, (XIDE,), None),
        "live-partner": (Role.PARTNER, (), pid),
        "live-doomed": (Role.COUNTY_OFFICER, (XIDE,), None),
        "live-gw": (Role.GRID_WORKER, (), None),
    }
    for name, (role, areas, partner_id) in specs.items():
        await add_user(sm, name, role, areas, partner_id)
    return {name: issue_token(settings, name) for name in specs}


@pytest.fixture(scope="module")
async def households(sm) -> AsyncIterator[dict[str, int]]:  # type: ignore[no-untyped-def]
    """A demo household of Xide, and a generated one (labelled, removed afterwards) of Zhaojue, which has none."""
    async with sm() as s, s.begin():
        xide = await s.scalar(text("SELECT id FROM household WHERE county_code = :c ORDER BY id LIMIT 1"), {"c": XIDE})
        zhaojue = await s.scalar(
            text(
                "INSERT INTO household (code, admin_code, poverty_status) "
                "VALUES ('GENERATED-test-live-zhaojue', :c, 'non_poor') RETURNING id"
            ),
            {"c": ZHAOJUE},
        )
    yield {XIDE: int(xide), ZHAOJUE: int(zhaojue)}
    async with sm() as s, s.begin():
        await s.execute(text("DELETE FROM household WHERE id = :id"), {"id": zhaojue})
        await s.execute(text("UPDATE household SET remark = NULL WHERE id = :id"), {"id": xide})


async def _write(sm, statement: str, **params: Any) -> None:  # type: ignore[no-untyped-def]
    async with sm() as s, s.begin():
        await s.execute(text(statement), params)


async def _remark(sm, household: int, remark: str) -> None:  # type: ignore[no-untyped-def]
    await _write(sm, "UPDATE household SET remark = :r WHERE id = :id", r=remark, id=household)


async def _head(sm) -> int:  # type: ignore[no-untyped-def]
    """The newest numbered event, once everything committed so far is numbered (the servers number it within 0.5 s)."""
    async with sm() as s:
        for _ in range(100):
            pending = await s.scalar(text("SELECT count(*) FROM live_pending"))
            await s.rollback()
            if not pending:
                break
            await asyncio.sleep(0.1)
        return int(await s.scalar(text("SELECT coalesce(max(seq), 0) FROM live_event")))


async def _outbox(sm, after: int, upto: int) -> list[tuple[int, str, int, str | None]]:  # type: ignore[no-untyped-def]
    """The numbered events in (after, upto]: seq, topic, entity id, and the household's county (None: not a household)."""
    await _head(sm)
    async with sm() as s:
        rows = await s.execute(
            text(
                "SELECT seq, topic::text, entity_id, left(admin_codes[array_length(admin_codes, 1)], 6) "
                "FROM live_event WHERE seq > :a AND seq <= :b ORDER BY seq"
            ),
            {"a": after, "b": upto},
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def _open(port: int, token: str | None, **payload: Any) -> ClientConnection:
    ws = await connect(f"ws://127.0.0.1:{port}/graphql", subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    await ws.send(json.dumps({"type": "connection_init", "payload": {"token": token, **payload} if token else payload}))
    return ws


async def _ack(ws: ClientConnection) -> None:
    assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "connection_ack"}


async def _subscribe(ws: ClientConnection, op: str, after: int | None = None, topics: list[str] | None = None) -> None:
    variables: dict[str, Any] = {"after": None if after is None else str(after), "topics": topics}
    await ws.send(json.dumps({"id": op, "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": variables}}))


async def _events(ws: ClientConnection, until: int, timeout: float = 20) -> list[dict[str, Any]]:
    """The events received until one with seq ≥ ``until`` (asserting each message is an event)."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not got or int(got[-1]["seq"]) < until:
        message = json.loads(await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic())))
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        got.append(message["payload"]["data"]["changes"])
    return got


def _seqs(events: list[dict[str, Any]]) -> list[int]:
    return [int(e["seq"]) for e in events]


async def test_scope_is_the_subscribers_at_delivery(server, sm, people, households) -> None:  # type: ignore[no-untyped-def]
    a, b = households[XIDE], households[ZHAOJUE]
    async with sm() as s, s.begin():  # what is pending numbered first (no server of this module may be running)
        start = await s.scalar(text("SELECT anju_live_sequence()"))
    officer, partner, admin = [await _open(server, people[n]) for n in ("live-officer", "live-partner", "live-admin")]
    for ws in (officer, partner, admin):
        await _ack(ws)
        await _subscribe(ws, "1", after=start)

    await _remark(sm, a, "A1")
    await _remark(sm, b, "B1")
    await _remark(sm, a, "A2")
    # an import job of the partner's (written here: partners import nothing): the one event the partner may see
    await _write(sm, "INSERT INTO import_job (kind, user_name, file_name) VALUES ('households', 'live-partner', 'x.csv')")
    first = await _head(sm)
    outbox = await _outbox(sm, start, first)
    assert [(t, e) for _, t, e, _ in outbox] == [
        ("household", a),
        ("household", b),
        ("household", a),
        ("import_job", outbox[-1][2]),
    ]

    got_admin = await _events(admin, first)
    assert _seqs(got_admin) == [s for s, *_ in outbox]
    assert [(e["topic"], e["table"], e["operation"], int(e["id"])) for e in got_admin][:3] == [
        ("HOUSEHOLD", "household", "UPDATE", a),
        ("HOUSEHOLD", "household", "UPDATE", b),
        ("HOUSEHOLD", "household", "UPDATE", a),
    ]
    # Xide's officer: Xide's two events, in order, and not Zhaojue's between them (delivery is in seq order)
    got_officer = await _events(officer, max(s for s, t, _, c in outbox if c == XIDE))
    assert _seqs(got_officer) == [s for s, t, _, c in outbox if c == XIDE]
    # the partner: its import job and no household event before it
    got_partner = await _events(partner, first)
    assert [(e["topic"], int(e["seq"])) for e in got_partner] == [("IMPORT_JOB", first)]

    # the officer's areas change to Zhaojue mid-subscription: Xide's next event is not delivered, Zhaojue's is
    await _write(sm, "UPDATE app_user SET area_codes = :c WHERE name = 'live-officer'", c=[ZHAOJUE])
    await _remark(sm, a, "A3")
    await _remark(sm, b, "B2")
    second = await _head(sm)
    later = await _outbox(sm, first, second)
    assert [(e, c) for _, _, e, c in later] == [(a, XIDE), (b, ZHAOJUE)]
    assert _seqs(await _events(officer, second)) == [later[1][0]]
    assert _seqs(await _events(admin, second)) == [s for s, *_ in later]
    for ws in (officer, partner, admin):
        await ws.close()
    await _write(sm, "UPDATE app_user SET area_codes = :c WHERE name = 'live-officer'", c=[XIDE])


async def test_resume_after_a_disconnect_loses_nothing_and_repeats_nothing(server, sm, people, households) -> None:  # type: ignore[no-untyped-def]
    a, b = households[XIDE], households[ZHAOJUE]
    async with sm() as s, s.begin():  # what is pending numbered first (no server of this module may be running)
        start = await s.scalar(text("SELECT anju_live_sequence()"))
    ws = await _open(server, people["live-admin"])
    await _ack(ws)
    await _subscribe(ws, "r", after=start)
    await _remark(sm, a, "before the disconnect")
    received = await _events(ws, await _head(sm))
    await ws.close()
    last = int(received[-1]["seq"])

    # while nobody listens: households, a member and an income (household events), an import job
    await _remark(sm, b, "while away 1")
    await _write(
        sm,
        "INSERT INTO member (household_id, name, gender, birth_year, relation, labor_force) "
        "VALUES (:h, 'GENERATED 测试', 'female', 1990, 'other', true)",
        h=b,
    )
    await _write(sm, "INSERT INTO household_income (household_id, year, net_income) VALUES (:h, 2024, 12000)", h=b)
    await _write(sm, "INSERT INTO import_job (kind, user_name, file_name) VALUES ('households', 'live-admin', 'y.csv')")
    await _remark(sm, a, "while away 2")
    end = await _head(sm)
    missed = await _outbox(sm, last, end)
    assert len(missed) >= 5
    assert {"import_job"} < {t for _, t, _, _ in missed}

    again = await _open(server, people["live-admin"])
    await _ack(again)
    await _subscribe(again, "r", after=last)
    replayed = await _events(again, end)
    # every event after the last one received, once, in order: the numbers are consecutive (no gap)
    assert _seqs(replayed) == [s for s, *_ in missed] == list(range(last + 1, end + 1))
    assert [(e["topic"].lower(), int(e["id"])) for e in replayed] == [(t, e) for _, t, e, _ in missed]
    assert {e["table"] for e in replayed} >= {"household", "member", "household_income", "import_job"}
    # then live
    await _remark(sm, a, "after resuming")
    assert _seqs(await _events(again, await _head(sm))) == [end + 1]
    await again.close()


async def test_an_event_for_a_row_too_large_for_notify_is_delivered(server, sm, people, households) -> None:  # type: ignore[no-untyped-def]
    a = households[XIDE]
    remark = "易地扶贫搬迁户，家庭情况说明：" * 400  # 6,000 characters
    assert len(remark.encode("utf-8")) > 8000
    async with sm() as s:  # such a row could not travel as a NOTIFY payload (PostgreSQL refuses > 8,000 bytes)
        with pytest.raises(Exception, match="payload string too long"):
            await s.execute(text("SELECT pg_notify('anju_test_payload', :r)"), {"r": remark})
    start = await _head(sm)
    ws = await _open(server, people["live-officer"])
    await _ack(ws)
    await _subscribe(ws, "big", after=start, topics=["HOUSEHOLD"])
    await _remark(sm, a, remark)
    end = await _head(sm)
    got = await _events(ws, end)
    assert [(int(e["id"]), e["table"]) for e in got] == [(a, "household")]
    async with sm() as s:
        assert await s.scalar(text("SELECT remark FROM household WHERE id = :id"), {"id": a}) == remark
    await ws.close()


async def test_a_connection_without_a_valid_token_is_refused(server, people) -> None:  # type: ignore[no-untyped-def]
    for token, payload in ((None, {}), ("not-a-token", {}), (None, {"Authorization": "Bearer x.y.z"})):
        ws = await _open(server, token, **payload)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    # a subscription before connection_init is refused too (the protocol's 4401)
    ws = await connect(f"ws://127.0.0.1:{server}/graphql", subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    await _subscribe(ws, "early")
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    # the Authorization form of the payload is accepted
    ws = await _open(server, None, Authorization=f"Bearer {people['live-admin']}")
    await _ack(ws)
    await ws.close()


async def test_a_disabled_users_connection_is_closed(server, sm, people) -> None:  # type: ignore[no-untyped-def]
    ws = await _open(server, people["live-doomed"])
    await _ack(ws)
    await _subscribe(ws, "d")
    await _write(sm, "UPDATE app_user SET disabled = true WHERE name = 'live-doomed'")
    with pytest.raises(ConnectionClosed) as closed:
        while True:  # re-checked every second (ANJU_LIVE__RECHECK_SECONDS)
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None and (closed.value.rcvd.code, closed.value.rcvd.reason) == (4403, "user disabled")
    again = await _open(server, people["live-doomed"])
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(again.recv(), 10)


async def test_limits_on_subscriptions_and_connections(server, people) -> None:  # type: ignore[no-untyped-def]
    ws = await _open(server, people["live-admin"])
    await _ack(ws)
    await _subscribe(ws, "1")
    await _subscribe(ws, "2")
    await _subscribe(ws, "3")  # ANJU_LIVE__MAX_SUBSCRIPTIONS_PER_CONNECTION=2
    message = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert (message["id"], message["type"], message["payload"][0]["message"]) == ("3", "error", "Subscription limit reached")
    await ws.send(json.dumps({"id": "1", "type": "complete"}))
    await _subscribe(ws, "3")  # a finished one frees its place
    await ws.send(json.dumps({"type": "ping"}))
    assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "pong"}
    await ws.close()

    # ANJU_LIVE__MAX_CONNECTIONS=10 per worker, 2 workers: of 21 connections at least one is refused at the handshake
    opened: list[ClientConnection] = []
    refused = 0
    for _ in range(21):
        try:
            opened.append(await connect(f"ws://127.0.0.1:{server}/graphql", subprotocols=["graphql-transport-ws"]))  # type: ignore[list-item]
        except InvalidStatus as exc:
            assert exc.response.status_code == 403
            refused += 1
    assert refused >= 1 and len(opened) <= 20
    for c in opened:
        await c.close()


async def test_bad_after_is_a_clear_error(server, sm, people, households) -> None:  # type: ignore[no-untyped-def]
    head = await _head(sm)
    ws = await _open(server, people["live-admin"])
    await _ack(ws)
    for op, after in (("x", "abc"), ("y", str(head + 1000))):
        await ws.send(json.dumps({"id": op, "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": {"after": after}}}))
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert (message["id"], message["type"]) == (op, "next"), message
        assert message["payload"]["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}, message
        assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"id": op, "type": "complete"}
    # retention: pruning keeps only the newest event; resuming from before it is refused, from it still works
    async with sm() as s, s.begin():
        assert head >= 3 and await s.scalar(text("SELECT anju_live_prune('0 seconds')")) > 0
        assert await s.scalar(text("SELECT array_agg(seq) FROM live_event")) == [head]
    await _subscribe(ws, "z", after=head - 2)
    message = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert message["payload"]["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}, message
    assert "no longer kept" in message["payload"]["errors"][0]["message"]
    assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"id": "z", "type": "complete"}
    await _subscribe(ws, "w", after=head - 1)
    await _remark(sm, households[XIDE], "after pruning")
    assert _seqs(await _events(ws, head + 1)) == [head, head + 1]
    await ws.close()


async def test_an_import_jobs_progress_reaches_its_sender_only(server, sm, people, households, tmp_path) -> None:  # type: ignore[no-untyped-def]
    start = await _head(sm)
    admin, officer = await _open(server, people["live-admin"]), await _open(server, people["live-officer"])
    for ws in (admin, officer):
        await _ack(ws)
        await _subscribe(ws, "i", after=start)
    roster = write_csv(tmp_path / "roster.csv", family("GENERATED-LIVE-1", 3, 950)).read_bytes()
    headers = {"Authorization": f"Bearer {people['live-admin']}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server}") as c:
        r = await c.post("/imports/households?filename=live.csv&dryRun=true", content=roster, headers=headers)
        assert r.status_code == 202, r.text
        job = r.json()["id"]
        states, seen = [], []
        while not states or states[-1] not in ("done", "failed"):
            (event,) = await _events(admin, 0)
            assert (event["topic"], event["table"], event["id"]) == ("IMPORT_JOB", "import_job", job)
            seen.append(int(event["seq"]))
            # the event says which job changed; its state is re-read through the normal query
            answer = await c.post(
                "/graphql",
                json={"query": "query($id: ID!) { importJob(id: $id) { state } }", "variables": {"id": job}},
                headers=headers,
            )
            states.append(answer.json()["data"]["importJob"]["state"])
    assert states[0] in ("queued", "reading") and states[-1] == "done"
    async with sm() as s:
        rows = (
            await s.execute(
                text("SELECT seq, operation FROM live_event WHERE topic = 'import_job' AND entity_id = :j ORDER BY seq"),
                {"j": int(job)},
            )
        ).all()
    # every change of the job (created, then each state and progress update) arrives, once, in order
    assert [op for _, op in rows][0] == "INSERT" and {op for _, op in rows[1:]} == {"UPDATE"} and len(rows) >= 3
    seen += _seqs(await _events(admin, rows[-1][0])) if seen[-1] < rows[-1][0] else []
    assert seen == [seq for seq, _ in rows]
    # the officer, subscribed to every topic, gets none of the admin's job: its first event is the next Xide household's
    await _remark(sm, households[XIDE], "after the import")
    (first,) = await _events(officer, 0)
    assert (first["topic"], int(first["id"])) == ("HOUSEHOLD", households[XIDE])
    for ws in (admin, officer):
        await ws.close()


CASE = (
    "INSERT INTO monitoring_case (household_id, county_code, category, risk_types, source, opened_on, stage, stage_on) "
    "SELECT h.id, h.county_code, 'marginal', ARRAY['illness']::risk_type[], 'grid_visit', DATE '2024-05-01', "
    "'application', DATE '2024-05-01' FROM household h WHERE h.id = :h RETURNING id"
)


async def test_monitoring_cases_are_a_topic_scoped_at_delivery(server, sm, people, households) -> None:  # type: ignore[no-untyped-def]
    """Cases (topic MONITORING_CASE, id: the case's) reach admins all, the Xide officer Xide's, the grid worker those
    of its grid's households — its grids as they are when the event is delivered — and the partner none."""
    async with sm() as s, s.begin():
        a, c = list(
            await s.scalars(
                text(
                    "SELECT id FROM household h WHERE county_code = :x AND NOT EXISTS "
                    "(SELECT 1 FROM monitoring_case m WHERE m.household_id = h.id) ORDER BY id LIMIT 2"
                ),
                {"x": XIDE},
            )
        )
        gw = await s.scalar(text("SELECT id FROM app_user WHERE name = 'live-gw'"))
        grid_a, grid_c = [
            await s.scalar(
                text(
                    "INSERT INTO grid (county_code, level, code, name, worker_user_id) "
                    "VALUES (:x, 1, :code, '[generated] live test grid', :w) RETURNING id"
                ),
                {"x": XIDE, "code": code, "w": worker},
            )
            for code, worker in (("GENERATED-LIVE-A", gw), ("GENERATED-LIVE-C", None))
        ]
        await s.execute(text("UPDATE household SET grid_id = :g WHERE id = :h"), {"g": grid_a, "h": a})
        await s.execute(text("UPDATE household SET grid_id = :g WHERE id = :h"), {"g": grid_c, "h": c})
    b = households[ZHAOJUE]
    cases: dict[int, int] = {}
    try:
        start = await _head(sm)
        names = ("live-admin", "live-officer", "live-gw", "live-partner")
        admin, officer, worker, partner = [await _open(server, people[n]) for n in names]
        for ws in (admin, officer, worker, partner):
            await _ack(ws)
            await _subscribe(ws, "c", after=start, topics=["MONITORING_CASE", "IMPORT_JOB"])
        for h in (a, c, b):  # Xide in the worker's grid, Xide in another grid, Zhaojue
            async with sm() as s, s.begin():
                cases[h] = int(await s.scalar(text(CASE), {"h": h}))
        await _write(sm, "UPDATE monitoring_case SET notes = '入户核实 (generated)' WHERE id = :id", id=cases[a])
        await _write(sm, "INSERT INTO import_job (kind, user_name, file_name) VALUES ('households', 'live-partner', 'c.csv')")
        first = await _head(sm)
        outbox = await _outbox(sm, start, first)
        assert [(t, e, county) for _, t, e, county in outbox] == [
            ("monitoring_case", cases[a], XIDE),
            ("monitoring_case", cases[c], XIDE),
            ("monitoring_case", cases[b], ZHAOJUE),
            ("monitoring_case", cases[a], XIDE),
            ("import_job", outbox[-1][2], None),
        ]
        seq = {i: s for i, (s, *_) in enumerate(outbox)}

        got = await _events(admin, seq[3])
        assert [(int(e["seq"]), e["topic"], e["table"], e["operation"], int(e["id"])) for e in got] == [
            (seq[0], "MONITORING_CASE", "monitoring_case", "INSERT", cases[a]),
            (seq[1], "MONITORING_CASE", "monitoring_case", "INSERT", cases[c]),
            (seq[2], "MONITORING_CASE", "monitoring_case", "INSERT", cases[b]),
            (seq[3], "MONITORING_CASE", "monitoring_case", "UPDATE", cases[a]),
        ]
        assert _seqs(await _events(officer, seq[3])) == [seq[0], seq[1], seq[3]]  # Xide's, not Zhaojue's
        assert _seqs(await _events(worker, seq[3])) == [seq[0], seq[3]]  # its grid's household only
        # the partner: its own import job, and no case before it
        assert [(e["topic"], int(e["seq"])) for e in await _events(partner, first)] == [("IMPORT_JOB", first)]

        # The worker's grid is handed over (c's grid becomes the worker's, a's nobody's): the next event of a's case
        # is not delivered to it, the next of c's is.
        await _write(sm, "UPDATE grid SET worker_user_id = NULL WHERE id = :g", g=grid_a)
        await _write(sm, "UPDATE grid SET worker_user_id = :w WHERE id = :g", w=gw, g=grid_c)
        await _write(sm, "UPDATE monitoring_case SET notes = 'A (generated)' WHERE id = :id", id=cases[a])
        await _write(sm, "UPDATE monitoring_case SET notes = 'C (generated)' WHERE id = :id", id=cases[c])
        second = await _head(sm)
        later = await _outbox(sm, first, second)
        assert [e for _, _, e, _ in later] == [cases[a], cases[c]]
        assert _seqs(await _events(worker, second)) == [later[1][0]]
        assert _seqs(await _events(officer, second)) == [later[0][0], later[1][0]]
        for ws in (admin, officer, worker, partner):
            await ws.close()
    finally:  # cases are never deleted (casework.sql): the test's own generated ones are, with that rule set aside
        async with sm() as s, s.begin():
            await s.execute(text("ALTER TABLE monitoring_case DISABLE TRIGGER never_deleted"))
            await s.execute(text("DELETE FROM monitoring_case WHERE id = ANY(:ids)"), {"ids": list(cases.values())})
            await s.execute(text("ALTER TABLE monitoring_case ENABLE TRIGGER never_deleted"))
            await s.execute(text("UPDATE household SET grid_id = NULL WHERE id IN (:a, :c)"), {"a": a, "c": c})
            await s.execute(text("DELETE FROM grid WHERE code LIKE 'GENERATED-LIVE-%'"))


async def test_an_expired_tokens_connection_stops_delivering_and_is_closed(server, sm, settings, people, households) -> None:  # type: ignore[no-untyped-def]
    """A connection lives as long as its token: events are delivered until it expires, then it is closed with 4403
    ``token expired`` (the watchdog wakes at the expiry, not only every recheck) and nothing more is sent."""
    a = households[XIDE]
    start = await _head(sm)
    lifetime = 6.0
    token = issue_token(settings, "live-officer", ttl_hours=lifetime / 3600)
    issued = time.time()
    ws = await _open(server, token)
    await _ack(ws)
    await _subscribe(ws, "e", after=start, topics=["HOUSEHOLD"])
    await _remark(sm, a, "before the token expires")
    head = await _head(sm)
    got = await _events(ws, head)
    assert time.time() < issued + lifetime and _seqs(got)[-1] == head  # delivered while valid
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), lifetime + 10))
            # anything still arriving was committed before the expiry (none is written here)
            raise AssertionError(f"no event was written, yet {message} arrived")
    ended = time.time()
    assert closed.value.rcvd is not None and (closed.value.rcvd.code, closed.value.rcvd.reason) == (4403, "token expired")
    assert issued + lifetime - 1 <= ended < issued + lifetime + 5, ended - issued
    # the same token is refused at a new connection_init
    again = await _open(server, token)
    with pytest.raises(ConnectionClosed) as refused:
        await asyncio.wait_for(again.recv(), 10)
    assert refused.value.rcvd is not None and refused.value.rcvd.code == 4403


async def test_one_mutation_writing_a_household_twice_is_one_event(server, sm, people, households) -> None:  # type: ignore[no-untyped-def]
    """updateHousehold claims the household's version, then changes its code: two UPDATE statements of one transaction,
    one event (the sequencer numbers a transaction's identical events once). Two mutations: two events."""
    a = households[XIDE]
    async with sm() as s:
        version, code = (await s.execute(text("SELECT version, code FROM household WHERE id = :id"), {"id": a})).one()
    start = await _head(sm)
    ws = await _open(server, people["live-admin"])
    await _ack(ws)
    await _subscribe(ws, "twice", after=start, topics=["HOUSEHOLD"])
    mutation = "mutation($in: UpdateHouseholdInput!) { updateHousehold(input: $in) { household { version } } }"
    headers = {"Authorization": f"Bearer {people['live-admin']}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server}", headers=headers, timeout=30) as client:
        for new_code in (code + "-live", code):  # changed, then back: the fixture's household as it was
            r = await client.post(
                "/graphql", json={"query": mutation, "variables": {"in": {"id": str(a), "version": version, "code": new_code}}}
            )
            assert "errors" not in r.json(), r.json()
            version = r.json()["data"]["updateHousehold"]["household"]["version"]
    end = await _head(sm)
    outbox = await _outbox(sm, start, end)
    assert [(t, e) for _, t, e, _ in outbox] == [("household", a), ("household", a)]
    got = await _events(ws, end)
    assert _seqs(got) == [s for s, *_ in outbox]
    assert [(e["table"], e["operation"], int(e["id"])) for e in got] == [("household", "UPDATE", a)] * 2
    await ws.close()


async def test_different_events_of_a_transaction_and_alike_events_of_two_stay(sm, households) -> None:  # type: ignore[no-untyped-def]
    """The sequencer folds only identical events of one transaction: one transaction writing household A twice and
    household B once is two events; the same write of A in a second transaction another; a household inserted then
    updated in one transaction is an INSERT and an UPDATE, its deletion in the next a DELETE."""
    a, b = households[XIDE], households[ZHAOJUE]
    async with sm() as s, s.begin():  # what is pending numbered first (no server of this module may be running)
        start = await s.scalar(text("SELECT anju_live_sequence()"))
    async with sm() as s, s.begin():
        for hid in (a, b, a):
            await s.execute(text("UPDATE household SET version = version + 1 WHERE id = :id"), {"id": hid})
    async with sm() as s, s.begin():
        await s.execute(text("UPDATE household SET version = version + 1 WHERE id = :id"), {"id": a})
    async with sm() as s, s.begin():
        new = await s.scalar(
            text("INSERT INTO household (code, admin_code, poverty_status) "
                 "VALUES ('GENERATED-test-live-once', :c, 'non_poor') RETURNING id"), {"c": ZHAOJUE}
        )  # fmt: skip
        await s.execute(text("UPDATE household SET version = version + 1 WHERE id = :id"), {"id": new})
    async with sm() as s, s.begin():
        await s.execute(text("DELETE FROM household WHERE id = :id"), {"id": new})
    async with sm() as s, s.begin():
        end = await s.scalar(text("SELECT anju_live_sequence()"))
    async with sm() as s:
        got = (
            await s.execute(
                text(
                    "SELECT entity_id, operation::text FROM live_event WHERE seq > :a AND seq <= :b "
                    "AND source = 'household' ORDER BY seq"
                ),
                {"a": start, "b": end},
            )
        ).all()
    assert [tuple(r) for r in got] == [
        (a, "UPDATE"), (b, "UPDATE"), (a, "UPDATE"), (new, "INSERT"), (new, "UPDATE"), (new, "DELETE")
    ]  # fmt: skip
